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
