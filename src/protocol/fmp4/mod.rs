//! Sans-IO fMP4 / CMAF muxer: init segments and `moof`+`mdat` chunks, one track
//! each, so one chunk is at once an LL-HLS part and an LL-DASH chunk.
//!
//! In: FLV sequence-header tag bodies (→ [`Track`]) and coded [`crate::protocol::Frame`]s
//! with a stream-timeline time (→ [`Chunk`]). Out: bytes. No clock is read and no
//! field depends on when or where the muxer runs, so two boxes packaging the same
//! stream write identical bytes.
//!
//! Carried: H.264 (`avc1`), H.265 (`hvc1`, legacy id 12 or Enhanced RTMP), AV1
//! (`av01`, Enhanced RTMP) and AAC (`mp4a`). Anything else is refused per track
//! with [`Fmp4Error::UnsupportedVideoCodec`] / [`Fmp4Error::UnsupportedAudioCodec`].

pub mod av1;
pub mod chunk;
pub mod error;
pub mod init;
pub mod sample;
pub mod track;
pub mod writer;

pub use chunk::{write_chunk, Chunk, ChunkInput, ChunkLimits};
pub use error::Fmp4Error;
pub use init::write_init;
pub use track::{Fmp4Codec, Track, TrackMedia, VIDEO_TIMESCALE};

#[cfg(test)]
mod tests;
