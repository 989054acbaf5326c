//! Viewers waiting for a pulled stream: held with nothing written until the
//! key's pull core answers, then started through the normal play path or
//! refused cleanly. Every wait is bounded by `edge.start_timeout`.

use super::EdgeCore;
use crate::edge::{pull_core, EdgeMsg};
use crate::server::conn::Proto;
use crate::server::connections::Connections;
use crate::server::pending::{Refusal, WaitingPlay};
use crate::server::worker::CoreState;
use crate::server::MeshMsg;
use crate::stream::StreamKey;

/// Most viewers of one key waiting on one core.
pub const MAX_WAITING_PER_KEY: usize = 65_536;

/// A held viewer.
#[derive(Clone, Debug)]
pub struct Waiter {
    slot: u32,
    generation: u32,
    how: WaitingPlay,
    deadline_ms: u64,
}

impl CoreState {
    /// True when unknown streams are pulled from origins.
    pub(crate) fn edge_enabled(&self) -> bool {
        self.edge.enabled()
    }

    /// Holds a play request for `key` until its pull core answers.
    pub(crate) fn edge_hold_viewer(
        &mut self,
        slot: u32,
        key: StreamKey,
        query: Option<String>,
        how: WaitingPlay,
    ) {
        let now = self.now_ms();
        match self.edge.hold_waiter(&mut self.conns, slot, &key, how, now) {
            Held::Gone | Held::Queued => {}
            Held::Refused(refusal) => self.refuse_held_play(slot, how, refusal),
            Held::First => {
                let to = pull_core(&key, self.shared.cores());
                tracing::debug!(core = self.core, %key, pull_core = to, "viewer waits for pull");
                self.send_edge(
                    to,
                    EdgeMsg::Request {
                        key,
                        query,
                        from_core: self.core,
                    },
                );
            }
        }
    }

    /// Sends an edge message to core `to` (handled at once if that is this core).
    pub(crate) fn send_edge(&mut self, to: usize, msg: EdgeMsg) {
        if to == self.core {
            self.on_edge_msg(msg);
        } else {
            self.mesh.send(&self.metrics, to, MeshMsg::Edge(msg));
        }
    }

    /// Applies an edge message from another core (or this one).
    pub fn on_edge_msg(&mut self, msg: EdgeMsg) {
        match msg {
            EdgeMsg::Request {
                key,
                query,
                from_core,
            } => self.edge_request(key, query, from_core),
            EdgeMsg::Ready { key } => self.release_waiters(&key, None),
            EdgeMsg::NotFound { key } => {
                let now = self.now_ms();
                self.edge.remember_missing(&key, now);
                self.release_waiters(&key, Some(Refusal::NotFound));
            }
            EdgeMsg::Unavailable { key } => self.release_waiters(&key, Some(Refusal::Unavailable)),
        }
    }

    /// Starts (or refuses) every viewer of `key` waiting on this core.
    fn release_waiters(&mut self, key: &StreamKey, refusal: Option<Refusal>) {
        let Some(waiting) = self.edge.waiters.remove(key) else {
            return;
        };
        for w in waiting {
            if !w.still_waiting(&mut self.conns) {
                continue;
            }
            match refusal {
                None => self.start_held_play(w.slot, w.how, key),
                Some(r) => self.refuse_held_play(w.slot, w.how, r),
            }
        }
    }

    /// Refuses held viewers whose start timeout passed, and forgets closed ones.
    pub(crate) fn expire_waiters(&mut self, now_ms: u64) {
        for w in self.edge.expire_waiters(&mut self.conns, now_ms) {
            tracing::info!(
                core = self.core,
                slot = w.slot,
                "viewer waited too long for its origin"
            );
            self.refuse_held_play(w.slot, w.how, Refusal::Unavailable);
        }
    }
}

/// What holding a viewer for a pull did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Held {
    /// Its connection is gone: nothing to do.
    Gone,
    /// Refuse it now (the key is known missing, or too many wait for it).
    Refused(Refusal),
    /// It is the key's first waiter on this core: ask the pull core.
    First,
    /// It joined viewers already waiting for the pull core's answer.
    Queued,
}

impl Waiter {
    /// Its connection is still open and has not started playing.
    fn still_waiting(&self, conns: &mut Connections) -> bool {
        conns
            .get_mut(self.slot, self.generation)
            .is_some_and(|c| !c.closing && c.viewer.is_none())
    }
}

impl EdgeCore {
    /// Holds `slot`'s play request for `key` (its session loses its own deadline;
    /// `edge.start_timeout` bounds the wait instead).
    pub(crate) fn hold_waiter(
        &mut self,
        conns: &mut Connections,
        slot: u32,
        key: &StreamKey,
        how: WaitingPlay,
        now_ms: u64,
    ) -> Held {
        if self.known_missing(key, now_ms) {
            return Held::Refused(Refusal::NotFound);
        }
        let Some(conn) = conns.at(slot) else {
            return Held::Gone;
        };
        let generation = conn.generation;
        // An HLS request parks its connection instead (pipelined requests
        // stay buffered behind it).
        if let (Proto::Http(http), false) = (&mut conn.proto, matches!(how, WaitingPlay::Hls(_))) {
            http.hold();
        }
        let waiting = self.waiters.entry(key.clone()).or_default();
        if waiting.len() >= MAX_WAITING_PER_KEY {
            return Held::Refused(Refusal::Unavailable);
        }
        let first = waiting.is_empty();
        waiting.push(Waiter {
            slot,
            generation,
            how,
            deadline_ms: now_ms + self.timing.start_timeout_ms,
        });
        if first {
            Held::First
        } else {
            Held::Queued
        }
    }

    /// Forgets waiters whose connection closed and takes out those whose start
    /// timeout passed at `now_ms` (to be refused).
    pub(crate) fn expire_waiters(&mut self, conns: &mut Connections, now_ms: u64) -> Vec<Waiter> {
        let mut expired = Vec::new();
        if self.waiters.is_empty() {
            return expired;
        }
        for list in self.waiters.values_mut() {
            list.retain(|w| {
                let alive = conns
                    .get_mut(w.slot, w.generation)
                    .is_some_and(|c| !c.closing);
                if alive && w.deadline_ms <= now_ms {
                    expired.push(w.clone());
                }
                alive && w.deadline_ms > now_ms
            });
        }
        self.waiters.retain(|_, list| !list.is_empty());
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::server::connections::test_conn;

    const PLAY: WaitingPlay = WaitingPlay::Rtmp { msg_stream: 1 };

    fn edge() -> EdgeCore {
        let mut config = Config::default();
        config.edge.origins = vec!["rtmp://127.0.0.1:19350/live".to_owned()];
        config.edge.start_timeout = std::time::Duration::from_millis(500);
        EdgeCore::new(&config)
    }

    #[test]
    fn the_first_waiter_asks_and_known_missing_keys_are_refused() {
        let mut conns = Connections::new(0, 8);
        let (a, b) = (conns.insert(test_conn), conns.insert(test_conn));
        let mut edge = edge();
        let key = StreamKey::new("live", "x").unwrap();
        assert_eq!(edge.hold_waiter(&mut conns, a, &key, PLAY, 0), Held::First);
        assert_eq!(edge.hold_waiter(&mut conns, b, &key, PLAY, 0), Held::Queued);
        assert_eq!(edge.hold_waiter(&mut conns, 99, &key, PLAY, 0), Held::Gone);
        let other = StreamKey::new("live", "y").unwrap();
        edge.remember_missing(&other, 0);
        assert_eq!(
            edge.hold_waiter(&mut conns, a, &other, PLAY, 1),
            Held::Refused(Refusal::NotFound)
        );
    }

    #[test]
    fn waiters_expire_at_the_start_timeout_and_closed_ones_are_forgotten() {
        let mut conns = Connections::new(0, 8);
        let (a, b) = (conns.insert(test_conn), conns.insert(test_conn));
        let mut edge = edge();
        let key = StreamKey::new("live", "x").unwrap();
        edge.hold_waiter(&mut conns, a, &key, PLAY, 0);
        edge.hold_waiter(&mut conns, b, &key, PLAY, 0);
        conns.remove(b);
        assert!(edge.expire_waiters(&mut conns, 499).is_empty());
        assert_eq!(edge.waiters.get(&key).map(Vec::len), Some(1));
        let expired = edge.expire_waiters(&mut conns, 500);
        assert_eq!(expired.iter().map(|w| w.slot).collect::<Vec<_>>(), vec![a]);
        assert!(edge.waiters.is_empty());
    }
}
