//! One io_uring per core thread: queues operations, submits them in batches and
//! hands completions back to the caller's loop.
//!
//! `user_data` belongs to the caller (the server packs slot, generation and op
//! kind into it). The reactor only looks at it to keep multishot operations
//! alive: when a multishot accept/recv ends without an error the caller should
//! see (the kernel stops one after CQ pressure, or the buffer ring ran dry), the
//! reactor re-arms it itself and reports the completion with `more()` still true.
//!
//! Every multishot receive the caller armed ends with exactly one completion whose
//! `more()` is false, even when the kernel never sees its end: a receive parked for
//! lack of buffers and then dropped by [`Reactor::close`]/[`Reactor::cancel_fd`]
//! ends with a synthetic `-ECANCELED`, and one the reactor could not re-arm (the
//! backlog was full) ends with its own result or `-ENOBUFS`. So a caller that counts
//! operations in flight per connection can free the connection on that count alone.
//!
//! # Files
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the [`Reactor`] type: its state, construction, receive buffers, counters |
//! | `setup.rs` | [`ReactorConfig`], [`ReactorFeatures`] and building the ring (feature fallbacks) |
//! | `submit.rs` | queuing SQEs, the bounded backlog behind a full SQ, `io_uring_enter` |
//! | `completions.rs` | [`Completion`] and draining the CQ (overflowed completions included) |
//! | `multishot.rs` | multishot accept/recv: tracking, re-arming, buffer starvation |
//! | `ops.rs` | single-shot operations other than sends: connect, close, cancel, eventfd read, `MSG_RING` |
//! | `send.rs` | send, `sendmsg`, zero-copy `sendmsg` and fixed-buffer sends from the registered region |
//! | `stats.rs` | [`ReactorStats`] |
//! | `teardown.rs` | [`Reactor::quiesce`] and the reactor's `Drop` |

mod completions;
mod multishot;
mod ops;
mod send;
mod setup;
mod stats;
mod submit;
mod teardown;

use std::collections::VecDeque;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Instant;

use io_uring::{squeue, IoUring};

use super::buf_ring::BufRing;
use super::int_hash::IntHashMap;
use super::region::RegionMem;

pub use completions::Completion;
pub use setup::{ReactorConfig, ReactorFeatures};
pub use stats::ReactorStats;
pub use submit::SubmitError;
pub use teardown::QUIESCE_USER_DATA;

use multishot::Multishot;
use setup::build_ring;

/// The buffer group id our provided-buffer ring is registered under.
const BUFFER_GROUP: u16 = 0;

/// The per-core io_uring event loop core. Not `Send`: create it on the thread that uses it
/// (`SINGLE_ISSUER` requires that anyway).
///
/// Teardown order (its `Drop`): cancel everything, wait until the kernel holds no
/// operation ([`Reactor::quiesce`]), unregister the buffer ring and the region,
/// close the ring, and only then free the memory the ring pointed at (`buffers`;
/// `region` is an `Arc` whose memory also outlives every staged copy). If the
/// kernel does not finish in time that memory is leaked, never freed under it.
/// `ring` and `buffers` are `ManuallyDrop` so this order does not depend on the
/// order of the fields.
pub struct Reactor {
    ring: ManuallyDrop<IoUring>,
    buffers: ManuallyDrop<BufRing>,
    /// The registered send region (fixed buffer [`REGION_BUF_INDEX`]), if any.
    region: Option<Arc<RegionMem>>,
    /// Operations the kernel holds: SQEs handed over minus final CQEs (no `MORE`).
    in_kernel: u64,
    /// Set by [`Reactor::quiesce`]: new operations are refused.
    quiescing: bool,
    features: ReactorFeatures,
    /// Operations waiting for SQ space, in order; nothing skips ahead of them. The
    /// flag says whether the op produces a final CQE (counted in `in_kernel`).
    backlog: VecDeque<(squeue::Entry, bool)>,
    backlog_limit: usize,
    /// Live multishot operations by user_data, consulted only when one stops. The
    /// table is consulted on every single-shot completion too (a send has no MORE
    /// flag), hence the cheap hasher.
    multishot: IntHashMap<u64, Multishot>,
    /// The live multishot receive of each fd (one per fd, as the server arms them), so
    /// closing an fd finds its receive without scanning.
    recv_fds: IntHashMap<RawFd, u64>,
    /// Receives stopped by ENOBUFS, oldest first, re-armed as the caller recycles
    /// buffers (see `rearm_starved`).
    starved: VecDeque<(u64, RawFd)>,
    /// Final completions the kernel will never post (receives dropped while parked,
    /// or not re-armed), handed to the caller by the next `drain_completions`.
    /// Bounded: at most one per live multishot receive.
    synthetic: VecDeque<Completion>,
    /// Completions of the current drain, reused to avoid allocating per turn.
    batch: Vec<Completion>,
    stats: ReactorStats,
    created: Instant,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Reactor {
    /// Creates the ring, trying `SINGLE_ISSUER | DEFER_TASKRUN`, then `COOP_TASKRUN`,
    /// then a plain ring, and registers the provided-buffer ring.
    pub fn new(cfg: &ReactorConfig) -> io::Result<Reactor> {
        let buffers = BufRing::new(cfg.recv_buffers, cfg.recv_buffer_size)?;
        let (ring, features) = build_ring(cfg)?;
        // SAFETY: the ring memory lives in `buffers`, which the reactor owns and keeps
        // until after unregistering it in Drop.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                buffers.ring_addr(),
                buffers.entries(),
                BUFFER_GROUP,
                0,
            )?;
        }
        Ok(Reactor {
            ring: ManuallyDrop::new(ring),
            buffers: ManuallyDrop::new(buffers),
            region: None,
            in_kernel: 0,
            quiescing: false,
            features,
            backlog: VecDeque::new(),
            backlog_limit: cfg.backlog_limit.max(1),
            multishot: IntHashMap::default(),
            recv_fds: IntHashMap::default(),
            starved: VecDeque::new(),
            synthetic: VecDeque::new(),
            batch: Vec::with_capacity(cfg.entries as usize),
            stats: ReactorStats::default(),
            created: Instant::now(),
            _not_send: std::marker::PhantomData,
        })
    }

    /// What the kernel accepted at setup.
    pub fn features(&self) -> ReactorFeatures {
        self.features
    }

    /// The ring's fd, e.g. as a target for `IORING_OP_MSG_RING`.
    pub fn ring_fd(&self) -> RawFd {
        use std::os::fd::AsRawFd;
        self.ring.as_raw_fd()
    }

    /// Operations the kernel holds (handed over, final completion not yet drained).
    pub fn in_kernel(&self) -> u64 {
        self.in_kernel
    }

    /// The first `len` bytes of a received buffer the caller still holds.
    pub fn recv_buffer(&self, buffer_id: u16, len: usize) -> Option<&[u8]> {
        self.buffers.data(buffer_id, len)
    }

    /// Returns a received buffer to the kernel. Unknown or already recycled ids are
    /// ignored (and logged), so a double recycle cannot corrupt the ring. Receives
    /// the empty ring stopped are re-armed by the next `submit_and_wait`.
    pub fn recycle_buffer(&mut self, buffer_id: u16) {
        if !self.buffers.recycle(buffer_id) {
            tracing::warn!(buffer_id, "recycle of a buffer the caller does not hold");
        }
    }

    /// Size of each receive buffer.
    pub fn recv_buffer_size(&self) -> u32 {
        self.buffers.buffer_size()
    }

    /// Counters since creation.
    pub fn stats(&self) -> ReactorStats {
        let mut stats = self.stats;
        stats.busy = self.created.elapsed().saturating_sub(stats.idle);
        stats
    }
}
