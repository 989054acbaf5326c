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

use std::collections::VecDeque;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use thiserror::Error;

use super::buf_ring::BufRing;
use super::int_hash::IntHashMap;
use super::region::{RegionMem, REGION_BUF_INDEX};

/// The buffer group id our provided-buffer ring is registered under.
const BUFFER_GROUP: u16 = 0;
/// `IORING_CQE_F_MORE` (the crate keeps its sys bindings private).
const CQE_F_MORE: u32 = 1 << 1;
/// `IORING_RECVSEND_FIXED_BUF`, in the SQE's `ioprio` of a send: the iovecs are
/// inside the registered buffer `buf_index` (for `SENDMSG_ZC`: kernel 6.15+).
const RECVSEND_FIXED_BUF: u16 = 1 << 2;
/// Byte offset of `buf_index` in an SQE (`struct io_uring_sqe`, the kernel ABI).
const SQE_BUF_INDEX_OFFSET: usize = 40;
/// `user_data` of the reactor's own cancel-everything in [`Reactor::quiesce`]; callers
/// must not use it.
pub const QUIESCE_USER_DATA: u64 = u64::MAX;
/// How long dropping a reactor waits for the kernel to finish what it holds.
const DROP_QUIESCE_LIMIT: Duration = Duration::from_secs(2);
/// Most times one drain asks the kernel to move overflowed completions into the CQ
/// ring, each flush moving up to a ring's worth: bounds the drain however fast
/// completions keep coming.
const MAX_OVERFLOW_FLUSHES: u32 = 64;

/// How the reactor's ring is set up.
#[derive(Clone, Debug)]
pub struct ReactorConfig {
    /// Submission queue size (the kernel rounds up to a power of two).
    pub entries: u32,
    /// Number of receive buffers in the provided-buffer ring; a power of two, at most 32768.
    pub recv_buffers: u16,
    /// Size of each receive buffer in bytes.
    pub recv_buffer_size: u32,
    /// Ask for `SINGLE_ISSUER | DEFER_TASKRUN`: completions are only produced when we
    /// ask for them, which batches task work and avoids IPIs. Falls back if refused.
    pub defer_taskrun: bool,
    /// Ask for a kernel SQ polling thread (exclusive with `defer_taskrun`).
    pub sqpoll: bool,
    /// Bound on operations queued while the submission queue is full.
    pub backlog_limit: usize,
}

impl Default for ReactorConfig {
    fn default() -> Self {
        ReactorConfig {
            entries: 4096,
            recv_buffers: 4096,
            recv_buffer_size: 16 * 1024,
            defer_taskrun: true,
            sqpoll: false,
            backlog_limit: 65536,
        }
    }
}

/// Which ring features the kernel accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReactorFeatures {
    /// `IORING_SETUP_SINGLE_ISSUER`.
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN`.
    pub defer_taskrun: bool,
    /// `IORING_SETUP_COOP_TASKRUN`.
    pub coop_taskrun: bool,
    /// `IORING_SETUP_SQPOLL`.
    pub sqpoll: bool,
    /// `IORING_FEAT_EXT_ARG`: waits with a timeout need no extra SQE.
    pub ext_arg: bool,
    /// `IORING_FEAT_NODROP`: completions are never dropped on CQ overflow.
    pub nodrop: bool,
}

/// Counters describing how hard the reactor works.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReactorStats {
    /// `io_uring_enter` calls.
    pub submits: u64,
    /// SQEs handed to the kernel.
    pub sqes_submitted: u64,
    /// CQEs delivered to the caller (plus those the reactor consumed itself).
    pub completions: u64,
    /// Send/sendmsg operations queued.
    pub sends: u64,
    /// Of those, zero-copy sends from the registered region (`IORING_RECVSEND_FIXED_BUF`).
    pub fixed_sends: u64,
    /// Multishot operations the reactor re-armed after they stopped.
    pub rearms: u64,
    /// Multishot receives that stopped because the buffer ring was empty.
    pub enobufs: u64,
    /// Times a drain found completions parked in the kernel's overflow list (the CQ
    /// ring was full) and had them moved into the ring.
    pub overflow_flushes: u64,
    /// Operations that went through the backlog because the SQ was full.
    pub backlogged: u64,
    /// Time spent outside `io_uring_enter` waits since the reactor was created.
    pub busy: Duration,
    /// Time spent blocked in `io_uring_enter` waiting for completions.
    pub idle: Duration,
}

impl ReactorStats {
    /// Mean number of sends per `io_uring_enter`, the batching we are after.
    pub fn sends_per_submit(&self) -> f64 {
        if self.submits == 0 {
            0.0
        } else {
            self.sends as f64 / self.submits as f64
        }
    }
}

/// A finished operation as reported by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The caller's tag given when queuing the operation.
    pub user_data: u64,
    /// Bytes transferred, a new fd, or `-errno`.
    pub result: i32,
    /// `IORING_CQE_F_*` flags.
    pub flags: u32,
}

impl Completion {
    /// True while the (multishot) operation keeps producing completions.
    pub fn more(&self) -> bool {
        cqueue::more(self.flags)
    }

    /// The provided buffer that holds this receive's bytes, if any.
    pub fn buffer_id(&self) -> Option<u16> {
        cqueue::buffer_select(self.flags)
    }

    /// For a zero-copy send: this CQE is the notification that the buffers are free.
    pub fn is_notification(&self) -> bool {
        cqueue::notif(self.flags)
    }

    /// The error, if the result is a negative errno.
    pub fn error(&self) -> Option<io::Error> {
        (self.result < 0).then(|| io::Error::from_raw_os_error(-self.result))
    }
}

/// Why an operation could not be queued.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SubmitError {
    /// The SQ is full and so is the bounded backlog behind it.
    #[error("submission backlog full ({len} operations queued, limit {limit})")]
    BacklogFull {
        /// Operations currently queued in the backlog.
        len: usize,
        /// The configured `backlog_limit`.
        limit: usize,
    },
    /// The reactor is being torn down ([`Reactor::quiesce`]): nothing new is queued.
    #[error("reactor is quiescing: no new operations")]
    Quiescing,
}

/// Which multishot operation a `user_data` stands for, to re-arm it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Multishot {
    Accept(RawFd),
    /// A receive armed in the kernel.
    Recv(RawFd),
    /// A receive parked in `starved`: not in the kernel.
    Starved(RawFd),
    /// A receive whose fd the caller closed or cancelled: it is never re-armed, since
    /// the fd number may already name another socket; its next final CQE ends it.
    Closing,
}

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

    /// Accepts connections on `listener` until cancelled; each CQE's result is a new fd.
    pub fn accept_multishot(&mut self, listener: RawFd, user_data: u64) -> Result<(), SubmitError> {
        self.multishot
            .insert(user_data, Multishot::Accept(listener));
        self.push_multishot(accept_entry(listener, user_data), user_data)
    }

    /// Receives on `fd` until EOF, error or cancel, into buffers from the provided ring.
    /// Each data CQE carries a `buffer_id()`: read it with [`Reactor::recv_buffer`], then
    /// [`Reactor::recycle_buffer`] it. `user_data` must be unique among live multishots,
    /// and an fd has at most one receive armed at a time.
    pub fn recv_multishot(&mut self, fd: RawFd, user_data: u64) -> Result<(), SubmitError> {
        self.multishot.insert(user_data, Multishot::Recv(fd));
        self.recv_fds.insert(fd, user_data);
        self.push_multishot(recv_entry(fd, user_data), user_data)
    }

    /// Queues a newly armed multishot; one that could not be queued is not tracked.
    fn push_multishot(&mut self, entry: squeue::Entry, user_data: u64) -> Result<(), SubmitError> {
        let res = self.push(entry);
        if res.is_err() {
            self.retire(user_data);
        }
        res
    }

    /// Queues a `sendmsg` with `MSG_NOSIGNAL`.
    ///
    /// # Safety
    /// `msg`, its iovec array and every buffer it points to must stay valid and
    /// unmoved until this operation's completion is drained. Keep at most one send
    /// in flight per socket: the kernel does not order concurrent sends.
    pub unsafe fn sendmsg(
        &mut self,
        fd: RawFd,
        msg: *const libc::msghdr,
        user_data: u64,
    ) -> Result<(), SubmitError> {
        let entry = opcode::SendMsg::new(types::Fd(fd), msg).flags(libc::MSG_NOSIGNAL as u32);
        self.push_send(entry.build(), user_data)
    }

    /// Queues a `send` of `len` bytes at `buf` with `MSG_NOSIGNAL`.
    ///
    /// # Safety
    /// The bytes must stay valid and unmoved until the completion is drained.
    pub unsafe fn send(
        &mut self,
        fd: RawFd,
        buf: *const u8,
        len: u32,
        user_data: u64,
    ) -> Result<(), SubmitError> {
        let entry = opcode::Send::new(types::Fd(fd), buf, len).flags(libc::MSG_NOSIGNAL);
        self.push_send(entry.build(), user_data)
    }

    /// Queues a zero-copy `sendmsg`. Two CQEs come back: the result (with `more()` set)
    /// and later a notification (`is_notification()`) once the kernel released the buffers.
    ///
    /// # Safety
    /// As [`Reactor::sendmsg`], but the buffers must live until the notification.
    pub unsafe fn sendmsg_zc(
        &mut self,
        fd: RawFd,
        msg: *const libc::msghdr,
        user_data: u64,
    ) -> Result<(), SubmitError> {
        let entry = opcode::SendMsgZc::new(types::Fd(fd), msg).flags(libc::MSG_NOSIGNAL as u32);
        self.push_send(entry.build(), user_data)
    }

    /// Registers `region` as fixed buffer [`REGION_BUF_INDEX`] (pinning it; see
    /// `runtime::region` for the cost). The reactor keeps the memory alive until its
    /// ring is gone. Fails when a region is already registered or the kernel refuses
    /// (e.g. `ENOMEM` from `RLIMIT_MEMLOCK`).
    pub fn register_region(&mut self, region: &Arc<RegionMem>) -> io::Result<()> {
        if self.region.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a send region is already registered",
            ));
        }
        let (ptr, len) = region.range();
        let iov = [libc::iovec {
            iov_base: ptr as *mut libc::c_void,
            iov_len: len,
        }];
        // SAFETY: the memory stays allocated while `self.region` holds its Arc, which is
        // released only after the ring is closed (Drop).
        unsafe { self.ring.submitter().register_buffers(&iov)? };
        self.region = Some(region.clone());
        Ok(())
    }

    /// Queues a zero-copy `sendmsg` that names the registered region
    /// (`IORING_RECVSEND_FIXED_BUF`) when every iovec of `msg` lies inside it, and a
    /// plain [`Reactor::sendmsg_zc`] otherwise (the kernel would fail a fixed send
    /// with any iovec outside the buffer). Returns whether the fixed path was taken.
    ///
    /// # Safety
    /// As [`Reactor::sendmsg_zc`].
    pub unsafe fn sendmsg_zc_registered(
        &mut self,
        fd: RawFd,
        msg: *const libc::msghdr,
        user_data: u64,
    ) -> Result<bool, SubmitError> {
        // SAFETY: the caller guarantees `msg` and its iovec array are valid.
        let fixed = self
            .region
            .as_ref()
            .is_some_and(|region| unsafe { all_iovecs_in(msg, region) });
        let mut entry = opcode::SendMsgZc::new(types::Fd(fd), msg).flags(libc::MSG_NOSIGNAL as u32);
        if fixed {
            entry = entry.ioprio(RECVSEND_FIXED_BUF);
        }
        let entry = if fixed {
            with_buf_index(entry.build(), REGION_BUF_INDEX)
        } else {
            entry.build()
        };
        self.push_send(entry, user_data)?;
        if fixed {
            self.stats.fixed_sends += 1;
        }
        Ok(fixed)
    }

    /// Cancels every operation the kernel holds, refuses new ones, and drains
    /// completions (each handed to `f`, which may no longer queue anything) until
    /// the kernel holds nothing or `limit` passes. Returns true when it holds nothing:
    /// only then may memory those operations point at be freed. Call it before
    /// dropping state the kernel reads or writes; the reactor's own `Drop` calls it too.
    pub fn quiesce(
        &mut self,
        limit: Duration,
        mut f: impl FnMut(&mut Reactor, Completion),
    ) -> bool {
        self.quiescing = true;
        // Queued behind a full SQ: never handed to the kernel, just dropped.
        self.backlog.clear();
        self.starved.clear();
        if self.in_kernel == 0 {
            return true;
        }
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(QUIESCE_USER_DATA);
        // SAFETY: no pointers in a cancel.
        if unsafe { self.ring.submission().push(&cancel) }.is_ok() {
            self.in_kernel += 1;
        }
        let deadline = Instant::now() + limit;
        while self.in_kernel > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if self
                .submit_and_wait(1, Some(left.min(Duration::from_millis(50))))
                .is_err()
            {
                break;
            }
            self.drain_completions(|r, c| {
                if c.user_data != QUIESCE_USER_DATA {
                    f(r, c)
                }
            });
        }
        if self.in_kernel > 0 {
            tracing::error!(
                in_kernel = self.in_kernel,
                "io_uring operations still in flight after quiesce"
            );
        }
        self.in_kernel == 0
    }

    /// Operations the kernel holds (handed over, final completion not yet drained).
    pub fn in_kernel(&self) -> u64 {
        self.in_kernel
    }

    /// Counts a send (queued or refused, as every caller's attempt) and queues it.
    fn push_send(&mut self, entry: squeue::Entry, user_data: u64) -> Result<(), SubmitError> {
        self.stats.sends += 1;
        self.push(entry.user_data(user_data))
    }

    /// Queues a `connect` of `fd` to the socket address at `addr` (`IORING_OP_CONNECT`).
    /// The completion's result is 0 on success or `-errno` (e.g. `-ECONNREFUSED`).
    ///
    /// # Safety
    /// `addr` must point to `len` valid bytes of a socket address that stay valid
    /// and unmoved until this operation's completion is drained.
    pub unsafe fn connect(
        &mut self,
        fd: RawFd,
        addr: *const libc::sockaddr,
        len: libc::socklen_t,
        user_data: u64,
    ) -> Result<(), SubmitError> {
        let entry = opcode::Connect::new(types::Fd(fd), addr, len)
            .build()
            .user_data(user_data);
        self.push(entry)
    }

    /// Closes `fd`; any multishot still armed on it is forgotten (cancel it first). A
    /// receive parked for lack of buffers on `fd` ends with a synthetic `-ECANCELED`
    /// completion from the next `drain_completions`.
    pub fn close(&mut self, fd: RawFd, user_data: u64) -> Result<(), SubmitError> {
        self.retire_recv_of(fd);
        self.push(
            opcode::Close::new(types::Fd(fd))
                .build()
                .user_data(user_data),
        )
    }

    /// Cancels every operation in flight on `fd`; they complete with `-ECANCELED`
    /// (a parked receive too, synthetically, from the next `drain_completions`).
    pub fn cancel_fd(&mut self, fd: RawFd, user_data: u64) -> Result<(), SubmitError> {
        self.retire_recv_of(fd);
        let builder = types::CancelBuilder::fd(types::Fd(fd)).all();
        self.push(
            opcode::AsyncCancel2::new(builder)
                .build()
                .user_data(user_data),
        )
    }

    /// Reads the 8-byte counter of eventfd `efd` into `*buf`: a cross-core wake-up.
    ///
    /// # Safety
    /// `buf` must stay valid until the completion is drained.
    pub unsafe fn read_eventfd(
        &mut self,
        efd: RawFd,
        buf: *mut u64,
        user_data: u64,
    ) -> Result<(), SubmitError> {
        let entry = opcode::Read::new(types::Fd(efd), buf.cast::<u8>(), 8)
            .build()
            .user_data(user_data);
        self.push(entry)
    }

    /// Posts a CQE with `user_data`/`result` into another ring (`IORING_OP_MSG_RING`),
    /// without producing a completion on ours.
    pub fn msg_ring(
        &mut self,
        target_ring_fd: RawFd,
        result: i32,
        user_data: u64,
    ) -> Result<(), SubmitError> {
        let entry = opcode::MsgRingData::new(types::Fd(target_ring_fd), result, user_data, None)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS);
        // No CQE on success: not counted as held by the kernel.
        self.push_counted(entry, false)
    }

    /// Submits everything queued and waits until `want` completions are ready or
    /// `timeout` passes. Returns the number of SQEs submitted. Interrupted waits and
    /// timeouts are not errors: drain whatever is there.
    pub fn submit_and_wait(&mut self, want: usize, timeout: Option<Duration>) -> io::Result<usize> {
        self.rearm_starved();
        // Synthetic completions are ready now: nothing to wait for.
        let want = if self.synthetic.is_empty() { want } else { 0 };
        let mut submitted = 0usize;
        loop {
            self.flush_backlog();
            let to_submit = self.ring.submission().len();
            let last = self.backlog.is_empty();
            // Only the final enter waits; earlier ones just make room for the backlog.
            let wait = if last { want } else { 0 };
            let started = Instant::now();
            let res = self.enter(to_submit, wait, if last { timeout } else { None });
            if wait > 0 {
                self.stats.idle += started.elapsed();
            }
            match res {
                Ok(n) => {
                    self.stats.submits += 1;
                    self.stats.sqes_submitted += n as u64;
                    submitted += n;
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME) | Some(libc::EINTR)) => {
                    self.stats.submits += 1;
                }
                // The CQ is full: the caller must drain before we can submit more.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Ok(submitted),
                Err(e) => return Err(e),
            }
            if last || self.ring.submission().is_full() {
                return Ok(submitted);
            }
        }
    }

    /// Calls `f` for each ready completion. `f` gets the reactor back, so it can read
    /// and recycle buffers and queue new operations while handling a completion.
    /// Synthetic final completions (see the module doc) come first, including those
    /// that `f` itself causes by closing an fd.
    ///
    /// Completions the kernel could not post because the CQ ring was full wait in its
    /// overflow list, in order, and enter the ring only on an `io_uring_enter` with
    /// GETEVENTS. A drain keeps flushing them until none are left (bounded by
    /// [`MAX_OVERFLOW_FLUSHES`]): otherwise, once a loop turn's completions outnumber
    /// the ring (a frame fanned out to more viewers than the CQ holds), the backlog grows
    /// every turn and everything behind it is delayed without bound, such as the final
    /// completion of a multishot accept the CQ pressure stopped, which the reactor must
    /// see to re-arm it: measured as a server that stopped accepting once its viewers
    /// outnumbered its CQ while its cores were busy (requests then time out unanswered).
    pub fn drain_completions(&mut self, mut f: impl FnMut(&mut Reactor, Completion)) {
        let mut batch = std::mem::take(&mut self.batch);
        let mut flushes = 0;
        loop {
            while let Some(completion) = self.synthetic.pop_front() {
                f(self, completion);
            }
            batch.clear();
            batch.extend(self.ring.completion().map(|cqe| Completion {
                user_data: cqe.user_data(),
                result: cqe.result(),
                flags: cqe.flags(),
            }));
            if batch.is_empty() && self.synthetic.is_empty() {
                if flushes < MAX_OVERFLOW_FLUSHES
                    && self.ring.submission().cq_overflow()
                    && self.flush_overflow()
                {
                    flushes += 1;
                    continue;
                }
                break;
            }
            let finished = batch.iter().filter(|c| !c.more()).count() as u64;
            self.in_kernel = self.in_kernel.saturating_sub(finished);
            self.stats.completions += batch.len() as u64;
            for completion in batch.drain(..) {
                if let Some(completion) = self.observe(completion) {
                    f(self, completion);
                }
            }
        }
        self.batch = batch;
    }

    /// Asks the kernel to move overflowed completions into the (drained) CQ ring.
    fn flush_overflow(&mut self) -> bool {
        self.stats.overflow_flushes += 1;
        let flags = io_uring::EnterFlags::GETEVENTS.bits();
        // SAFETY: no argument pointer; submits nothing and waits for nothing.
        let res = unsafe {
            self.ring
                .submitter()
                .enter::<libc::sigset_t>(0, 0, flags, None)
        };
        res.is_ok()
            || matches!(res, Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::ETIME)))
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

    /// Operations queued behind a full SQ.
    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    fn push(&mut self, entry: squeue::Entry) -> Result<(), SubmitError> {
        self.push_counted(entry, true)
    }

    /// Queues `entry`; `counted`: it ends with a final CQE (tracked in `in_kernel`).
    fn push_counted(&mut self, entry: squeue::Entry, counted: bool) -> Result<(), SubmitError> {
        if self.quiescing {
            return Err(SubmitError::Quiescing);
        }
        if self.backlog.is_empty() {
            // SAFETY: the entry's pointers are valid per the contract of the public
            // method that built it.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                self.in_kernel += u64::from(counted);
                return Ok(());
            }
            // The SQ is full: hand it to the kernel and retry once.
            let queued = self.ring.submission().len();
            if self.enter(queued, 0, None).is_ok() {
                self.stats.submits += 1;
                // SAFETY: as above.
                if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                    self.in_kernel += u64::from(counted);
                    return Ok(());
                }
            }
        }
        if self.backlog.len() >= self.backlog_limit {
            return Err(SubmitError::BacklogFull {
                len: self.backlog.len(),
                limit: self.backlog_limit,
            });
        }
        self.stats.backlogged += 1;
        self.backlog.push_back((entry, counted));
        Ok(())
    }

    fn flush_backlog(&mut self) {
        let mut sq = self.ring.submission();
        while let Some((entry, counted)) = self.backlog.front() {
            // SAFETY: entries were valid when queued and their owners keep them alive.
            if unsafe { sq.push(entry) }.is_err() {
                break;
            }
            self.in_kernel += u64::from(*counted);
            self.backlog.pop_front();
        }
    }

    fn enter(
        &mut self,
        to_submit: usize,
        want: usize,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let submitter = self.ring.submitter();
        if self.features.sqpoll {
            return match timeout {
                Some(t) if want > 0 => {
                    let ts = timespec(t);
                    submitter.submit_with_args(want, &types::SubmitArgs::new().timespec(&ts))
                }
                _ => submitter.submit_and_wait(want),
            };
        }
        // With DEFER_TASKRUN, completions only appear when we pass GETEVENTS, so a
        // plain submit must still carry it to collect what has finished meanwhile.
        let mut flags = io_uring::EnterFlags::empty();
        if want > 0 || self.features.defer_taskrun {
            flags |= io_uring::EnterFlags::GETEVENTS;
        }
        match timeout {
            Some(t) if want > 0 && self.features.ext_arg => {
                let ts = timespec(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                flags |= io_uring::EnterFlags::EXT_ARG;
                // SAFETY: args outlives the call and matches the EXT_ARG layout.
                unsafe { submitter.enter(to_submit as u32, want as u32, flags.bits(), Some(&args)) }
            }
            // SAFETY: no argument pointer.
            _ => unsafe {
                submitter.enter::<libc::sigset_t>(to_submit as u32, want as u32, flags.bits(), None)
            },
        }
    }

    /// Tracks buffers and multishot state for one CQE; `None` if the caller should
    /// not see it (an ENOBUFS the reactor recovers from by itself).
    fn observe(&mut self, mut completion: Completion) -> Option<Completion> {
        if let Some(id) = completion.buffer_id() {
            if !self.buffers.mark_held(id) {
                tracing::error!(id, "kernel delivered a buffer id we do not own");
            }
        }
        if completion.more() {
            return Some(completion);
        }
        let Some(kind) = self.multishot.get(&completion.user_data).copied() else {
            return Some(completion);
        };
        match (kind, completion.result) {
            (Multishot::Recv(fd), r) if r == -libc::ENOBUFS => {
                self.stats.enobufs += 1;
                self.multishot
                    .insert(completion.user_data, Multishot::Starved(fd));
                self.starved.push_back((completion.user_data, fd));
                None
            }
            // The kernel stopped a healthy multishot (e.g. CQ pressure): keep it going.
            // If it cannot be re-armed, the caller sees this completion as its last.
            (Multishot::Recv(fd), r) if r > 0 => {
                self.stats.rearms += 1;
                if self
                    .requeue(recv_entry(fd, completion.user_data), completion.user_data)
                    .is_ok()
                {
                    completion.flags |= CQE_F_MORE;
                }
                Some(completion)
            }
            (Multishot::Accept(fd), r) if r >= 0 => {
                self.stats.rearms += 1;
                if self
                    .requeue(accept_entry(fd, completion.user_data), completion.user_data)
                    .is_ok()
                {
                    completion.flags |= CQE_F_MORE;
                }
                Some(completion)
            }
            _ => {
                self.retire(completion.user_data);
                Some(completion)
            }
        }
    }

    /// Stops tracking a multishot that is over.
    fn retire(&mut self, user_data: u64) {
        if let Some(Multishot::Recv(fd) | Multishot::Starved(fd)) =
            self.multishot.remove(&user_data)
        {
            if self.recv_fds.get(&fd) == Some(&user_data) {
                self.recv_fds.remove(&fd);
            }
        }
    }

    /// Re-queues a multishot; if even the backlog is full the op is over for the caller.
    fn requeue(&mut self, entry: squeue::Entry, user_data: u64) -> Result<(), SubmitError> {
        let res = self.push(entry);
        if let Err(e) = &res {
            tracing::error!(user_data, error = %e, "could not re-arm multishot");
            self.retire(user_data);
        }
        res
    }

    /// The caller is closing (or cancelling) `fd`. A starved receive on it is not in
    /// the kernel, so no final CQE will retire it: drop it here and post its final
    /// completion ourselves, as a cancel would have (`-ECANCELED`), so the caller's
    /// count of operations in flight on the connection still reaches zero. A receive
    /// still in the kernel is marked so it is never re-armed: its next final CQE
    /// (EOF, error, or an ENOBUFS that would otherwise park it) ends it.
    fn retire_recv_of(&mut self, fd: RawFd) {
        let Some(user_data) = self.recv_fds.remove(&fd) else {
            return;
        };
        match self.multishot.get(&user_data).copied() {
            Some(Multishot::Starved(_)) => {
                self.multishot.remove(&user_data);
                self.starved.retain(|&(parked, _)| parked != user_data);
                self.synthetic.push_back(Completion {
                    user_data,
                    result: -libc::ECANCELED,
                    flags: 0,
                });
            }
            Some(Multishot::Recv(_)) => {
                self.multishot.insert(user_data, Multishot::Closing);
            }
            _ => {}
        }
    }

    /// Re-arms starved receives, oldest first, at most one per buffer the kernel has
    /// free. Each starved socket has data waiting, so a re-armed receive takes at least
    /// one buffer at once: re-arming more than there are buffers only buys ENOBUFS
    /// completions (one per surplus socket, every loop turn, a storm under load). Called
    /// once per loop turn, just before submitting, when every buffer the caller gave
    /// back this turn is counted and the CQEs of the last turn were drained.
    fn rearm_starved(&mut self) {
        let free = usize::from(self.buffers.entries()).saturating_sub(self.buffers.held());
        let budget = free.min(self.starved.len());
        for _ in 0..budget {
            let Some((user_data, fd)) = self.starved.pop_front() else {
                break;
            };
            self.stats.rearms += 1;
            self.multishot.insert(user_data, Multishot::Recv(fd));
            if self.requeue(recv_entry(fd, user_data), user_data).is_err() {
                // Not armed and never will be: end it with the error that parked it.
                self.synthetic.push_back(Completion {
                    user_data,
                    result: -libc::ENOBUFS,
                    flags: 0,
                });
            }
        }
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        // 1. Nothing in the kernel any more (or give up and leak, below).
        let quiet = self.quiesce(DROP_QUIESCE_LIMIT, |_, _| {});
        // 2. Stop the kernel from picking buffers or reading the region.
        let _ = self.ring.submitter().unregister_buf_ring(BUFFER_GROUP);
        if self.region.is_some() {
            let _ = self.ring.submitter().unregister_buffers();
        }
        // 3. Close the ring.
        // SAFETY: dropped once, here; not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.ring) };
        // 4. Only now the memory it pointed at.
        if quiet {
            // SAFETY: dropped once, here; not used afterwards.
            unsafe { ManuallyDrop::drop(&mut self.buffers) };
        } else {
            tracing::error!("leaking the receive buffers and send region of a reactor the kernel did not release");
            std::mem::forget(self.region.take());
        }
    }
}

/// True when every iovec of `msg` lies inside `region`.
///
/// # Safety
/// `msg` and its iovec array must be valid for reads.
unsafe fn all_iovecs_in(msg: *const libc::msghdr, region: &RegionMem) -> bool {
    // SAFETY: per the caller.
    let hdr = unsafe { &*msg };
    if hdr.msg_iov.is_null() {
        return false;
    }
    // SAFETY: per the caller, `msg_iov` points at `msg_iovlen` iovecs.
    let iovs = unsafe { std::slice::from_raw_parts(hdr.msg_iov, hdr.msg_iovlen) };
    !iovs.is_empty()
        && iovs
            .iter()
            .all(|v| region.contains(v.iov_base as *const u8, v.iov_len))
}

/// Sets the SQE's `buf_index`, which the crate's `SendMsgZc` builder does not expose.
fn with_buf_index(entry: squeue::Entry, index: u16) -> squeue::Entry {
    const _: () = assert!(std::mem::size_of::<squeue::Entry>() == 64);
    // SAFETY: `squeue::Entry` is `#[repr(C)]` around `struct io_uring_sqe` (64 bytes, the
    // kernel ABI, size checked above), so it and `[u8; 64]` have the same size and every
    // bit pattern of an SQE is a valid value of both; `buf_index` is the u16 at byte 40.
    let mut raw: [u8; 64] = unsafe { std::mem::transmute(entry) };
    raw[SQE_BUF_INDEX_OFFSET..SQE_BUF_INDEX_OFFSET + 2].copy_from_slice(&index.to_ne_bytes());
    // SAFETY: as above.
    unsafe { std::mem::transmute::<[u8; 64], squeue::Entry>(raw) }
}

fn accept_entry(listener: RawFd, user_data: u64) -> squeue::Entry {
    opcode::AcceptMulti::new(types::Fd(listener))
        .build()
        .user_data(user_data)
}

fn recv_entry(fd: RawFd, user_data: u64) -> squeue::Entry {
    opcode::RecvMulti::new(types::Fd(fd), BUFFER_GROUP)
        .build()
        .user_data(user_data)
}

fn timespec(d: Duration) -> types::Timespec {
    types::Timespec::new()
        .sec(d.as_secs())
        .nsec(d.subsec_nanos())
}

fn build_ring(cfg: &ReactorConfig) -> io::Result<(IoUring, ReactorFeatures)> {
    let cq_entries = cfg.entries.saturating_mul(4);
    let attempts: &[(&str, bool, bool, bool)] = &[
        // (name, single_issuer+defer_taskrun, coop_taskrun, sqpoll)
        ("sqpoll", false, false, true),
        ("single_issuer+defer_taskrun", true, false, false),
        ("coop_taskrun", false, true, false),
        ("plain", false, false, false),
    ];
    let mut last_err = None;
    for &(name, defer, coop, sqpoll) in attempts {
        if (sqpoll && !cfg.sqpoll) || (defer && (!cfg.defer_taskrun || cfg.sqpoll)) {
            continue;
        }
        let mut builder = IoUring::builder();
        builder.setup_cqsize(cq_entries).setup_submit_all();
        if defer {
            builder.setup_single_issuer().setup_defer_taskrun();
        }
        if coop {
            builder.setup_coop_taskrun().setup_taskrun_flag();
        }
        if sqpoll {
            builder.setup_sqpoll(1000);
        }
        match builder.build(cfg.entries) {
            Ok(ring) => {
                let params = ring.params();
                let features = ReactorFeatures {
                    single_issuer: defer,
                    defer_taskrun: defer,
                    coop_taskrun: coop,
                    sqpoll,
                    ext_arg: params.is_feature_ext_arg(),
                    nodrop: params.is_feature_nodrop(),
                };
                tracing::info!(mode = name, ?features, "io_uring reactor ready");
                return Ok((ring, features));
            }
            Err(e) => {
                tracing::warn!(mode = name, error = %e, "io_uring setup refused, falling back");
                last_err = Some(e);
            }
        }
    }
    Err(last_err
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no io_uring mode tried")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buf_index_lands_where_the_crate_puts_it() {
        // The crate sets buf_index for SendZc; ours must write the same bytes.
        let buf = [0u8; 4];
        let theirs = opcode::SendZc::new(types::Fd(3), buf.as_ptr(), 4)
            .buf_index(Some(0x1234))
            .build();
        let ours = with_buf_index(
            opcode::SendZc::new(types::Fd(3), buf.as_ptr(), 4).build(),
            0x1234,
        );
        // SAFETY: as in with_buf_index.
        let (a, b) = unsafe {
            (
                std::mem::transmute::<squeue::Entry, [u8; 64]>(theirs),
                std::mem::transmute::<squeue::Entry, [u8; 64]>(ours),
            )
        };
        assert_eq!(
            a[SQE_BUF_INDEX_OFFSET..SQE_BUF_INDEX_OFFSET + 2],
            b[SQE_BUF_INDEX_OFFSET..SQE_BUF_INDEX_OFFSET + 2]
        );
        assert_eq!(u16::from_ne_bytes([b[40], b[41]]), 0x1234);
    }

    #[test]
    fn the_kernel_honours_the_fixed_buffer_flag() {
        use crate::runtime::region::{RegionConfig, SendRegion};
        use std::os::fd::AsRawFd;
        let mut reactor = Reactor::new(&ReactorConfig {
            entries: 8,
            recv_buffers: 2,
            recv_buffer_size: 64,
            ..ReactorConfig::default()
        })
        .unwrap();
        let cfg = RegionConfig {
            scratch_slots: 1,
            scratch_slot_size: 64,
            staging_bytes: 1 << 16,
            block_size: 1 << 16,
        };
        let region = SendRegion::new(cfg).unwrap();
        reactor.register_region(region.mem()).unwrap();
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        // A heap iovec named as fixed buffer 0: the kernel must refuse it, which shows
        // it reads the flag (and so checks the iovecs of the sends we do mark fixed).
        let heap = [1u8; 100];
        let mut iov = [libc::iovec {
            iov_base: heap.as_ptr() as *mut libc::c_void,
            iov_len: heap.len(),
        }];
        // SAFETY: all-zero msghdr is valid; pointers set below outlive the wait.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = 1;
        let entry = opcode::SendMsgZc::new(types::Fd(a.as_raw_fd()), &msg)
            .ioprio(RECVSEND_FIXED_BUF)
            .build();
        reactor
            .push_send(with_buf_index(entry, REGION_BUF_INDEX), 7)
            .unwrap();
        let mut result = None;
        for _ in 0..100 {
            reactor
                .submit_and_wait(1, Some(Duration::from_millis(100)))
                .unwrap();
            reactor.drain_completions(|_, c| {
                if !c.is_notification() {
                    result = Some(c.result);
                }
            });
            if result.is_some() && reactor.in_kernel() == 0 {
                break;
            }
        }
        assert_eq!(
            result,
            Some(-libc::EFAULT),
            "an iovec outside the registered buffer is refused"
        );
    }

    fn small() -> Reactor {
        let cfg = ReactorConfig {
            entries: 4,
            recv_buffers: 2,
            recv_buffer_size: 64,
            ..Default::default()
        };
        Reactor::new(&cfg).unwrap()
    }

    /// What `r` makes of a kernel completion for `user_data` with `result` and no flags.
    fn observe_flagless(r: &mut Reactor, user_data: u64, result: i32) -> Completion {
        r.observe(Completion {
            user_data,
            result,
            flags: 0,
        })
        .unwrap()
    }

    /// A reactor whose backlog is full, so every further push fails.
    fn jammed() -> Reactor {
        let mut r = small();
        r.backlog_limit = 1;
        r.backlog
            .push_back((opcode::Nop::new().build().user_data(u64::MAX), false));
        r
    }

    #[test]
    fn a_starved_receive_that_cannot_be_rearmed_ends_with_enobufs() {
        let mut r = jammed();
        r.multishot.insert(7, Multishot::Starved(-1));
        r.recv_fds.insert(-1, 7);
        r.starved.push_back((7, -1));
        r.rearm_starved();
        let mut seen = Vec::new();
        r.drain_completions(|_, c| seen.push(c));
        assert_eq!(
            seen,
            [Completion {
                user_data: 7,
                result: -libc::ENOBUFS,
                flags: 0
            }]
        );
        assert!(r.multishot.is_empty() && r.starved.is_empty() && r.recv_fds.is_empty());
    }

    #[test]
    fn a_stopped_receive_that_cannot_be_rearmed_is_reported_as_final() {
        let mut r = jammed();
        r.multishot.insert(9, Multishot::Recv(-1));
        let c = observe_flagless(&mut r, 9, 100);
        assert!(
            !c.more(),
            "the caller must not believe the receive is still armed"
        );
        assert!(r.multishot.is_empty());
        r.multishot.insert(10, Multishot::Accept(-1));
        let c = observe_flagless(&mut r, 10, 5);
        assert!(!c.more());
    }

    #[test]
    fn a_multishot_that_cannot_be_queued_is_not_tracked() {
        let mut r = jammed();
        assert!(r.recv_multishot(-1, 3).is_err());
        assert!(r.accept_multishot(-1, 4).is_err());
        assert!(r.multishot.is_empty() && r.recv_fds.is_empty());
    }

    #[test]
    fn closing_a_starved_fd_posts_its_final_completion_once() {
        let mut r = small();
        // Negative fds: nothing here is ever submitted, but never name a real fd.
        for (ud, fd) in [(1, -2), (2, -3)] {
            r.multishot.insert(ud, Multishot::Starved(fd));
            r.recv_fds.insert(fd, ud);
            r.starved.push_back((ud, fd));
        }
        r.close(-2, 50).unwrap();
        let mut seen = Vec::new();
        r.drain_completions(|_, c| seen.push((c.user_data, c.result)));
        assert_eq!(seen, [(1, -libc::ECANCELED)]);
        assert_eq!(r.starved, [(2, -3)]);
        r.cancel_fd(-2, 51).unwrap();
        r.drain_completions(|_, c| panic!("nothing more is synthetic: {c:?}"));
    }

    #[test]
    fn a_receive_whose_fd_closed_is_never_parked_or_rearmed() {
        let mut r = small();
        r.multishot.insert(1, Multishot::Recv(-2));
        r.recv_fds.insert(-2, 1);
        r.multishot.insert(2, Multishot::Recv(-3));
        r.recv_fds.insert(-3, 2);
        r.close(-2, 50).unwrap();
        r.close(-3, 51).unwrap();
        // The kernel ran the receive once more after the close was queued and found no
        // buffer: re-arming it later could read whatever socket reuses the fd number.
        let c = observe_flagless(&mut r, 1, -libc::ENOBUFS);
        assert_eq!(c.result, -libc::ENOBUFS);
        assert!(r.starved.is_empty());
        // Stopped with data (CQ pressure): reported as final, not re-armed.
        let c = observe_flagless(&mut r, 2, 10);
        assert!(!c.more());
        assert_eq!(r.stats().rearms, 0);
        assert!(r.multishot.is_empty() && r.recv_fds.is_empty());
    }
}
