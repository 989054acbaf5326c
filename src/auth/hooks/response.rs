//! The hook server's answer, read with limits, and SRS's allow rule: HTTP 2xx
//! with body `0` or a JSON object whose `code` is 0 allows; any other
//! well-formed answer denies; a broken answer is an error (the action's fail
//! policy decides).

use thiserror::Error;

/// Longest response head accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Longest response body accepted (SRS answers are a few bytes).
pub const MAX_BODY: usize = 4 * 1024;
/// Header slots of the parser.
const HEADER_SLOTS: usize = 32;

/// A well-formed answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 2xx with `0` or `{"code":0}`.
    Allow,
    /// Anything else: the status, and the JSON `code` if there was one.
    Deny {
        /// The HTTP status.
        status: u16,
        /// The body's `code`, if it was a JSON object with an integer `code`.
        code: Option<i64>,
    },
}

/// Why an answer could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ResponseError {
    /// Not an HTTP/1.x response head.
    #[error("malformed response head")]
    Malformed,
    /// The head is larger than [`MAX_HEAD`] (or has too many headers).
    #[error("response head over {MAX_HEAD} bytes or {HEADER_SLOTS} headers")]
    HeadTooLarge,
    /// The body is larger than [`MAX_BODY`].
    #[error("response body over {MAX_BODY} bytes")]
    BodyTooLarge,
    /// `Content-Length` or chunked framing is broken.
    #[error("bad body framing: {0}")]
    BadFraming(&'static str),
    /// The server closed before the answer was complete.
    #[error("connection closed before the answer was complete")]
    Truncated,
}

/// How the body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Accumulates one response (bounded by [`MAX_HEAD`] + [`MAX_BODY`] and the
/// chunk framing) and decides it once complete.
#[derive(Debug, Default)]
pub struct ResponseReader {
    buf: Vec<u8>,
    head: Option<(u16, Framing, usize)>,
}

impl ResponseReader {
    /// An empty reader.
    pub fn new() -> ResponseReader {
        ResponseReader::default()
    }

    /// Adds received bytes; `Ok(Some)` once the answer is complete.
    pub fn push(&mut self, data: &[u8]) -> Result<Option<Answer>, ResponseError> {
        let cap = MAX_HEAD + MAX_BODY + 1024;
        if self.buf.len() + data.len() > cap {
            return Err(if self.head.is_some() {
                ResponseError::BodyTooLarge
            } else {
                ResponseError::HeadTooLarge
            });
        }
        self.buf.extend_from_slice(data);
        if self.head.is_none() {
            self.head = parse_head(&self.buf)?;
        }
        let Some((status, framing, head_len)) = self.head else {
            return Ok(None);
        };
        let body = self.buf.get(head_len..).unwrap_or_default();
        match framing {
            Framing::Length(n) if body.len() >= n => {
                Ok(Some(decide(status, body.get(..n).unwrap_or_default())))
            }
            Framing::Length(_) | Framing::UntilClose => {
                if body.len() > MAX_BODY {
                    return Err(ResponseError::BodyTooLarge);
                }
                Ok(None)
            }
            Framing::Chunked => Ok(dechunk(body)?.map(|b| decide(status, &b))),
        }
    }

    /// The server closed the connection: the answer, if what arrived is one.
    pub fn on_close(&mut self) -> Result<Answer, ResponseError> {
        let Some((status, framing, head_len)) = self.head else {
            return Err(ResponseError::Truncated);
        };
        let body = self.buf.get(head_len..).unwrap_or_default();
        match framing {
            Framing::UntilClose => Ok(decide(status, body)),
            Framing::Length(n) if body.len() >= n => {
                Ok(decide(status, body.get(..n).unwrap_or_default()))
            }
            Framing::Chunked => match dechunk(body)? {
                Some(b) => Ok(decide(status, &b)),
                None => Err(ResponseError::Truncated),
            },
            Framing::Length(_) => Err(ResponseError::Truncated),
        }
    }
}

fn parse_head(buf: &[u8]) -> Result<Option<(u16, Framing, usize)>, ResponseError> {
    let window = buf.get(..MAX_HEAD).unwrap_or(buf);
    let mut slots = [httparse::EMPTY_HEADER; HEADER_SLOTS];
    let mut resp = httparse::Response::new(&mut slots);
    let head_len = match resp.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(ResponseError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::HeadTooLarge),
        Err(_) => return Err(ResponseError::Malformed),
    };
    let status = resp.code.unwrap_or_default();
    let mut framing = Framing::UntilClose;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if h.value
                .to_ascii_lowercase()
                .windows(7)
                .any(|w| w == b"chunked")
            {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or(ResponseError::BadFraming("invalid Content-Length"))?;
            if n > MAX_BODY {
                return Err(ResponseError::BodyTooLarge);
            }
            framing = Framing::Length(n);
        }
    }
    if (100..200).contains(&status) || status == 204 || status == 304 {
        framing = Framing::Length(0);
    }
    Ok(Some((status, framing, head_len)))
}

/// The body of a complete chunked encoding, `None` while incomplete.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, ResponseError> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            if rest.len() > 64 {
                return Err(ResponseError::BadFraming("chunk-size line too long"));
            }
            return Ok(None);
        };
        let line = rest.get(..eol).unwrap_or_default();
        let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size_text)
            .ok()
            .and_then(|t| usize::from_str_radix(t.trim(), 16).ok())
            .ok_or(ResponseError::BadFraming("bad chunk size"))?;
        if body.len() + size > MAX_BODY {
            return Err(ResponseError::BodyTooLarge);
        }
        rest = rest.get(eol + 2..).unwrap_or_default();
        if size == 0 {
            // Trailers are not read: the last chunk is enough to decide.
            return Ok(Some(body));
        }
        let Some(data) = rest.get(..size) else {
            return Ok(None);
        };
        body.extend_from_slice(data);
        match rest.get(size..size + 2) {
            None => return Ok(None),
            Some(b"\r\n") => rest = rest.get(size + 2..).unwrap_or_default(),
            Some(_) => return Err(ResponseError::BadFraming("no CRLF after chunk data")),
        }
    }
}

/// SRS's rule on a complete answer.
pub fn decide(status: u16, body: &[u8]) -> Answer {
    let code = json_code(body);
    let allows = body.trim_ascii() == b"0" || code == Some(0);
    if (200..300).contains(&status) && allows {
        Answer::Allow
    } else {
        Answer::Deny { status, code }
    }
}

/// The integer `code` of a JSON object body.
fn json_code(body: &[u8]) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.as_object()?.get("code")?.as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> Result<Option<Answer>, ResponseError> {
        ResponseReader::new().push(bytes)
    }

    #[test]
    fn srs_allow_rule() {
        assert_eq!(decide(200, b"0"), Answer::Allow);
        assert_eq!(decide(200, b" 0\n"), Answer::Allow);
        assert_eq!(decide(204, b"0"), Answer::Allow);
        assert_eq!(decide(200, br#"{"code":0,"data":null}"#), Answer::Allow);
        assert_eq!(decide(200, br#"{"code": 0}"#), Answer::Allow);
        assert_eq!(
            decide(200, br#"{"code":1}"#),
            Answer::Deny {
                status: 200,
                code: Some(1)
            }
        );
        assert_eq!(
            decide(403, b"0"),
            Answer::Deny {
                status: 403,
                code: None
            }
        );
        assert_eq!(
            decide(200, b""),
            Answer::Deny {
                status: 200,
                code: None
            }
        );
        assert_eq!(
            decide(200, b"garbage\xff"),
            Answer::Deny {
                status: 200,
                code: None
            }
        );
        assert_eq!(
            decide(200, b"[0]"),
            Answer::Deny {
                status: 200,
                code: None
            }
        );
        assert_eq!(
            decide(200, br#"{"code":"0"}"#),
            Answer::Deny {
                status: 200,
                code: None
            }
        );
        assert_eq!(
            decide(500, br#"{"code":0}"#),
            Answer::Deny {
                status: 500,
                code: Some(0)
            }
        );
    }

    #[test]
    fn content_length_in_pieces() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n0";
        for cut in 1..full.len() {
            let mut r = ResponseReader::new();
            assert_eq!(r.push(&full[..cut]), Ok(None), "cut {cut}");
            assert_eq!(r.push(&full[cut..]), Ok(Some(Answer::Allow)), "cut {cut}");
        }
    }

    #[test]
    fn until_close_and_truncation() {
        let mut r = ResponseReader::new();
        assert_eq!(r.push(b"HTTP/1.0 200 OK\r\n\r\n{\"code\":0}"), Ok(None));
        assert_eq!(r.on_close(), Ok(Answer::Allow));
        let mut r = ResponseReader::new();
        assert_eq!(
            r.push(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n0"),
            Ok(None)
        );
        assert_eq!(r.on_close(), Err(ResponseError::Truncated));
        let mut r = ResponseReader::new();
        assert_eq!(r.push(b"HTTP/1.1 20"), Ok(None));
        assert_eq!(r.on_close(), Err(ResponseError::Truncated));
        assert_eq!(
            ResponseReader::new().on_close(),
            Err(ResponseError::Truncated)
        );
    }

    #[test]
    fn chunked() {
        let full = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"c\r\n7;x=y\r\node\":0}\r\n0\r\n\r\n";
        for cut in 1..full.len() {
            let mut r = ResponseReader::new();
            let first = r.push(&full[..cut]).unwrap();
            let answer = first.or_else(|| r.push(&full[cut..]).unwrap());
            assert_eq!(answer, Some(Answer::Allow), "cut {cut}");
        }
        assert!(matches!(
            read_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Err(ResponseError::BadFraming(_))
        ));
        assert!(matches!(
            read_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n0XX"),
            Err(ResponseError::BadFraming(_))
        ));
        assert_eq!(
            read_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFF\r\n"),
            Err(ResponseError::BodyTooLarge)
        );
    }

    #[test]
    fn limits_and_garbage() {
        assert_eq!(
            read_all(b"garbage garbage\r\n\r\n"),
            Err(ResponseError::Malformed)
        );
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert_eq!(read_all(&big), Err(ResponseError::HeadTooLarge));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..40 {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(read_all(&many), Err(ResponseError::HeadTooLarge));
        assert_eq!(
            read_all(b"HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n"),
            Err(ResponseError::BodyTooLarge)
        );
        assert_eq!(
            read_all(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Err(ResponseError::BadFraming("invalid Content-Length"))
        );
        let mut r = ResponseReader::new();
        assert_eq!(r.push(b"HTTP/1.0 200 OK\r\n\r\n"), Ok(None));
        assert_eq!(
            r.push(&vec![b'x'; MAX_BODY + 1]),
            Err(ResponseError::BodyTooLarge)
        );
        let mut r = ResponseReader::new();
        assert_eq!(r.push(b"HTTP/1.0 200 OK\r\n\r\n"), Ok(None));
        assert_eq!(
            r.push(&vec![b'x'; MAX_HEAD + MAX_BODY]),
            Err(ResponseError::BodyTooLarge)
        );
        assert_eq!(
            read_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"),
            Ok(Some(Answer::Deny {
                status: 403,
                code: None
            }))
        );
    }

    proptest::proptest! {
        /// Whatever the bytes and however they are split, the reader never
        /// panics, never holds more than its bound, and decides the same way.
        #[test]
        fn any_bytes_any_split(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
                               prefix in proptest::sample::select(vec![
                                   &b""[..],
                                   &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n"[..],
                                   &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
                                   &b"HTTP/1.0 200 OK\r\n\r\n"[..],
                               ]),
                               cut in 0usize..2200) {
            let mut input = prefix.to_vec();
            input.extend_from_slice(&bytes);
            let whole = ResponseReader::new().push(&input);
            let cut = cut.min(input.len());
            let mut split = ResponseReader::new();
            let first = split.push(&input[..cut]);
            let pieces = match first {
                Ok(None) => split.push(&input[cut..]),
                done => done,
            };
            proptest::prop_assert!(split.buf.len() <= MAX_HEAD + MAX_BODY + 1024);
            // An answer found in a prefix is the whole input's answer too.
            if let (Ok(Some(a)), Ok(Some(b))) = (&whole, &pieces) {
                proptest::prop_assert_eq!(a, b);
            }
        }
    }
}
