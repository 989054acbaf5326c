//! What the timeline is fed: the tracks a stream carries, each frame's
//! metadata, and where the timeline starts.

/// Which track a frame belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// The video track.
    Video,
    /// The audio track.
    Audio,
}

/// What the timeline needs to know about one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    /// The frame's track.
    pub track: TrackKind,
    /// A random access point (ignored for audio: every audio frame is one).
    pub keyframe: bool,
    /// Decode timestamp on the stream's monotonic timeline (ms).
    pub dts_ms: u64,
    /// Bytes of media the frame contributes.
    pub size: u32,
}

/// Where the first frame fed to a timeline sits in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartPoint {
    /// The publisher's very first frame: its first keyframe starts a segment.
    PublishStart,
    /// Somewhere in a running stream (a packager started from the GOP cache,
    /// an edge). `prev_keyframe_dts` is the DTS of the keyframe before the
    /// first one fed, if known; `grid_origin_ms` the origin's grid origin
    /// (0 unless a new publisher has re-anchored it).
    Join {
        /// DTS of the keyframe preceding the first fed keyframe.
        prev_keyframe_dts: Option<u64>,
        /// The origin's grid origin (see [`Timeline::grid_origin`](super::Timeline::grid_origin)).
        grid_origin_ms: i64,
    },
}

/// Which tracks the stream has; the leading track drives the boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracks {
    /// A video track is present.
    pub video: bool,
    /// An audio track is present.
    pub audio: bool,
}

impl Tracks {
    pub(super) fn leading(self) -> Option<TrackKind> {
        if self.video {
            Some(TrackKind::Video)
        } else if self.audio {
            Some(TrackKind::Audio)
        } else {
            None
        }
    }
}
