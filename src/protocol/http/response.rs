//! HTTP/1.x response heads: the HTTP-FLV stream head, chunked-encoding framing,
//! and small complete responses (errors, JSON, HTML, CORS preflight).
//!
//! Heads are written once per connection into a caller's `BytesMut`. The chunk
//! framing helpers write into fixed arrays so the egress path can put the size
//! line in a viewer's scratch area without allocating.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use super::request::{Method, Request, Version};
use crate::protocol::ws::handshake::{write_switching_protocols, WsAccept};

/// The `Server` header value.
const SERVER: &str = "ringcast";

/// How a response relates to its request: protocol version, persistence, HEAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseContext {
    /// The version to answer with (the request's).
    pub version: Version,
    /// Keep the connection open after this response.
    pub keep_alive: bool,
    /// A HEAD request: write the head only, never a body.
    pub head_only: bool,
    /// A valid WebSocket upgrade (WebSocket-FLV): the stream head is `101 Switching
    /// Protocols` with this accept value, and the body goes as WebSocket messages.
    pub websocket: Option<WsAccept>,
}

impl ResponseContext {
    /// The context for answering `req`.
    pub fn for_request(req: &Request) -> Self {
        ResponseContext {
            version: req.version,
            keep_alive: req.keep_alive,
            head_only: req.method == Method::Head,
            websocket: None,
        }
    }

    /// The context for a request we could not parse: HTTP/1.1, then close.
    pub const fn for_bad_request() -> Self {
        ResponseContext {
            version: Version::Http11,
            keep_alive: false,
            head_only: false,
            websocket: None,
        }
    }
}

/// How the body following a streaming head is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// Each write is framed as a chunk ([`write_chunk_size_line`], [`CHUNK_END`]),
    /// ended by [`LAST_CHUNK`].
    Chunked,
    /// Raw bytes; the body ends when the server closes the connection (HTTP/1.0).
    CloseDelimited,
    /// No body at all (HEAD request).
    None,
    /// The connection switched to WebSocket: the body goes as binary messages.
    WebSocket,
}

/// Writes the head of an HTTP-FLV stream response (200, `video/x-flv`, no caching,
/// CORS open) and says how the body must be framed: chunked for HTTP/1.1,
/// close-delimited for HTTP/1.0; for a WebSocket upgrade, the `101` head and
/// WebSocket messages.
pub fn write_flv_head(ctx: &ResponseContext, out: &mut BytesMut) -> BodyFraming {
    if let Some(accept) = &ctx.websocket {
        write_switching_protocols(accept, out);
        return BodyFraming::WebSocket;
    }
    status_line(ctx.version, 200, out);
    header("Content-Type", "video/x-flv", out);
    header("Access-Control-Allow-Origin", "*", out);
    header("Cache-Control", "no-cache", out);
    let framing = streamed_framing(ctx, out);
    end_head(ctx, framing, out)
}

/// Longest chunk-size line [`write_chunk_size_line`] writes: 8 hex digits + CRLF.
pub const CHUNK_SIZE_LINE_MAX: usize = 10;
/// What follows each chunk's data.
pub const CHUNK_END: &[u8; 2] = b"\r\n";
/// The zero-length chunk (with empty trailer) that ends a chunked body.
pub const LAST_CHUNK: &[u8; 5] = b"0\r\n\r\n";

/// Writes the chunk-size line for a `len`-byte chunk (`{hex}\r\n`) at the start
/// of `out` and returns its length. Allocation-free: meant for per-viewer scratch.
#[inline]
pub fn write_chunk_size_line(len: u32, out: &mut [u8; CHUNK_SIZE_LINE_MAX]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = ((32 - len.leading_zeros() as usize).div_ceil(4)).max(1);
    let mut n = len;
    for slot in out.iter_mut().take(digits).rev() {
        *slot = HEX.get((n & 0xF) as usize).copied().unwrap_or(b'0');
        n >>= 4;
    }
    if let Some(crlf) = out.get_mut(digits..digits + 2) {
        crlf.copy_from_slice(CHUNK_END);
    }
    digits + 2
}

/// Canonical reason phrase for the statuses ringcast sends.
pub const fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        206 => "Partial Content",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Writes a complete response with a `Content-Length` body (omitted for HEAD)
/// and any `extra` headers.
pub fn write_response(
    ctx: &ResponseContext,
    status: u16,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
    out: &mut BytesMut,
) {
    out.reserve(160 + body.len());
    status_line(ctx.version, status, out);
    header("Server", SERVER, out);
    header("Content-Type", content_type, out);
    header("Access-Control-Allow-Origin", "*", out);
    for (name, value) in extra {
        header(name, value, out);
    }
    out.put_slice(b"Content-Length: ");
    put_decimal(body.len() as u64, out);
    out.put_slice(b"\r\n");
    connection_header(ctx, out);
    out.put_slice(b"\r\n");
    if !ctx.head_only {
        out.put_slice(body);
    }
}

/// Writes the head of a response whose body the caller sends itself (shared
/// pieces, written after the head without a copy): `Content-Length: len`, or
/// with `len` `None` a streamed body, chunked for HTTP/1.1 and
/// close-delimited for HTTP/1.0. CORS is open and `Content-Length` exposed.
/// Returns how the body must be framed ([`BodyFraming::None`] for HEAD).
pub fn write_body_head(
    ctx: &ResponseContext,
    status: u16,
    content_type: &str,
    len: Option<u64>,
    extra: &[(&str, &str)],
    out: &mut BytesMut,
) -> BodyFraming {
    out.reserve(256);
    status_line(ctx.version, status, out);
    header("Server", SERVER, out);
    header("Content-Type", content_type, out);
    header("Access-Control-Allow-Origin", "*", out);
    header(
        "Access-Control-Expose-Headers",
        "Content-Length, Age, Date",
        out,
    );
    for (name, value) in extra {
        header(name, value, out);
    }
    let framing = match len {
        Some(n) => {
            out.put_slice(b"Content-Length: ");
            put_decimal(n, out);
            out.put_slice(b"\r\n");
            connection_header(ctx, out);
            BodyFraming::None
        }
        None => streamed_framing(ctx, out),
    };
    end_head(ctx, framing, out)
}

/// The framing header lines of a body whose length is not known: chunked for
/// HTTP/1.1 (kept alive unless the request said otherwise), close-delimited
/// for HTTP/1.0.
fn streamed_framing(ctx: &ResponseContext, out: &mut BytesMut) -> BodyFraming {
    match ctx.version {
        Version::Http11 => {
            header("Transfer-Encoding", "chunked", out);
            connection_header(ctx, out);
            BodyFraming::Chunked
        }
        Version::Http10 => {
            header("Connection", "close", out);
            BodyFraming::CloseDelimited
        }
    }
}

/// Ends a head; a HEAD request gets no body whatever `framing` says.
fn end_head(ctx: &ResponseContext, framing: BodyFraming, out: &mut BytesMut) -> BodyFraming {
    out.put_slice(b"\r\n");
    if ctx.head_only {
        BodyFraming::None
    } else {
        framing
    }
}

/// Writes an error (or other bodiless-status) response with a one-line plain text
/// body such as `404 Not Found`.
pub fn write_error(ctx: &ResponseContext, status: u16, out: &mut BytesMut) {
    write_error_with(ctx, status, &[], out);
}

/// As [`write_error`], with `extra` headers (e.g. `Sec-WebSocket-Version` on a 426).
pub fn write_error_with(
    ctx: &ResponseContext,
    status: u16,
    extra: &[(&str, &str)],
    out: &mut BytesMut,
) {
    let mut body = [0u8; 64];
    let len = short_status_body(status, &mut body);
    write_response(
        ctx,
        status,
        "text/plain; charset=utf-8",
        body.get(..len).unwrap_or_default(),
        extra,
        out,
    );
}

/// Writes a 405 listing the methods the resource does allow (e.g. `"GET, HEAD"`).
pub fn write_method_not_allowed(ctx: &ResponseContext, allow: &str, out: &mut BytesMut) {
    let mut body = [0u8; 64];
    let len = short_status_body(405, &mut body);
    write_response(
        ctx,
        405,
        "text/plain; charset=utf-8",
        body.get(..len).unwrap_or_default(),
        &[("Allow", allow)],
        out,
    );
}

/// Writes a 200 with a JSON body.
pub fn write_json(ctx: &ResponseContext, body: &[u8], out: &mut BytesMut) {
    write_response(
        ctx,
        200,
        "application/json",
        body,
        &[("Cache-Control", "no-cache")],
        out,
    );
}

/// Writes a 200 with an HTML body.
pub fn write_html(ctx: &ResponseContext, body: &[u8], out: &mut BytesMut) {
    write_response(ctx, 200, "text/html; charset=utf-8", body, &[], out);
}

/// Writes the 204 answer to an `OPTIONS` (CORS preflight) request, allowing
/// `allow` methods from any origin.
pub fn write_options(ctx: &ResponseContext, allow: &str, out: &mut BytesMut) {
    status_line(ctx.version, 204, out);
    header("Server", SERVER, out);
    header("Allow", allow, out);
    header("Access-Control-Allow-Origin", "*", out);
    header("Access-Control-Allow-Methods", allow, out);
    header("Access-Control-Allow-Headers", "*", out);
    header("Access-Control-Max-Age", "86400", out);
    connection_header(ctx, out);
    out.put_slice(b"\r\n");
}

fn status_line(version: Version, status: u16, out: &mut BytesMut) {
    out.put_slice(version.as_str().as_bytes());
    out.put_u8(b' ');
    put_decimal(u64::from(status), out);
    out.put_u8(b' ');
    out.put_slice(reason_phrase(status).as_bytes());
    out.put_slice(b"\r\n");
}

fn header(name: &str, value: &str, out: &mut BytesMut) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

/// HTTP/1.1 persists by default and HTTP/1.0 closes by default, so only the
/// non-default choice is spelled out.
fn connection_header(ctx: &ResponseContext, out: &mut BytesMut) {
    match (ctx.version, ctx.keep_alive) {
        (Version::Http11, false) => header("Connection", "close", out),
        (Version::Http10, true) => header("Connection", "keep-alive", out),
        _ => {}
    }
}

fn put_decimal(n: u64, out: &mut BytesMut) {
    // BytesMut grows as needed, so formatting into it cannot fail.
    let _ = write!(out, "{n}");
}

/// `"{status} {reason}\n"` into `buf`; returns its length.
fn short_status_body(status: u16, buf: &mut [u8; 64]) -> usize {
    let mut w = &mut buf[..];
    let before = w.len();
    // A u16 and the longest reason phrase (31 bytes) fit in 64 bytes.
    let _ = std::io::Write::write_fmt(&mut w, format_args!("{status} {}\n", reason_phrase(status)));
    before - w.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::request::{Parsed, RequestParser};

    const V11: ResponseContext = ResponseContext {
        version: Version::Http11,
        keep_alive: true,
        head_only: false,
        websocket: None,
    };
    const V10: ResponseContext = ResponseContext {
        version: Version::Http10,
        keep_alive: false,
        head_only: false,
        websocket: None,
    };

    fn text(b: &BytesMut) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    /// Parses a response head with httparse: (status, headers, body).
    fn parse_response(b: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut hs = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut hs);
        let n = match r.parse(b).unwrap() {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("partial response head"),
        };
        let headers = r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8(h.value.to_vec()).unwrap(),
                )
            })
            .collect();
        (r.code.unwrap(), headers, b[n..].to_vec())
    }

    fn get<'a>(hs: &'a [(String, String)], name: &str) -> Option<&'a str> {
        hs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn flv_head_http11_is_chunked() {
        let mut out = BytesMut::new();
        assert_eq!(write_flv_head(&V11, &mut out), BodyFraming::Chunked);
        let (status, hs, body) = parse_response(&out);
        assert_eq!(status, 200);
        assert_eq!(get(&hs, "content-type"), Some("video/x-flv"));
        assert_eq!(get(&hs, "transfer-encoding"), Some("chunked"));
        assert_eq!(get(&hs, "access-control-allow-origin"), Some("*"));
        assert_eq!(get(&hs, "cache-control"), Some("no-cache"));
        assert!(body.is_empty());
    }

    #[test]
    fn flv_head_http10_closes_and_head_has_no_body() {
        let mut out = BytesMut::new();
        assert_eq!(write_flv_head(&V10, &mut out), BodyFraming::CloseDelimited);
        assert!(text(&out).starts_with("HTTP/1.0 200 OK\r\n"));
        let (_, hs, _) = parse_response(&out);
        assert_eq!(get(&hs, "connection"), Some("close"));
        assert_eq!(get(&hs, "transfer-encoding"), None);
        let head = ResponseContext {
            head_only: true,
            ..V11
        };
        assert_eq!(
            write_flv_head(&head, &mut BytesMut::new()),
            BodyFraming::None
        );
    }

    #[test]
    fn body_heads_frame_by_length_or_chunks() {
        let mut out = BytesMut::new();
        let f = write_body_head(
            &V11,
            200,
            "video/mp2t",
            Some(1234),
            &[("Cache-Control", "max-age=1")],
            &mut out,
        );
        assert_eq!(f, BodyFraming::None, "a sized body follows as is");
        let (code, hs, body) = parse_response(&out);
        assert_eq!(code, 200);
        assert_eq!(get(&hs, "content-length"), Some("1234"));
        assert_eq!(get(&hs, "cache-control"), Some("max-age=1"));
        assert_eq!(get(&hs, "access-control-allow-origin"), Some("*"));
        assert!(get(&hs, "access-control-expose-headers")
            .unwrap()
            .contains("Content-Length"));
        assert!(body.is_empty());
        let mut out = BytesMut::new();
        assert_eq!(
            write_body_head(&V11, 200, "video/iso.segment", None, &[], &mut out),
            BodyFraming::Chunked
        );
        assert_eq!(
            get(&parse_response(&out).1, "transfer-encoding"),
            Some("chunked")
        );
        let mut out = BytesMut::new();
        assert_eq!(
            write_body_head(&V10, 200, "video/iso.segment", None, &[], &mut out),
            BodyFraming::CloseDelimited
        );
        let head = ResponseContext {
            head_only: true,
            ..V11
        };
        assert_eq!(
            write_body_head(&head, 200, "x", None, &[], &mut BytesMut::new()),
            BodyFraming::None
        );
    }

    #[test]
    fn chunk_size_lines() {
        let mut b = [0u8; CHUNK_SIZE_LINE_MAX];
        for (len, want) in [
            (0, "0\r\n"),
            (1, "1\r\n"),
            (15, "f\r\n"),
            (16, "10\r\n"),
            (4111, "100f\r\n"),
            (u32::MAX, "ffffffff\r\n"),
        ] {
            let n = write_chunk_size_line(len, &mut b);
            assert_eq!(std::str::from_utf8(&b[..n]).unwrap(), want);
        }
    }

    #[test]
    fn error_responses_have_short_bodies() {
        for status in [400u16, 403, 404, 405, 414, 431, 503] {
            let mut out = BytesMut::new();
            write_error(&V11, status, &mut out);
            let (code, hs, body) = parse_response(&out);
            assert_eq!(code, status);
            let want = format!("{status} {}\n", reason_phrase(status));
            assert_eq!(body, want.as_bytes());
            assert_eq!(
                get(&hs, "content-length"),
                Some(want.len().to_string().as_str())
            );
        }
    }

    #[test]
    fn method_not_allowed_lists_allow() {
        let mut out = BytesMut::new();
        write_method_not_allowed(&V11, "GET, HEAD", &mut out);
        let (code, hs, _) = parse_response(&out);
        assert_eq!(code, 405);
        assert_eq!(get(&hs, "allow"), Some("GET, HEAD"));
    }

    #[test]
    fn json_html_and_head_requests() {
        let mut out = BytesMut::new();
        write_json(&V11, b"{\"ok\":true}", &mut out);
        let (code, hs, body) = parse_response(&out);
        assert_eq!((code, body.as_slice()), (200, &b"{\"ok\":true}"[..]));
        assert_eq!(get(&hs, "content-type"), Some("application/json"));

        let mut out = BytesMut::new();
        let head = ResponseContext {
            head_only: true,
            ..V11
        };
        write_html(&head, b"<p>hi</p>", &mut out);
        let (_, hs, body) = parse_response(&out);
        assert_eq!(get(&hs, "content-length"), Some("9"));
        assert!(body.is_empty());

        let mut out = BytesMut::new();
        write_json(
            &ResponseContext {
                keep_alive: false,
                ..V11
            },
            b"[]",
            &mut out,
        );
        assert_eq!(get(&parse_response(&out).1, "connection"), Some("close"));
        let mut out = BytesMut::new();
        write_json(
            &ResponseContext {
                keep_alive: true,
                ..V10
            },
            b"[]",
            &mut out,
        );
        assert_eq!(
            get(&parse_response(&out).1, "connection"),
            Some("keep-alive")
        );
    }

    #[test]
    fn options_preflight() {
        let mut out = BytesMut::new();
        write_options(&V11, "GET, DELETE, OPTIONS", &mut out);
        let (code, hs, body) = parse_response(&out);
        assert_eq!(code, 204);
        assert_eq!(
            get(&hs, "access-control-allow-methods"),
            Some("GET, DELETE, OPTIONS")
        );
        assert_eq!(get(&hs, "access-control-allow-origin"), Some("*"));
        assert!(body.is_empty());
    }

    #[test]
    fn context_follows_request() {
        let parser = RequestParser::default();
        let Ok(Parsed::Complete(req)) = parser.parse(b"HEAD /live/a.flv HTTP/1.0\r\n\r\n") else {
            panic!("parse failed")
        };
        let ctx = ResponseContext::for_request(&req);
        assert_eq!(
            ctx,
            ResponseContext {
                version: Version::Http10,
                keep_alive: false,
                head_only: true,
                websocket: None,
            }
        );
    }
}
