//! When an origin's host name is looked up again, and which address to dial.
//!
//! Sans-IO: the caller runs the lookups (off the core: `getaddrinfo` blocks)
//! and feeds their answers and the time in. A name is looked up again at
//! least every [`REFRESH_MS`] and after every failed connection, so an origin
//! behind a Kubernetes Service or a DNS failover is followed; a connect after
//! a failure waits up to [`LOOKUP_WAIT_MS`] for that fresh answer, then dials
//! the last known address rather than not at all. Failed connections also
//! move on to the name's next address, so a name with an address nobody
//! listens on (`localhost` → `::1` for an IPv4-only origin) still works.

use std::net::SocketAddr;

/// Longest an answer is trusted.
pub const REFRESH_MS: u64 = 30_000;
/// Longest a connect waits for a lookup in flight before using older addresses.
pub const LOOKUP_WAIT_MS: u64 = 2_000;
/// Most addresses kept per name.
pub const MAX_ADDRS: usize = 8;

/// What to do about a connect now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dial {
    /// Connect to this address.
    To(SocketAddr),
    /// A lookup is in flight: ask again on a later turn.
    Wait,
    /// Nothing to dial: the name has no known address.
    Fail(&'static str),
}

/// The addresses of one origin host and the state of its lookups.
#[derive(Clone, Debug)]
pub struct AddrBook {
    /// An IP literal: never looked up.
    literal: bool,
    addrs: Vec<SocketAddr>,
    /// Index (modulo `addrs.len()`) of the address to dial next.
    next: usize,
    /// The last answer is trusted until then; `None` before the first answer.
    fresh_until: Option<u64>,
    /// A connection failed since the last answer: look up before dialling again.
    need_fresh: bool,
    /// When the lookup in flight started.
    pending_since: Option<u64>,
}

impl AddrBook {
    /// An IP literal: always dials `addr`, never looks anything up.
    pub fn literal(addr: SocketAddr) -> Self {
        AddrBook {
            literal: true,
            addrs: vec![addr],
            next: 0,
            fresh_until: None,
            need_fresh: false,
            pending_since: None,
        }
    }

    /// A host name not looked up yet.
    pub fn name() -> Self {
        AddrBook {
            literal: false,
            addrs: Vec::new(),
            next: 0,
            fresh_until: None,
            need_fresh: false,
            pending_since: None,
        }
    }

    /// True when a lookup should start now: none is in flight and the last
    /// answer is missing, older than [`REFRESH_MS`] or predates a failure.
    pub fn wants_lookup(&self, now_ms: u64) -> bool {
        !self.literal
            && self.pending_since.is_none()
            && (self.need_fresh || self.fresh_until.is_none_or(|t| now_ms >= t))
    }

    /// The caller started a lookup.
    pub fn lookup_started(&mut self, now_ms: u64) {
        self.pending_since = Some(now_ms);
    }

    /// A lookup answered. An empty answer (the lookup failed) keeps the
    /// addresses known so far: a DNS outage must not cut a working origin.
    pub fn lookup_finished(&mut self, addrs: &[SocketAddr], now_ms: u64) {
        self.pending_since = None;
        self.need_fresh = false;
        self.fresh_until = Some(now_ms + REFRESH_MS);
        if !addrs.is_empty() {
            let keep = addrs.len().min(MAX_ADDRS);
            if self.addrs.get(..keep) != addrs.get(..keep) {
                // A different answer: start from its first address.
                self.next = 0;
            }
            self.addrs = addrs.iter().take(keep).copied().collect();
        }
    }

    /// Where to connect now.
    pub fn dial(&self, now_ms: u64) -> Dial {
        let current = match self.addrs.len() {
            0 => None,
            n => self.addrs.get(self.next % n).copied(),
        };
        let fresh =
            self.literal || (!self.need_fresh && self.fresh_until.is_some_and(|t| now_ms < t));
        let waiting = self
            .pending_since
            .is_some_and(|since| now_ms < since + LOOKUP_WAIT_MS);
        match current {
            Some(addr) if fresh || !waiting => Dial::To(addr),
            _ if waiting => Dial::Wait,
            Some(addr) => Dial::To(addr),
            None if self.pending_since.is_some() => Dial::Fail("host name lookup is slow"),
            None => Dial::Fail("host name does not resolve"),
        }
    }

    /// The connection to the address last dialled failed: the next connect
    /// goes to the next address, after a fresh lookup.
    pub fn dial_failed(&mut self) {
        self.next = self.next.wrapping_add(1);
        self.need_fresh = !self.literal;
    }

    /// Every address known now, in dialling order from the first.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A resolver under the test's control: answers what `records` says at
    /// the time the lookup finishes, `delay_ms` after it started.
    struct FakeDns {
        records: HashMap<&'static str, Vec<SocketAddr>>,
        delay_ms: u64,
        lookups: usize,
        in_flight: Option<u64>,
    }

    impl FakeDns {
        fn new(host: &'static str, addrs: &[&str]) -> Self {
            let mut dns = FakeDns {
                records: HashMap::new(),
                delay_ms: 5,
                lookups: 0,
                in_flight: None,
            };
            dns.set(host, addrs);
            dns
        }

        fn set(&mut self, host: &'static str, addrs: &[&str]) {
            let addrs = addrs.iter().map(|a| a.parse().unwrap()).collect();
            self.records.insert(host, addrs);
        }

        /// One core turn at `now`: start a wanted lookup, deliver a finished one.
        fn turn(&mut self, book: &mut AddrBook, host: &str, now: u64) {
            if book.wants_lookup(now) {
                book.lookup_started(now);
                self.lookups += 1;
                self.in_flight = Some(now);
            }
            if let Some(started) = self.in_flight {
                if now >= started + self.delay_ms {
                    self.in_flight = None;
                    let answer = self.records.get(host).cloned().unwrap_or_default();
                    book.lookup_finished(&answer, now);
                }
            }
        }

        /// Runs turns every ms from `now` until `dial` is not `Wait`.
        fn dial(&mut self, book: &mut AddrBook, host: &str, now: &mut u64) -> Dial {
            loop {
                self.turn(book, host, *now);
                match book.dial(*now) {
                    Dial::Wait => *now += 1,
                    d => return d,
                }
                assert!(*now < 1_000_000, "dial never decided");
            }
        }
    }

    fn to(a: &str) -> Dial {
        Dial::To(a.parse().unwrap())
    }

    /// A book for the name `origin` (at 10.0.0.1:1935) that has looked it up
    /// and dialled once; with the resolver and the time after that dial.
    fn connected() -> (FakeDns, AddrBook, u64) {
        let mut dns = FakeDns::new("origin", &["10.0.0.1:1935"]);
        let mut book = AddrBook::name();
        let mut now = 0;
        assert_eq!(dns.dial(&mut book, "origin", &mut now), to("10.0.0.1:1935"));
        (dns, book, now)
    }

    #[test]
    fn a_name_is_looked_up_before_the_first_dial() {
        let mut dns = FakeDns::new("origin", &["10.0.0.1:1935"]);
        let mut book = AddrBook::name();
        let mut now = 0;
        assert_eq!(book.dial(now), Dial::Fail("host name does not resolve"));
        assert_eq!(dns.dial(&mut book, "origin", &mut now), to("10.0.0.1:1935"));
        assert_eq!(now, 5, "waited for the answer, no longer");
        assert_eq!(dns.lookups, 1);
    }

    #[test]
    fn answers_are_refreshed_at_least_every_30s_without_any_failure() {
        let (mut dns, mut book, now) = connected();
        // The Service moves; nothing failed yet.
        dns.set("origin", &["10.0.0.2:1935"]);
        for t in now..now + REFRESH_MS {
            dns.turn(&mut book, "origin", t);
        }
        assert_eq!(dns.lookups, 1, "the answer is trusted for 30 s");
        let mut now = now + REFRESH_MS + 10;
        dns.turn(&mut book, "origin", now - 10);
        assert_eq!(dns.lookups, 2, "looked up again at 30 s");
        assert_eq!(dns.dial(&mut book, "origin", &mut now), to("10.0.0.2:1935"));
    }

    #[test]
    fn every_reconnect_looks_the_name_up_again_first() {
        let (mut dns, mut book, mut now) = connected();
        // DNS failover: the record changes and the old origin dies.
        dns.set("origin", &["10.0.0.9:1935"]);
        now += 1_000;
        book.dial_failed();
        assert!(book.wants_lookup(now));
        assert_eq!(dns.dial(&mut book, "origin", &mut now), to("10.0.0.9:1935"));
        assert_eq!(dns.lookups, 2);
        book.dial_failed();
        dns.dial(&mut book, "origin", &mut now);
        assert_eq!(dns.lookups, 3, "one lookup per reconnect");
    }

    #[test]
    fn a_slow_lookup_does_not_hold_a_reconnect_past_the_wait() {
        let (mut dns, mut book, mut now) = connected();
        dns.delay_ms = 60_000;
        book.dial_failed();
        let start = now;
        assert_eq!(dns.dial(&mut book, "origin", &mut now), to("10.0.0.1:1935"));
        assert_eq!(
            now - start,
            LOOKUP_WAIT_MS,
            "dials the known address after the wait"
        );
        // A name never answered fails instead of waiting forever.
        let mut fresh = AddrBook::name();
        let mut now = 0;
        let d = dns.dial(&mut fresh, "origin", &mut now);
        assert_eq!(d, Dial::Fail("host name lookup is slow"));
    }

    #[test]
    fn failed_lookups_keep_known_addresses_and_unknown_names_fail() {
        let (mut dns, mut book, mut now) = connected();
        dns.records.clear();
        book.dial_failed();
        assert_eq!(dns.dial(&mut book, "origin", &mut now), to("10.0.0.1:1935"));
        let mut unknown = AddrBook::name();
        assert_eq!(
            dns.dial(&mut unknown, "nowhere", &mut now),
            Dial::Fail("host name does not resolve")
        );
    }

    #[test]
    fn failures_move_to_the_next_address_of_the_name() {
        let mut dns = FakeDns::new("localhost", &["[::1]:1935", "127.0.0.1:1935"]);
        let mut book = AddrBook::name();
        let mut now = 0;
        assert_eq!(dns.dial(&mut book, "localhost", &mut now), to("[::1]:1935"));
        book.dial_failed();
        assert_eq!(
            dns.dial(&mut book, "localhost", &mut now),
            to("127.0.0.1:1935")
        );
        book.dial_failed();
        assert_eq!(dns.dial(&mut book, "localhost", &mut now), to("[::1]:1935"));
        assert_eq!(book.addrs().len(), 2);
    }

    #[test]
    fn literals_are_never_looked_up() {
        let mut dns = FakeDns::new("x", &[]);
        let mut book = AddrBook::literal("192.0.2.1:1935".parse().unwrap());
        let mut now = 0;
        assert_eq!(dns.dial(&mut book, "x", &mut now), to("192.0.2.1:1935"));
        book.dial_failed();
        assert!(!book.wants_lookup(REFRESH_MS * 3));
        assert_eq!(dns.dial(&mut book, "x", &mut now), to("192.0.2.1:1935"));
        assert_eq!(dns.lookups, 0);
    }
}
