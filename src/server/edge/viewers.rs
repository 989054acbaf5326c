//! Viewers waiting for a pulled stream: held with nothing written until the
//! key's pull core answers, then started through the normal play path or
//! refused cleanly. Every wait is bounded by `edge.start_timeout`.

use crate::edge::{pull_core, EdgeMsg};
use crate::server::conn::Proto;
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
        if self.edge.known_missing(&key, now) {
            self.refuse_held_play(slot, how, Refusal::NotFound);
            return;
        }
        let start_timeout = self.edge.timing.start_timeout_ms;
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let generation = conn.generation;
        // The session has no deadline while its request is held: the start timeout below bounds it.
        if let Proto::Http(http) = &mut conn.proto {
            http.hold();
        }
        let waiting = self.edge.waiters.entry(key.clone()).or_default();
        if waiting.len() >= MAX_WAITING_PER_KEY {
            self.refuse_held_play(slot, how, Refusal::Unavailable);
            return;
        }
        let first = waiting.is_empty();
        waiting.push(Waiter {
            slot,
            generation,
            how,
            deadline_ms: now + start_timeout,
        });
        if first {
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

    /// Sends an edge message to core `to` (handled at once if that is this core).
    pub(crate) fn send_edge(&mut self, to: usize, msg: EdgeMsg) {
        if to == self.core {
            self.on_edge_msg(msg);
        } else {
            self.send_to_core(to, MeshMsg::Edge(msg));
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
            if !self.waiter_alive(&w) {
                continue;
            }
            match refusal {
                None => self.start_held_play(w.slot, w.how, key),
                Some(r) => self.refuse_held_play(w.slot, w.how, r),
            }
        }
    }

    fn waiter_alive(&mut self, w: &Waiter) -> bool {
        self.conns
            .get_mut(w.slot, w.generation)
            .is_some_and(|c| !c.closing && c.viewer.is_none())
    }

    /// Refuses held viewers whose start timeout passed, and forgets closed ones.
    pub(crate) fn expire_waiters(&mut self, now_ms: u64) {
        if self.edge.waiters.is_empty() {
            return;
        }
        let mut expired = Vec::new();
        let mut waiters = std::mem::take(&mut self.edge.waiters);
        for list in waiters.values_mut() {
            list.retain(|w| {
                let alive = self
                    .conns
                    .get_mut(w.slot, w.generation)
                    .is_some_and(|c| !c.closing);
                if alive && w.deadline_ms <= now_ms {
                    expired.push(w.clone());
                }
                alive && w.deadline_ms > now_ms
            });
        }
        waiters.retain(|_, list| !list.is_empty());
        self.edge.waiters = waiters;
        for w in expired {
            tracing::info!(
                core = self.core,
                slot = w.slot,
                "viewer waited too long for its origin"
            );
            self.refuse_held_play(w.slot, w.how, Refusal::Unavailable);
        }
    }
}
