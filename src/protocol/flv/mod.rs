//! FLV: the container both RTMP and HTTP-FLV carry.
//!
//! An RTMP audio/video/data message payload is exactly an FLV tag body, so one
//! [`frame::Frame`] type serves both protocols without transformation.

pub mod codec;
pub mod demux;
pub mod error;
pub mod frame;
pub mod metadata;
pub mod tag;

pub use demux::{FlvDemuxer, FlvLimits, UnknownTagPolicy};
pub use error::FlvError;
