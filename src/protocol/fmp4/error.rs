//! Why the fMP4 muxer refused an input. Every limit it enforces has a variant
//! that names the limit.

use thiserror::Error;

use crate::protocol::flv::codec::{AudioCodec, VideoCodec};
use crate::protocol::flv::config::CodecConfigError;

/// An fMP4 muxing error.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Fmp4Error {
    /// A video codec fMP4 output does not carry here (H.263, VP6, screen video, VP9).
    #[error("video codec {0:?} cannot be carried in fMP4 by ringcast")]
    UnsupportedVideoCodec(Option<VideoCodec>),
    /// An audio codec fMP4 output does not carry here (MP3, Speex, Nellymoser, PCM...).
    #[error("audio codec {0:?} cannot be carried in fMP4 by ringcast")]
    UnsupportedAudioCodec(AudioCodec),
    /// An Enhanced RTMP packet type the muxer does not understand (multitrack, ModEx...).
    #[error("enhanced RTMP packet type {0} not supported")]
    UnsupportedPacketType(u8),
    /// The sequence header could not be read.
    #[error("bad codec configuration: {0}")]
    Config(#[from] CodecConfigError),
    /// The codec configuration record is larger than the limit.
    #[error("codec configuration record of {size} bytes exceeds {limit}")]
    ConfigTooLarge {
        /// Record size.
        size: usize,
        /// The limit ([`super::track::MAX_CONFIG_RECORD`]).
        limit: usize,
    },
    /// A frame given as a sample is not a coded frame of the track's codec.
    #[error("frame {index} is not a coded {expected} frame")]
    NotACodedFrame {
        /// Position of the frame in the chunk's input.
        index: usize,
        /// What the track expects (`video` / `audio`).
        expected: &'static str,
    },
    /// A frame's codec differs from the track's.
    #[error("frame {index} has a different codec than the track")]
    CodecMismatch {
        /// Position of the frame in the chunk's input.
        index: usize,
    },
    /// A chunk must hold at least one sample.
    #[error("a chunk needs at least one sample")]
    EmptyChunk,
    /// More samples than the per-chunk limit.
    #[error("{count} samples exceed the per-chunk limit {limit}")]
    TooManySamples {
        /// Samples offered.
        count: usize,
        /// [`super::chunk::ChunkLimits::max_samples`].
        limit: usize,
    },
    /// More media bytes than the per-chunk limit.
    #[error("chunk media of more than {limit} bytes")]
    ChunkTooLarge {
        /// [`super::chunk::ChunkLimits::max_bytes`].
        limit: usize,
    },
    /// Frames out of decode order (a timestamp going back).
    #[error("frame {index} goes back {back_ms} ms in decode time")]
    NonMonotonicTimestamp {
        /// Position of the frame in the chunk's input.
        index: usize,
        /// How far back it went.
        back_ms: i64,
    },
    /// A time or duration that does not fit the field that carries it.
    #[error("{what} out of range")]
    TimeOutOfRange {
        /// The field.
        what: &'static str,
    },
    /// `track_ID` 0 is reserved by ISO 14496-12.
    #[error("track_ID 0 is reserved")]
    ZeroTrackId,
    /// The box header bytes would exceed their bound.
    #[error("box header bytes exceed {limit}")]
    HeaderTooLarge {
        /// The bound on the header (moof / init) size.
        limit: usize,
    },
    /// A bug in the muxer itself (unbalanced boxes); never caused by input.
    #[error("internal fMP4 writer error: {what}")]
    Internal {
        /// What went wrong.
        what: &'static str,
    },
}
