//! Why a frame could not be muxed into MPEG-TS.

use std::fmt;

use thiserror::Error;

/// Which elementary stream an error or a decision is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// The video track (H.264 in TS).
    Video,
    /// The audio track (AAC in ADTS in TS).
    Audio,
}

impl fmt::Display for TrackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
        })
    }
}

/// Errors of the MPEG-TS muxer. Each names the input or the limit at fault.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TsError {
    /// The track's codec cannot go into a classic HLS transport stream (HEVC and AV1
    /// go out as fMP4 only; MP3, Speex, Nellymoser, ... not at all). The caller leaves
    /// the track out and warns once.
    #[error("{track} codec {codec} cannot be carried in MPEG-TS HLS")]
    UnsupportedCodec {
        /// The track.
        track: TrackKind,
        /// The codec's name.
        codec: &'static str,
    },
    /// A FLV / Enhanced RTMP packet type this muxer does not handle (multitrack, ModEx, ...).
    #[error("{track} packet type {packet_type} not supported")]
    UnsupportedPacketType {
        /// The track.
        track: TrackKind,
        /// The packet type as carried.
        packet_type: u8,
    },
    /// A coded frame arrived before the sequence header that says how to read it.
    #[error("{track} frame before its sequence header")]
    MissingConfig {
        /// The track.
        track: TrackKind,
    },
    /// The input ended inside a header or record.
    #[error("truncated {what}")]
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// A NAL unit length prefix points past the end of the frame.
    #[error("NAL unit of {len} bytes overruns the {remaining} bytes left in the frame")]
    NaluOverrun {
        /// The length the prefix claims.
        len: usize,
        /// The bytes actually left.
        remaining: usize,
    },
    /// The parameter sets of a sequence header are larger than the muxer keeps.
    #[error("parameter sets of {len} bytes exceed the limit {limit}")]
    ParameterSetsTooLarge {
        /// Their size in Annex B form.
        len: usize,
        /// [`crate::protocol::ts::MAX_PARAMETER_SETS`].
        limit: usize,
    },
    /// One access unit would make a PES larger than [`crate::protocol::ts::TsLimits::max_pes_size`].
    #[error("PES of {len} bytes exceeds max_pes_size {limit}")]
    PesTooLarge {
        /// The PES size (header and payload).
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A raw AAC frame too large for the 13-bit ADTS frame length.
    #[error("AAC frame of {len} bytes exceeds the ADTS limit {limit}")]
    AacFrameTooLarge {
        /// The raw frame length.
        len: usize,
        /// The largest raw frame an ADTS header can frame.
        limit: usize,
    },
    /// An AudioSpecificConfig value an ADTS header cannot express.
    #[error("AAC {field} {value} cannot be expressed in an ADTS header")]
    AdtsUnsupported {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
    },
    /// A media frame was written before the first [`crate::protocol::ts::TsMuxer::start_segment`].
    #[error("frame written before the first segment was started")]
    NoSegment,
    /// A muxer was asked for with neither a video nor an audio track.
    #[error("an MPEG-TS muxer needs at least one track")]
    NoTracks,
}
