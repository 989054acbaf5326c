//! Which connections send at the end of this turn: the ready list, and the
//! viewers woken during the current send-merge window
//! (`runtime.send_merge_window`), which join the ready list when it ends so that
//! frames arriving meanwhile leave in the same gathered send.
//!
//! Building and submitting each send is `CoreState::flush_ready`'s (it needs the
//! reactor, the shard and the connection's outbox); this type only keeps the order
//! and the flags (`Conn::queued`, `Conn::woken`) that make each connection appear
//! at most once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::connections::Connections;
use crate::stream::ViewerId;

/// A core's ready list and send-merge window.
pub struct SendQueue {
    /// How long a woken viewer waits for more frames; zero sends at once.
    window: Duration,
    /// Connections with something to send, flushed at the end of the turn.
    ready: Vec<u32>,
    /// Viewers woken in the current merge window.
    woken: Vec<u32>,
    /// When the current merge window ends.
    merge_deadline: Option<Instant>,
}

impl SendQueue {
    /// An empty queue merging viewer wake-ups over `window`.
    pub fn new(window: Duration) -> SendQueue {
        SendQueue {
            window,
            ready: Vec::new(),
            woken: Vec::new(),
            merge_deadline: None,
        }
    }

    /// Queues `slot` for a send at the end of the turn.
    pub fn mark_ready(&mut self, conns: &mut Connections, slot: u32) {
        if let Some(conn) = conns.at(slot) {
            if !conn.queued && !conn.closing {
                conn.queued = true;
                self.ready.push(slot);
            }
        }
    }

    /// A viewer has new frames: it is sent to at the end of the merge window, so
    /// frames arriving meanwhile leave in the same gathered send.
    pub fn wake(&mut self, conns: &mut Connections, slot: u32) {
        if self.window.is_zero() {
            self.mark_ready(conns, slot);
            return;
        }
        let Some(conn) = conns.at(slot) else {
            return;
        };
        if conn.queued || conn.woken || conn.closing {
            return;
        }
        conn.woken = true;
        self.woken.push(slot);
        let window = self.window;
        self.merge_deadline
            .get_or_insert_with(|| Instant::now() + window);
    }

    /// Wakes ([`SendQueue::wake`]) the connection of each viewer in `ids` that
    /// `viewer_conns` knows.
    pub fn wake_viewers(
        &mut self,
        conns: &mut Connections,
        viewer_conns: &HashMap<ViewerId, u32>,
        ids: &[ViewerId],
    ) {
        self.for_viewer_slots(conns, viewer_conns, ids, Self::wake);
    }

    /// Queues ([`SendQueue::mark_ready`]) the connection of each viewer in `ids`
    /// that `viewer_conns` knows, with no merge window (e.g. their stream ended).
    pub fn ready_viewers(
        &mut self,
        conns: &mut Connections,
        viewer_conns: &HashMap<ViewerId, u32>,
        ids: &[ViewerId],
    ) {
        self.for_viewer_slots(conns, viewer_conns, ids, Self::mark_ready);
    }

    /// Applies `act` to the connection slot of each viewer in `ids` that
    /// `viewer_conns` knows; viewers it does not know are skipped.
    fn for_viewer_slots(
        &mut self,
        conns: &mut Connections,
        viewer_conns: &HashMap<ViewerId, u32>,
        ids: &[ViewerId],
        act: fn(&mut Self, &mut Connections, u32),
    ) {
        for id in ids {
            if let Some(&slot) = viewer_conns.get(id) {
                act(self, conns, slot);
            }
        }
    }

    /// Moves the viewers woken during a merge window that has ended to the ready list.
    pub fn end_merge_window(&mut self, conns: &mut Connections, now: Instant) {
        if self.merge_deadline.is_none_or(|d| d > now) {
            return;
        }
        self.merge_deadline = None;
        let woken = std::mem::take(&mut self.woken);
        for &slot in &woken {
            if let Some(conn) = conns.at(slot) {
                conn.woken = false;
            }
            self.mark_ready(conns, slot);
        }
        self.woken = woken;
        self.woken.clear();
    }

    /// Takes the ready list to flush it; hand it back with [`SendQueue::flushed`].
    pub fn take_ready(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.ready)
    }

    /// Returns a flushed ready list: flushing may have queued connections again
    /// (e.g. a finished viewer), which are kept; otherwise its allocation is reused.
    pub fn flushed(&mut self, mut ready: Vec<u32>) {
        ready.clear();
        if self.ready.is_empty() {
            self.ready = ready;
        }
    }

    /// Nothing is ready to send now.
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    /// How long the turn may sleep: until the merge window ends, at most `max`.
    pub fn wait(&self, max: Duration) -> Duration {
        self.merge_deadline.map_or(max, |d| {
            d.saturating_duration_since(Instant::now()).min(max)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::connections::test_conn;
    use crate::stream::{Role, Shard, ShardConfig, StreamId, StreamKey, ViewerOptions};

    #[test]
    fn a_connection_is_ready_once_and_never_while_closing() {
        let mut conns = Connections::new(0, 8);
        let (a, b) = (conns.insert(test_conn), conns.insert(test_conn));
        let mut q = SendQueue::new(Duration::ZERO);
        q.mark_ready(&mut conns, a);
        q.mark_ready(&mut conns, a);
        q.wake(&mut conns, a);
        conns.at(b).expect("b").closing = true;
        q.mark_ready(&mut conns, b);
        let ready = q.take_ready();
        assert_eq!(ready, vec![a]);
        assert!(q.is_empty());
    }

    #[test]
    fn viewers_are_found_by_id_and_unknown_ids_are_ignored() {
        let mut conns = Connections::new(0, 8);
        let (a, b) = (conns.insert(test_conn), conns.insert(test_conn));
        // Viewer ids come from a shard.
        let mut shard = Shard::new(0, ShardConfig::default());
        let stream = StreamId(1);
        let key = StreamKey::new("live", "a").unwrap();
        shard
            .open_stream(key, stream, Role::Owner { generation: 1 }, 0)
            .unwrap();
        let mut viewer = || shard.add_viewer(stream, ViewerOptions::default()).unwrap();
        let (va, vb, unknown) = (viewer(), viewer(), viewer());
        let viewer_conns: HashMap<ViewerId, u32> = [(va, a), (vb, b)].into_iter().collect();
        let mut q = SendQueue::new(Duration::ZERO);
        q.wake_viewers(&mut conns, &viewer_conns, &[vb, unknown]);
        assert_eq!(q.take_ready(), vec![b]);
        // Flushed (`CoreState::flush_one` clears the flag).
        conns.at(b).expect("b").queued = false;
        let mut q = SendQueue::new(Duration::from_secs(3600));
        // Waking waits for the window; an ended stream's viewers go at once.
        q.wake_viewers(&mut conns, &viewer_conns, &[va]);
        assert!(q.is_empty());
        q.ready_viewers(&mut conns, &viewer_conns, &[vb]);
        assert_eq!(q.take_ready(), vec![b]);
    }

    #[test]
    fn woken_viewers_wait_for_the_end_of_the_window() {
        let mut conns = Connections::new(0, 8);
        let (a, b) = (conns.insert(test_conn), conns.insert(test_conn));
        let window = Duration::from_secs(3600);
        let mut q = SendQueue::new(window);
        q.wake(&mut conns, a);
        q.wake(&mut conns, b);
        q.wake(&mut conns, a);
        assert!(q.is_empty());
        assert!(q.wait(Duration::from_millis(50)) <= Duration::from_millis(50));
        // Not yet over.
        q.end_merge_window(&mut conns, Instant::now());
        assert!(q.is_empty());
        q.end_merge_window(&mut conns, Instant::now() + window);
        assert_eq!(q.take_ready(), vec![a, b]);
        assert_eq!(q.wait(Duration::from_millis(50)), Duration::from_millis(50));
        assert!(!conns.at(a).expect("a").woken);
    }
}
