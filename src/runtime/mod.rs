//! The per-core runtime: an io_uring reactor per pinned thread, preallocated
//! aligned buffer pools, and lock-free cross-core queues with wake-ups.
//! It moves bytes and knows nothing of protocols.
//!
//! # Pieces
//!
//! | module | what |
//! |---|---|
//! | [`reactor`] | [`Reactor`]: one io_uring per core (SINGLE_ISSUER + DEFER_TASKRUN when the kernel allows), provided-buffer ring for multishot recv, gathered sendmsg, bounded backlog |
//! | [`outbox`] | [`outbox::Outbox`]: one connection's gathered `sendmsg` (control bytes, then per-frame prefixes written into its scratch and shared bodies), kept alive until completion, resumable after a short send |
//! | [`region`] | [`region::SendRegion`]: a core's registered send region (per-viewer scratch + per-core copies of frame bodies) for fixed-buffer `SENDMSG_ZC` |
//! | [`socket`] | `SO_REUSEPORT` listeners per core, `TCP_NODELAY` / `SO_SNDBUF` helpers |
//! | [`arena`] | [`arena::AlignedArena`]: 64-byte aligned payload buffers carved from 4 MiB blocks (`PayloadAllocator`) |
//! | [`spsc`] | bounded lock-free single-producer single-consumer ring |
//! | [`mesh`] | one SPSC per ordered core pair plus an eventfd wake-up per core (why eventfd: see the module) |
//! | [`timer`] | hashed timer wheel, 10 ms ticks, for handshake/idle deadlines |
//! | [`cores`] | one pinned thread per selected core, `ringcast-core-N` |
//!
//! # A core's loop
//!
//! ```text
//! let mut r = Reactor::new(&cfg)?;                       // on the core thread itself
//! r.accept_multishot(listener_fd, ud(ACCEPT))?;
//! unsafe { r.read_eventfd(link.wake_fd(), &mut wake_buf, ud(WAKE))? };
//! loop {
//!     r.submit_and_wait(1, timer.next_wake_ms(now).map(Duration::from_millis))?; // one syscall per turn
//!     r.drain_completions(|r, c| match kind(c.user_data) {
//!         ACCEPT => { set_nodelay(c.result)?; r.recv_multishot(c.result, ud(conn, RECV))? }
//!         RECV if c.result > 0 => { let id = c.buffer_id().unwrap();
//!                                   feed(r.recv_buffer(id, c.result as usize)); r.recycle_buffer(id); }
//!         RECV => { /* 0 = EOF, <0 = error: more() is false, the op is over */ }
//!         SEND => { /* release that send's msghdr/iovecs/frames; queue the next */ }
//!         WAKE => { /* re-arm read_eventfd */ }
//!     });
//!     link.drain(|from, msg| ...); timer.expire(now, |key| ...);
//!     /* queue one gathered sendmsg per ready viewer */ link.flush_backlogs(); link.flush_wakeups();
//! }
//! ```
//!
//! * Queuing never blocks and never drops: an op goes into the SQ; if it is full the
//!   reactor submits to make room, and only if the kernel refuses (`EBUSY`) does it
//!   wait, in order, in a bounded backlog. `SubmitError::BacklogFull` names the limit.
//! * Multishot accept/recv are kept alive by the reactor: when the kernel stops one
//!   without an error the caller should act on (CQ pressure), or because the buffer
//!   ring ran dry (`ENOBUFS`, hidden from the caller and re-armed as soon as a buffer
//!   is recycled), it is re-armed. The caller sees `more() == false` only when the
//!   operation is really over (EOF `0`, an error, `-ECANCELED`). `user_data` of live
//!   multishots must be unique (pack a generation into it).
//! * `sendmsg`/`send` pointers must stay valid until their completion is drained; keep
//!   one send in flight per socket (the kernel does not order concurrent sends).
//!   [`outbox::Outbox`] enforces both, in every build.
//! * Teardown order: the ring goes before the memory it points at. The reactor owns
//!   the ring, the provided-buffer ring and (an `Arc` of) the registered region, and
//!   its `Drop` cancels everything in flight, waits for the completions, unregisters,
//!   closes the ring, and only then lets that memory go. Memory owned elsewhere that
//!   the kernel reads or writes (outboxes, a wake-up counter) belongs to the caller's
//!   state, which must drain the reactor with [`Reactor::quiesce`] before dropping it
//!   (the server's `Worker` does so in its `Drop`); an outbox dropped with a send still
//!   in flight leaks its buffers rather than free them.
//! * To close a connection: `shutdown(SHUT_RDWR)` (ends its multishot recv with EOF
//!   and fails pending sends, O(1)), then `close`; `cancel_fd` only for a socket that
//!   is not connected yet. Close alone leaves a multishot recv armed until it errors;
//!   `cancel_fd` works too but scans every pending request of the ring per call.

pub mod arena;
pub mod buf_ring;
pub mod cores;
pub mod int_hash;
pub mod mesh;
pub mod outbox;
pub mod reactor;
pub mod region;
pub mod socket;
pub mod spsc;
pub mod timer;

pub use arena::AlignedArena;
pub use mesh::{CoreLink, Mesh};
pub use outbox::Outbox;
pub use reactor::{Completion, Reactor, ReactorConfig, ReactorFeatures, ReactorStats, SubmitError};
pub use timer::{TimerId, TimerWheel};
