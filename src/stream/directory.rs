//! The stream directory: which core owns which key. The only state shared
//! between cores.
//!
//! It is touched when a publisher starts or stops and when a viewer starts (to
//! find the owner), never per frame, so a plain `Mutex` is cheap enough and
//! keeps the rules obvious.

use std::collections::HashMap;
use std::sync::Mutex;

use super::key::StreamKey;

/// Identifies one live stream across all cores. Never reused in a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a publisher is allowed to do when its key is already published.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishPolicy {
    /// Replace a live publisher of the same key instead of being refused.
    pub takeover: bool,
}

/// A publisher's right to a key, as granted by [`Directory::claim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The stream this publisher feeds.
    pub stream_id: StreamId,
    /// The core that owns the stream (where its publisher runs).
    pub owner_core: usize,
    /// Unique per grant; only the holder of the current generation may release.
    pub generation: u64,
}

/// The result of a successful [`Directory::claim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Granted {
    /// The new claim.
    pub claim: Claim,
    /// The claim this one replaced (takeover, or a publisher resuming a key in
    /// its grace period). Its owner must kick the old publisher, or, if
    /// `claim.stream_id == previous.stream_id`, the same core simply resumes
    /// the stream with the new publisher.
    pub previous: Option<Claim>,
}

/// A directory entry as listed for the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// The key.
    pub key: StreamKey,
    /// Its current claim.
    pub claim: Claim,
    /// False while the publisher is gone but the stream waits for it (grace period).
    pub publishing: bool,
}

/// Why a claim was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// Another publisher holds the key and the policy does not allow takeover.
    #[error("stream {key} is already published on core {owner_core}")]
    Taken {
        /// The key.
        key: StreamKey,
        /// The core whose publisher holds it.
        owner_core: usize,
    },
    /// The directory holds as many keys as it may.
    #[error("directory full: {limit} streams")]
    Full {
        /// The limit.
        limit: usize,
    },
}

/// Default cap on keys in the directory.
pub const DEFAULT_MAX_STREAMS: usize = 100_000;

#[derive(Debug)]
struct Entry {
    claim: Claim,
    publishing: bool,
}

#[derive(Debug)]
struct Inner {
    next_stream_id: u64,
    next_generation: u64,
    entries: HashMap<StreamKey, Entry>,
}

/// Key → owner map shared by all cores (wrap it in an `Arc`).
#[derive(Debug)]
pub struct Directory {
    inner: Mutex<Inner>,
    max_streams: usize,
}

impl Default for Directory {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_STREAMS)
    }
}

impl Directory {
    /// An empty directory holding at most `max_streams` keys.
    pub fn new(max_streams: usize) -> Self {
        Directory {
            inner: Mutex::new(Inner {
                next_stream_id: 1,
                next_generation: 1,
                entries: HashMap::new(),
            }),
            max_streams,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave an entry half-written (each
        // critical section is one map operation), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Claims `key` for a publisher on `core`.
    ///
    /// A free key gets a fresh stream id. A key whose publisher left (grace
    /// period, see [`Directory::publisher_left`]) or, with `policy.takeover`, a
    /// live key is taken over: the previous claim is returned, and the stream id
    /// is kept if the new publisher is on the owner core (so that core resumes
    /// the same stream and its viewers stay), otherwise a new stream id is made
    /// on `core` and the old owner must end its stream.
    pub fn claim(
        &self,
        key: &StreamKey,
        core: usize,
        policy: PublishPolicy,
    ) -> Result<Granted, DirectoryError> {
        let mut inner = self.lock();
        let generation = inner.next_generation;
        let previous = match inner.entries.get(key) {
            Some(e) if e.publishing && !policy.takeover => {
                return Err(DirectoryError::Taken {
                    key: key.clone(),
                    owner_core: e.claim.owner_core,
                });
            }
            Some(e) => Some(e.claim),
            None if inner.entries.len() >= self.max_streams => {
                return Err(DirectoryError::Full {
                    limit: self.max_streams,
                });
            }
            None => None,
        };
        let stream_id = match previous {
            Some(prev) if prev.owner_core == core => prev.stream_id,
            _ => {
                let id = StreamId(inner.next_stream_id);
                inner.next_stream_id += 1;
                id
            }
        };
        inner.next_generation += 1;
        let claim = Claim {
            stream_id,
            owner_core: core,
            generation,
        };
        inner.entries.insert(
            key.clone(),
            Entry {
                claim,
                publishing: true,
            },
        );
        tracing::debug!(%key, %stream_id, core, takeover = previous.is_some(), "stream claimed");
        Ok(Granted { claim, previous })
    }

    /// Marks the claim's publisher as gone while its stream waits for a new one
    /// (grace period). Viewers can still find the stream; any publisher may
    /// claim the key. Returns false if `claim` is no longer current.
    pub fn publisher_left(&self, key: &StreamKey, claim: &Claim) -> bool {
        let mut inner = self.lock();
        match inner.entries.get_mut(key) {
            Some(e) if e.claim.generation == claim.generation => {
                e.publishing = false;
                true
            }
            _ => false,
        }
    }

    /// Removes the key if `claim` is still its current claim. A publisher that
    /// was taken over releasing late must not remove its successor, so a stale
    /// claim is ignored (returns false).
    pub fn release(&self, key: &StreamKey, claim: &Claim) -> bool {
        let mut inner = self.lock();
        match inner.entries.get(key) {
            Some(e) if e.claim.generation == claim.generation => {
                inner.entries.remove(key);
                tracing::debug!(%key, stream_id = %claim.stream_id, "stream released");
                true
            }
            _ => false,
        }
    }

    /// The stream id and owner core for `key`, if it is published (or in grace).
    pub fn lookup(&self, key: &StreamKey) -> Option<(StreamId, usize)> {
        self.lock()
            .entries
            .get(key)
            .map(|e| (e.claim.stream_id, e.claim.owner_core))
    }

    /// All keys, sorted, for the API.
    pub fn list(&self) -> Vec<Listing> {
        let mut all: Vec<Listing> = self
            .lock()
            .entries
            .iter()
            .map(|(key, e)| Listing {
                key: key.clone(),
                claim: e.claim,
                publishing: e.publishing,
            })
            .collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: &str) -> StreamKey {
        StreamKey::new("live", n).unwrap()
    }

    #[test]
    fn claim_lookup_release() {
        let d = Directory::default();
        let g = d.claim(&key("a"), 1, PublishPolicy::default()).unwrap();
        assert_eq!(g.previous, None);
        assert_eq!(d.lookup(&key("a")), Some((g.claim.stream_id, 1)));
        let other = d.claim(&key("b"), 0, PublishPolicy::default()).unwrap();
        assert_ne!(
            other.claim.stream_id, g.claim.stream_id,
            "stream ids are unique"
        );
        assert!(d.release(&key("a"), &g.claim));
        assert_eq!(d.lookup(&key("a")), None);
        let again = d.claim(&key("a"), 1, PublishPolicy::default()).unwrap();
        assert_ne!(
            again.claim.stream_id, g.claim.stream_id,
            "ids are never reused"
        );
    }

    #[test]
    fn second_publisher_is_refused_without_takeover() {
        let d = Directory::default();
        d.claim(&key("a"), 1, PublishPolicy::default()).unwrap();
        assert_eq!(
            d.claim(&key("a"), 0, PublishPolicy::default()),
            Err(DirectoryError::Taken {
                key: key("a"),
                owner_core: 1
            })
        );
    }

    #[test]
    fn takeover_returns_previous_and_old_release_is_ignored() {
        let d = Directory::default();
        let old = d
            .claim(&key("a"), 1, PublishPolicy::default())
            .unwrap()
            .claim;
        let new = d
            .claim(&key("a"), 0, PublishPolicy { takeover: true })
            .unwrap();
        assert_eq!(new.previous, Some(old));
        assert_ne!(
            new.claim.stream_id, old.stream_id,
            "another core starts a new stream"
        );
        assert!(
            !d.release(&key("a"), &old),
            "the kicked publisher cannot remove its successor"
        );
        assert!(!d.publisher_left(&key("a"), &old));
        assert_eq!(d.lookup(&key("a")), Some((new.claim.stream_id, 0)));
        assert!(d.release(&key("a"), &new.claim));
    }

    #[test]
    fn same_core_takeover_and_grace_resume_keep_the_stream() {
        let d = Directory::default();
        let first = d
            .claim(&key("a"), 2, PublishPolicy::default())
            .unwrap()
            .claim;
        assert!(d.publisher_left(&key("a"), &first));
        assert!(!d.list()[0].publishing);
        let resumed = d.claim(&key("a"), 2, PublishPolicy::default()).unwrap();
        assert_eq!(resumed.previous, Some(first));
        assert_eq!(resumed.claim.stream_id, first.stream_id);
        assert_ne!(resumed.claim.generation, first.generation);
        assert!(d.list()[0].publishing);
    }

    #[test]
    fn full_directory_is_refused() {
        let d = Directory::new(1);
        d.claim(&key("a"), 0, PublishPolicy::default()).unwrap();
        assert_eq!(
            d.claim(&key("b"), 0, PublishPolicy::default()),
            Err(DirectoryError::Full { limit: 1 })
        );
    }

    #[test]
    fn shared_across_threads() {
        let d = std::sync::Arc::new(Directory::default());
        let handles: Vec<_> = (0..4)
            .map(|core| {
                let d = d.clone();
                std::thread::spawn(move || {
                    d.claim(&key("race"), core, PublishPolicy::default())
                        .is_ok()
                })
            })
            .collect();
        let winners = handles
            .into_iter()
            .filter_map(|h| h.join().ok())
            .filter(|w| *w)
            .count();
        assert_eq!(winners, 1);
    }
}
