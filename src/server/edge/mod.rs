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
//! * [`target`]: configured origins and the process's resolver thread, so
//!   host names are looked up again without blocking a core.

pub mod origin_conn;
pub mod outbound;
pub mod pulls;
pub mod relay;
pub mod target;
pub mod viewers;

use std::collections::HashMap;

use crate::config::Config;
use crate::edge::pull::{PullAction, PullTiming};
use crate::stream::StreamKey;
use pulls::PullEntry;
pub use target::OriginTarget;
use viewers::Waiter;

/// How long "no origin has it" is remembered, so a burst of viewers for an
/// unknown stream does not hammer the origins.
pub const NEGATIVE_TTL_MS: u64 = 2_000;
/// Most keys remembered as unknown per core.
pub const MAX_NEGATIVE: usize = 4_096;
/// Shortest idle close honoured: a viewer told to start on another core must
/// have time to subscribe before its pull can be judged unwatched.
pub const MIN_IDLE_CLOSE_MS: u64 = 1_000;

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
    fn origins_come_from_the_config() {
        let mut e = edge(&[
            "rtmp://127.0.0.1:19350/live",
            "http://[::1]:8080",
            "rtmp://bad:0",
        ]);
        assert!(e.enabled());
        assert_eq!(
            e.origins[0].address(0),
            Ok("127.0.0.1:19350".parse().unwrap())
        );
        assert_eq!(e.origins[1].address(0), Ok("[::1]:8080".parse().unwrap()));
        assert!(e.origins[2].origin.is_none(), "port 0 is refused");
        assert!(!edge(&[]).enabled());
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
