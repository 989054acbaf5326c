//! A connection's outgoing bytes, sent as one gathered `sendmsg` at a time.
//!
//! Each send carries, in order: control bytes the session queued (command
//! responses, acks), then up to `max_frames` media frames, each as a small
//! per-viewer prefix (written into this outbox's scratch) followed by the shared
//! frame body. Bodies are never copied: the outbox owns a handle (`H`, a
//! [`SendBody`]) for each one and reads the body's bytes from that handle, so a
//! body cannot be dropped while the outbox points at it.
//!
//! Sound by construction:
//! * Everything the kernel reads during a send (`msghdr`, iovecs, scratch,
//!   control bytes, the handles of the bodies) lives in one boxed `KernelMem`
//!   that never moves, so the outbox itself may move (e.g. inside a slab).
//! * The outbox is a state machine (`Idle → Assembling → InFlight → (Resumable →
//!   InFlight)* → Idle`) checked in every build, not only in debug: while a send is
//!   handed to the kernel, `begin`, `push_*`, `finish` and `release` refuse, so the
//!   memory cannot be refilled, cleared or freed before the send's completion.
//!   Only the completion (`on_sent`, `on_failed`) ends the in-flight state.
//! * An outbox dropped with a send in flight leaks its `KernelMem` (and logs)
//!   instead of freeing memory the kernel may still read.
//!
//! Sealed sends (TLS): instead of handing the gathered iovecs to the kernel,
//! [`Outbox::seal`] passes them (as one list of slices) to a transform, e.g. an
//! encryption, that appends its output to the outbox's own bounded record
//! buffer, and the kernel is handed that buffer. At most `max_plain` bytes of the
//! gathered plaintext are sealed at a time; the rest stays gathered (its frames
//! held) and is sealed once the record buffer's send completed
//! ([`SendProgress::MoreToSeal`]). The state machine, and the rule that nothing
//! the kernel reads is touched while it reads it, are the same.
//!
//! # Files
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the [`Outbox`] type, its state machine's states, the memory the kernel reads, drop |
//! | `body.rs` | [`SendBody`]: handles that keep the bytes to send alive |
//! | `queue.rs` | control bytes and shared bodies queued for the next sends, bounded |
//! | `gather.rs` | building a gathered send: control bytes, prefixed frames, `finish` |
//! | `progress.rs` | a send's completion: done, partial (resume the rest), failed, released |
//! | `seal.rs` | sealed sends (TLS): the gathered plaintext through a transform into a record buffer |
//! | `scratch.rs` | prefix scratch on the heap or in a slot of the registered send region |

mod body;
mod gather;
mod progress;
mod queue;
mod scratch;
mod seal;
#[cfg(test)]
mod test_support;

use std::collections::VecDeque;
use std::mem::ManuallyDrop;

use bytes::{Bytes, BytesMut};

pub use body::SendBody;
pub use progress::SendProgress;
pub use queue::{BodyOverflow, ControlOverflow, MAX_QUEUED_BODIES};
pub use seal::SEALED_RETAIN;

use scratch::Scratch;

/// Bytes of scratch reserved per frame for its prefix (HTTP chunk line + FLV
/// PreviousTagSize + tag header is 27; an RTMP first chunk header at most 18).
pub const PREFIX_SLOT: usize = 32;

/// An operation was refused because the kernel holds a send of this outbox.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a send is in flight: its memory is the kernel's until its completion")]
pub struct SendInFlight;

/// Where an outbox is in its send cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing gathered, nothing in flight.
    Idle,
    /// A send is being gathered (`begin` .. `finish`).
    Assembling,
    /// The kernel holds the send (or its remainder).
    InFlight,
    /// A short send completed; the remainder waits to be resubmitted.
    Resumable,
    /// A sealed part left; the rest of the gathered plaintext waits to be sealed.
    Resealable,
}

/// Everything the kernel reads during a send. Boxed so it never moves.
struct KernelMem<H> {
    msg: libc::msghdr,
    iov: Vec<libc::iovec>,
    scratch: Scratch,
    held: Vec<H>,
    control_inflight: Bytes,
    /// Sealed sends: the transform's output, what the kernel is handed.
    sealed: Vec<u8>,
    /// The one iovec of a sealed send (points into `sealed`).
    sealed_iov: libc::iovec,
}

/// One connection's outgoing state.
pub struct Outbox<H> {
    mem: ManuallyDrop<Box<KernelMem<H>>>,
    control_pending: BytesMut,
    control_limit: usize,
    /// Shared bodies (e.g. HTTP responses) waiting for a send, in order.
    bodies: VecDeque<H>,
    max_frames: usize,
    frames: usize,
    first_unsent: usize,
    state: State,
    bytes_in_send: usize,
    /// A region scratch slot was asked for once (given or not): not asked again.
    scratch_asked: bool,
    /// The send in flight is the record buffer of a sealed send.
    sealed_send: bool,
    /// Sealed sends: gathered plaintext bytes not sealed yet.
    plain_left: usize,
}

// SAFETY: the raw pointers in `mem.msg`/`mem.iov` point only into memory this
// struct owns (`mem`) or keeps alive through `mem.held`.
unsafe impl<H: Send> Send for Outbox<H> {}

impl<H: SendBody> Outbox<H> {
    /// An outbox gathering at most `max_frames` frames per send and queueing at most
    /// `control_limit` bytes of control data, with heap scratch.
    pub fn new(max_frames: usize, control_limit: usize) -> Self {
        let max_frames = max_frames.max(1);
        Self::with_scratch(
            max_frames,
            control_limit,
            Scratch::Heap(vec![0u8; PREFIX_SLOT * max_frames].into_boxed_slice()),
        )
    }

    fn with_scratch(max_frames: usize, control_limit: usize, scratch: Scratch) -> Self {
        // SAFETY: msghdr is plain old data; all-zero is a valid empty header.
        let msg: libc::msghdr = unsafe { std::mem::zeroed() };
        let mem = KernelMem {
            msg,
            iov: Vec::with_capacity(1 + 2 * max_frames),
            scratch,
            held: Vec::with_capacity(max_frames),
            control_inflight: Bytes::new(),
            sealed: Vec::new(),
            sealed_iov: libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
        };
        Outbox {
            mem: ManuallyDrop::new(Box::new(mem)),
            control_pending: BytesMut::new(),
            control_limit,
            bodies: VecDeque::new(),
            max_frames,
            frames: 0,
            first_unsent: 0,
            state: State::Idle,
            bytes_in_send: 0,
            scratch_asked: false,
            sealed_send: false,
            plain_left: 0,
        }
    }

    /// A send is in flight (or its remainder waits to be resumed); nothing may be
    /// gathered until it completes.
    pub fn is_busy(&self) -> bool {
        matches!(
            self.state,
            State::InFlight | State::Resumable | State::Resealable
        )
    }

    /// A sealed part left and gathered plaintext remains: [`Outbox::seal`] it
    /// next (no `begin`: the gathered memory is still in use).
    pub fn is_resealable(&self) -> bool {
        self.state == State::Resealable
    }

    /// What the in-flight send holds, in order.
    pub fn held(&self) -> &[H] {
        &self.mem.held
    }

    fn clear(&mut self) {
        self.state = State::Idle;
        let mem = &mut **self.mem;
        mem.iov.clear();
        mem.held.clear();
        mem.control_inflight = Bytes::new();
        mem.sealed.clear();
        if mem.sealed.capacity() > SEALED_RETAIN {
            mem.sealed = Vec::new();
        }
        mem.sealed_iov.iov_len = 0;
        self.frames = 0;
        self.first_unsent = 0;
        self.bytes_in_send = 0;
        self.sealed_send = false;
        self.plain_left = 0;
    }
}

impl<H> Drop for Outbox<H> {
    fn drop(&mut self) {
        if self.state == State::InFlight {
            // The kernel may still read this memory: never free it.
            tracing::error!("outbox dropped with a send in flight; leaking its buffers");
            return;
        }
        // SAFETY: dropped once, here, and `mem` is not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.mem) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::outbox::test_support::prefixed;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn dropping_an_outbox_with_a_send_in_flight_keeps_its_bodies_alive() {
        struct Tracked(Arc<AtomicBool>);
        impl AsRef<[u8]> for Tracked {
            fn as_ref(&self) -> &[u8] {
                b"frame body"
            }
        }
        impl Drop for Tracked {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let freed = Arc::new(AtomicBool::new(false));
        let mut idle: Outbox<Bytes> = Outbox::new(2, 64);
        idle.begin().unwrap();
        assert!(prefixed(
            &mut idle,
            b'0',
            Bytes::from_owner(Tracked(freed.clone()))
        ));
        idle.release().unwrap();
        assert!(freed.load(Ordering::SeqCst), "released when not in flight");

        let freed = Arc::new(AtomicBool::new(false));
        let mut busy: Outbox<Bytes> = Outbox::new(2, 64);
        busy.begin().unwrap();
        assert!(prefixed(
            &mut busy,
            b'0',
            Bytes::from_owner(Tracked(freed.clone()))
        ));
        busy.finish().unwrap();
        drop(busy);
        assert!(
            !freed.load(Ordering::SeqCst),
            "the kernel may still read it: leaked, not freed"
        );
    }
}
