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
