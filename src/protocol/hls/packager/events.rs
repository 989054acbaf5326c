//! What a packager reports after a push: [`PackagerEvent`]s for the caller
//! to act on, and [`PackagerWarning`]s for what it could not package.

use thiserror::Error;

use crate::protocol::fmp4::Fmp4Error;
use crate::protocol::ts::TsError;

use crate::protocol::hls::timeline::TrackKind;

/// Something the packager could not package; the stream goes on.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PackagerWarning {
    /// A track HLS/DASH cannot carry, or whose sequence header came after the
    /// stream's first frame; once per track per stream.
    #[error("{track:?} track left out of HLS/DASH: {reason}")]
    TrackLeftOut {
        /// The track.
        track: TrackKind,
        /// Why.
        reason: String,
    },
    /// No MPEG-TS rendition (HEVC/AV1 video); once per stream.
    #[error("no MPEG-TS rendition: {reason}")]
    NoTsRendition {
        /// Why.
        reason: String,
    },
    /// A part's chunk could not be written (a bound was hit); that part of
    /// that track answers 404.
    #[error("part {msn}.{part} of the {track:?} track not packaged: {error}")]
    Chunk {
        /// The track.
        track: TrackKind,
        /// Segment.
        msn: u64,
        /// Part.
        part: u32,
        /// The muxer's error.
        error: Fmp4Error,
    },
    /// A part already holds [`ChunkLimits::max_samples`](crate::protocol::fmp4::ChunkLimits::max_samples) frames of a track
    /// and the frame does not advance time (timestamps that stop advancing
    /// never close a part): the frame is dropped.
    #[error("{track:?} frame dropped: the open part already holds {limit} frames")]
    PartFull {
        /// The track.
        track: TrackKind,
        /// [`ChunkLimits::max_samples`](crate::protocol::fmp4::ChunkLimits::max_samples).
        limit: usize,
    },
    /// TS segment `msn` reached [`PackagerConfig::max_ts_segment_bytes`](super::PackagerConfig::max_ts_segment_bytes): the
    /// frame is missing there.
    #[error("TS segment {msn} is full ({limit} bytes): frame left out")]
    TsSegmentFull {
        /// Segment.
        msn: u64,
        /// The limit.
        limit: usize,
    },
    /// A frame could not go into the TS segment `msn`; it is missing there.
    #[error("frame not written to TS segment {msn}: {error}")]
    Ts {
        /// Segment.
        msn: u64,
        /// The muxer's error.
        error: TsError,
    },
}

/// What the caller acts on after a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackagerEvent {
    /// Part `(msn, part)` is stored and listed: answer blocking reloads and
    /// preload-hint requests waiting for it (call [`Packager::answer`](super::Packager::answer) again).
    PartReady {
        /// Segment.
        msn: u64,
        /// Part.
        part: u32,
    },
    /// Segment `msn` is complete (its fMP4 and TS bodies are stored, unless
    /// it is an `EXT-X-GAP` segment).
    SegmentReady {
        /// Segment.
        msn: u64,
    },
    /// Segment `msn` left the window: its URLs answer 404 from now on.
    Evicted {
        /// Segment.
        msn: u64,
    },
    /// Something was left out; see [`PackagerWarning`].
    Warning(PackagerWarning),
}
