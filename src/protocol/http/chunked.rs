//! Sans-IO decoder for `Transfer-Encoding: chunked` bodies (RFC 9112 §7.1), for
//! the client side of HTTP-FLV. Chunk data is handed out as slices of the input,
//! never copied; size lines and trailers are bounded.

use super::client::ClientError;
use crate::protocol::reader::Reader;

/// Limits for [`ChunkedDecoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkedLimits {
    /// Longest chunk-size line (with extensions) or trailer line (default 1 KiB).
    pub max_line: usize,
    /// Largest chunk size accepted (default 16 MiB).
    pub max_chunk: u64,
}

impl Default for ChunkedLimits {
    fn default() -> Self {
        ChunkedLimits {
            max_line: 1024,
            max_chunk: 16 * 1024 * 1024,
        }
    }
}

/// What one [`ChunkedDecoder::decode`] call produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkedEvent<'a> {
    /// Body bytes (a slice of the input).
    Data(&'a [u8]),
    /// The input is used up; call again with more.
    NeedMore,
    /// The last chunk and trailers were read; bytes after it were left in the input.
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Size {
        value: u64,
        digits: u32,
        in_extension: bool,
        line: usize,
    },
    SizeLf {
        value: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    Trailer {
        line: usize,
    },
    Done,
}

/// Decodes a chunked body incrementally.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    limits: ChunkedLimits,
    state: State,
}

const SIZE_START: State = State::Size {
    value: 0,
    digits: 0,
    in_extension: false,
    line: 0,
};

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new(limits: ChunkedLimits) -> Self {
        ChunkedDecoder {
            limits,
            state: SIZE_START,
        }
    }

    /// Consumes framing from the front of `input` and returns the next piece of
    /// body data, advancing `input` past everything consumed.
    pub fn decode<'a>(&mut self, input: &mut &'a [u8]) -> Result<ChunkedEvent<'a>, ClientError> {
        loop {
            if let State::Done = self.state {
                return Ok(ChunkedEvent::End);
            }
            if let State::Data { remaining } = self.state {
                if input.is_empty() {
                    return Ok(ChunkedEvent::NeedMore);
                }
                let mut r = Reader::new(input);
                let data = r.take_up_to(usize::try_from(remaining).unwrap_or(usize::MAX));
                *input = r.rest();
                let remaining = remaining - data.len() as u64;
                self.state = if remaining == 0 {
                    State::DataCr
                } else {
                    State::Data { remaining }
                };
                return Ok(ChunkedEvent::Data(data));
            }
            let Some((&b, rest)) = input.split_first() else {
                return Ok(ChunkedEvent::NeedMore);
            };
            *input = rest;
            self.state = self.step(b)?;
        }
    }

    /// Advances the framing state by one byte.
    fn step(&self, b: u8) -> Result<State, ClientError> {
        let line_too_long = ClientError::ChunkLineTooLong {
            limit: self.limits.max_line,
        };
        Ok(match self.state {
            State::Size {
                value,
                digits,
                in_extension,
                line,
            } => {
                if line >= self.limits.max_line {
                    return Err(line_too_long);
                }
                match b {
                    b'\r' | b'\n' if digits == 0 => {
                        return Err(ClientError::InvalidChunk {
                            reason: "empty chunk size",
                        })
                    }
                    b'\r' => State::SizeLf { value },
                    b'\n' => self.after_size(value),
                    _ if in_extension => State::Size {
                        value,
                        digits,
                        in_extension,
                        line: line + 1,
                    },
                    b';' | b' ' | b'\t' => State::Size {
                        value,
                        digits,
                        in_extension: true,
                        line: line + 1,
                    },
                    _ => {
                        let d = char::from(b)
                            .to_digit(16)
                            .ok_or(ClientError::InvalidChunk {
                                reason: "chunk size is not hex",
                            })?;
                        let value = value.saturating_mul(16).saturating_add(u64::from(d));
                        if value > self.limits.max_chunk {
                            return Err(ClientError::ChunkTooLarge {
                                len: value,
                                limit: self.limits.max_chunk,
                            });
                        }
                        State::Size {
                            value,
                            digits: digits + 1,
                            in_extension,
                            line: line + 1,
                        }
                    }
                }
            }
            State::SizeLf { value } if b == b'\n' => self.after_size(value),
            State::SizeLf { .. } => {
                return Err(ClientError::InvalidChunk {
                    reason: "CR without LF",
                })
            }
            State::DataCr if b == b'\r' => State::DataLf,
            State::DataCr | State::DataLf if b == b'\n' => SIZE_START,
            State::DataCr | State::DataLf => {
                return Err(ClientError::InvalidChunk {
                    reason: "chunk data not followed by CRLF",
                })
            }
            State::Trailer { line } => match b {
                b'\n' if line == 0 => State::Done,
                b'\n' => State::Trailer { line: 0 },
                b'\r' => State::Trailer { line },
                _ if line >= self.limits.max_line => return Err(line_too_long),
                _ => State::Trailer { line: line + 1 },
            },
            // Handled in `decode` before a byte is taken.
            State::Data { .. } | State::Done => self.state,
        })
    }

    fn after_size(&self, value: u64) -> State {
        if value == 0 {
            State::Trailer { line: 0 }
        } else {
            State::Data { remaining: value }
        }
    }

    /// Decodes all of `input`, appending body bytes to `out`; true once the body ended.
    pub fn decode_into(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<bool, ClientError> {
        loop {
            match self.decode(&mut input)? {
                ChunkedEvent::Data(d) => out.extend_from_slice(d),
                ChunkedEvent::NeedMore => return Ok(false),
                ChunkedEvent::End => return Ok(true),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::response::{
        write_chunk_size_line, CHUNK_END, CHUNK_SIZE_LINE_MAX, LAST_CHUNK,
    };
    use proptest::prelude::*;

    fn encode(chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks.iter().filter(|c| !c.is_empty()) {
            let mut line = [0u8; CHUNK_SIZE_LINE_MAX];
            let n = write_chunk_size_line(c.len() as u32, &mut line);
            out.extend_from_slice(&line[..n]);
            out.extend_from_slice(c);
            out.extend_from_slice(CHUNK_END);
        }
        out.extend_from_slice(LAST_CHUNK);
        out
    }

    #[test]
    fn decodes_extensions_and_trailers_and_stops_at_end() {
        let body = b"5;name=val\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let mut d = ChunkedDecoder::new(ChunkedLimits::default());
        let mut input: &[u8] = body;
        let mut out = Vec::new();
        loop {
            match d.decode(&mut input).unwrap() {
                ChunkedEvent::Data(x) => out.extend_from_slice(x),
                ChunkedEvent::End => break,
                ChunkedEvent::NeedMore => panic!("complete body"),
            }
        }
        assert_eq!(out, b"hello world");
        assert_eq!(input, b"NEXT");
    }

    #[test]
    fn rejects_bad_framing_with_typed_errors() {
        let limits = ChunkedLimits {
            max_line: 16,
            max_chunk: 0x100,
        };
        let run = |b: &[u8]| ChunkedDecoder::new(limits).decode_into(b, &mut Vec::new());
        assert_eq!(
            run(b"zz\r\n"),
            Err(ClientError::InvalidChunk {
                reason: "chunk size is not hex"
            })
        );
        assert_eq!(
            run(b"\r\n"),
            Err(ClientError::InvalidChunk {
                reason: "empty chunk size"
            })
        );
        assert_eq!(
            run(b"101\r\n"),
            Err(ClientError::ChunkTooLarge {
                len: 0x101,
                limit: 0x100
            })
        );
        assert_eq!(
            run(b"1;aaaaaaaaaaaaaaaaaaaa\r\n"),
            Err(ClientError::ChunkLineTooLong { limit: 16 })
        );
        assert_eq!(
            run(b"1\r\naXY"),
            Err(ClientError::InvalidChunk {
                reason: "chunk data not followed by CRLF"
            })
        );
        assert_eq!(
            run(b"0\r\nX-Long-Trailer-Line: 1\r\n\r\n"),
            Err(ClientError::ChunkLineTooLong { limit: 16 })
        );
        assert_eq!(
            run(b"ffffffffffffffffffffffff\r\n"),
            Err(ClientError::ChunkTooLarge {
                len: 0xfff,
                limit: 0x100
            })
        );
    }

    /// The exact bytes an HTTP/1.1 FLV viewer gets (head, then per frame
    /// `[size line][15-byte prefix]` from scratch, the shared body, CRLF) decode
    /// back to the frames through this decoder and the FLV demuxer.
    #[test]
    fn http_flv_egress_wire_format_round_trips() {
        use crate::protocol::flv::demux::{FlvDemuxer, FlvLimits};
        use crate::protocol::flv::tag::{
            prev_tag_size_for, write_file_header, write_tag_prefix, TAG_PREFIX_LEN,
        };
        use crate::protocol::{Frame, FrameKind};
        use bytes::Bytes;

        let frames = [
            Frame::new(
                FrameKind::Video,
                0,
                Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2, 3]),
            ),
            Frame::new(FrameKind::Audio, 5, Bytes::from_static(&[0xAF, 1, 9, 9])),
            Frame::new(
                FrameKind::Video,
                40,
                Bytes::from_static(&[0x27, 1, 0, 0, 0, 7]),
            ),
        ];
        let mut wire = Vec::new();
        let mut line = [0u8; CHUNK_SIZE_LINE_MAX];
        let mut header = [0u8; 13];
        write_file_header(true, true, &mut header);
        // Header without PreviousTagSize0: every tag then carries its own 15-byte prefix.
        let n = write_chunk_size_line(9, &mut line);
        wire.extend_from_slice(&line[..n]);
        wire.extend_from_slice(&header[..9]);
        wire.extend_from_slice(CHUNK_END);
        let mut prev = 0;
        for f in &frames {
            let mut prefix = [0u8; TAG_PREFIX_LEN];
            write_tag_prefix(
                prev,
                f.kind,
                f.timestamp,
                f.payload.len() as u32,
                &mut prefix,
            )
            .unwrap();
            let n = write_chunk_size_line((TAG_PREFIX_LEN + f.payload.len()) as u32, &mut line);
            wire.extend_from_slice(&line[..n]);
            wire.extend_from_slice(&prefix);
            wire.extend_from_slice(&f.payload);
            wire.extend_from_slice(CHUNK_END);
            prev = prev_tag_size_for(f.payload.len() as u32);
        }
        wire.extend_from_slice(LAST_CHUNK);

        let mut body = Vec::new();
        assert!(ChunkedDecoder::new(ChunkedLimits::default())
            .decode_into(&wire, &mut body)
            .unwrap());
        let strict = FlvLimits {
            strict_prev_tag_size: true,
            ..FlvLimits::default()
        };
        let mut demux = FlvDemuxer::new(strict);
        let mut out = Vec::new();
        demux.decode_all(&body, &mut out).unwrap();
        assert_eq!(out, frames);
    }

    proptest! {
        #[test]
        fn round_trips_in_any_split(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..10),
            piece in 1usize..50,
        ) {
            let wire = encode(&chunks);
            let mut d = ChunkedDecoder::new(ChunkedLimits::default());
            let mut out = Vec::new();
            let mut ended = false;
            for part in wire.chunks(piece) {
                prop_assert!(!ended);
                ended = d.decode_into(part, &mut out).unwrap();
            }
            prop_assert!(ended);
            prop_assert_eq!(out, chunks.concat());
        }
    }
}
