//! Edge mode, sans-IO parts: origin URLs and when to look their names up again,
//! upstream sessions (RTMP play and HTTP-FLV GET), reconnect backoff, and the
//! per-stream pull decisions. The server glue that opens sockets and feeds
//! frames into the stream layer is `crate::server::edge`.
//!
//! Exactly one upstream per stream per process: every decision about a key is
//! made on its *pull core*, [`pull_core`] (a hash of the key over the cores).
//! Viewers on other cores ask it with [`EdgeMsg::Request`] and wait for
//! [`EdgeMsg::Ready`] (or a refusal) before anything is written to them.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod chunked;
pub mod http_flv;
pub mod origin;
pub mod pull;
pub mod resolve;
pub mod upstream;

use crate::stream::StreamKey;

/// What cores tell each other about pulled streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EdgeMsg {
    /// Viewer core → pull core: a viewer wants `key`; `query` is passed upstream
    /// if this request starts the pull.
    Request {
        /// The stream.
        key: StreamKey,
        /// The viewer's query string (a play token), if any.
        query: Option<String>,
        /// The asking core.
        from_core: usize,
    },
    /// Pull core → viewer core: the stream is in the directory; start the waiting viewers.
    Ready {
        /// The stream.
        key: StreamKey,
    },
    /// Pull core → viewer core: no origin has the stream.
    NotFound {
        /// The stream.
        key: StreamKey,
    },
    /// Pull core → viewer core: no origin answered in time.
    Unavailable {
        /// The stream.
        key: StreamKey,
    },
}

/// The core that makes every pull decision for `key`, among `cores` cores.
///
/// FNV-1a over the key: stable across runs and processes, so it can also be
/// reasoned about from outside (tests, consistent-hash fronts).
pub fn pull_core(key: &StreamKey, cores: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key.as_str().as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % cores.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_core_is_stable_and_spreads() {
        let key = |n: usize| StreamKey::new("live", &format!("s{n}")).unwrap();
        assert_eq!(pull_core(&key(1), 4), pull_core(&key(1), 4));
        assert_eq!(pull_core(&key(1), 0), 0);
        assert_eq!(pull_core(&key(1), 1), 0);
        let mut counts = [0usize; 4];
        for n in 0..400 {
            counts[pull_core(&key(n), 4)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 60), "{counts:?}");
    }
}
