//! HTTP-FLV framing of a viewer's frames: the few bytes that differ per viewer.
//!
//! The body of every tag is the shared frame payload; what this writes per frame
//! is `[chunk terminator + chunk-size line (HTTP/1.1 chunked only) | PreviousTagSize
//! | tag header]`, at most 27 bytes, into the viewer's scratch.

use crate::protocol::flv::tag::{self, FILE_HEADER_LEN, TAG_PREFIX_LEN};
use crate::protocol::http::response::{
    write_chunk_size_line, CHUNK_END, CHUNK_SIZE_LINE_MAX, LAST_CHUNK,
};
use crate::protocol::FrameKind;
use crate::stream::EncodingSlot;

/// The ring-entry cache slot holding the frame payload copied into the core's
/// registered send region (zero-copy sends with fixed buffers).
pub const STAGED_PAYLOAD_SLOT: EncodingSlot = EncodingSlot::S1;

/// Most bytes [`FlvEgress::frame_prefix`] writes.
pub const MAX_PREFIX: usize = CHUNK_END.len() + CHUNK_SIZE_LINE_MAX + TAG_PREFIX_LEN;

/// One viewer's HTTP-FLV framing state.
#[derive(Debug)]
pub struct FlvEgress {
    chunked: bool,
    prev_tag_size: u32,
    chunk_open: bool,
}

impl FlvEgress {
    /// Framing for a response with `Transfer-Encoding: chunked` (HTTP/1.1) or a
    /// close-delimited identity body (HTTP/1.0).
    pub fn new(chunked: bool) -> Self {
        FlvEgress {
            chunked,
            prev_tag_size: 0,
            chunk_open: false,
        }
    }

    /// The FLV file header (as its own HTTP chunk when chunked). Returns bytes written.
    pub fn start(&mut self, has_audio: bool, has_video: bool, out: &mut [u8]) -> usize {
        let mut header = [0u8; tag::FILE_HEADER_WITH_PTS0_LEN];
        tag::write_file_header(has_audio, has_video, &mut header);
        let mut n = 0;
        if self.chunked {
            n += chunk_line(FILE_HEADER_LEN, &mut out[n..]);
            self.chunk_open = true;
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
        let mut n = 0;
        if self.chunked {
            if self.chunk_open {
                out[..2].copy_from_slice(CHUNK_END);
                n += 2;
            }
            n += chunk_line(TAG_PREFIX_LEN + body_len as usize, &mut out[n..]);
            self.chunk_open = true;
        }
        out[n..n + TAG_PREFIX_LEN].copy_from_slice(&prefix);
        self.prev_tag_size = tag::prev_tag_size_for(body_len);
        Some(n + TAG_PREFIX_LEN)
    }

    /// The end of the body: the last chunk's terminator and the zero chunk when
    /// chunked; nothing for identity bodies (closing the connection ends them).
    pub fn finish(&mut self, out: &mut [u8]) -> usize {
        if !self.chunked {
            return 0;
        }
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

    fn render(chunked: bool, frames: &[(FrameKind, u32, Bytes)]) -> Vec<u8> {
        let mut e = FlvEgress::new(chunked);
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
        for chunked in [false, true] {
            let wire = render(chunked, &frames);
            let flv = if chunked { dechunk(&wire) } else { wire };
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
