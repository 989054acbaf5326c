//! One server-side HTTP/1.1 connection's request state, sans-IO: the bytes of
//! the request head being received, whether a response holds the connection
//! (a held or streaming HTTP-FLV viewer: further input is ignored), and its
//! deadlines, quinn-proto style ([`HttpConnection::poll_timeout`] /
//! [`HttpConnection::handle_timeout`]).
//!
//! Keep-alive and pipelining: requests are taken one at a time, in order. A
//! request answered later (a blocking playlist reload) *parks* the
//! connection: pipelined bytes keep being buffered (bounded) but no further
//! request is handed out until [`HttpConnection::answered`], so responses
//! leave in request order. At most `max_requests` requests are served per
//! connection ([`HttpConnection::is_last_request`]: answer it with
//! `Connection: close`).
//!
//! Deadlines: the first request head must be complete within the head timeout of
//! the connection's start (bytes trickling in do not extend it); after a
//! keep-alive response the next head within the idle timeout; after a final
//! response the send within the idle timeout. A held connection has none: its
//! wait or its stream bounds it.

use bytes::BytesMut;
use thiserror::Error;

use super::request::{Parsed, Request, RequestParser};
use super::HttpError;

/// Most bytes buffered while a request head is incomplete (the parser's head
/// limit decides; this only bounds what a client can make us hold).
pub const MAX_BUFFERED: usize = 16 << 10;

/// Deadlines of an HTTP connection, in ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// From the connection's start until its first request head is complete.
    pub head_ms: u64,
    /// Between a response and the next request head (or the end of the send).
    pub idle_ms: u64,
}

/// A deadline of the connection passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("{phase} timeout: nothing within {limit_ms} ms")]
pub struct HttpTimeout {
    /// What the connection waited for.
    pub phase: &'static str,
    /// The limit that passed, in ms.
    pub limit_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wait {
    phase: &'static str,
    since_ms: u64,
    limit_ms: u64,
}

/// One HTTP connection's request state.
#[derive(Debug)]
pub struct HttpConnection {
    buf: BytesMut,
    parser: RequestParser,
    timeouts: HttpTimeouts,
    /// `None` while a response holds or parks the connection.
    wait: Option<Wait>,
    /// A request is being answered later; its successors wait in `buf`.
    parked: bool,
    /// When the holder of a parked request must answer it (its own deadline,
    /// e.g. a blocking reload's 503), if it gave one.
    parked_until: Option<u64>,
    /// Requests handed out so far.
    requests: u32,
    /// Most requests served on the connection.
    max_requests: u32,
    /// Input was dropped at the [`MAX_BUFFERED`] bound after a complete
    /// request (pipelined requests piling up behind a held one): the rest of
    /// the stream cannot be parsed any more.
    overflowed: bool,
}

impl HttpConnection {
    /// A connection accepted at `now_ms`, waiting for its first request head.
    pub fn new(parser: RequestParser, timeouts: HttpTimeouts, now_ms: u64) -> Self {
        let wait = Wait {
            phase: "request head",
            since_ms: now_ms,
            limit_ms: timeouts.head_ms,
        };
        HttpConnection {
            buf: BytesMut::new(),
            parser,
            timeouts,
            wait: Some(wait),
            parked: false,
            parked_until: None,
            requests: 0,
            max_requests: u32::MAX,
            overflowed: false,
        }
    }

    /// At most `max` requests (at least 1) are served on this connection.
    pub fn with_max_requests(mut self, max: u32) -> Self {
        self.max_requests = max.max(1);
        self
    }

    /// True while a response holds the connection (input is ignored).
    pub fn is_held(&self) -> bool {
        self.wait.is_none() && !self.parked
    }

    /// True while a request is answered later (input is buffered, not parsed).
    pub fn is_parked(&self) -> bool {
        self.parked
    }

    /// The request last handed out is the connection's last one (its
    /// response must close the connection).
    pub fn is_last_request(&self) -> bool {
        self.requests >= self.max_requests
    }

    /// A complete request may be waiting in the buffer (call
    /// [`HttpConnection::next_request`] after a parked request is answered).
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Bytes from the client. Ignored while held; beyond [`MAX_BUFFERED`] only
    /// one more byte is kept, so the parser reports the head as too large.
    pub fn push(&mut self, data: &[u8]) {
        if self.is_held() {
            return;
        }
        let take = data
            .len()
            .min((MAX_BUFFERED + 1).saturating_sub(self.buf.len()));
        if take < data.len() {
            self.overflowed = true;
        }
        self.buf.extend_from_slice(data.get(..take).unwrap_or(data));
    }

    /// The next complete request head, consumed from the buffer; `Ok(None)` when
    /// more bytes are needed (or the connection is held). On error, answer with
    /// [`HttpError::status`] and close.
    pub fn next_request(&mut self) -> Result<Option<Request>, HttpError> {
        if self.is_held() || self.parked || self.requests >= self.max_requests {
            return Ok(None);
        }
        if self.overflowed && self.buf.len() > MAX_BUFFERED {
            // Bytes were dropped: whatever follows the complete requests
            // still buffered is cut, so refuse rather than misparse.
            return Err(HttpError::HeadTooLarge {
                len: self.buf.len(),
                limit: MAX_BUFFERED,
            });
        }
        match self.parser.parse(&self.buf)? {
            Parsed::Partial => Ok(None),
            Parsed::Complete(req) => {
                let consumed = req.head_len.min(self.buf.len());
                let _ = self.buf.split_to(consumed);
                self.requests = self.requests.saturating_add(1);
                Ok(Some(req))
            }
        }
    }

    /// The request just handed out is answered later: until
    /// [`HttpConnection::answered`], input is buffered (bounded) but no
    /// further request is handed out, and the connection has no deadline of
    /// its own (whoever holds the request bounds the wait).
    pub fn park(&mut self) {
        self.parked = true;
        self.wait = None;
    }

    /// The holder of the parked request answers it by `deadline_ms`:
    /// [`HttpConnection::poll_timeout`] includes it (so the caller's timer
    /// fires then) and [`HttpConnection::park_expired`] tells when it passed.
    /// It never closes the connection by itself.
    pub fn park_until(&mut self, deadline_ms: u64) {
        if self.parked {
            self.parked_until = Some(deadline_ms);
        }
    }

    /// The parked request's deadline passed: answer it now.
    pub fn park_expired(&self, now_ms: u64) -> bool {
        self.parked && self.parked_until.is_some_and(|d| now_ms >= d)
    }

    /// A response now holds the connection (a viewer waiting or streaming):
    /// further input is ignored and the connection has no deadline of its own.
    pub fn hold(&mut self) {
        self.wait = None;
        self.parked = false;
        self.parked_until = None;
        self.buf = BytesMut::new();
    }

    /// A complete response was queued at `now_ms`: with keep-alive the next
    /// request head is awaited, otherwise only the send.
    pub fn answered(&mut self, now_ms: u64, keep_alive: bool) {
        self.parked = false;
        self.parked_until = None;
        let phase = if keep_alive {
            "next request"
        } else {
            "response send"
        };
        self.wait = Some(Wait {
            phase,
            since_ms: now_ms,
            limit_ms: self.timeouts.idle_ms,
        });
    }

    /// When the connection next needs [`HttpConnection::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<u64> {
        let own = self.wait.map(|w| w.since_ms.saturating_add(w.limit_ms));
        match (own, self.parked_until.filter(|_| self.parked)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Checks the deadline at `now_ms`: an [`HttpTimeout`] once it passed; then
    /// the connection is closed (nothing is answered).
    pub fn handle_timeout(&mut self, now_ms: u64) -> Result<(), HttpTimeout> {
        let own = self.wait.map(|w| w.since_ms.saturating_add(w.limit_ms));
        match (self.wait, own) {
            (Some(w), Some(deadline)) if now_ms >= deadline => Err(HttpTimeout {
                phase: w.phase,
                limit_ms: w.limit_ms,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake clock: every instant is this base plus an offset.
    const BASE: u64 = 7_000_000;
    const T: HttpTimeouts = HttpTimeouts {
        head_ms: 10_000,
        idle_ms: 30_000,
    };

    fn conn() -> HttpConnection {
        HttpConnection::new(RequestParser::default(), T, BASE)
    }

    #[test]
    fn a_trickled_head_does_not_extend_the_head_deadline() {
        let mut c = conn();
        for (i, b) in b"GET /a HTTP/1.1\r\nHost: x\r\n".iter().enumerate() {
            c.push(std::slice::from_ref(b));
            assert_eq!(c.next_request(), Ok(None));
            assert_eq!(c.handle_timeout(BASE + i as u64 * 100), Ok(()));
        }
        assert_eq!(c.poll_timeout(), Some(BASE + 10_000));
        assert_eq!(c.handle_timeout(BASE + 9_999), Ok(()));
        assert_eq!(
            c.handle_timeout(BASE + 10_000),
            Err(HttpTimeout {
                phase: "request head",
                limit_ms: 10_000
            })
        );
    }

    #[test]
    fn keep_alive_waits_idle_for_the_next_request_and_holding_suspends() {
        let mut c = conn();
        c.push(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HT");
        let req = c.next_request().unwrap().unwrap();
        assert_eq!(req.path, "/a");
        assert_eq!(
            c.next_request(),
            Ok(None),
            "the pipelined request is still partial"
        );
        c.answered(BASE + 2_000, true);
        assert_eq!(c.poll_timeout(), Some(BASE + 32_000));
        assert_eq!(
            c.handle_timeout(BASE + 32_000),
            Err(HttpTimeout {
                phase: "next request",
                limit_ms: 30_000
            })
        );
        c.push(b"TP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(c.next_request().unwrap().unwrap().path, "/b");
        c.hold();
        assert!(c.is_held());
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.handle_timeout(u64::MAX), Ok(()));
        c.push(b"GET /c HTTP/1.1\r\n\r\n");
        assert_eq!(c.next_request(), Ok(None), "input is ignored while held");
        c.answered(BASE + 40_000, false);
        assert_eq!(
            c.handle_timeout(BASE + 70_000),
            Err(HttpTimeout {
                phase: "response send",
                limit_ms: 30_000
            })
        );
    }

    #[test]
    fn a_parked_request_holds_its_pipelined_successors_in_order() {
        let mut c = conn();
        c.push(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
        assert_eq!(c.next_request().unwrap().unwrap().path, "/a");
        c.park();
        assert!(c.is_parked() && !c.is_held());
        assert_eq!(c.poll_timeout(), None, "the waiter bounds a parked request");
        c.push(b"GET /c HTTP/1.1\r\n\r\n");
        assert_eq!(c.next_request(), Ok(None), "nothing while parked");
        c.park_until(BASE + 100);
        assert_eq!(c.poll_timeout(), Some(BASE + 100), "the holder's deadline");
        assert!(!c.park_expired(BASE + 99) && c.park_expired(BASE + 100));
        assert_eq!(
            c.handle_timeout(BASE + 500),
            Ok(()),
            "it never closes by itself"
        );
        c.answered(BASE + 5, true);
        assert!(!c.park_expired(BASE + 500));
        assert!(c.has_buffered());
        assert_eq!(c.next_request().unwrap().unwrap().path, "/b");
        c.answered(BASE + 6, true);
        assert_eq!(c.next_request().unwrap().unwrap().path, "/c");
        c.answered(BASE + 7, true);
        assert_eq!(c.next_request(), Ok(None));
        assert!(!c.has_buffered());
    }

    #[test]
    fn pipelined_input_past_the_bound_while_parked_is_refused_not_misparsed() {
        let mut c = conn();
        c.push(b"GET /a HTTP/1.1\r\n\r\n");
        assert!(c.next_request().unwrap().is_some());
        c.park();
        let one = b"GET /bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb HTTP/1.1\r\n\r\n";
        for _ in 0..(2 * MAX_BUFFERED / one.len()) {
            c.push(one);
        }
        c.answered(BASE, true);
        assert!(matches!(
            c.next_request(),
            Err(HttpError::HeadTooLarge { .. })
        ));
    }

    #[test]
    fn requests_per_connection_are_limited() {
        let mut c = conn().with_max_requests(2);
        c.push(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n");
        assert!(c.next_request().unwrap().is_some());
        assert!(!c.is_last_request());
        c.answered(BASE, true);
        assert!(c.next_request().unwrap().is_some());
        assert!(
            c.is_last_request(),
            "answer this one with Connection: close"
        );
        c.answered(BASE, false);
        assert_eq!(c.next_request(), Ok(None), "no third request");
    }

    #[test]
    fn buffering_is_bounded() {
        let mut c = conn();
        for _ in 0..100 {
            c.push(&[b'a'; 1024]);
        }
        assert!(c.buf.len() <= MAX_BUFFERED + 1);
        assert!(c.next_request().is_err());
    }
}
