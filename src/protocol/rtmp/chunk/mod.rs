//! The RTMP chunk stream (RTMP spec 5.3): splits messages into chunks on the way
//! out and reassembles them on the way in.
//!
//! - [`ChunkDecoder`]: bytes in, complete [`RtmpMessage`](super::message::RtmpMessage)s out.
//! - [`ChunkEncoder`]: a connection's outgoing side, with per-csid header compression.
//! - [`SharedChunks`] + [`write_first_header`]: the egress fast path of DESIGN.md, where
//!   a message body is chunked once and shared by every RTMP viewer.

mod decoder;
mod encoder;
mod error;
mod header;
mod limits;
mod shared;

#[cfg(test)]
mod decoder_tests;
#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod skip_tests;

pub use decoder::{ChunkDecoder, Decoded, Incoming, SkippedMessage};
pub use encoder::ChunkEncoder;
pub use error::{ChunkError, EncodeError};
pub use header::{
    write_first_header, DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP_MARKER, MAX_CHUNK_HEADER_LEN,
    MAX_CSID, MAX_MESSAGE_LEN, MIN_CSID,
};
pub use limits::{ChunkLimits, ABSOLUTE_MAX_CHUNK_SIZE};
pub use shared::SharedChunks;
