//! A hashed timer wheel for per-connection deadlines (handshake, idle).
//!
//! Deadlines are rounded up to a tick (10 ms by default) and hashed into one of
//! `slots` buckets by tick. Timers live in one slab linked into their bucket, so
//! insert and cancel are O(1) and a tick allocates nothing. The slab grows on
//! demand up to its capacity and its nodes are reused after that, so a core
//! holds memory for the most timers it ever had armed at once, never more.
//! Deadlines further out than one revolution stay in their bucket until their
//! tick comes round. Time is passed in (milliseconds from any fixed origin).

use thiserror::Error;

/// Why a timer could not be armed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TimerError {
    /// Every timer slot is in use.
    #[error("timer wheel full ({limit} timers)")]
    Full {
        /// The wheel's capacity.
        limit: usize,
    },
}

/// Identifies an armed timer, for cancelling it. Stale ids are harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    generation: u32,
}

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Node {
    deadline_tick: u64,
    key: u64,
    prev: u32,
    next: u32,
    generation: u32,
    armed: bool,
}

/// The wheel. One per core; not shared.
pub struct TimerWheel {
    tick_ms: u64,
    /// Head node index of each bucket (a power-of-two count).
    buckets: Vec<u32>,
    nodes: Vec<Node>,
    /// Singly linked through `next` over free nodes.
    free: u32,
    /// Most nodes the slab may grow to.
    capacity: usize,
    /// Every tick `< current_tick` has been expired.
    current_tick: u64,
    len: usize,
}

impl TimerWheel {
    /// A wheel of `slots` buckets (rounded up to a power of two) of `tick_ms` each,
    /// holding at most `capacity` timers (their nodes are allocated as needed).
    pub fn new(tick_ms: u64, slots: usize, capacity: usize, now_ms: u64) -> TimerWheel {
        let tick_ms = tick_ms.max(1);
        let slots = slots.clamp(1, 1 << 20).next_power_of_two();
        let capacity = capacity.clamp(1, NIL as usize - 1);
        TimerWheel {
            tick_ms,
            buckets: vec![NIL; slots],
            nodes: Vec::new(),
            free: NIL,
            capacity,
            current_tick: now_ms / tick_ms,
            len: 0,
        }
    }

    /// The server's default: 10 ms ticks, 4096 buckets (~41 s per revolution, so the
    /// 10 s handshake and 30 s idle deadlines expire on their first visit).
    pub fn with_capacity(capacity: usize, now_ms: u64) -> TimerWheel {
        TimerWheel::new(10, 4096, capacity, now_ms)
    }

    /// Arms a timer firing at `deadline_ms` (no earlier; up to one tick later),
    /// reporting `key` from [`TimerWheel::expire`].
    pub fn insert(&mut self, deadline_ms: u64, key: u64) -> Result<TimerId, TimerError> {
        if self.free == NIL && self.nodes.len() < self.capacity {
            self.free = self.nodes.len() as u32;
            let node = Node {
                deadline_tick: 0,
                key: 0,
                prev: NIL,
                next: NIL,
                generation: 0,
                armed: false,
            };
            self.nodes.push(node);
        }
        let index = self.free;
        let Some(node) = self.nodes.get_mut(index as usize) else {
            return Err(TimerError::Full {
                limit: self.capacity,
            });
        };
        self.free = node.next;
        // Round up so a timer never fires early; never schedule into the past tick
        // range we already swept.
        let deadline_tick = deadline_ms.div_ceil(self.tick_ms).max(self.current_tick);
        node.deadline_tick = deadline_tick;
        node.key = key;
        node.armed = true;
        node.generation = node.generation.wrapping_add(1);
        let generation = node.generation;
        self.link(index, deadline_tick);
        self.len += 1;
        Ok(TimerId { index, generation })
    }

    /// Disarms a timer; returns its key if it was still armed.
    pub fn cancel(&mut self, id: TimerId) -> Option<u64> {
        let node = self.nodes.get(id.index as usize)?;
        if !node.armed || node.generation != id.generation {
            return None;
        }
        let key = node.key;
        self.unlink(id.index);
        self.release(id.index);
        Some(key)
    }

    /// Fires every timer whose deadline is `<= now_ms`, calling `f(key)` for each.
    /// Returns how many fired.
    pub fn expire(&mut self, now_ms: u64, mut f: impl FnMut(u64)) -> usize {
        let now_tick = now_ms / self.tick_ms;
        if now_tick < self.current_tick {
            return 0;
        }
        let slots = self.buckets.len() as u64;
        // After a long stall one revolution visits every bucket; no need for more.
        let first = self.current_tick.max((now_tick + 1).saturating_sub(slots));
        let mut fired = 0;
        for tick in first..=now_tick {
            let bucket = (tick & (slots - 1)) as usize;
            let mut cursor = self.buckets.get(bucket).copied().unwrap_or(NIL);
            while let Some(node) = self.nodes.get(cursor as usize).copied() {
                let index = cursor;
                cursor = node.next;
                if node.deadline_tick <= now_tick {
                    self.unlink(index);
                    self.release(index);
                    fired += 1;
                    f(node.key);
                }
            }
        }
        self.current_tick = now_tick + 1;
        fired
    }

    /// Milliseconds from `now_ms` until the next tick boundary that may hold a timer,
    /// or `None` when nothing is armed: the reactor's wait bound.
    pub fn next_wake_ms(&self, now_ms: u64) -> Option<u64> {
        (self.len > 0).then(|| self.tick_ms - now_ms % self.tick_ms)
    }

    /// Armed timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn link(&mut self, index: u32, deadline_tick: u64) {
        let bucket = (deadline_tick & (self.buckets.len() as u64 - 1)) as usize;
        let Some(head) = self.buckets.get_mut(bucket) else {
            return;
        };
        let old_head = *head;
        *head = index;
        if let Some(node) = self.nodes.get_mut(index as usize) {
            node.prev = NIL;
            node.next = old_head;
        }
        if let Some(old) = self.nodes.get_mut(old_head as usize) {
            old.prev = index;
        }
    }

    fn unlink(&mut self, index: u32) {
        let Some(node) = self.nodes.get(index as usize).copied() else {
            return;
        };
        if let Some(next) = self.nodes.get_mut(node.next as usize) {
            next.prev = node.prev;
        }
        if let Some(prev) = self.nodes.get_mut(node.prev as usize) {
            prev.next = node.next;
        } else {
            let bucket = (node.deadline_tick & (self.buckets.len() as u64 - 1)) as usize;
            if let Some(head) = self.buckets.get_mut(bucket) {
                *head = node.next;
            }
        }
    }

    fn release(&mut self, index: u32) {
        if let Some(node) = self.nodes.get_mut(index as usize) {
            node.armed = false;
            node.prev = NIL;
            node.next = self.free;
            self.free = index;
            self.len -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expired(wheel: &mut TimerWheel, now: u64) -> Vec<u64> {
        let mut keys = Vec::new();
        wheel.expire(now, |k| keys.push(k));
        keys.sort_unstable();
        keys
    }

    #[test]
    fn fires_at_deadline_never_before() {
        let mut w = TimerWheel::with_capacity(16, 1_000);
        w.insert(1_000 + 10_000, 1).unwrap();
        w.insert(1_000 + 30_000, 2).unwrap();
        assert!(expired(&mut w, 10_999).is_empty());
        assert_eq!(expired(&mut w, 11_000), [1]);
        assert!(expired(&mut w, 30_999).is_empty());
        assert_eq!(expired(&mut w, 31_005), [2]);
        assert!(w.is_empty());
    }

    #[test]
    fn deadlines_beyond_one_revolution_wait_their_turn() {
        // 8 buckets of 10 ms: 80 ms per revolution.
        let mut w = TimerWheel::new(10, 8, 4, 0);
        w.insert(250, 7).unwrap();
        for now in (0..250).step_by(10) {
            assert!(expired(&mut w, now).is_empty(), "fired early at {now}");
        }
        assert_eq!(expired(&mut w, 250), [7]);
    }

    #[test]
    fn cancel_disarms_and_stale_ids_are_ignored() {
        let mut w = TimerWheel::with_capacity(4, 0);
        let a = w.insert(100, 1).unwrap();
        let b = w.insert(100, 2).unwrap();
        assert_eq!(w.cancel(a), Some(1));
        assert_eq!(w.cancel(a), None);
        // The slot is reused with a new generation; the old id must not cancel it.
        let c = w.insert(100, 3).unwrap();
        assert_eq!(w.cancel(a), None);
        assert_eq!(expired(&mut w, 100), [2, 3]);
        assert_eq!(w.cancel(b), None);
        assert_eq!(w.cancel(c), None);
    }

    #[test]
    fn capacity_is_bounded_and_slots_are_reused() {
        let mut w = TimerWheel::with_capacity(2, 0);
        w.insert(10, 1).unwrap();
        w.insert(20, 2).unwrap();
        assert_eq!(w.insert(30, 3), Err(TimerError::Full { limit: 2 }));
        assert_eq!(expired(&mut w, 20), [1, 2]);
        w.insert(30, 3).unwrap();
        w.insert(40, 4).unwrap();
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn the_slab_grows_to_the_most_armed_at_once() {
        let mut w = TimerWheel::with_capacity(1_000, 0);
        for round in 0..10u64 {
            let ids: Vec<TimerId> = (0..5).map(|k| w.insert(100 + round, k).unwrap()).collect();
            for id in ids {
                w.cancel(id).unwrap();
            }
        }
        assert_eq!(w.nodes.len(), 5, "cancelled nodes are reused");
    }

    #[test]
    fn a_long_stall_fires_everything_due_once() {
        let mut w = TimerWheel::new(10, 16, 64, 0);
        for k in 0..50 {
            w.insert(k * 37, k).unwrap();
        }
        let keys = expired(&mut w, 1_000_000);
        assert_eq!(keys, (0..50).collect::<Vec<_>>());
        assert!(expired(&mut w, 2_000_000).is_empty());
    }

    #[test]
    fn past_deadlines_fire_on_the_next_expire() {
        let mut w = TimerWheel::with_capacity(4, 5_000);
        w.expire(5_000, |_| {});
        w.insert(10, 1).unwrap();
        assert_eq!(expired(&mut w, 5_010), [1]);
        assert_eq!(w.next_wake_ms(5_013), None);
        w.insert(6_000, 2).unwrap();
        assert_eq!(w.next_wake_ms(5_013), Some(7));
    }
}
