//! The per-core runtime: an io_uring reactor per pinned thread, preallocated
//! aligned buffer pools, and lock-free cross-core queues with wake-ups.
//! It moves bytes and knows nothing of protocols.
//!
//! # Using the reactor
//!
//! ```text
//! let mut r = Reactor::new(&ReactorConfig::default())?;      // on the core thread
//! r.accept_multishot(listener_fd, UD_ACCEPT)?;
//! loop {
//!     r.submit_and_wait(1, Some(timer.next_deadline()))?;    // one io_uring_enter per turn
//!     r.drain_completions(|r, c| match kind(c.user_data) {
//!         Accept => r.recv_multishot(c.result, ud(conn, Recv))?,
//!         Recv   => { if let Some(id) = c.buffer_id() {
//!                         feed(r.recv_buffer(id, c.result as usize)); r.recycle_buffer(id); } }
//!         Send   => { /* free the msghdr/iovecs/bytes of that send */ }
//!     });
//! }
//! ```
//!
//! * Operations are queued into the SQ (or a bounded backlog when the SQ is full, in
//!   order) and reach the kernel at the next `submit_and_wait`: one syscall per turn.
//! * Multishot accept/recv are kept alive by the reactor: when the kernel stops one
//!   without an error (CQ pressure) or because the buffer ring ran dry (`ENOBUFS`,
//!   hidden from the caller, re-armed after a buffer is recycled), it is re-armed.
//!   The caller sees `more() == false` only when the operation is really over
//!   (EOF `0`, error, `-ECANCELED`).
//! * `sendmsg`/`send` pointers must stay valid until their completion; keep one send
//!   in flight per socket.
//! * Close a connection with `cancel_fd` then `close`.

pub mod arena;
pub mod buf_ring;
pub mod cores;
pub mod int_hash;
pub mod mesh;
pub mod reactor;
pub mod socket;
pub mod spsc;
pub mod timer;

pub use reactor::{Completion, Reactor, ReactorConfig, ReactorFeatures, ReactorStats, SubmitError};
