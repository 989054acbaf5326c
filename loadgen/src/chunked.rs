//! HTTP/1.1 chunked transfer decoding for HTTP-FLV response bodies.
//!
//! Live HTTP-FLV has no length, so most servers send it chunked. The chunk-size line
//! is parsed by `httparse`; this is only the small state machine around it, with a
//! bounded line buffer so a hostile size line cannot grow memory.

use thiserror::Error;

/// Longest chunk-size line accepted, extensions included.
pub const MAX_SIZE_LINE: usize = 64;

/// Bad chunked framing.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ChunkedError {
    /// The chunk-size line is longer than [`MAX_SIZE_LINE`].
    #[error("chunk size line longer than {limit} bytes")]
    SizeLineTooLong {
        /// [`MAX_SIZE_LINE`].
        limit: usize,
    },
    /// The chunk-size line is not hex digits.
    #[error("invalid chunk size line")]
    BadSize,
    /// Chunk data not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    MissingCrlf,
}

#[derive(Clone, Debug)]
enum State {
    Size { line: [u8; MAX_SIZE_LINE], have: usize },
    Data { remaining: u64 },
    DataEnd { have: u8 },
    Done,
}

/// Streaming de-chunker: feed bytes in any split, get body pieces back.
#[derive(Clone, Debug)]
pub struct Dechunker {
    state: State,
}

impl Default for Dechunker {
    fn default() -> Self {
        Dechunker { state: State::Size { line: [0; MAX_SIZE_LINE], have: 0 } }
    }
}

impl Dechunker {
    /// True after the terminating zero-size chunk: the body is over.
    pub fn done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Consumes framing from the front of `input` and returns the next piece of body
    /// data (borrowed from `input`), or `None` when `input` is used up or the body ended.
    pub fn next_piece<'a>(&mut self, input: &mut &'a [u8]) -> Result<Option<&'a [u8]>, ChunkedError> {
        loop {
            match &mut self.state {
                State::Done => return Ok(None),
                State::Size { line, have } => {
                    let Some((&b, rest)) = input.split_first() else { return Ok(None) };
                    *input = rest;
                    let slot = line.get_mut(*have).ok_or(ChunkedError::SizeLineTooLong { limit: MAX_SIZE_LINE })?;
                    *slot = b;
                    *have += 1;
                    if b != b'\n' {
                        continue;
                    }
                    let parsed = httparse::parse_chunk_size(&line[..*have]).map_err(|_| ChunkedError::BadSize)?;
                    let size = match parsed {
                        httparse::Status::Complete((_, size)) => size,
                        httparse::Status::Partial => return Err(ChunkedError::BadSize),
                    };
                    // Trailers after the last chunk are not read: nothing follows a live body.
                    self.state = if size == 0 { State::Done } else { State::Data { remaining: size } };
                }
                State::Data { remaining } => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let n = (*remaining).min(input.len() as u64) as usize;
                    let (piece, rest) = input.split_at(n);
                    *input = rest;
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::DataEnd { have: 0 };
                    }
                    return Ok(Some(piece));
                }
                State::DataEnd { have } => {
                    let Some((&b, rest)) = input.split_first() else { return Ok(None) };
                    *input = rest;
                    let expected = if *have == 0 { b'\r' } else { b'\n' };
                    if b != expected {
                        return Err(ChunkedError::MissingCrlf);
                    }
                    *have += 1;
                    if *have == 2 {
                        self.state = State::Size { line: [0; MAX_SIZE_LINE], have: 0 };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(d: &mut Dechunker, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkedError> {
        while let Some(p) = d.next_piece(&mut input)? {
            out.extend_from_slice(p);
        }
        Ok(())
    }

    #[test]
    fn decodes_in_any_split() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\nB\r\nchunked FLV\r\n0\r\n\r\n";
        for split in 0..wire.len() {
            let mut d = Dechunker::default();
            let mut out = Vec::new();
            decode_all(&mut d, &wire[..split], &mut out).unwrap();
            decode_all(&mut d, &wire[split..], &mut out).unwrap();
            assert_eq!(out, b"hello chunked FLV", "split {split}");
            assert!(d.done());
        }
    }

    #[test]
    fn rejects_bad_framing() {
        let mut out = Vec::new();
        assert_eq!(decode_all(&mut Dechunker::default(), b"zz\r\n", &mut out), Err(ChunkedError::BadSize));
        assert_eq!(decode_all(&mut Dechunker::default(), b"2\r\nabXY", &mut out), Err(ChunkedError::MissingCrlf));
        let long = [b'1'; MAX_SIZE_LINE + 1];
        assert_eq!(
            decode_all(&mut Dechunker::default(), &long, &mut out),
            Err(ChunkedError::SizeLineTooLong { limit: MAX_SIZE_LINE })
        );
        let huge = b"ffffffffffffffffffff\r\n";
        assert_eq!(decode_all(&mut Dechunker::default(), huge, &mut out), Err(ChunkedError::BadSize));
    }
}
