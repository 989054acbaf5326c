//! HTTP/1.x request-head parsing with limits, on top of `httparse`.
//!
//! The parser is incremental in the only way HTTP heads need: the caller keeps
//! appending received bytes to one buffer and calls [`RequestParser::parse`] on it
//! until it returns [`Parsed::Complete`]. Every limit is checked on the partial
//! head too, so a client cannot make us buffer more than `max_head` bytes.

use super::error::HttpError;

/// The most header lines the parser has room for; [`RequestLimits::max_headers`]
/// is capped to this.
pub const HEADER_SLOTS: usize = 128;

/// Bytes of a request line besides the target: the longest method we know,
/// two spaces and ` HTTP/1.1\r`. Used to judge an unfinished request line.
const REQUEST_LINE_OVERHEAD: usize = 32;

/// Limits on a request head and body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// Whole head including the blank line (default 8 KiB) → 431.
    pub max_head: usize,
    /// Header lines (default 64, at most [`HEADER_SLOTS`]) → 431.
    pub max_headers: usize,
    /// Raw request target (default 2 KiB) → 414.
    pub max_path: usize,
    /// Content-Length accepted (default 4 KiB; the API's requests carry none) → 413.
    pub max_body: u64,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_head: 8 * 1024,
            max_headers: 64,
            max_path: 2 * 1024,
            max_body: 4 * 1024,
        }
    }
}

/// Request methods the server distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`: as GET, but the response carries headers only.
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `OPTIONS` (CORS preflight).
    Options,
    /// Anything else; answered with 405.
    Other,
}

impl Method {
    fn parse(s: &str) -> Self {
        match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }

    /// The method token.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }
}

/// HTTP protocol version of a request (and of our response to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// HTTP/1.0: no chunked encoding, connection closes by default.
    Http10,
    /// HTTP/1.1: chunked encoding, persistent by default.
    Http11,
}

impl Version {
    /// The version as written in a status line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request target exactly as sent.
    pub target: String,
    /// The percent-decoded path (without the query), e.g. `/live/cam 1.flv`;
    /// `*` for `OPTIONS *`.
    pub path: String,
    /// The query string split at `&` and `=`, percent- and `+`-decoded, in order.
    pub query: Vec<(String, String)>,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// Header lines in order; names as sent (look up with [`Request::header`]).
    pub headers: Vec<(String, String)>,
    /// Whether the client wants the connection kept open after the response.
    pub keep_alive: bool,
    /// Declared body length (0 if none); the body follows the head.
    pub content_length: u64,
    /// Length of the head in bytes, blank line included: where the body starts.
    pub head_len: usize,
}

impl Request {
    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter named `name` (exact match).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Result of [`RequestParser::parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet: read more and call again with all bytes so far.
    Partial,
    /// The head is complete.
    Complete(Request),
}

/// Parses request heads under [`RequestLimits`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestParser {
    limits: RequestLimits,
}

impl RequestParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: RequestLimits) -> Self {
        RequestParser { limits }
    }

    /// Parses `buf`, which holds everything received on the connection so far
    /// (possibly followed by body bytes or a pipelined request).
    pub fn parse(&self, buf: &[u8]) -> Result<Parsed, HttpError> {
        let limits = &self.limits;
        let window = buf.get(..limits.max_head).unwrap_or(buf);
        let mut slots = [httparse::EMPTY_HEADER; HEADER_SLOTS];
        let max_headers = limits.max_headers.min(HEADER_SLOTS);
        let mut req = httparse::Request::new(slots.get_mut(..max_headers).unwrap_or_default());
        let head_len = match req.parse(window) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return self.check_partial(buf).map(|()| Parsed::Partial)
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HttpError::TooManyHeaders { limit: max_headers })
            }
            Err(e) => {
                return Err(HttpError::Malformed {
                    reason: httparse_reason(e),
                })
            }
        };
        let method = Method::parse(req.method.unwrap_or_default());
        let target = req.path.unwrap_or_default();
        if target.len() > limits.max_path {
            return Err(HttpError::PathTooLong {
                len: target.len(),
                limit: limits.max_path,
            });
        }
        let version = if req.version == Some(0) {
            Version::Http10
        } else {
            Version::Http11
        };
        let (path, query) = split_target(target, method)?;

        let mut headers = Vec::with_capacity(req.headers.len());
        let mut content_length: Option<u64> = None;
        let mut chunked_body = false;
        let mut conn_close = false;
        let mut conn_keep_alive = false;
        for h in req.headers.iter() {
            let value = String::from_utf8_lossy(h.value).into_owned();
            if h.name.eq_ignore_ascii_case("content-length") {
                let n = parse_content_length(&value)?;
                if content_length.is_some_and(|prev| prev != n) {
                    return Err(HttpError::Malformed {
                        reason: "conflicting Content-Length headers",
                    });
                }
                content_length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked_body = true;
            } else if h.name.eq_ignore_ascii_case("connection") {
                for token in value.split(',').map(str::trim) {
                    conn_close |= token.eq_ignore_ascii_case("close");
                    conn_keep_alive |= token.eq_ignore_ascii_case("keep-alive");
                }
            }
            headers.push((h.name.to_owned(), value));
        }
        if chunked_body {
            return Err(HttpError::LengthRequired);
        }
        let content_length = content_length.unwrap_or(0);
        if content_length > limits.max_body {
            return Err(HttpError::BodyTooLarge {
                len: content_length,
                limit: limits.max_body,
            });
        }
        let keep_alive = match version {
            Version::Http11 => !conn_close,
            Version::Http10 => conn_keep_alive && !conn_close,
        };
        Ok(Parsed::Complete(Request {
            method,
            target: target.to_owned(),
            path,
            query,
            version,
            headers,
            keep_alive,
            content_length,
            head_len,
        }))
    }

    /// Limits that can already be judged on an unfinished head.
    fn check_partial(&self, buf: &[u8]) -> Result<(), HttpError> {
        let limits = &self.limits;
        if buf.len() >= limits.max_head {
            return Err(HttpError::HeadTooLarge {
                len: buf.len(),
                limit: limits.max_head,
            });
        }
        let line_done = buf.contains(&b'\n');
        if !line_done && buf.len() > limits.max_path.saturating_add(REQUEST_LINE_OVERHEAD) {
            return Err(HttpError::PathTooLong {
                len: buf.len(),
                limit: limits.max_path,
            });
        }
        Ok(())
    }
}

fn httparse_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid method or target",
        httparse::Error::Version => "invalid HTTP version",
        httparse::Error::TooManyHeaders => "too many headers",
    }
}

fn parse_content_length(v: &str) -> Result<u64, HttpError> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HttpError::Malformed {
            reason: "invalid Content-Length",
        });
    }
    v.parse().map_err(|_| HttpError::Malformed {
        reason: "invalid Content-Length",
    })
}

/// Splits a request target into a decoded path and query pairs. Absolute-form
/// targets (`http://host/path`) are reduced to their path, as RFC 9112 §3.2.2
/// asks servers to accept.
fn split_target(
    target: &str,
    method: Method,
) -> Result<(String, Vec<(String, String)>), HttpError> {
    if target == "*" && method == Method::Options {
        return Ok(("*".to_owned(), Vec::new()));
    }
    let origin_form = if target.starts_with('/') {
        target
    } else if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/")
    } else {
        return Err(HttpError::InvalidPath {
            reason: "target is not an absolute path",
        });
    };
    let origin_form = origin_form.split('#').next().unwrap_or_default();
    let (raw_path, raw_query) = origin_form.split_once('?').unwrap_or((origin_form, ""));
    let path = percent_decode(raw_path, false)?;
    let mut query = Vec::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query.push((percent_decode(k, true)?, percent_decode(v, true)?));
    }
    Ok((path, query))
}

/// Decodes `%XX` escapes (and `+` as space in query components). The result
/// must be UTF-8 without control characters, which stream keys and file-like
/// paths never need and which would otherwise reach logs and lookups.
fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, HttpError> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        let decoded = match b {
            b'%' => {
                let hi = bytes.next().and_then(hex_value);
                let lo = bytes.next().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => hi << 4 | lo,
                    _ => {
                        return Err(HttpError::InvalidPath {
                            reason: "bad percent escape",
                        })
                    }
                }
            }
            b'+' if plus_is_space => b' ',
            b => b,
        };
        if decoded.is_ascii_control() {
            return Err(HttpError::InvalidPath {
                reason: "control character in target",
            });
        }
        out.push(decoded);
    }
    String::from_utf8(out).map_err(|_| HttpError::InvalidPath {
        reason: "target is not UTF-8",
    })
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Result<Parsed, HttpError> {
        RequestParser::default().parse(s)
    }

    fn complete(s: &[u8]) -> Request {
        match parse(s) {
            Ok(Parsed::Complete(r)) => r,
            other => panic!("expected a complete request, got {other:?}"),
        }
    }

    #[test]
    fn parses_flv_play_request() {
        let input = b"GET /live/cam%201.flv?token=a%2Bb&x=1+2&flag HTTP/1.1\r\nHost: h\r\nUser-Agent: ffplay\r\n\r\nBODY";
        let r = complete(input);
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.path, "/live/cam 1.flv");
        assert_eq!(r.query_param("token"), Some("a+b"));
        assert_eq!(r.query_param("x"), Some("1 2"));
        assert_eq!(r.query_param("flag"), Some(""));
        assert_eq!(r.header("user-agent"), Some("ffplay"));
        assert_eq!(r.header("HOST"), Some("h"));
        assert_eq!(r.version, Version::Http11);
        assert!(r.keep_alive);
        assert_eq!(&input[r.head_len..], b"BODY");
    }

    #[test]
    fn incremental_until_blank_line() {
        let full = b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]), Ok(Parsed::Partial), "cut at {cut}");
        }
        let r = complete(full);
        assert_eq!(r.version, Version::Http10);
        assert!(r.keep_alive);
        assert_eq!(r.head_len, full.len());
    }

    #[test]
    fn keep_alive_defaults() {
        assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(!complete(b"GET / HTTP/1.1\r\nConnection: Upgrade, close\r\n\r\n").keep_alive);
        assert!(complete(b"GET / HTTP/1.1\r\n\r\n").keep_alive);
    }

    #[test]
    fn absolute_form_and_options_star() {
        let r = complete(b"GET http://example.com:8080/live/a.flv?k=v HTTP/1.1\r\n\r\n");
        assert_eq!(r.path, "/live/a.flv");
        assert_eq!(r.query_param("k"), Some("v"));
        let r = complete(b"OPTIONS * HTTP/1.1\r\n\r\n");
        assert_eq!((r.method, r.path.as_str()), (Method::Options, "*"));
        assert!(matches!(
            parse(b"GET * HTTP/1.1\r\n\r\n"),
            Err(HttpError::InvalidPath { .. })
        ));
        assert_eq!(complete(b"PATCH / HTTP/1.1\r\n\r\n").method, Method::Other);
    }

    #[test]
    fn oversized_head_is_431_even_when_unfinished() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        while head.len() < 9 * 1024 {
            head.extend_from_slice(format!("X-Pad: {}\r\n", "a".repeat(300)).as_bytes());
        }
        let e = parse(&head).unwrap_err();
        assert!(
            matches!(e, HttpError::HeadTooLarge { limit: 8192, .. }),
            "{e:?}"
        );
        assert_eq!(e.status(), 431);
        head.extend_from_slice(b"\r\n");
        assert_eq!(parse(&head).unwrap_err().status(), 431);
    }

    #[test]
    fn sixty_five_headers_is_431() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..65 {
            head.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        assert_eq!(parse(&head), Err(HttpError::TooManyHeaders { limit: 64 }));
        assert_eq!(parse(&head).unwrap_err().status(), 431);
    }

    #[test]
    fn long_path_is_414_finished_or_not() {
        let path = "/".to_owned() + &"a".repeat(3 * 1024);
        let line = format!("GET {path} HTTP/1.1\r\n\r\n");
        assert_eq!(
            parse(line.as_bytes()),
            Err(HttpError::PathTooLong {
                len: path.len(),
                limit: 2048
            })
        );
        let unfinished = format!("GET {path}");
        assert_eq!(parse(unfinished.as_bytes()).unwrap_err().status(), 414);
    }

    #[test]
    fn nul_and_bad_escapes_are_400() {
        assert_eq!(
            parse(b"GET /a\0b HTTP/1.1\r\n\r\n").unwrap_err().status(),
            400
        );
        assert!(matches!(
            parse(b"GET /a%00b HTTP/1.1\r\n\r\n"),
            Err(HttpError::InvalidPath { .. })
        ));
        assert!(matches!(
            parse(b"GET /a%zz HTTP/1.1\r\n\r\n"),
            Err(HttpError::InvalidPath { .. })
        ));
        assert!(matches!(
            parse(b"GET /a%ff HTTP/1.1\r\n\r\n"),
            Err(HttpError::InvalidPath { .. })
        ));
        assert!(matches!(
            parse(b"GET /a?x=%0a HTTP/1.1\r\n\r\n"),
            Err(HttpError::InvalidPath { .. })
        ));
        assert!(matches!(
            parse(b"GET /a HTTP/2.0\r\n\r\n"),
            Err(HttpError::Malformed { .. })
        ));
    }

    #[test]
    fn bodies_are_capped() {
        let r = complete(b"DELETE /api/streams/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((r.method, r.content_length), (Method::Delete, 0));
        let r = complete(b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n");
        assert_eq!(r.content_length, 10);
        assert_eq!(
            parse(b"POST /x HTTP/1.1\r\nContent-Length: 5000\r\n\r\n"),
            Err(HttpError::BodyTooLarge {
                len: 5000,
                limit: 4096
            })
        );
        assert_eq!(
            parse(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(HttpError::LengthRequired)
        );
        assert_eq!(
            parse(b"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n")
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            parse(b"POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
                .unwrap_err()
                .status(),
            400
        );
    }

    fn encode_component(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn built_heads_parse_back(
            method in proptest::sample::select(vec!["GET", "HEAD", "POST", "DELETE", "OPTIONS"]),
            segments in proptest::collection::vec("[a-zA-Z0-9 ._~é-]{1,12}", 1..5),
            query in proptest::collection::vec(("[a-z]{1,8}", "[ -~é]{0,12}"), 0..5),
            headers in proptest::collection::vec(("X-[A-Za-z]{1,10}", "[!-~][ -~]{0,30}[!-~]"), 0..20),
            http10 in proptest::bool::ANY,
            split in 0usize..400,
        ) {
            let path: String = segments.iter().map(|s| format!("/{s}")).collect();
            let encoded_path: String = segments.iter().map(|s| format!("/{}", encode_component(s))).collect();
            let qs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", encode_component(v))).collect();
            let target = if qs.is_empty() { encoded_path } else { format!("{encoded_path}?{}", qs.join("&")) };
            let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
            let mut head = format!("{method} {target} {version}\r\n");
            for (n, v) in &headers {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let bytes = head.as_bytes();
            let cut = split.min(bytes.len() - 1);
            proptest::prop_assert_eq!(parse(&bytes[..cut]), Ok(Parsed::Partial));
            let r = complete(bytes);
            proptest::prop_assert_eq!(r.method.as_str(), method);
            proptest::prop_assert_eq!(&r.path, &path);
            let want_query: Vec<(String, String)> = query.clone();
            proptest::prop_assert_eq!(&r.query, &want_query);
            proptest::prop_assert_eq!(r.version, if http10 { Version::Http10 } else { Version::Http11 });
            proptest::prop_assert_eq!(r.headers.len(), headers.len());
            for (n, v) in &headers {
                let found = r.headers.iter().any(|(hn, hv)| hn == n && hv == v);
                proptest::prop_assert!(found);
            }
            proptest::prop_assert_eq!(r.head_len, bytes.len());
        }
    }
}
