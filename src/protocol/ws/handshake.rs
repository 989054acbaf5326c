//! The opening handshake (RFC 6455 §4.2): is a request a WebSocket upgrade, is it
//! a valid one, and the `101 Switching Protocols` answer.

use base64::Engine as _;
use bytes::{BufMut, BytesMut};
use sha1::{Digest, Sha1};

use crate::protocol::http::request::{Method, Request, Version};

/// The GUID appended to the client's key before hashing (RFC 6455 §1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version spoken.
pub const VERSION: &str = "13";

/// A `Sec-WebSocket-Accept` value: base64 of a 20-byte SHA-1, always 28 ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WsAccept([u8; 28]);

impl WsAccept {
    /// The accept value for a client's `Sec-WebSocket-Key` (as sent, trimmed).
    pub fn for_key(key: &str) -> WsAccept {
        let mut sha = Sha1::new();
        sha.update(key.trim().as_bytes());
        sha.update(GUID);
        let digest = sha.finalize();
        let mut out = [0u8; 28];
        // 20 bytes encode to exactly 28 base64 characters (with one `=`).
        let _ = base64::engine::general_purpose::STANDARD.encode_slice(digest, &mut out);
        WsAccept(out)
    }

    /// The value as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for WsAccept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WsAccept").field(&self.as_str()).finish()
    }
}

/// Why an upgrade request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// Only GET may be upgraded.
    #[error("WebSocket upgrade with a method other than GET")]
    NotGet,
    /// WebSocket needs HTTP/1.1.
    #[error("WebSocket upgrade over HTTP/1.0")]
    Http10,
    /// `Connection` does not list `upgrade`.
    #[error("WebSocket upgrade without `Connection: Upgrade`")]
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Key` missing, or not base64 of 16 bytes.
    #[error("missing or invalid Sec-WebSocket-Key")]
    BadKey,
    /// `Sec-WebSocket-Version` missing.
    #[error("missing Sec-WebSocket-Version")]
    NoVersion,
    /// A `Sec-WebSocket-Version` other than 13.
    #[error("unsupported Sec-WebSocket-Version (only 13)")]
    BadVersion,
}

impl HandshakeError {
    /// The HTTP status to answer with: 426 (with `Sec-WebSocket-Version: 13`, see
    /// [`HandshakeError::headers`]) for a version we do not speak, 400 otherwise.
    pub fn status(self) -> u16 {
        match self {
            HandshakeError::BadVersion => 426,
            _ => 400,
        }
    }

    /// Headers the refusal carries.
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            HandshakeError::BadVersion => &[("Sec-WebSocket-Version", VERSION)],
            _ => &[],
        }
    }
}

/// Whether a comma-separated header value lists `token` (ASCII case-insensitive).
fn lists(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether any header line named `name` lists `token`.
fn any_lists(req: &Request, name: &str, token: &str) -> bool {
    req.headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case(name) && lists(v, token))
}

/// `Ok(None)`: not a WebSocket upgrade (no `Upgrade: websocket`), serve as plain
/// HTTP. `Ok(Some(accept))`: a valid upgrade, answer with
/// [`write_switching_protocols`]. `Err`: an upgrade that must be refused.
pub fn upgrade_request(req: &Request) -> Result<Option<WsAccept>, HandshakeError> {
    if !any_lists(req, "upgrade", "websocket") {
        return Ok(None);
    }
    if req.method != Method::Get {
        return Err(HandshakeError::NotGet);
    }
    if req.version != Version::Http11 {
        return Err(HandshakeError::Http10);
    }
    if !any_lists(req, "connection", "upgrade") {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    match req.header("sec-websocket-version").map(str::trim) {
        None => return Err(HandshakeError::NoVersion),
        Some(VERSION) => {}
        Some(_) => return Err(HandshakeError::BadVersion),
    }
    let key = req
        .header("sec-websocket-key")
        .map(str::trim)
        .ok_or(HandshakeError::BadKey)?;
    // The key is base64 of 16 random bytes (RFC 6455 §4.1): 24 characters.
    let mut nonce = [0u8; 18];
    match base64::engine::general_purpose::STANDARD.decode_slice(key, &mut nonce) {
        Ok(16) => Ok(Some(WsAccept::for_key(key))),
        _ => Err(HandshakeError::BadKey),
    }
}

/// Writes the `101 Switching Protocols` head accepting the upgrade.
pub fn write_switching_protocols(accept: &WsAccept, out: &mut BytesMut) {
    out.put_slice(b"HTTP/1.1 101 Switching Protocols\r\nServer: ringcast\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
    out.put_slice(accept.as_str().as_bytes());
    out.put_slice(b"\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::request::{Parsed, RequestParser};

    fn parse(head: &str) -> Request {
        match RequestParser::default().parse(head.as_bytes()).unwrap() {
            Parsed::Complete(req) => req,
            Parsed::Partial => panic!("partial"),
        }
    }

    const GOOD: &str = "GET /live/a.flv HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn the_rfc_sample_key_gives_the_rfc_accept() {
        // RFC 6455 §1.3.
        let accept = upgrade_request(&parse(GOOD)).unwrap().unwrap();
        assert_eq!(accept.as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let mut out = BytesMut::new();
        write_switching_protocols(&accept, &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn plain_requests_are_not_upgrades() {
        let req = parse("GET /live/a.flv HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(upgrade_request(&req), Ok(None));
        let h2c = parse("GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n");
        assert_eq!(upgrade_request(&h2c), Ok(None));
    }

    #[test]
    fn bad_upgrades_are_refused_with_their_status() {
        let cases = [
            (GOOD.replace("GET", "HEAD"), HandshakeError::NotGet, 400),
            (
                GOOD.replace("HTTP/1.1", "HTTP/1.0"),
                HandshakeError::Http10,
                400,
            ),
            (
                GOOD.replace("keep-alive, Upgrade", "keep-alive"),
                HandshakeError::NoConnectionUpgrade,
                400,
            ),
            (
                GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "not base64!"),
                HandshakeError::BadKey,
                400,
            ),
            (
                GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
                HandshakeError::BadKey,
                400,
            ),
            (
                GOOD.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
                HandshakeError::BadKey,
                400,
            ),
            (
                GOOD.replace("Sec-WebSocket-Version: 13\r\n", ""),
                HandshakeError::NoVersion,
                400,
            ),
            (
                GOOD.replace("Version: 13", "Version: 8"),
                HandshakeError::BadVersion,
                426,
            ),
        ];
        for (head, err, status) in cases {
            assert_eq!(upgrade_request(&parse(&head)), Err(err), "{head}");
            assert_eq!(err.status(), status);
        }
        assert_eq!(
            HandshakeError::BadVersion.headers(),
            &[("Sec-WebSocket-Version", "13")]
        );
    }
}
