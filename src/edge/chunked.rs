//! Sans-IO decoder for an HTTP/1.1 `Transfer-Encoding: chunked` body: framed bytes
//! in, body bytes out, with a bound on every line it has to buffer.

/// Longest chunk-size line (hex size plus extensions) accepted.
pub const MAX_SIZE_LINE: usize = 256;
/// Largest single chunk accepted (the FLV demuxer bounds tags separately).
pub const MAX_CHUNK: u64 = 64 << 20;

/// Why a chunked body is malformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    /// A chunk-size line longer than [`MAX_SIZE_LINE`].
    #[error("chunk size line longer than {limit} bytes")]
    SizeLineTooLong {
        /// The limit.
        limit: usize,
    },
    /// The size is not hexadecimal.
    #[error("chunk size is not hexadecimal")]
    BadSize,
    /// A chunk larger than [`MAX_CHUNK`].
    #[error("chunk of {len} bytes exceeds the limit {limit}")]
    ChunkTooLarge {
        /// The declared size.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// Chunk data not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    MissingCrlf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    SizeLine { line: Vec<u8> },
    Data { remaining: u64 },
    DataEnd { seen: u8 },
    Done,
}

/// Decodes one chunked body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: State,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::SizeLine { line: Vec::new() },
        }
    }
}

impl ChunkedDecoder {
    /// True once the last (zero-size) chunk was read; trailers are ignored.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes `input`, calling `body` with each run of body bytes in order.
    pub fn decode(
        &mut self,
        mut input: &[u8],
        mut body: impl FnMut(&[u8]),
    ) -> Result<(), ChunkedError> {
        while !input.is_empty() {
            match &mut self.state {
                State::Done => return Ok(()),
                State::SizeLine { line } => {
                    let end = input.iter().position(|&b| b == b'\n');
                    let take = end.map_or(input.len(), |i| i + 1);
                    if line.len() + take > MAX_SIZE_LINE {
                        return Err(ChunkedError::SizeLineTooLong {
                            limit: MAX_SIZE_LINE,
                        });
                    }
                    line.extend_from_slice(input.get(..take).unwrap_or_default());
                    input = input.get(take..).unwrap_or_default();
                    if end.is_none() {
                        continue;
                    }
                    let size = parse_size(line)?;
                    self.state = if size == 0 {
                        State::Done
                    } else {
                        State::Data { remaining: size }
                    };
                }
                State::Data { remaining } => {
                    let n = input
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    let (data, rest) = input.split_at(n);
                    body(data);
                    input = rest;
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::DataEnd { seen: 0 };
                    }
                }
                State::DataEnd { seen } => {
                    let Some((&b, rest)) = input.split_first() else {
                        break;
                    };
                    let want = if *seen == 0 { b'\r' } else { b'\n' };
                    if b != want {
                        return Err(ChunkedError::MissingCrlf);
                    }
                    input = rest;
                    *seen += 1;
                    if *seen == 2 {
                        self.state = State::SizeLine { line: Vec::new() };
                    }
                }
            }
        }
        Ok(())
    }
}

fn parse_size(line: &[u8]) -> Result<u64, ChunkedError> {
    let text = std::str::from_utf8(line).map_err(|_| ChunkedError::BadSize)?;
    let hex = text.split(';').next().unwrap_or_default().trim();
    if hex.is_empty() || hex.len() > 16 {
        return Err(ChunkedError::BadSize);
    }
    let size = u64::from_str_radix(hex, 16).map_err(|_| ChunkedError::BadSize)?;
    if size > MAX_CHUNK {
        return Err(ChunkedError::ChunkTooLarge {
            len: size,
            limit: MAX_CHUNK,
        });
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(input: &[u8], step: usize) -> Result<(Vec<u8>, bool), ChunkedError> {
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            d.decode(piece, |b| out.extend_from_slice(b))?;
        }
        Ok((out, d.is_done()))
    }

    #[test]
    fn decodes_in_any_split() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        for step in 1..wire.len() {
            assert_eq!(
                decode_split(wire, step).unwrap(),
                (b"hello, world".to_vec(), true),
                "step {step}"
            );
        }
    }

    #[test]
    fn malformed_bodies_are_typed_errors() {
        assert_eq!(decode_split(b"zz\r\n", 4), Err(ChunkedError::BadSize));
        assert_eq!(decode_split(b"\r\n", 4), Err(ChunkedError::BadSize));
        assert_eq!(
            decode_split(b"2\r\nabXY", 8),
            Err(ChunkedError::MissingCrlf)
        );
        let long = vec![b'1'; MAX_SIZE_LINE + 1];
        assert_eq!(
            decode_split(&long, 7),
            Err(ChunkedError::SizeLineTooLong {
                limit: MAX_SIZE_LINE
            })
        );
        assert_eq!(
            decode_split(b"ffffffffff\r\n", 64),
            Err(ChunkedError::ChunkTooLarge {
                len: 0xff_ffff_ffff,
                limit: MAX_CHUNK
            })
        );
    }
}
