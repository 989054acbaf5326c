//! A core's connection table: the slab of connections together with the state
//! that is about connections only — their deadlines in the core's timer wheel
//! (`server::timers`) and the list of those to close at the end of the batch.
//!
//! What closing a connection does to the rest of the core (detaching it from
//! streams, metrics, the reactor) is `CoreState::close_now`'s; this type only
//! says which connections are due.

use super::conn::{Conn, Slab};
use crate::metrics::CloseReason;
use crate::runtime::TimerWheel;

/// The connections of one core, their deadlines and their queued closes.
pub struct Connections {
    /// This core's index, for logs.
    pub(super) core: usize,
    /// The connections themselves.
    slab: Slab,
    /// One entry per connection with a deadline, at its next one (`server::timers`).
    pub(super) timers: TimerWheel,
    /// Keys fired by the wheel this turn (kept to reuse its allocation).
    pub(super) fired: Vec<u64>,
    /// Connections to close at the end of the current completion batch, with the
    /// generation they had when queued.
    to_close: Vec<(u32, u32, CloseReason)>,
}

impl Connections {
    /// An empty table whose wheel has room for `timer_capacity` deadlines.
    pub fn new(core: usize, timer_capacity: usize) -> Connections {
        Connections {
            core,
            slab: Slab::default(),
            timers: TimerWheel::with_capacity(timer_capacity, 0),
            fired: Vec::new(),
            to_close: Vec::new(),
        }
    }

    /// Inserts a connection built by `make(generation)`; returns its slot index.
    pub fn insert(&mut self, make: impl FnOnce(u32) -> Conn) -> u32 {
        self.slab.insert(make)
    }

    /// The connection in `slot` if its generation matches.
    pub fn get_mut(&mut self, slot: u32, generation: u32) -> Option<&mut Conn> {
        self.slab.get_mut(slot, generation)
    }

    /// The connection in `slot`, whatever its generation.
    pub fn at(&mut self, slot: u32) -> Option<&mut Conn> {
        self.slab.at(slot)
    }

    /// Removes the connection in `slot`.
    pub fn remove(&mut self, slot: u32) -> Option<Conn> {
        self.slab.remove(slot)
    }

    /// Connections alive.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// No connection alive.
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Slot indices of live connections.
    pub fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        self.slab.indices()
    }

    /// Queues `slot` to be closed. The generation goes with it: the slot may be
    /// freed and reused by a new connection before the queue is processed.
    pub fn close_later(&mut self, slot: u32, reason: CloseReason) {
        if let Some(conn) = self.slab.at(slot) {
            if !conn.closing {
                self.to_close.push((slot, conn.generation, reason));
            }
        }
    }

    /// The next queued close whose connection is still the one that was queued
    /// (entries for slots freed or reused since are dropped).
    pub fn next_to_close(&mut self) -> Option<(u32, CloseReason)> {
        while let Some((slot, generation, reason)) = self.to_close.pop() {
            if self.slab.get_mut(slot, generation).is_some() {
                return Some((slot, reason));
            }
        }
        None
    }
}

/// A connection for unit tests of the core's parts: an HTTP connection on no socket.
#[cfg(test)]
pub(super) fn test_conn(generation: u32) -> Conn {
    use super::conn::{ConnSetup, Proto};
    use super::http_conn::HttpConn;
    use super::shared::Shared;
    use crate::metrics::{Listener, MetricsRegistry};

    let shared = Shared::new(
        crate::config::Config::default(),
        1,
        MetricsRegistry::new(1).expect("metrics registry"),
    );
    Conn::new(
        ConnSetup {
            fd: -1,
            peer: None,
            listener: Listener::Http,
            proto: Proto::Http(HttpConn::new(&shared, 0)),
            max_frames: 1,
            control_limit: 1024,
            connect_deadline_ms: None,
            close_reason: CloseReason::PeerClosed,
        },
        generation,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_close_of_a_reused_slot_is_dropped() {
        let mut conns = Connections::new(0, 8);
        let a = conns.insert(test_conn);
        conns.close_later(a, CloseReason::Timeout);
        // The slot is freed and taken by a new connection before the queue runs.
        conns.remove(a);
        let b = conns.insert(test_conn);
        assert_eq!(a, b);
        assert_eq!(conns.next_to_close(), None);
        conns.close_later(b, CloseReason::IoError);
        assert_eq!(conns.next_to_close(), Some((b, CloseReason::IoError)));
        assert_eq!(conns.next_to_close(), None);
    }

    #[test]
    fn a_closing_connection_is_not_queued_again() {
        let mut conns = Connections::new(0, 8);
        let a = conns.insert(test_conn);
        if let Some(c) = conns.at(a) {
            c.closing = true;
        }
        conns.close_later(a, CloseReason::Timeout);
        assert_eq!(conns.next_to_close(), None);
    }
}
