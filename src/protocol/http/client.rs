//! The client side of HTTP-FLV, for the edge's origin pull and loadgen's viewers:
//! a GET request writer and a bounded response-head parser. The body that follows
//! is raw FLV (close-delimited or with a Content-Length) or chunked
//! ([`super::chunked::ChunkedDecoder`]).

use bytes::{BufMut, BytesMut};
use thiserror::Error;

use super::request::HEADER_SLOTS;

/// Limits on a response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Whole head including the blank line (default 16 KiB).
    pub max_head: usize,
    /// Header lines (default 64, at most [`HEADER_SLOTS`]).
    pub max_headers: usize,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        ResponseLimits {
            max_head: 16 * 1024,
            max_headers: 64,
        }
    }
}

/// Why a response (head or chunked body) from a server was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ClientError {
    /// The head is not valid HTTP/1.x.
    #[error("malformed response head: {reason}")]
    Malformed {
        /// What was wrong.
        reason: &'static str,
    },
    /// The head is larger than allowed.
    #[error("response head of at least {len} bytes exceeds the limit {limit}")]
    HeadTooLarge {
        /// Bytes seen so far.
        len: usize,
        /// [`ResponseLimits::max_head`].
        limit: usize,
    },
    /// More header lines than allowed.
    #[error("response has more than {limit} headers")]
    TooManyHeaders {
        /// [`ResponseLimits::max_headers`].
        limit: usize,
    },
    /// A chunk-size line (with extensions) or trailer line is longer than allowed.
    #[error("chunk-size or trailer line longer than {limit} bytes")]
    ChunkLineTooLong {
        /// The line length limit.
        limit: usize,
    },
    /// A chunk declares more bytes than allowed.
    #[error("chunk of {len} bytes exceeds the limit {limit}")]
    ChunkTooLarge {
        /// The declared chunk size.
        len: u64,
        /// The chunk size limit.
        limit: u64,
    },
    /// The chunked framing is broken (bad hex, missing CRLF after data).
    #[error("invalid chunked encoding: {reason}")]
    InvalidChunk {
        /// What was wrong.
        reason: &'static str,
    },
}

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseBody {
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Exactly this many bytes.
    Length(u64),
    /// Until the server closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Header lines in order (look up with [`ResponseHead::header`]).
    pub headers: Vec<(String, String)>,
    /// How the body is delimited.
    pub body: ResponseBody,
    /// Length of the head in bytes: where the body starts.
    pub head_len: usize,
}

impl ResponseHead {
    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a response head from everything received so far; `Ok(None)` means
/// the head is not complete yet.
pub fn parse_response_head(
    buf: &[u8],
    limits: &ResponseLimits,
) -> Result<Option<ResponseHead>, ClientError> {
    let window = buf.get(..limits.max_head).unwrap_or(buf);
    let mut slots = [httparse::EMPTY_HEADER; HEADER_SLOTS];
    let max_headers = limits.max_headers.min(HEADER_SLOTS);
    let mut resp = httparse::Response::new(slots.get_mut(..max_headers).unwrap_or_default());
    let head_len = match resp.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head => {
            return Err(ClientError::HeadTooLarge {
                len: buf.len(),
                limit: limits.max_head,
            })
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ClientError::TooManyHeaders { limit: max_headers })
        }
        Err(_) => {
            return Err(ClientError::Malformed {
                reason: "not an HTTP/1.x response head",
            })
        }
    };
    let status = resp.code.unwrap_or_default();
    let mut body = ResponseBody::UntilClose;
    let mut headers = Vec::with_capacity(resp.headers.len());
    for h in resp.headers.iter() {
        let value = String::from_utf8_lossy(h.value).into_owned();
        if h.name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            body = ResponseBody::Chunked;
        } else if h.name.eq_ignore_ascii_case("content-length") && body != ResponseBody::Chunked {
            let n = value.trim().parse().map_err(|_| ClientError::Malformed {
                reason: "invalid Content-Length",
            })?;
            body = ResponseBody::Length(n);
        }
        headers.push((h.name.to_owned(), value));
    }
    // 1xx, 204 and 304 never have a body.
    if (100..200).contains(&status) || status == 204 || status == 304 {
        body = ResponseBody::Length(0);
    }
    Ok(Some(ResponseHead {
        status,
        headers,
        body,
        head_len,
    }))
}

/// Writes an HTTP/1.1 GET for `target` (path and query, already percent-encoded)
/// on `host`, asking for the connection to close after the response.
pub fn write_get_request(target: &str, host: &str, user_agent: &str, out: &mut BytesMut) {
    for part in [
        b"GET ".as_slice(),
        target.as_bytes(),
        b" HTTP/1.1\r\nHost: ",
        host.as_bytes(),
    ] {
        out.put_slice(part);
    }
    for part in [
        b"\r\nUser-Agent: ".as_slice(),
        user_agent.as_bytes(),
        b"\r\nAccept: */*\r\nConnection: close\r\n\r\n",
    ] {
        out.put_slice(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::request::{Method, Parsed, RequestParser};
    use crate::protocol::http::response::{write_error, write_flv_head, ResponseContext};
    use crate::protocol::http::Version;

    #[test]
    fn parses_our_own_flv_head() {
        let mut out = BytesMut::new();
        let ctx = ResponseContext {
            version: Version::Http11,
            keep_alive: true,
            head_only: false,
            websocket: None,
        };
        write_flv_head(&ctx, &mut out);
        let full = out.clone();
        for cut in 0..full.len() {
            assert_eq!(
                parse_response_head(&full[..cut], &ResponseLimits::default()),
                Ok(None)
            );
        }
        out.put_slice(b"d\r\nFLV...");
        let head = parse_response_head(&out, &ResponseLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.body, ResponseBody::Chunked);
        assert_eq!(head.header("content-type"), Some("video/x-flv"));
        assert_eq!(head.head_len, full.len());

        let ctx10 = ResponseContext {
            version: Version::Http10,
            keep_alive: false,
            head_only: false,
            websocket: None,
        };
        let mut out = BytesMut::new();
        write_flv_head(&ctx10, &mut out);
        assert_eq!(
            parse_response_head(&out, &ResponseLimits::default())
                .unwrap()
                .unwrap()
                .body,
            ResponseBody::UntilClose
        );
        let mut out = BytesMut::new();
        write_error(&ctx, 404, &mut out);
        let head = parse_response_head(&out, &ResponseLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!((head.status, head.body), (404, ResponseBody::Length(14)));
    }

    #[test]
    fn response_limits() {
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        big.resize(20 * 1024, b'a');
        assert!(matches!(
            parse_response_head(&big, &ResponseLimits::default()),
            Err(ClientError::HeadTooLarge { .. })
        ));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..65 {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_response_head(&many, &ResponseLimits::default()),
            Err(ClientError::TooManyHeaders { limit: 64 })
        );
        assert!(matches!(
            parse_response_head(b"HTTX/1.1 200\r\n\r\n", &ResponseLimits::default()),
            Err(ClientError::Malformed { .. })
        ));
    }

    #[test]
    fn get_request_parses_with_our_server_parser() {
        let mut out = BytesMut::new();
        write_get_request(
            "/live/a.flv?token=x",
            "origin:8080",
            "ringcast-edge",
            &mut out,
        );
        let Ok(Parsed::Complete(req)) = RequestParser::default().parse(&out) else {
            panic!("unparsable request")
        };
        assert_eq!(
            (req.method, req.path.as_str()),
            (Method::Get, "/live/a.flv")
        );
        assert_eq!(req.query_param("token"), Some("x"));
        assert_eq!(req.header("host"), Some("origin:8080"));
        assert!(!req.keep_alive);
    }
}
