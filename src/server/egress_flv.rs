//! HTTP-FLV and WebSocket-FLV framing of a viewer's frames: the few bytes that
//! differ per viewer.
//!
//! The body of every tag is the shared frame payload; what this writes per frame
//! into the viewer's scratch is, before the `PreviousTagSize | tag header` (15
//! bytes):
//! * HTTP/1.1 chunked: the previous chunk's terminator and this chunk's size line
//!   (at most 27 bytes in all);
//! * HTTP/1.0: nothing (the body is close-delimited);
//! * WebSocket: the header of one binary message holding the prefix and the body
//!   (2–10 bytes; at most 25 in all). The server's frames are never masked, so the
//!   shared body goes out as it is.

use crate::protocol::flv::tag::{self, FILE_HEADER_LEN, TAG_PREFIX_LEN};
use crate::protocol::http::response::{
    write_chunk_size_line, CHUNK_END, CHUNK_SIZE_LINE_MAX, LAST_CHUNK,
};
use crate::protocol::ws::frame::{
    write_close_frame, write_frame_header, CloseCode, Opcode, MAX_CONTROL_FRAME, MAX_SERVER_HEADER,
};
use crate::protocol::FrameKind;
use crate::stream::EncodingSlot;

/// The ring-entry cache slot holding the frame payload copied into the core's
/// registered send region (zero-copy sends with fixed buffers).
pub const STAGED_PAYLOAD_SLOT: EncodingSlot = EncodingSlot::S1;

/// Most bytes [`FlvEgress::frame_prefix`] writes.
pub const MAX_PREFIX: usize = CHUNK_END.len() + CHUNK_SIZE_LINE_MAX + TAG_PREFIX_LEN;

// The WebSocket prefix fits wherever the chunked one does.
const _: () = assert!(MAX_SERVER_HEADER + TAG_PREFIX_LEN <= MAX_PREFIX);

/// How the FLV bytes are delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// HTTP/1.0: raw bytes until the connection closes.
    Identity,
    /// HTTP/1.1 `Transfer-Encoding: chunked`: one chunk per tag.
    Chunked,
    /// WebSocket: one binary message per tag (and one for the file header).
    WebSocket,
}

/// One viewer's HTTP-FLV or WebSocket-FLV framing state.
#[derive(Debug)]
pub struct FlvEgress {
    framing: Framing,
    prev_tag_size: u32,
    chunk_open: bool,
}

impl FlvEgress {
    /// Framing for a response with `Transfer-Encoding: chunked` (HTTP/1.1) or a
    /// close-delimited identity body (HTTP/1.0).
    pub fn new(chunked: bool) -> Self {
        Self::with(if chunked {
            Framing::Chunked
        } else {
            Framing::Identity
        })
    }

    /// Framing for a WebSocket connection: each tag is one binary message.
    pub fn websocket() -> Self {
        Self::with(Framing::WebSocket)
    }

    fn with(framing: Framing) -> Self {
        FlvEgress {
            framing,
            prev_tag_size: 0,
            chunk_open: false,
        }
    }

    /// Whether the viewer watches over WebSocket.
    pub fn is_websocket(&self) -> bool {
        self.framing == Framing::WebSocket
    }

    /// The FLV file header (as its own HTTP chunk or WebSocket message). Returns
    /// bytes written.
    pub fn start(&mut self, has_audio: bool, has_video: bool, out: &mut [u8]) -> usize {
        let mut header = [0u8; tag::FILE_HEADER_WITH_PTS0_LEN];
        tag::write_file_header(has_audio, has_video, &mut header);
        let mut n = 0;
        match self.framing {
            Framing::Chunked => {
                n += chunk_line(FILE_HEADER_LEN, &mut out[n..]);
                self.chunk_open = true;
            }
            Framing::WebSocket => {
                n += write_frame_header(Opcode::Binary, FILE_HEADER_LEN as u64, out);
            }
            Framing::Identity => {}
        }
        // The PreviousTagSize0 goes out as the first tag's prefix.
        out[n..n + FILE_HEADER_LEN].copy_from_slice(&header[..FILE_HEADER_LEN]);
        n + FILE_HEADER_LEN
    }

    /// The per-viewer bytes before a tag body of `body_len` bytes, or None when the
    /// body does not fit an FLV tag (24-bit size).
    pub fn frame_prefix(
        &mut self,
        kind: FrameKind,
        timestamp: u32,
        body_len: usize,
        out: &mut [u8],
    ) -> Option<usize> {
        let body_len = u32::try_from(body_len).ok()?;
        let mut prefix = [0u8; TAG_PREFIX_LEN];
        tag::write_tag_prefix(self.prev_tag_size, kind, timestamp, body_len, &mut prefix).ok()?;
        let tag_len = TAG_PREFIX_LEN + body_len as usize;
        let mut n = 0;
        match self.framing {
            Framing::Chunked => {
                if self.chunk_open {
                    out[..2].copy_from_slice(CHUNK_END);
                    n += 2;
                }
                n += chunk_line(tag_len, &mut out[n..]);
                self.chunk_open = true;
            }
            Framing::WebSocket => {
                n += write_frame_header(Opcode::Binary, tag_len as u64, out);
            }
            Framing::Identity => {}
        }
        out[n..n + TAG_PREFIX_LEN].copy_from_slice(&prefix);
        self.prev_tag_size = tag::prev_tag_size_for(body_len);
        Some(n + TAG_PREFIX_LEN)
    }

    /// The end of the body: the last chunk's terminator and the zero chunk when
    /// chunked; a close frame (1000) over WebSocket; nothing for identity bodies
    /// (closing the connection ends them).
    pub fn finish(&mut self, out: &mut [u8]) -> usize {
        match self.framing {
            Framing::Identity => 0,
            Framing::WebSocket => {
                let mut close = [0u8; MAX_CONTROL_FRAME];
                let n = write_close_frame(CloseCode::Normal.code(), &mut close);
                out[..n].copy_from_slice(&close[..n]);
                n
            }
            Framing::Chunked => {
                let mut n = 0;
                if self.chunk_open {
                    out[..2].copy_from_slice(CHUNK_END);
                    n = 2;
                }
                out[n..n + LAST_CHUNK.len()].copy_from_slice(LAST_CHUNK);
                self.chunk_open = false;
                n + LAST_CHUNK.len()
            }
        }
    }
}

fn chunk_line(len: usize, out: &mut [u8]) -> usize {
    let mut line = [0u8; CHUNK_SIZE_LINE_MAX];
    let n = write_chunk_size_line(len as u32, &mut line);
    out[..n].copy_from_slice(&line[..n]);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::flv::demux::FlvDemuxer;
    use bytes::Bytes;

    fn body(kind: FrameKind, n: usize) -> Bytes {
        let first = if kind == FrameKind::Video { 0x17 } else { 0xaf };
        let mut v = vec![first, 1];
        v.resize(n, 0x55);
        Bytes::from(v)
    }

    /// Undoes chunked framing, checking every size line.
    fn dechunk(mut s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let line_end = s.windows(2).position(|w| w == b"\r\n").unwrap();
            let len =
                usize::from_str_radix(std::str::from_utf8(&s[..line_end]).unwrap(), 16).unwrap();
            s = &s[line_end + 2..];
            if len == 0 {
                assert_eq!(s, b"\r\n");
                return out;
            }
            out.extend_from_slice(&s[..len]);
            assert_eq!(&s[len..len + 2], b"\r\n");
            s = &s[len + 2..];
        }
    }

    /// Undoes WebSocket framing: every message one unmasked, final binary frame;
    /// the last one a close with code 1000.
    fn unframe(mut s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let (b0, b1) = (s[0], s[1]);
            assert_eq!(b1 & 0x80, 0, "server frames are not masked");
            let (len, hdr) = match b1 & 0x7f {
                126 => (u16::from_be_bytes([s[2], s[3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(s[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (n as usize, 2),
            };
            let payload = &s[hdr..hdr + len];
            s = &s[hdr + len..];
            if b0 == 0x88 {
                assert_eq!(payload, &[0x03, 0xE8]);
                assert!(s.is_empty());
                return out;
            }
            assert_eq!(b0, 0x82, "a final binary frame");
            out.extend_from_slice(payload);
        }
    }

    fn render(framing: Framing, frames: &[(FrameKind, u32, Bytes)]) -> Vec<u8> {
        let mut e = FlvEgress::with(framing);
        let mut wire = Vec::new();
        let mut scratch = [0u8; 64];
        let n = e.start(true, true, &mut scratch);
        wire.extend_from_slice(&scratch[..n]);
        for (kind, ts, b) in frames {
            let n = e.frame_prefix(*kind, *ts, b.len(), &mut scratch).unwrap();
            assert!(n <= MAX_PREFIX);
            wire.extend_from_slice(&scratch[..n]);
            wire.extend_from_slice(b);
        }
        let n = e.finish(&mut scratch);
        wire.extend_from_slice(&scratch[..n]);
        wire
    }

    #[test]
    fn identity_and_chunked_bodies_demux_to_the_same_frames() {
        let frames = vec![
            (FrameKind::Video, 0, body(FrameKind::Video, 300)),
            (FrameKind::Audio, 10, body(FrameKind::Audio, 17)),
            (FrameKind::Video, 40, body(FrameKind::Video, 70_000)),
        ];
        for framing in [Framing::Identity, Framing::Chunked, Framing::WebSocket] {
            let wire = render(framing, &frames);
            let flv = match framing {
                Framing::Identity => wire,
                Framing::Chunked => dechunk(&wire),
                Framing::WebSocket => unframe(&wire),
            };
            let mut demux = FlvDemuxer::new(Default::default());
            let mut got = Vec::new();
            demux.decode_all(&flv, &mut got).unwrap();
            assert_eq!(got.len(), 3);
            for (g, (kind, ts, b)) in got.iter().zip(&frames) {
                assert_eq!((g.kind, g.timestamp, &g.payload), (*kind, *ts, b));
            }
        }
    }
}
