//! Outgoing chunk stream for one connection: splits messages into chunks of the
//! current chunk size, compressing headers against the previous message on the
//! same chunk stream (fmt 1/2/3) the way the decoder expects.

use bytes::BytesMut;

use super::error::EncodeError;
use super::header::{
    check_csid, put_basic_header, write_header, HeaderFields, DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_HEADER_LEN, MAX_MESSAGE_LEN,
};
use super::limits::ABSOLUTE_MAX_CHUNK_SIZE;
use crate::protocol::reader::Reader;
use crate::protocol::rtmp::message::{type_id, RtmpMessage};
use crate::protocol::writer::Writer;

/// The last header sent on one chunk stream.
#[derive(Debug, Clone, Copy)]
struct SentHeader {
    csid: u32,
    timestamp: u32,
    /// The last timestamp field value (absolute after fmt 0), matching the
    /// decoder's notion of what a fmt 3 new message adds.
    delta: u32,
    len: u32,
    type_id: u8,
    stream_id: u32,
}

/// One connection's outgoing chunk stream state.
#[derive(Debug)]
pub struct ChunkEncoder {
    chunk_size: u32,
    streams: Vec<SentHeader>,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkEncoder {
    /// An encoder at the protocol's initial chunk size of 128.
    pub fn new() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: Vec::new(),
        }
    }

    /// The chunk size outgoing messages are split at.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Changes the outgoing chunk size directly. Encoding a Set Chunk Size
    /// message does this by itself, after that message, which is usually what
    /// you want instead.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), EncodeError> {
        if size == 0 || size > ABSOLUTE_MAX_CHUNK_SIZE {
            return Err(EncodeError::InvalidChunkSize {
                size,
                limit: ABSOLUTE_MAX_CHUNK_SIZE,
            });
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Forgets the last header sent on `csid`, so its next message starts with a
    /// self-contained fmt 0 header. Call it after writing to that csid by other
    /// means (e.g. [`SharedChunks`](super::SharedChunks)).
    pub fn forget_chunk_stream(&mut self, csid: u32) {
        self.streams.retain(|s| s.csid != csid);
    }

    /// Appends `msg`, split into chunks, to `out`.
    pub fn encode(&mut self, msg: &RtmpMessage, out: &mut BytesMut) -> Result<(), EncodeError> {
        check_csid(msg.csid)?;
        let payload = &msg.payload[..];
        if payload.len() > MAX_MESSAGE_LEN as usize {
            return Err(EncodeError::PayloadTooLarge {
                len: payload.len(),
                limit: MAX_MESSAGE_LEN as usize,
            });
        }
        let new_chunk_size = if msg.type_id == type_id::SET_CHUNK_SIZE {
            match Reader::new(payload).be_u32().ok() {
                Some(size) => {
                    if size == 0 || size > ABSOLUTE_MAX_CHUNK_SIZE {
                        return Err(EncodeError::InvalidChunkSize {
                            size,
                            limit: ABSOLUTE_MAX_CHUNK_SIZE,
                        });
                    }
                    Some(size)
                }
                None => None,
            }
        } else {
            None
        };
        let len = payload.len() as u32;
        let prev_idx = self.streams.iter().position(|s| s.csid == msg.csid);
        let prev = prev_idx.and_then(|i| self.streams.get(i)).copied();
        let fields = self.choose_header(prev, msg, len);

        let mut hdr = [0u8; MAX_CHUNK_HEADER_LEN];
        let hdr_len = write_header(&fields, &mut hdr);
        let hdr = hdr.get(..hdr_len).unwrap_or_default();
        let mut cont = [0u8; MAX_CHUNK_HEADER_LEN];
        let mut cont_w = Writer::new(&mut cont);
        put_basic_header(&mut cont_w, 3, msg.csid);
        if fields.extended() {
            cont_w.be_u32(fields.time);
        }
        let cont = cont_w.into_written();
        let chunk_size = self.chunk_size as usize;
        let extra_chunks = payload.len().saturating_sub(1) / chunk_size;
        out.reserve(hdr.len() + payload.len() + extra_chunks * cont.len());
        out.extend_from_slice(hdr);
        let mut chunks = payload.chunks(chunk_size);
        if let Some(first) = chunks.next() {
            out.extend_from_slice(first);
        }
        for chunk in chunks {
            out.extend_from_slice(cont);
            out.extend_from_slice(chunk);
        }

        let sent = SentHeader {
            csid: msg.csid,
            timestamp: msg.timestamp,
            delta: fields.time,
            len,
            type_id: msg.type_id,
            stream_id: msg.stream_id,
        };
        match prev_idx.and_then(|i| self.streams.get_mut(i)) {
            Some(slot) => *slot = sent,
            None => self.streams.push(sent),
        }
        if let Some(size) = new_chunk_size {
            self.chunk_size = size;
        }
        Ok(())
    }

    /// Picks the smallest header that the decoder will expand back to `msg`.
    fn choose_header(&self, prev: Option<SentHeader>, msg: &RtmpMessage, len: u32) -> HeaderFields {
        let full = HeaderFields {
            fmt: 0,
            csid: msg.csid,
            time: msg.timestamp,
            len,
            type_id: msg.type_id,
            stream_id: msg.stream_id,
        };
        let Some(prev) = prev else { return full };
        // Deltas are unsigned: a timestamp going backwards needs a fresh fmt 0.
        if prev.stream_id != msg.stream_id || msg.timestamp < prev.timestamp {
            return full;
        }
        let delta = msg.timestamp - prev.timestamp;
        let fmt = if prev.len != len || prev.type_id != msg.type_id {
            1
        } else if delta != prev.delta {
            2
        } else {
            3
        };
        HeaderFields {
            fmt,
            time: delta,
            ..full
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, len: usize) -> RtmpMessage {
        RtmpMessage {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload: Bytes::from(vec![0xAB; len]),
        }
    }

    #[test]
    fn compresses_headers_fmt_0_then_1_2_3() {
        let mut enc = ChunkEncoder::new();
        let mut out = BytesMut::new();
        enc.encode(&msg(6, 100, 9, 1, 10), &mut out).unwrap();
        assert_eq!(out[0], 0x06, "fmt 0");
        assert_eq!(out.len(), 12 + 10);
        out.clear();
        enc.encode(&msg(6, 140, 9, 1, 20), &mut out).unwrap();
        assert_eq!(out[0], 0x46, "fmt 1: length changed");
        assert_eq!(&out[1..4], &[0, 0, 40]);
        out.clear();
        enc.encode(&msg(6, 173, 9, 1, 20), &mut out).unwrap();
        assert_eq!(out[0], 0x86, "fmt 2: same length, new delta");
        out.clear();
        enc.encode(&msg(6, 206, 9, 1, 20), &mut out).unwrap();
        assert_eq!(&out[..1], &[0xC6], "fmt 3: same delta");
        assert_eq!(out.len(), 1 + 20);
        out.clear();
        enc.encode(&msg(6, 10, 9, 1, 20), &mut out).unwrap();
        assert_eq!(out[0], 0x06, "timestamp went back: fmt 0");
    }

    #[test]
    fn splits_at_chunk_size_with_fmt3_continuations() {
        let mut enc = ChunkEncoder::new();
        let mut out = BytesMut::new();
        enc.encode(&msg(4, 0, 8, 1, 300), &mut out).unwrap();
        assert_eq!(out.len(), 12 + 300 + 2);
        assert_eq!(out[12 + 128], 0xC4);
        assert_eq!(out[12 + 128 + 1 + 128], 0xC4);
    }

    #[test]
    fn continuations_repeat_extended_timestamp() {
        let mut enc = ChunkEncoder::new();
        let mut out = BytesMut::new();
        enc.encode(&msg(4, 0x0100_0000, 8, 1, 200), &mut out)
            .unwrap();
        assert_eq!(out.len(), 16 + 200 + 5);
        assert_eq!(&out[16 + 128..16 + 128 + 5], &[0xC4, 1, 0, 0, 0]);
    }

    #[test]
    fn set_chunk_size_message_applies_after_itself() {
        let mut enc = ChunkEncoder::new();
        let mut out = BytesMut::new();
        let set = RtmpMessage {
            csid: 2,
            timestamp: 0,
            type_id: type_id::SET_CHUNK_SIZE,
            stream_id: 0,
            payload: Bytes::from_static(&[0, 0, 0x10, 0]),
        };
        enc.encode(&set, &mut out).unwrap();
        assert_eq!(enc.chunk_size(), 4096);
        let bad = RtmpMessage {
            payload: Bytes::from_static(&[0, 0, 0, 0]),
            ..set
        };
        assert!(matches!(
            enc.encode(&bad, &mut out),
            Err(EncodeError::InvalidChunkSize { size: 0, .. })
        ));
    }

    #[test]
    fn rejects_invalid_csid() {
        let mut enc = ChunkEncoder::new();
        let mut out = BytesMut::new();
        assert_eq!(
            enc.encode(&msg(1, 0, 8, 1, 1), &mut out),
            Err(EncodeError::InvalidCsid { csid: 1 })
        );
        assert_eq!(
            enc.encode(&msg(65600, 0, 8, 1, 1), &mut out),
            Err(EncodeError::InvalidCsid { csid: 65600 })
        );
    }
}
