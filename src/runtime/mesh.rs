//! The cross-core mesh: two bounded SPSC rings (lanes) per ordered pair of
//! cores, and a wake-up per core so a sleeping core notices new items.
//!
//! # Lanes
//!
//! Control items (subscriptions, snapshots, stream ends, kicks, edge decisions)
//! must never be lost; media items may be, when a peer falls hopelessly behind.
//! So each pair has a control ring and a media ring, each with a backlog behind
//! it on the sending core: the control backlog is never cut, the media backlog
//! is bounded and `send` refuses (drops) past it. Every item entering either
//! ring takes the pair's next stamp, and the receiver hands items out in stamp
//! order, so both lanes together behave as one FIFO per pair: a snapshot is
//! applied before the frames sent after it, a stream end after the frames sent
//! before it. The only reordering is on the sending core: a control item may
//! overtake media still in the media backlog (that is the point of the lane),
//! while media waits for any backed-up control item to go first.
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

use std::collections::VecDeque;
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

/// Which queue of a core pair an item takes (DESIGN.md "Cross-core fan-out").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Never dropped: a full control ring backs up into an unbounded per-target
    /// queue (its length is reported by [`CoreLink::backlog`] so the caller can
    /// push back on whatever generates control traffic).
    Control,
    /// May be dropped: a full media ring backs up into a per-target queue of at
    /// most [`MeshConfig::media_backlog`] items, past which `send` refuses.
    Media,
}

/// Sizes of a mesh's queues, per ordered core pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeshConfig {
    /// Media ring capacity, items (a power of two).
    pub media_ring: usize,
    /// Control ring capacity, items (a power of two).
    pub control_ring: usize,
    /// Most media items backed up behind a full media ring.
    pub media_backlog: usize,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            media_ring: 8192,
            control_ring: 1024,
            media_backlog: 1 << 16,
        }
    }
}

/// Why [`CoreLink::send`] handed an item back.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused<T> {
    /// No such peer: `to` is this core or out of range.
    NoRoute(T),
    /// A media item found its ring and its backlog full: it is dropped.
    Full(T),
}

/// An item and its place in the pair's single send order (both lanes share one
/// counter, so the receiver can replay the exact order in which items entered
/// the rings).
struct Stamped<T> {
    stamp: u64,
    item: T,
}

/// Our side of the queues to one peer.
struct Outbound<T> {
    control: Producer<Stamped<T>>,
    media: Producer<Stamped<T>>,
    /// Control items waiting for room; never dropped.
    control_backlog: VecDeque<T>,
    /// Media items waiting for room; at most `MeshConfig::media_backlog`.
    media_backlog: VecDeque<T>,
    /// Stamp of the next item to enter either ring.
    next_stamp: u64,
    /// Sent to since the last `flush_wakeups`.
    dirty: bool,
}

impl<T> Outbound<T> {
    fn push(&mut self, lane: Lane, item: T) -> Result<(), T> {
        let ring = match lane {
            Lane::Control => &self.control,
            Lane::Media => &self.media,
        };
        ring.push(Stamped {
            stamp: self.next_stamp,
            item,
        })
        .map_err(|s| s.item)?;
        self.next_stamp += 1;
        self.dirty = true;
        Ok(())
    }

    /// Moves backed-up items into the rings: control first, and media only once
    /// no control item waits, so media never overtakes control.
    fn flush(&mut self) {
        while let Some(item) = self.control_backlog.pop_front() {
            if let Err(item) = self.push(Lane::Control, item) {
                self.control_backlog.push_front(item);
                return;
            }
        }
        while let Some(item) = self.media_backlog.pop_front() {
            if let Err(item) = self.push(Lane::Media, item) {
                self.media_backlog.push_front(item);
                return;
            }
        }
    }
}

/// Our side of the queues from one peer.
struct Inbound<T> {
    control: Consumer<Stamped<T>>,
    media: Consumer<Stamped<T>>,
    /// Stamp of the next item to hand out.
    next_stamp: u64,
}

impl<T> Inbound<T> {
    /// The next item in send order, from whichever lane holds it.
    fn take(&mut self) -> Option<T> {
        for attempt in 0..2 {
            let want = self.next_stamp;
            let control = self.control.peek().map(|s| s.stamp);
            let media = self.media.peek().map(|s| s.stamp);
            let lane = if control == Some(want) {
                Lane::Control
            } else if media == Some(want) {
                Lane::Media
            } else if control.is_none() && media.is_none() {
                return None;
            } else if attempt == 0 {
                // A lane that looked empty may have been filled after we looked;
                // seeing a later stamp on the other lane guarantees a second look
                // finds the wanted one (the producer pushed it first).
                continue;
            } else {
                // Unreachable while the producer stamps in push order; resync
                // rather than stall the pair forever.
                tracing::error!(
                    want,
                    ?control,
                    ?media,
                    "mesh: stamp out of order; resyncing"
                );
                debug_assert!(
                    false,
                    "mesh stamp {want} missing: control {control:?}, media {media:?}"
                );
                if control.unwrap_or(u64::MAX) < media.unwrap_or(u64::MAX) {
                    Lane::Control
                } else {
                    Lane::Media
                }
            };
            let ring = match lane {
                Lane::Control => &self.control,
                Lane::Media => &self.media,
            };
            let stamped = ring.pop()?;
            self.next_stamp = stamped.stamp + 1;
            return Some(stamped.item);
        }
        None
    }

    fn is_empty(&self) -> bool {
        self.control.is_empty() && self.media.is_empty()
    }
}

/// Builds the mesh.
pub struct Mesh;

impl Mesh {
    /// Creates `n` links, one per core, with queues sized by `config`.
    /// Give link `i` to core `i`. (Named `new` because the mesh *is* its links.)
    #[allow(clippy::new_ret_no_self)]
    pub fn new<T: Send>(n: usize, config: MeshConfig) -> Result<Vec<CoreLink<T>>, MeshError> {
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
        // pairs[from][to]
        let mut outbound: Vec<Vec<Option<Outbound<T>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut inbound: Vec<Vec<Option<Inbound<T>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        for from in 0..n {
            for to in 0..n {
                if from == to {
                    continue;
                }
                let (control_tx, control_rx) = spsc::channel(config.control_ring)?;
                let (media_tx, media_rx) = spsc::channel(config.media_ring)?;
                if let Some(slot) = outbound.get_mut(from).and_then(|row| row.get_mut(to)) {
                    *slot = Some(Outbound {
                        control: control_tx,
                        media: media_tx,
                        control_backlog: VecDeque::new(),
                        media_backlog: VecDeque::new(),
                        next_stamp: 0,
                        dirty: false,
                    });
                }
                if let Some(slot) = inbound.get_mut(to).and_then(|row| row.get_mut(from)) {
                    *slot = Some(Inbound {
                        control: control_rx,
                        media: media_rx,
                        next_stamp: 0,
                    });
                }
            }
        }
        Ok(outbound
            .into_iter()
            .zip(inbound)
            .enumerate()
            .map(|(core, (outbound, inbound))| CoreLink {
                core,
                outbound,
                inbound,
                wakers: Arc::clone(&wakers),
                media_backlog_cap: config.media_backlog,
                wakes_sent: 0,
            })
            .collect())
    }
}

/// One core's end of the mesh: queues to and from every other core.
pub struct CoreLink<T> {
    core: usize,
    /// Indexed by target core; `None` for ourselves.
    outbound: Vec<Option<Outbound<T>>>,
    /// Indexed by source core; `None` for ourselves.
    inbound: Vec<Option<Inbound<T>>>,
    wakers: Arc<[Waker]>,
    media_backlog_cap: usize,
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

    fn sized(media_ring: usize, control_ring: usize, media_backlog: usize) -> MeshConfig {
        MeshConfig {
            media_ring,
            control_ring,
            media_backlog,
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(matches!(
            Mesh::new::<u8>(0, MeshConfig::default()),
            Err(MeshError::TooManyCores { .. })
        ));
        assert!(matches!(
            Mesh::new::<u8>(2, sized(3, 4, 0)),
            Err(MeshError::Ring(_))
        ));
        assert!(matches!(
            Mesh::new::<u8>(2, sized(4, 3, 0)),
            Err(MeshError::Ring(_))
        ));
    }

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

    #[test]
    fn one_wake_per_target_until_it_drains() {
        let mut links = Mesh::new::<u32>(2, sized(64, 64, 0)).unwrap();
        for i in 0..10 {
            links[0].send(1, Lane::Media, i).unwrap();
        }
        assert_eq!(links[0].flush_wakeups(), 1, "one wake for ten items");
        links[0].send(1, Lane::Control, 10).unwrap();
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
        links[0].send(1, Lane::Media, 11).unwrap();
        assert_eq!(
            links[0].flush_wakeups(),
            1,
            "drained, so it may sleep again: wake"
        );
        assert_eq!(links[0].flush_wakeups(), 0, "nothing sent since");
    }

    #[test]
    fn items_left_by_the_batch_cap_keep_the_core_awake() {
        let mut links = Mesh::new::<u32>(2, sized(2 * DRAIN_BATCH, 2, 0)).unwrap();
        for i in 0..(DRAIN_BATCH as u32 + 5) {
            links[0].send(1, Lane::Media, i).unwrap();
        }
        assert_eq!(links[1].drain(|_, _| {}), DRAIN_BATCH);
        let mut counter = 0u64;
        // SAFETY: reading 8 bytes into a live u64 from our eventfd (nonblocking).
        let n = unsafe { libc::read(links[1].wake_fd(), (&mut counter as *mut u64).cast(), 8) };
        assert_eq!(n, 8, "self-wake written");
        assert_eq!(links[1].drain(|_, _| {}), 5);
    }

    #[test]
    fn full_media_ring_backs_up_then_refuses() {
        let mut links = Mesh::new::<u32>(2, sized(2, 2, 1)).unwrap();
        links[1].send(0, Lane::Media, 1).unwrap();
        links[1].send(0, Lane::Media, 2).unwrap();
        links[1].send(0, Lane::Media, 3).unwrap();
        assert_eq!(links[1].backlog(), (0, 1));
        assert_eq!(links[1].send(0, Lane::Media, 4), Err(Refused::Full(4)));
        let mut got = Vec::new();
        links[0].drain(|_, x| got.push(x));
        links[1].flush_backlogs();
        links[0].drain(|_, x| got.push(x));
        assert_eq!(got, [1, 2, 3]);
        assert_eq!(links[1].backlog(), (0, 0));
    }

    #[test]
    fn a_full_control_ring_backs_up_without_limit_and_drains_in_order() {
        let mut links = Mesh::new::<u32>(2, sized(2, 2, 0)).unwrap();
        for i in 0..100 {
            links[0].send(1, Lane::Control, i).unwrap();
        }
        assert_eq!(links[0].backlog(), (98, 0));
        assert_eq!(
            links[0].send(1, Lane::Media, 100),
            Err(Refused::Full(100)),
            "media never jumps control"
        );
        let mut got = Vec::new();
        while got.len() < 100 {
            links[0].flush_backlogs();
            assert!(links[1].drain(|_, x| got.push(x)) > 0);
        }
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(links[0].backlog(), (0, 0));
    }

    #[test]
    fn the_receiver_replays_the_send_order_across_lanes() {
        let mut links = Mesh::new::<u32>(2, sized(8, 8, 8)).unwrap();
        let lanes = [
            Lane::Control,
            Lane::Media,
            Lane::Media,
            Lane::Control,
            Lane::Media,
            Lane::Control,
            Lane::Control,
        ];
        for (i, lane) in lanes.into_iter().enumerate() {
            links[0].send(1, lane, i as u32).unwrap();
        }
        let mut got = Vec::new();
        links[1].drain(|_, x| got.push(x));
        assert_eq!(got, [0, 1, 2, 3, 4, 5, 6]);
    }

    /// Two threads, tiny rings, lanes chosen pseudo-randomly: the receiver sees
    /// every item, each lane in order, and no media item ahead of a control item
    /// sent before it (the stamp merge holds under real concurrency).
    #[test]
    fn two_threads_keep_the_pair_order_across_lanes() {
        const COUNT: u32 = 100_000;
        let mut links = Mesh::new::<(bool, u32)>(2, sized(2, 2, COUNT as usize)).unwrap();
        let (mut rx, mut tx) = (links.pop().unwrap(), links.pop().unwrap());
        let producer = std::thread::spawn(move || {
            let mut x = 0x9e37_79b9u32;
            for n in 0..COUNT {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let control = x.is_multiple_of(4);
                let lane = if control { Lane::Control } else { Lane::Media };
                assert!(tx.send(1, lane, (control, n)).is_ok());
                tx.flush_backlogs();
            }
            while tx.backlog() != (0, 0) {
                tx.flush_backlogs();
                std::thread::yield_now();
            }
        });
        let mut got = Vec::with_capacity(COUNT as usize);
        while got.len() < COUNT as usize {
            if rx.drain(|_, item| got.push(item)) == 0 {
                std::thread::yield_now();
            }
        }
        producer.join().unwrap();
        let mut last = [None::<u32>; 2];
        let mut last_control_seen = None::<u32>;
        let mut controls_sent_before = 0usize;
        let all_controls: Vec<u32> = {
            let mut c: Vec<u32> = got.iter().filter(|(c, _)| *c).map(|&(_, n)| n).collect();
            c.sort_unstable();
            c
        };
        for &(control, n) in &got {
            let lane = usize::from(control);
            assert!(last[lane].is_none_or(|p| p < n), "lane out of order at {n}");
            last[lane] = Some(n);
            if control {
                last_control_seen = Some(n);
                controls_sent_before += 1;
            } else {
                let sent_before = all_controls.partition_point(|&c| c < n);
                assert!(
                    controls_sent_before >= sent_before,
                    "media {n} overtook control (last {last_control_seen:?})"
                );
            }
        }
        let mut ns: Vec<u32> = got.iter().map(|&(_, n)| n).collect();
        ns.sort_unstable();
        assert_eq!(ns, (0..COUNT).collect::<Vec<_>>());
    }

    /// A deliberately tiny ring and a receiver that drains rarely: every control
    /// item arrives, in order, and never behind media sent after it; only media is
    /// refused.
    #[test]
    fn control_is_never_dropped_with_a_tiny_ring() {
        let mut links = Mesh::new::<(Lane, u32)>(2, sized(2, 2, 4)).unwrap();
        let (mut sent_control, mut refused_media) = (0u32, 0u32);
        // (lane, index) in send order, as accepted by `send`.
        let mut accepted: Vec<(Lane, u32)> = Vec::new();
        let mut got: Vec<(Lane, u32)> = Vec::new();
        for round in 0..200u32 {
            for i in 0..5u32 {
                let n = round * 5 + i;
                let lane = if n % 3 == 0 {
                    Lane::Control
                } else {
                    Lane::Media
                };
                if lane == Lane::Control {
                    sent_control += 1;
                }
                match links[0].send(1, lane, (lane, n)) {
                    Ok(()) => accepted.push((lane, n)),
                    Err(Refused::Full((Lane::Media, _))) => refused_media += 1,
                    Err(other) => panic!("control refused: {other:?}"),
                }
            }
            links[0].flush_backlogs();
            if round % 7 == 0 {
                links[1].drain(|_, item| got.push(item));
            }
        }
        while links[0].backlog() != (0, 0) || got.len() < accepted.len() {
            links[0].flush_backlogs();
            assert!(links[1].drain(|_, item| got.push(item)) > 0 || links[0].backlog() != (0, 0));
        }
        assert!(refused_media > 0, "the tiny ring must have overflowed");
        let controls: Vec<u32> = got
            .iter()
            .filter(|(l, _)| *l == Lane::Control)
            .map(|&(_, n)| n)
            .collect();
        assert_eq!(
            controls.len() as u32,
            sent_control,
            "every control item arrived"
        );
        assert!(controls.windows(2).all(|w| w[0] < w[1]), "control in order");
        let media: Vec<u32> = got
            .iter()
            .filter(|(l, _)| *l == Lane::Media)
            .map(|&(_, n)| n)
            .collect();
        assert!(media.windows(2).all(|w| w[0] < w[1]), "media in order");
        // Media never overtakes control sent before it.
        for (pos, &(lane, n)) in got.iter().enumerate() {
            if lane == Lane::Media {
                let earlier_controls = controls.iter().filter(|&&c| c < n).count();
                let seen = got
                    .iter()
                    .take(pos)
                    .filter(|(l, _)| *l == Lane::Control)
                    .count();
                assert!(seen >= earlier_controls, "media {n} overtook control");
            }
        }
        let mut sorted_accepted = accepted.clone();
        sorted_accepted.sort_by_key(|&(_, n)| n);
        let mut sorted_got = got.clone();
        sorted_got.sort_by_key(|&(_, n)| n);
        assert_eq!(
            sorted_got, sorted_accepted,
            "everything accepted arrived once"
        );
    }
}
