//! Test helpers that need nothing but `std`, so that every package's
//! integration tests can share them: ringcast's `tests/common` declares this
//! module, and loadgen's `tests/common` includes this file by `#[path]` (a
//! crate boundary a plain module cannot cross otherwise).

#![allow(dead_code)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A free loopback TCP port (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `condition` every 50 ms until it holds; panics naming `what` if it
/// still does not after `limit`. Limits are generous (tens of seconds): a loaded
/// machine makes a test slower, never red.
pub fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (status, body) of a whole HTTP/1.0 response as read to EOF; status 0 when
/// there is no status line.
pub fn parse_http_response(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Why an HTTP exchange ([`http_exchange`]) got no response at all.
#[derive(Debug)]
pub enum HttpError {
    /// The TCP connection could not be opened.
    Connect(std::io::Error),
    /// Not a byte of response arrived: `write` is the error writing the request
    /// met (None: it was all written), `read` the one reading met (None: the
    /// server closed without a word).
    NoResponse {
        /// The error writing the request, if any.
        write: Option<std::io::Error>,
        /// The error reading the response, if any.
        read: Option<std::io::Error>,
    },
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Connect(e) => write!(f, "connect: {e}"),
            HttpError::NoResponse { write, read } => {
                write!(f, "no response")?;
                if let Some(e) = write {
                    write!(f, " (writing the request: {e})")?;
                }
                if let Some(e) = read {
                    write!(f, " (reading: {e})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for HttpError {}

/// Opens a connection to `127.0.0.1:port`, writes `request` in one piece and
/// reads the response until the server closes (or `read_timeout` passes with
/// nothing more). A server may answer before the request is all in (a 400 on
/// bad input) and close: the write then fails with EPIPE or ECONNRESET, but
/// what it answered is still read and returned. Only when no byte at all came
/// back is the result an error, carrying what the write and the read met.
pub fn http_exchange(
    port: u16,
    request: &[u8],
    read_timeout: Duration,
) -> Result<Vec<u8>, HttpError> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(HttpError::Connect)?;
    s.set_read_timeout(Some(read_timeout))
        .map_err(HttpError::Connect)?;
    let write = s.write_all(request).err();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let read = loop {
        match s.read(&mut chunk) {
            Ok(0) => break None,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A reset after the answer (the server closed with our request
            // unread) ends the response like a close does.
            Err(e) => break Some(e),
        }
    };
    if raw.is_empty() {
        return Err(HttpError::NoResponse { write, read });
    }
    Ok(raw)
}

/// A bare HTTP/1.0 request; returns (status, body). Status 0 means no
/// response arrived at all; the body then says why (see [`try_http_request`]),
/// so an assertion on the status fails with the reason in its message.
pub fn http_request(port: u16, method: &str, path: &str) -> (u16, String) {
    try_http_request(port, method, path).unwrap_or_else(|e| (0, e.to_string()))
}

/// A bare HTTP/1.0 request; (status, body) of whatever response arrived, even
/// when the server answered early and closed while the request was being
/// written; [`HttpError`] when nothing arrived.
pub fn try_http_request(port: u16, method: &str, path: &str) -> Result<(u16, String), HttpError> {
    let request = format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let raw = http_exchange(port, request.as_bytes(), Duration::from_secs(15))?;
    Ok(parse_http_response(&raw))
}
