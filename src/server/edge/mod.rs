//! Edge mode glue: pulling streams that are not live on this box from origins.
//!
//! * [`viewers`]: a play request (HTTP-FLV or RTMP) on any core is held, with
//!   nothing written, and the key's pull core is asked; the answer starts the
//!   viewers through the normal path, or refuses them (404 / StreamNotFound).
//! * [`pulls`]: on the pull core, one [`crate::edge::pull::Pull`] per key turns
//!   requests, upstream events and time into actions: connect, open or resume
//!   the stream in the directory and shard, retry, close when idle.
//! * [`origin_conn`]: the upstream connections themselves, living in the
//!   core's connection slab like any other (same recv/send/close paths).

pub mod origin_conn;
pub mod outbound;
pub mod pulls;
pub mod relay;
pub mod viewers;

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::config::Config;
use crate::edge::origin::Origin;
use crate::edge::pull::{PullAction, PullTiming};
use crate::stream::StreamKey;
use pulls::PullEntry;
use viewers::Waiter;

/// How long "no origin has it" is remembered, so a burst of viewers for an
/// unknown stream does not hammer the origins.
pub const NEGATIVE_TTL_MS: u64 = 2_000;
/// Most keys remembered as unknown per core.
pub const MAX_NEGATIVE: usize = 4_096;
/// Shortest idle close honoured: a viewer told to start on another core must
/// have time to subscribe before its pull can be judged unwatched.
pub const MIN_IDLE_CLOSE_MS: u64 = 1_000;

/// A name lookup running off the core thread: `None` until it finished.
type Lookup = std::sync::Arc<std::sync::Mutex<Option<Option<SocketAddr>>>>;

/// One configured origin (or relay target), resolved once at start.
#[derive(Clone, Debug)]
pub struct OriginTarget {
    /// The URL as configured.
    pub url: String,
    /// The parsed URL, `None` if it did not parse (every attempt on it fails).
    pub origin: Option<Origin>,
    /// Its address, `None` until its name resolves.
    pub addr: Option<SocketAddr>,
    /// A lookup in flight for a name that did not resolve at start.
    lookup: Option<Lookup>,
}

impl OriginTarget {
    fn new(url: &str) -> OriginTarget {
        let origin = match Origin::parse(url) {
            Ok(o) => Some(o),
            Err(e) => {
                tracing::error!(url, error = %e, "unusable origin URL");
                None
            }
        };
        let addr = origin.as_ref().and_then(resolve);
        OriginTarget {
            url: url.to_owned(),
            origin,
            addr,
            lookup: None,
        }
    }

    /// The address to connect to. A name that did not resolve at start is
    /// looked up again on a helper thread, never on the core: until that lookup
    /// answers, attempts fail (and are retried by their backoff).
    pub(crate) fn address(&mut self) -> Result<SocketAddr, &'static str> {
        if let Some(addr) = self.addr {
            return Ok(addr);
        }
        let origin = self.origin.as_ref().ok_or("unusable URL")?;
        if let Some(lookup) = &self.lookup {
            let done = lookup.lock().unwrap_or_else(|e| e.into_inner()).take();
            return match done {
                None => Err("host name lookup in progress"),
                Some(result) => {
                    self.lookup = None;
                    self.addr = result;
                    result.ok_or("host name does not resolve")
                }
            };
        }
        let lookup: Lookup = Default::default();
        let (slot, origin) = (lookup.clone(), origin.clone());
        let spawned = std::thread::Builder::new()
            .name("ringcast-dns".into())
            .spawn(move || {
                let result = resolve(&origin);
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
            });
        if spawned.is_ok() {
            self.lookup = Some(lookup);
        }
        Err("host name lookup started")
    }
}

/// Resolves an origin's host (a blocking lookup for names; instant for IP literals).
pub(crate) fn resolve(origin: &Origin) -> Option<SocketAddr> {
    (origin.host.as_str(), origin.port)
        .to_socket_addrs()
        .ok()?
        .next()
}

/// A connect the pull core decided on, submitted when the reactor is at hand.
#[derive(Clone, Debug)]
pub(crate) struct PendingConnect {
    pub(crate) key: StreamKey,
    pub(crate) origin: usize,
}

/// One core's edge state.
pub struct EdgeCore {
    pub(crate) origins: Vec<OriginTarget>,
    pub(crate) timing: PullTiming,
    /// Pulls whose pull core is this one.
    pub(crate) pulls: HashMap<StreamKey, PullEntry>,
    /// Viewers on this core waiting for their pull core's answer.
    pub(crate) waiters: HashMap<StreamKey, Vec<Waiter>>,
    /// Keys no origin had, until when (core ms).
    pub(crate) negative: HashMap<StreamKey, u64>,
    pub(crate) connects: Vec<PendingConnect>,
    pub(crate) actions: Vec<PullAction>,
}

impl EdgeCore {
    /// The edge state for `config` (inactive when no origin is configured).
    pub fn new(config: &Config) -> EdgeCore {
        let edge = &config.edge;
        EdgeCore {
            origins: edge.origins.iter().map(|u| OriginTarget::new(u)).collect(),
            timing: PullTiming {
                idle_close_ms: (edge.idle_close.as_millis() as u64).max(MIN_IDLE_CLOSE_MS),
                start_timeout_ms: edge.start_timeout.as_millis() as u64,
            },
            pulls: HashMap::new(),
            waiters: HashMap::new(),
            negative: HashMap::new(),
            connects: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// True when origins are configured: unknown streams are pulled.
    pub fn enabled(&self) -> bool {
        !self.origins.is_empty()
    }

    /// Whether `key` is remembered as unknown at `now_ms`.
    pub(crate) fn known_missing(&self, key: &StreamKey, now_ms: u64) -> bool {
        self.negative.get(key).is_some_and(|&until| until > now_ms)
    }

    /// Remembers that no origin had `key`.
    pub(crate) fn remember_missing(&mut self, key: &StreamKey, now_ms: u64) {
        if self.negative.len() >= MAX_NEGATIVE {
            self.negative.retain(|_, until| *until > now_ms);
        }
        if self.negative.len() < MAX_NEGATIVE {
            self.negative.insert(key.clone(), now_ms + NEGATIVE_TTL_MS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(origins: &[&str]) -> EdgeCore {
        let mut config = Config::default();
        config.edge.origins = origins.iter().map(|s| s.to_string()).collect();
        EdgeCore::new(&config)
    }

    #[test]
    fn origins_resolve_at_start() {
        let e = edge(&[
            "rtmp://127.0.0.1:19350/live",
            "http://[::1]:8080",
            "rtmp://bad:0",
        ]);
        assert!(e.enabled());
        assert_eq!(e.origins[0].addr, Some("127.0.0.1:19350".parse().unwrap()));
        assert_eq!(e.origins[1].addr, Some("[::1]:8080".parse().unwrap()));
        assert!(e.origins[2].origin.is_none(), "port 0 is refused");
        assert!(!edge(&[]).enabled());
    }

    #[test]
    fn unresolved_names_are_looked_up_off_the_core() {
        let mut target = OriginTarget::new("rtmp://localhost:19350/live");
        assert!(target.addr.is_some(), "resolved at start");
        target.addr = None;
        assert_eq!(target.address(), Err("host name lookup started"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let addr = loop {
            match target.address() {
                Ok(addr) => break addr,
                Err(e) => assert!(
                    std::time::Instant::now() < deadline,
                    "lookup never finished: {e}"
                ),
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(addr.port(), 19350);
        assert!(addr.ip().is_loopback());
        let mut bad = OriginTarget::new("rtmp://h:0/live");
        assert_eq!(bad.address(), Err("unusable URL"));
    }

    #[test]
    fn idle_close_has_a_floor() {
        let mut config = Config::default();
        config.edge.idle_close = std::time::Duration::ZERO;
        assert_eq!(
            EdgeCore::new(&config).timing.idle_close_ms,
            MIN_IDLE_CLOSE_MS
        );
        config.edge.idle_close = std::time::Duration::from_secs(30);
        assert_eq!(EdgeCore::new(&config).timing.idle_close_ms, 30_000);
    }

    #[test]
    fn negative_cache_expires_and_is_bounded() {
        let mut e = edge(&["rtmp://127.0.0.1/live"]);
        let key = StreamKey::new("live", "x").unwrap();
        e.remember_missing(&key, 1_000);
        assert!(e.known_missing(&key, 1_000 + NEGATIVE_TTL_MS - 1));
        assert!(!e.known_missing(&key, 1_000 + NEGATIVE_TTL_MS));
        for n in 0..MAX_NEGATIVE + 10 {
            e.remember_missing(&StreamKey::new("live", &format!("k{n}")).unwrap(), 5_000);
        }
        assert!(e.negative.len() <= MAX_NEGATIVE);
    }
}
