//! HTTP/1.1 keep-alive requests and responses for HLS/DASH viewers, sans-IO: a GET
//! writer (keep-alive, unlike ringcast's pull client) and a reader that turns the
//! bytes of one response after another into head, body pieces and end, with
//! ringcast's bounded head parser and chunked decoder. One request is in flight at
//! a time, so bytes after a response's end are an error.

use bytes::{BufMut, BytesMut};
use ringcast::protocol::http::chunked::{ChunkedDecoder, ChunkedEvent, ChunkedLimits};
use ringcast::protocol::http::client::{
    parse_response_head, ClientError, ResponseBody, ResponseLimits,
};

/// Largest response head accepted.
pub const MAX_HEAD_LEN: usize = 8 * 1024;
const HEAD_LIMITS: ResponseLimits = ResponseLimits {
    max_head: MAX_HEAD_LEN,
    max_headers: 32,
};
/// What loadgen's HLS viewers call themselves.
const USER_AGENT: &str = "ringcast-loadgen-hls";

/// Writes `GET path` on `host`, keeping the connection open.
pub fn write_get(path: &str, host: &str, out: &mut BytesMut) {
    for part in [
        b"GET ".as_slice(),
        path.as_bytes(),
        b" HTTP/1.1\r\nHost: ",
        host.as_bytes(),
        b"\r\nUser-Agent: ",
        USER_AGENT.as_bytes(),
        b"\r\nAccept: */*\r\n\r\n",
    ] {
        out.put_slice(part);
    }
}

/// What the reader produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseEvent<'a> {
    /// The head arrived.
    Head {
        /// Status code.
        status: u16,
        /// The server will close the connection after this response.
        close: bool,
    },
    /// Body bytes.
    Data(&'a [u8]),
    /// The response is complete.
    End,
}

#[derive(Debug)]
enum State {
    Idle,
    Head(Vec<u8>),
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

/// Why a response could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// Head or chunked framing broken or over a limit.
    #[error(transparent)]
    Http(#[from] ClientError),
    /// Bytes arrived with no request outstanding.
    #[error("{0} bytes with no request outstanding")]
    Unsolicited(usize),
}

/// Reads the responses to requests sent one at a time.
#[derive(Debug)]
pub struct ResponseReader {
    state: State,
}

impl Default for ResponseReader {
    fn default() -> Self {
        ResponseReader { state: State::Idle }
    }
}

impl ResponseReader {
    /// A request was sent: expect its response.
    pub fn expect(&mut self) {
        self.state = State::Head(Vec::new());
    }

    /// Whether a response is expected or being read.
    pub fn busy(&self) -> bool {
        !matches!(self.state, State::Idle)
    }

    /// Consumes bytes from the front of `input` and returns the next event;
    /// `None` when `input` is used up.
    pub fn next<'a>(
        &mut self,
        input: &mut &'a [u8],
    ) -> Result<Option<ResponseEvent<'a>>, ResponseError> {
        match &mut self.state {
            State::Idle if input.is_empty() => Ok(None),
            State::Idle => Err(ResponseError::Unsolicited(input.len())),
            State::Head(head) => {
                if input.is_empty() {
                    return Ok(None);
                }
                // Never hold more than the limit plus one byte.
                let before = head.len();
                let take = input.len().min((MAX_HEAD_LEN + 1).saturating_sub(before));
                head.extend_from_slice(input.get(..take).unwrap_or_default());
                let Some(resp) = parse_response_head(head, &HEAD_LIMITS)? else {
                    *input = input.get(take..).unwrap_or_default();
                    return Ok(None);
                };
                let used = resp.head_len.saturating_sub(before);
                *input = input.get(used..).unwrap_or_default();
                let close = resp
                    .header("connection")
                    .is_some_and(|c| c.eq_ignore_ascii_case("close"));
                self.state = match resp.body {
                    ResponseBody::Chunked => {
                        State::Chunked(ChunkedDecoder::new(ChunkedLimits::default()))
                    }
                    ResponseBody::Length(n) => State::Length(n),
                    ResponseBody::UntilClose => State::UntilClose,
                };
                Ok(Some(ResponseEvent::Head {
                    status: resp.status,
                    close: close || matches!(resp.body, ResponseBody::UntilClose),
                }))
            }
            State::Length(0) => {
                self.state = State::Idle;
                Ok(Some(ResponseEvent::End))
            }
            State::Length(n) => {
                if input.is_empty() {
                    return Ok(None);
                }
                let take = usize::try_from(*n).unwrap_or(usize::MAX).min(input.len());
                let (data, rest) = input.split_at(take);
                *input = rest;
                *n -= take as u64;
                Ok(Some(ResponseEvent::Data(data)))
            }
            State::Chunked(d) => match d.decode(input)? {
                ChunkedEvent::Data(data) => Ok(Some(ResponseEvent::Data(data))),
                ChunkedEvent::NeedMore => Ok(None),
                ChunkedEvent::End => {
                    self.state = State::Idle;
                    Ok(Some(ResponseEvent::End))
                }
            },
            State::UntilClose => {
                if input.is_empty() {
                    return Ok(None);
                }
                let data = *input;
                *input = &[];
                Ok(Some(ResponseEvent::Data(data)))
            }
        }
    }

    /// The connection closed: the end of a close-delimited body, else nothing.
    pub fn on_close(&mut self) -> Option<ResponseEvent<'static>> {
        if matches!(self.state, State::UntilClose) {
            self.state = State::Idle;
            return Some(ResponseEvent::End);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(reader: &mut ResponseReader, wire: &[u8], step: usize) -> Vec<String> {
        let mut out = Vec::new();
        for piece in wire.chunks(step) {
            let mut input = piece;
            while let Some(ev) = reader.next(&mut input).unwrap() {
                out.push(match ev {
                    ResponseEvent::Head { status, close } => format!("head {status} {close}"),
                    ResponseEvent::Data(d) => format!("data {}", d.len()),
                    ResponseEvent::End => "end".into(),
                });
            }
        }
        out
    }

    fn collapse(ev: Vec<String>) -> (Vec<String>, usize) {
        let mut data = 0;
        let mut rest = Vec::new();
        for e in ev {
            match e.strip_prefix("data ") {
                Some(n) => data += n.parse::<usize>().unwrap(),
                None => rest.push(e),
            }
        }
        (rest, data)
    }

    #[test]
    fn length_and_chunked_bodies_in_any_read_size() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        for step in [1, 3, 7, 1000] {
            for w in [&wire[..], &chunked[..]] {
                let mut r = ResponseReader::default();
                r.expect();
                let (ev, data) = collapse(events(&mut r, w, step));
                assert_eq!(ev, ["head 200 false", "end"], "step {step}");
                assert_eq!(data, 5);
                assert!(!r.busy());
            }
        }
        let mut r = ResponseReader::default();
        r.expect();
        let ev = events(
            &mut r,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            9,
        );
        assert_eq!(ev, ["head 404 true", "end"]);
    }

    #[test]
    fn unsolicited_bytes_and_huge_heads_are_errors() {
        let mut r = ResponseReader::default();
        let mut input = &b"HTTP/1.1 200 OK\r\n\r\n"[..];
        assert_eq!(r.next(&mut input), Err(ResponseError::Unsolicited(19)));
        let mut r = ResponseReader::default();
        r.expect();
        let big = vec![b'a'; MAX_HEAD_LEN * 2];
        let mut input = &big[..];
        assert!(r.next(&mut input).is_err());
    }

    #[test]
    fn request_is_keep_alive() {
        let mut out = BytesMut::new();
        write_get("/live/s.m3u8", "127.0.0.1:8080", &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("GET /live/s.m3u8 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        assert!(!text.to_ascii_lowercase().contains("connection"));
        assert!(text.ends_with("\r\n\r\n"));
    }
}
