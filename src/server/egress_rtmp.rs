//! RTMP framing of a viewer's frames.
//!
//! Each frame's payload is chunked once per core (for the server's outgoing
//! chunk size and the frame kind's csid) and cached on its ring entry; per viewer
//! only the first chunk header (fmt 0: its timestamp and message stream id) is
//! written. A viewer whose timestamp needs the extended field gets a private
//! encode of that frame instead, since continuation chunks would then carry the
//! field too.

use bytes::{Bytes, BytesMut};

use crate::protocol::rtmp::chunk::{
    write_first_header, ChunkEncoder, SharedChunks, EXTENDED_TIMESTAMP_MARKER, MAX_CHUNK_HEADER_LEN,
};
use crate::protocol::rtmp::message::RtmpMessage;
use crate::protocol::rtmp::session::csid::OutputCsids;
use crate::protocol::Frame;
use crate::runtime::region::SendRegion;
use crate::stream::{EncodingSlot, RingEntry};

/// The ring-entry cache slot holding the shared RTMP chunk body.
pub const RTMP_SLOT: EncodingSlot = EncodingSlot::S0;

/// What to send for one frame.
pub enum RtmpFrameBytes<'a> {
    /// `prefix` bytes were written to scratch; the body is the shared encoding.
    Shared {
        /// First-header length in scratch.
        prefix_len: usize,
        /// The shared chunk body.
        body: &'a Bytes,
    },
    /// A private, complete encode of the message.
    Private(Bytes),
}

/// One RTMP viewer's framing state.
pub struct RtmpEgress {
    stream_id: u32,
    chunk_size: u32,
    csids: OutputCsids,
    private: ChunkEncoder,
}

impl RtmpEgress {
    /// Framing for message stream `stream_id` at the session's outgoing chunk size.
    pub fn new(stream_id: u32, chunk_size: u32, csids: OutputCsids) -> Self {
        let mut private = ChunkEncoder::new();
        // The chunk size was validated by the session when it announced it.
        let _ = private.set_chunk_size(chunk_size);
        RtmpEgress {
            stream_id,
            chunk_size,
            csids,
            private,
        }
    }

    /// The chunk size this viewer's bytes are built for.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// The bytes for `entry` sent at `timestamp`, writing a first header into
    /// `scratch` when the shared body can be used. None if the frame cannot be
    /// encoded (payload over the RTMP message limit). The shared body is built once
    /// per core, in `region` when given (so fixed-buffer sends can carry it).
    pub fn frame<'a>(
        &mut self,
        entry: &'a RingEntry,
        timestamp: u32,
        scratch: &mut [u8],
        region: Option<&mut SendRegion>,
    ) -> Option<RtmpFrameBytes<'a>> {
        let frame = entry.frame();
        let csid = self.csids.for_kind(frame.kind);
        let (chunk_size, payload_len) = (self.chunk_size, frame.payload.len() as u32);
        let body = entry.encoding(RTMP_SLOT, |f| {
            let body = shared_body(f, chunk_size, csid);
            region.and_then(|r| r.stage(&body)).unwrap_or(body)
        });
        // Same rule as `SharedChunks::usable_for`: continuation chunks carry no extended timestamp.
        let shareable = timestamp < EXTENDED_TIMESTAMP_MARKER || payload_len <= chunk_size;
        if shareable && (body.len() >= frame.payload.len()) {
            let mut header = [0u8; MAX_CHUNK_HEADER_LEN];
            let n = write_first_header(
                csid,
                timestamp,
                payload_len,
                frame.kind.tag_type(),
                self.stream_id,
                &mut header,
            )
            .ok()?;
            scratch.get_mut(..n)?.copy_from_slice(&header[..n]);
            return Some(RtmpFrameBytes::Shared {
                prefix_len: n,
                body,
            });
        }
        let msg = RtmpMessage {
            csid,
            timestamp,
            type_id: frame.kind.tag_type(),
            stream_id: self.stream_id,
            payload: frame.payload.clone(),
        };
        // The private encoder must start this csid with a full header: the peer's
        // last header on it came from a shared send.
        self.private.forget_chunk_stream(csid);
        let mut out = BytesMut::with_capacity(
            frame.payload.len() + frame.payload.len() / chunk_size as usize * 5 + 32,
        );
        self.private.encode(&msg, &mut out).ok()?;
        Some(RtmpFrameBytes::Private(out.freeze()))
    }
}

/// The shared chunk body of `frame`, or empty when it cannot be chunked (the
/// caller then falls back to a private encode, which reports the error).
fn shared_body(frame: &Frame, chunk_size: u32, csid: u32) -> Bytes {
    SharedChunks::encode(&frame.payload, chunk_size, csid)
        .map(|s| s.body().clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::payload::HeapAllocator;
    use crate::protocol::rtmp::chunk::{ChunkDecoder, ChunkLimits};
    use crate::protocol::FrameKind;
    use crate::stream::ring::{Ring, RingLimits};

    fn decode_all(chunk_size: u32, wire: &[u8]) -> Vec<RtmpMessage> {
        let mut dec = ChunkDecoder::new(ChunkLimits::default());
        // Tell the decoder the chunk size the way a peer would learn it.
        let mut set = BytesMut::new();
        let mut enc = ChunkEncoder::new();
        let sc = RtmpMessage {
            csid: 2,
            timestamp: 0,
            type_id: 1,
            stream_id: 0,
            payload: Bytes::copy_from_slice(&chunk_size.to_be_bytes()),
        };
        enc.encode(&sc, &mut set).unwrap();
        let mut all = set.to_vec();
        all.extend_from_slice(wire);
        let mut out = Vec::new();
        dec.decode_all(&all, &mut HeapAllocator, &mut out).unwrap();
        out.retain(|m| m.type_id != 1);
        out
    }

    #[test]
    fn shared_and_private_paths_decode_to_the_same_messages() {
        let mut ring = Ring::new(RingLimits::default());
        let mut payload = vec![0x17u8, 1, 0, 0, 0];
        payload.resize(10_000, 7);
        let entry = ring.push(
            Frame::new(FrameKind::Video, 0, Bytes::from(payload.clone())),
            0,
            0,
        );
        let mut egress = RtmpEgress::new(1, 4096, OutputCsids::default());
        let mut wire = Vec::new();
        for ts in [40u32, 0x00FF_FFFF + 10] {
            let mut scratch = [0u8; 32];
            match egress.frame(&entry, ts, &mut scratch, None).unwrap() {
                RtmpFrameBytes::Shared { prefix_len, body } => {
                    assert!(ts < 0x00FF_FFFF, "small timestamps use the shared body");
                    wire.extend_from_slice(&scratch[..prefix_len]);
                    wire.extend_from_slice(body);
                }
                RtmpFrameBytes::Private(bytes) => {
                    assert!(ts >= 0x00FF_FFFF, "only extended timestamps go private");
                    wire.extend_from_slice(&bytes);
                }
            }
        }
        let msgs = decode_all(4096, &wire);
        assert_eq!(msgs.len(), 2);
        for (m, ts) in msgs.iter().zip([40u32, 0x00FF_FFFF + 10]) {
            assert_eq!(
                (m.timestamp, m.type_id, m.stream_id, &m.payload[..]),
                (ts, 9, 1, &payload[..])
            );
        }
    }
}
