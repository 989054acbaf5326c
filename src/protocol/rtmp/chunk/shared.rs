//! The RTMP egress fast path (DESIGN.md "Egress"): a message body chunked once
//! and shared by every viewer with the same chunk size and csid.

use bytes::{Bytes, BytesMut};

use super::error::EncodeError;
use super::header::{
    check_csid, write_basic_header, EXTENDED_TIMESTAMP_MARKER, MAX_CHUNK_HEADER_LEN,
    MAX_MESSAGE_LEN,
};
use super::limits::ABSOLUTE_MAX_CHUNK_SIZE;

/// A payload with its 1–3 byte fmt-3 continuation headers interleaved, without
/// the first chunk header.
///
/// Send [`write_first_header`](super::write_first_header) (per viewer: its own
/// timestamp and message stream id) followed by [`body`](Self::body). This is
/// only valid while the viewer's timestamp is below 0xFFFFFF: from there on
/// continuation chunks must carry the extended timestamp too, so that viewer
/// falls back to a private [`ChunkEncoder`](super::ChunkEncoder) encode (see
/// [`usable_for`](Self::usable_for)). A viewer mixing both on one csid must call
/// [`ChunkEncoder::forget_chunk_stream`](super::ChunkEncoder::forget_chunk_stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedChunks {
    body: Bytes,
    payload_len: u32,
    chunk_size: u32,
    csid: u32,
}

impl SharedChunks {
    /// Chunks `payload` for `chunk_size` and `csid` (one copy).
    pub fn encode(payload: &Bytes, chunk_size: u32, csid: u32) -> Result<Self, EncodeError> {
        check_csid(csid)?;
        if chunk_size == 0 || chunk_size > ABSOLUTE_MAX_CHUNK_SIZE {
            return Err(EncodeError::InvalidChunkSize {
                size: chunk_size,
                limit: ABSOLUTE_MAX_CHUNK_SIZE,
            });
        }
        if payload.len() > MAX_MESSAGE_LEN as usize {
            return Err(EncodeError::PayloadTooLarge {
                len: payload.len(),
                limit: MAX_MESSAGE_LEN as usize,
            });
        }
        let mut cont = [0u8; MAX_CHUNK_HEADER_LEN];
        let cont_len = write_basic_header(3, csid, &mut cont);
        let size = chunk_size as usize;
        let body = if payload.len() <= size {
            // A single chunk: the body is the payload itself, no copy.
            payload.clone()
        } else {
            let extra = (payload.len() - 1) / size;
            let mut buf = BytesMut::with_capacity(payload.len() + extra * cont_len);
            let mut chunks = payload.chunks(size);
            if let Some(first) = chunks.next() {
                buf.extend_from_slice(first);
            }
            for chunk in chunks {
                buf.extend_from_slice(cont.get(..cont_len).unwrap_or_default());
                buf.extend_from_slice(chunk);
            }
            buf.freeze()
        };
        Ok(Self {
            body,
            payload_len: payload.len() as u32,
            chunk_size,
            csid,
        })
    }

    /// The bytes to send after the first header.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The message length to put in the first header.
    pub fn payload_len(&self) -> u32 {
        self.payload_len
    }

    /// The chunk size it was built for.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// The chunk stream id it was built for.
    pub fn csid(&self) -> u32 {
        self.csid
    }

    /// Whether a viewer sending this message at `timestamp` may use the shared
    /// body (false when the timestamp needs the extended field and the body has
    /// continuation chunks, which would then need it too).
    pub fn usable_for(&self, timestamp: u32) -> bool {
        timestamp < EXTENDED_TIMESTAMP_MARKER || self.payload_len <= self.chunk_size
    }
}
