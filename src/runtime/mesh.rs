//! The cross-core mesh: one bounded SPSC ring per ordered pair of cores, and a
//! wake-up per core so a sleeping core notices new items.
//!
//! # Why an eventfd, not `IORING_OP_MSG_RING`
//!
//! Each core arms a read of its own eventfd on its reactor
//! ([`Reactor::read_eventfd`](super::Reactor::read_eventfd)); senders write it.
//! A per-target `notified` flag (set by the first sender, cleared by the target
//! right before it drains) means a write happens only when the target may be
//! asleep and has not been told yet: a busy core gets no wake-ups at all, and a
//! loop turn sends at most one per target core, however many items it queued.
//! So the syscall cost MSG_RING would save is paid rarely, and the eventfd keeps
//! the mesh independent of the reactors: it is built before the core threads
//! exist (rings must be created on their own thread for `SINGLE_ISSUER`), needs
//! no ring fds exchanged, and works the same with any ring setup.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;

use thiserror::Error;

use super::spsc::{self, Consumer, Producer, SpscError};

/// Most cores a mesh connects (n² rings).
pub const MAX_CORES: usize = 256;
/// Most items one `drain` takes from one peer, so one busy peer cannot starve the loop.
pub const DRAIN_BATCH: usize = 1024;

/// Why a mesh could not be built.
#[derive(Debug, Error)]
pub enum MeshError {
    /// Core count outside `1..=MAX_CORES`.
    #[error("mesh of {cores} cores; limit is 1..={limit}")]
    TooManyCores {
        /// Requested cores.
        cores: usize,
        /// [`MAX_CORES`].
        limit: usize,
    },
    /// Bad ring capacity.
    #[error(transparent)]
    Ring(#[from] SpscError),
    /// The eventfd could not be created.
    #[error("eventfd: {0}")]
    EventFd(#[from] io::Error),
}

/// One core's wake-up: an eventfd plus whether someone already wrote it.
struct Waker {
    fd: OwnedFd,
    notified: AtomicBool,
}

impl Waker {
    fn new() -> io::Result<Waker> {
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(Waker {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            notified: AtomicBool::new(false),
        })
    }

    /// Writes the eventfd unless a wake is already pending; true if it wrote.
    fn wake(&self) -> bool {
        // Pairs with the fence in `CoreLink::drain`: either the target sees our
        // items, or we see its cleared flag and write.
        fence(Ordering::SeqCst);
        if self.notified.swap(true, Ordering::SeqCst) {
            return false;
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we keep open.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if n != 8 {
            // EAGAIN means the counter is saturated: the target is already awake-able.
            tracing::debug!(error = %io::Error::last_os_error(), "eventfd wake write");
        }
        true
    }
}

/// Builds the mesh.
pub struct Mesh;

impl Mesh {
    /// Creates `n` links, one per core, with rings of `capacity` items (power of two).
    /// Give link `i` to core `i`. (Named `new` because the mesh *is* its links.)
    #[allow(clippy::new_ret_no_self)]
    pub fn new<T: Send>(n: usize, capacity: usize) -> Result<Vec<CoreLink<T>>, MeshError> {
        if n == 0 || n > MAX_CORES {
            return Err(MeshError::TooManyCores {
                cores: n,
                limit: MAX_CORES,
            });
        }
        let wakers: Arc<[Waker]> = (0..n)
            .map(|_| Waker::new())
            .collect::<io::Result<Vec<_>>>()?
            .into();
        // rings[from][to]
        let mut producers: Vec<Vec<Option<Producer<T>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut consumers: Vec<Vec<Option<Consumer<T>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        for from in 0..n {
            for to in 0..n {
                if from == to {
                    continue;
                }
                let (tx, rx) = spsc::channel(capacity)?;
                if let Some(slot) = producers.get_mut(from).and_then(|row| row.get_mut(to)) {
                    *slot = Some(tx);
                }
                if let Some(slot) = consumers.get_mut(to).and_then(|row| row.get_mut(from)) {
                    *slot = Some(rx);
                }
            }
        }
        Ok(producers
            .into_iter()
            .zip(consumers)
            .enumerate()
            .map(|(core, (outbound, inbound))| CoreLink {
                core,
                outbound,
                inbound,
                wakers: Arc::clone(&wakers),
                dirty: vec![false; n],
                wakes_sent: 0,
            })
            .collect())
    }
}

/// One core's end of the mesh: rings to and from every other core.
pub struct CoreLink<T> {
    core: usize,
    /// Indexed by target core; `None` for ourselves.
    outbound: Vec<Option<Producer<T>>>,
    /// Indexed by source core; `None` for ourselves.
    inbound: Vec<Option<Consumer<T>>>,
    wakers: Arc<[Waker]>,
    /// Targets sent to since the last `flush_wakeups`.
    dirty: Vec<bool>,
    wakes_sent: u64,
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

    /// The eventfd to keep a read armed on (see [`Reactor::read_eventfd`](super::Reactor::read_eventfd)).
    pub fn wake_fd(&self) -> RawFd {
        self.wakers.get(self.core).map_or(-1, |w| w.fd.as_raw_fd())
    }

    /// Queues `item` for core `to`; gives it back if that ring is full or `to` is
    /// ourselves or out of range. The wake-up is deferred to `flush_wakeups`.
    pub fn send(&mut self, to: usize, item: T) -> Result<(), T> {
        let Some(Some(producer)) = self.outbound.get(to) else {
            return Err(item);
        };
        producer.push(item)?;
        if let Some(dirty) = self.dirty.get_mut(to) {
            *dirty = true;
        }
        Ok(())
    }

    /// Wakes each core sent to since the last call, once. Call once per loop turn.
    /// Returns how many eventfd writes it made.
    pub fn flush_wakeups(&mut self) -> usize {
        let mut written = 0;
        for (to, dirty) in self.dirty.iter_mut().enumerate() {
            if std::mem::take(dirty) && self.wakers.get(to).is_some_and(Waker::wake) {
                written += 1;
            }
        }
        self.wakes_sent += written as u64;
        written
    }

    /// Takes what every other core sent us, calling `f(from_core, item)`. Returns the
    /// number of items. Call every loop turn (and after our eventfd read completes).
    pub fn drain(&mut self, mut f: impl FnMut(usize, T)) -> usize {
        if let Some(own) = self.wakers.get(self.core) {
            own.notified.store(false, Ordering::SeqCst);
            fence(Ordering::SeqCst);
        }
        let mut taken = 0;
        let mut left_behind = false;
        for (from, consumer) in self.inbound.iter().enumerate() {
            if let Some(consumer) = consumer {
                taken += consumer.pop_batch(DRAIN_BATCH, |item| f(from, item));
                left_behind |= !consumer.is_empty();
            }
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

    #[test]
    fn rejects_bad_shapes() {
        assert!(matches!(
            Mesh::new::<u8>(0, 8),
            Err(MeshError::TooManyCores { .. })
        ));
        assert!(matches!(Mesh::new::<u8>(2, 3), Err(MeshError::Ring(_))));
    }

    #[test]
    fn routes_between_every_pair_and_refuses_self() {
        let mut links = Mesh::new::<(usize, usize)>(3, 4).unwrap();
        for (from, link) in links.iter_mut().enumerate() {
            for to in 0..3 {
                let res = link.send(to, (from, to));
                assert_eq!(res.is_ok(), from != to);
            }
            assert_eq!(link.send(7, (0, 0)), Err((0, 0)));
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

    #[test]
    fn one_wake_per_target_until_it_drains() {
        let mut links = Mesh::new::<u32>(2, 64).unwrap();
        for i in 0..10 {
            links[0].send(1, i).unwrap();
        }
        assert_eq!(links[0].flush_wakeups(), 1, "one wake for ten items");
        links[0].send(1, 10).unwrap();
        assert_eq!(
            links[0].flush_wakeups(),
            0,
            "target not drained yet: already notified"
        );
        let mut counter = 0u64;
        // SAFETY: reading 8 bytes into a live u64 from our eventfd.
        let n = unsafe { libc::read(links[1].wake_fd(), (&mut counter as *mut u64).cast(), 8) };
        assert_eq!((n, counter), (8, 1));
        assert_eq!(links[1].drain(|_, _| {}), 11);
        links[0].send(1, 11).unwrap();
        assert_eq!(
            links[0].flush_wakeups(),
            1,
            "drained, so it may sleep again: wake"
        );
        assert_eq!(links[0].flush_wakeups(), 0, "nothing sent since");
    }

    #[test]
    fn items_left_by_the_batch_cap_keep_the_core_awake() {
        let mut links = Mesh::new::<u32>(2, 2 * DRAIN_BATCH).unwrap();
        for i in 0..(DRAIN_BATCH as u32 + 5) {
            links[0].send(1, i).unwrap();
        }
        assert_eq!(links[1].drain(|_, _| {}), DRAIN_BATCH);
        let mut counter = 0u64;
        // SAFETY: reading 8 bytes into a live u64 from our eventfd (nonblocking).
        let n = unsafe { libc::read(links[1].wake_fd(), (&mut counter as *mut u64).cast(), 8) };
        assert_eq!(n, 8, "self-wake written");
        assert_eq!(links[1].drain(|_, _| {}), 5);
    }

    #[test]
    fn full_ring_hands_the_item_back() {
        let mut links = Mesh::new::<u32>(2, 2).unwrap();
        links[1].send(0, 1).unwrap();
        links[1].send(0, 2).unwrap();
        assert_eq!(links[1].send(0, 3), Err(3));
    }
}
