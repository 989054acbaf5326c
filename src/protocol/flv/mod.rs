//! FLV: the container both RTMP and HTTP-FLV carry.
//!
//! An RTMP audio/video/data message payload is exactly an FLV tag body, so one
//! [`frame::Frame`] type serves both protocols without transformation.

pub mod aac;
pub mod avc;
pub mod codec;
pub mod config;
mod crop;
pub mod demux;
pub mod error;
pub mod frame;
pub mod hevc;
pub mod metadata;
pub mod nal_bits;
pub mod tag;
pub mod tag_body;

pub use demux::{FlvDemuxer, FlvLimits, UnknownTagPolicy};
pub use error::FlvError;

/// Test support: every frame of the committed fixture `tests/data/flv/<name>`,
/// demuxed with default limits (shared by the FLV, TS and fMP4 unit tests).
#[cfg(test)]
pub(crate) fn fixture_frames(name: &str) -> Vec<frame::Frame> {
    let path = format!("{}/tests/data/flv/{name}", env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let mut d = FlvDemuxer::new(FlvLimits::default());
    let mut out = Vec::new();
    d.decode_all(&data, &mut out).expect("fixture demuxes");
    out
}
