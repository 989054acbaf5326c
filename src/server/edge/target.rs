//! Configured origins and relay targets, and the process's resolver thread.
//!
//! `getaddrinfo` blocks (for seconds when a DNS server is down), so no core
//! ever calls it: names are looked up by one `ringcast-dns` thread per
//! process, fed through a bounded queue, and each core picks the answers up
//! on its next turn. When to look up and which address to dial is decided by
//! the sans-IO [`AddrBook`].

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

use crate::edge::origin::Origin;
use crate::edge::resolve::{AddrBook, Dial, MAX_ADDRS};

/// Lookups queued for the resolver thread at most; past it a lookup counts as
/// failed (known addresses stay in use) and is tried again later.
pub const MAX_QUEUED_LOOKUPS: usize = 1024;

/// Where the resolver thread puts one answer: `None` until it finished.
type Answer = Arc<Mutex<Option<Vec<SocketAddr>>>>;

struct Request {
    host: String,
    port: u16,
    answer: Answer,
}

/// The resolver thread's queue, started on first use; `None` if the thread
/// could not be spawned (every lookup then fails).
fn resolver() -> Option<&'static SyncSender<Request>> {
    static QUEUE: OnceLock<Option<SyncSender<Request>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = sync_channel::<Request>(MAX_QUEUED_LOOKUPS);
            std::thread::Builder::new()
                .name("ringcast-dns".into())
                .spawn(move || {
                    for req in rx {
                        let found = lookup(&req.host, req.port);
                        tracing::debug!(host = %req.host, addrs = ?found, "origin name resolved");
                        *req.answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(found);
                    }
                })
                .map_err(|e| tracing::error!(error = %e, "cannot start the resolver thread"))
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Every address of `host:port` (blocking; resolver thread only).
fn lookup(host: &str, port: u16) -> Vec<SocketAddr> {
    match (host, port).to_socket_addrs() {
        Ok(addrs) => addrs.take(MAX_ADDRS).collect(),
        Err(e) => {
            tracing::warn!(host, error = %e, "origin name does not resolve");
            Vec::new()
        }
    }
}

/// One configured origin (or relay target) and its addresses.
#[derive(Clone, Debug)]
pub struct OriginTarget {
    /// The URL as configured.
    pub url: String,
    /// The parsed URL, `None` if it did not parse (every attempt on it fails).
    pub origin: Option<Origin>,
    book: AddrBook,
    /// The lookup in flight, if any.
    answer: Option<Answer>,
}

impl OriginTarget {
    /// The target for `url`. An IP literal is used as it is; a name is looked
    /// up by the resolver thread when a core first polls it.
    pub fn new(url: &str) -> OriginTarget {
        let origin = match Origin::parse(url) {
            Ok(o) => Some(o),
            Err(e) => {
                tracing::error!(url, error = %e, "unusable origin URL");
                None
            }
        };
        let book = match origin
            .as_ref()
            .and_then(|o| Some(SocketAddr::new(o.host.parse::<IpAddr>().ok()?, o.port)))
        {
            Some(addr) => AddrBook::literal(addr),
            None => AddrBook::name(),
        };
        OriginTarget {
            url: url.to_owned(),
            origin,
            book,
            answer: None,
        }
    }

    /// Picks up a finished lookup and starts one when due (every 30 s, and
    /// after a failed connection). Never blocks.
    pub fn poll(&mut self, now_ms: u64) {
        let Some(origin) = &self.origin else {
            return;
        };
        if let Some(answer) = &self.answer {
            let done = answer.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(addrs) = done {
                self.answer = None;
                self.book.lookup_finished(&addrs, now_ms);
            }
        }
        if !self.book.wants_lookup(now_ms) {
            return;
        }
        let answer: Answer = Default::default();
        let request = Request {
            host: origin.host.clone(),
            port: origin.port,
            answer: answer.clone(),
        };
        self.book.lookup_started(now_ms);
        match resolver().map(|q| q.try_send(request)) {
            Some(Ok(())) => self.answer = Some(answer),
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => {
                self.book.lookup_finished(&[], now_ms);
            }
        }
    }

    /// Where to connect now (call [`OriginTarget::poll`] first in the turn).
    pub fn dial(&self, now_ms: u64) -> Dial {
        if self.origin.is_none() {
            return Dial::Fail("unusable URL");
        }
        self.book.dial(now_ms)
    }

    /// Polls, then the address to connect to now: `Err` while a lookup is in
    /// flight or when the name has no address (the caller retries later).
    pub fn address(&mut self, now_ms: u64) -> Result<SocketAddr, &'static str> {
        self.poll(now_ms);
        match self.dial(now_ms) {
            Dial::To(addr) => Ok(addr),
            Dial::Wait => Err("host name lookup in progress"),
            Dial::Fail(why) => Err(why),
        }
    }

    /// A connection to the address last dialled failed: the next one looks
    /// the name up again first and moves on to the name's next address.
    pub fn connect_failed(&mut self) {
        self.book.dial_failed();
    }

    /// The addresses known now.
    pub fn addrs(&self) -> &[SocketAddr] {
        self.book.addrs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn literals_need_no_lookup_and_bad_urls_fail() {
        let mut t = OriginTarget::new("rtmp://127.0.0.1:19350/live");
        assert_eq!(t.address(0), Ok("127.0.0.1:19350".parse().unwrap()));
        let mut t = OriginTarget::new("http://[::1]:8080");
        assert_eq!(t.address(0), Ok("[::1]:8080".parse().unwrap()));
        let mut bad = OriginTarget::new("rtmp://h:0/live");
        assert!(bad.origin.is_none(), "port 0 is refused");
        assert_eq!(bad.address(0), Err("unusable URL"));
    }

    #[test]
    fn names_are_resolved_on_the_resolver_thread() {
        let mut target = OriginTarget::new("rtmp://localhost:19350/live");
        assert!(target.addrs().is_empty(), "nothing looked up on creation");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut now = 0;
        let addr = loop {
            match target.address(now) {
                Ok(addr) => break addr,
                Err(e) => assert!(Instant::now() < deadline, "lookup never finished: {e}"),
            }
            std::thread::sleep(Duration::from_millis(5));
            now += 1;
        };
        assert_eq!(addr.port(), 19350);
        assert!(addr.ip().is_loopback());
        let thread_named = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .any(|name| name.trim() == "ringcast-dns");
        assert!(thread_named, "looked up by the resolver thread");
    }
}
