//! [`CoreLink`], one core's end of the mesh: sends to every other core (with the
//! lanes' backlogs), drains what they sent in each pair's order, and defers
//! wake-ups to one per target core and loop turn.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use super::pair::{Inbound, Outbound};
use super::waker::Waker;
use super::{Lane, Refused};

/// Most items one `drain` takes from one peer, so one busy peer cannot starve the loop.
pub const DRAIN_BATCH: usize = 1024;

/// One core's end of the mesh: queues to and from every other core.
pub struct CoreLink<T> {
    pub(super) core: usize,
    /// Indexed by target core; `None` for ourselves.
    pub(super) outbound: Vec<Option<Outbound<T>>>,
    /// Indexed by source core; `None` for ourselves.
    pub(super) inbound: Vec<Option<Inbound<T>>>,
    pub(super) wakers: Arc<[Waker]>,
    pub(super) media_backlog_cap: usize,
    pub(super) wakes_sent: u64,
}

impl<T> CoreLink<T> {
    /// This link's core index.
    pub fn core(&self) -> usize {
        self.core
    }

    /// Number of cores in the mesh.
    pub fn cores(&self) -> usize {
        self.outbound.len()
    }

    /// The eventfd to keep a read armed on (see [`Reactor::read_eventfd`](crate::runtime::Reactor::read_eventfd)).
    pub fn wake_fd(&self) -> RawFd {
        self.wakers.get(self.core).map_or(-1, |w| w.fd.as_raw_fd())
    }

    /// Queues `item` for core `to` on `lane`. Items reach the peer in the order
    /// they entered its rings; a control item may overtake media items still
    /// backed up here, never the reverse. A control item is refused only for a
    /// bad `to`; a media item also when its ring and backlog are full (then it
    /// is dropped: count it). The wake-up is deferred to `flush_wakeups`.
    pub fn send(&mut self, to: usize, lane: Lane, item: T) -> Result<(), Refused<T>> {
        let Some(Some(out)) = self.outbound.get_mut(to) else {
            return Err(Refused::NoRoute(item));
        };
        match lane {
            Lane::Control => {
                if !out.control_backlog.is_empty() {
                    out.control_backlog.push_back(item);
                } else if let Err(item) = out.push(Lane::Control, item) {
                    out.control_backlog.push_back(item);
                }
                Ok(())
            }
            Lane::Media => {
                let item = if out.control_backlog.is_empty() && out.media_backlog.is_empty() {
                    match out.push(Lane::Media, item) {
                        Ok(()) => return Ok(()),
                        Err(item) => item,
                    }
                } else {
                    item
                };
                if out.media_backlog.len() >= self.media_backlog_cap {
                    return Err(Refused::Full(item));
                }
                out.media_backlog.push_back(item);
                Ok(())
            }
        }
    }

    /// Moves backed-up items into rings that have room again. Call once per loop
    /// turn, before [`CoreLink::flush_wakeups`].
    pub fn flush_backlogs(&mut self) {
        for out in self.outbound.iter_mut().flatten() {
            out.flush();
        }
    }

    /// Items backed up here, summed over peers: `(control, media)`.
    pub fn backlog(&self) -> (usize, usize) {
        self.outbound.iter().flatten().fold((0, 0), |(c, m), out| {
            (c + out.control_backlog.len(), m + out.media_backlog.len())
        })
    }

    /// Wakes each core sent to since the last call, once. Call once per loop turn.
    /// Returns how many eventfd writes it made.
    pub fn flush_wakeups(&mut self) -> usize {
        let mut written = 0;
        for (to, out) in self.outbound.iter_mut().enumerate() {
            let Some(out) = out else { continue };
            if std::mem::take(&mut out.dirty) && self.wakers.get(to).is_some_and(Waker::wake) {
                written += 1;
            }
        }
        self.wakes_sent += written as u64;
        written
    }

    /// Takes what every other core sent us, calling `f(from_core, item)` in each
    /// peer's send order. Returns the number of items. Call every loop turn (and
    /// after our eventfd read completes).
    pub fn drain(&mut self, mut f: impl FnMut(usize, T)) -> usize {
        if let Some(own) = self.wakers.get(self.core) {
            own.notified.store(false, Ordering::SeqCst);
            fence(Ordering::SeqCst);
        }
        let mut taken = 0;
        let mut left_behind = false;
        for (from, peer) in self.inbound.iter_mut().enumerate() {
            let Some(peer) = peer else { continue };
            for _ in 0..DRAIN_BATCH {
                let Some(item) = peer.take() else { break };
                f(from, item);
                taken += 1;
            }
            left_behind |= !peer.is_empty();
        }
        if left_behind {
            // The batch cap left items queued: wake ourselves so the loop does not
            // go to sleep on them.
            if let Some(own) = self.wakers.get(self.core) {
                own.wake();
            }
        }
        taken
    }

    /// Eventfd writes made so far (for metrics: wake-ups per item).
    pub fn wakes_sent(&self) -> u64 {
        self.wakes_sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::mesh::tests::sized;
    use crate::runtime::mesh::Mesh;

    #[test]
    fn routes_between_every_pair_and_refuses_self() {
        let mut links = Mesh::new::<(usize, usize)>(3, sized(4, 4, 0)).unwrap();
        for (from, link) in links.iter_mut().enumerate() {
            for to in 0..3 {
                let lane = if to % 2 == 0 {
                    Lane::Control
                } else {
                    Lane::Media
                };
                let res = link.send(to, lane, (from, to));
                assert_eq!(res.is_ok(), from != to);
            }
            assert_eq!(
                link.send(7, Lane::Control, (0, 0)),
                Err(Refused::NoRoute((0, 0)))
            );
        }
        for (core, link) in links.iter_mut().enumerate() {
            let mut got = Vec::new();
            link.drain(|from, item| got.push((from, item)));
            got.sort_unstable();
            let want: Vec<_> = (0..3)
                .filter(|&f| f != core)
                .map(|f| (f, (f, core)))
                .collect();
            assert_eq!(got, want);
        }
    }
}
