//! What the timeline lists: parts, segments and the open segment's span,
//! with each track's frames and bytes.

/// Frames and bytes of one track inside a part or segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackSpan {
    /// Frames.
    pub frames: u32,
    /// Bytes.
    pub bytes: u64,
}

impl TrackSpan {
    pub(super) fn add(&mut self, size: u32) {
        self.frames = self.frames.saturating_add(1);
        self.bytes = self.bytes.saturating_add(u64::from(size));
    }
}

/// A closed part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartInfo {
    /// Media sequence number of its segment.
    pub msn: u64,
    /// Index within the segment, from 0.
    pub index: u32,
    /// DTS of its first leading frame (ms).
    pub start_ms: u64,
    /// Duration (ms): to the next part's start.
    pub duration_ms: u64,
    /// Starts with a keyframe.
    pub independent: bool,
    /// Video frames and bytes.
    pub video: TrackSpan,
    /// Audio frames and bytes.
    pub audio: TrackSpan,
}

/// A closed segment (or a GAP standing for a window with no media).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Media sequence number (the grid window's number).
    pub msn: u64,
    /// DTS of its first leading frame (ms); the window's nominal start for a GAP.
    pub start_ms: u64,
    /// Duration (ms).
    pub duration_ms: u64,
    /// Starts with a keyframe.
    pub independent: bool,
    /// No media: listed with `EXT-X-GAP`.
    pub gap: bool,
    /// The first segment of a new publisher (`EXT-X-DISCONTINUITY`).
    pub discontinuity: bool,
    /// How many discontinuities precede or start this segment (its
    /// discontinuity sequence number; also its DASH period number).
    pub epoch: u64,
    /// Wall-clock time of its start (Unix ms), for PROGRAM-DATE-TIME.
    pub wallclock_ms: u64,
    /// Its parts, in order (empty for a GAP).
    pub parts: Vec<PartInfo>,
}

impl SegmentInfo {
    /// Bytes of media it holds.
    pub fn bytes(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| p.video.bytes.saturating_add(p.audio.bytes))
            .sum()
    }
}

/// The open segment as [`Timeline::open_segment_nominal`](super::Timeline::open_segment_nominal) describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenSegmentSpan {
    /// Its number.
    pub msn: u64,
    /// DTS of its first leading frame (ms).
    pub start_ms: u64,
    /// Nominal duration (ms): to the end of its grid window.
    pub duration_ms: u64,
    /// Its publisher epoch (DASH period).
    pub epoch: u64,
}
