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
//!   control bytes, the handles of the bodies) lives in one boxed [`KernelMem`]
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

use std::collections::VecDeque;
use std::mem::ManuallyDrop;

use bytes::{Bytes, BytesMut};

use super::region::ScratchSlot;

/// Bytes of scratch reserved per frame for its prefix (HTTP chunk line + FLV
/// PreviousTagSize + tag header is 27; an RTMP first chunk header at most 18).
pub const PREFIX_SLOT: usize = 32;

/// A handle that keeps bytes to send alive.
///
/// # Safety
/// The slice `body()` returns must stay at the same address, with the same
/// contents, for as long as the handle lives, even when the handle itself moves.
pub unsafe trait SendBody {
    /// The bytes to send after this element's prefix (may be empty).
    fn body(&self) -> &[u8];
}

// SAFETY: a `Bytes`' data is immutable and never moves with the handle.
unsafe impl SendBody for Bytes {
    fn body(&self) -> &[u8] {
        self
    }
}

// SAFETY: no bytes.
unsafe impl SendBody for () {
    fn body(&self) -> &[u8] {
        &[]
    }
}

/// The outbox refused more control bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("control queue over its limit: {queued} + {adding} > {limit} bytes")]
pub struct ControlOverflow {
    /// Bytes already queued.
    pub queued: usize,
    /// Bytes being added.
    pub adding: usize,
    /// The limit.
    pub limit: usize,
}

/// Most shared bodies queued per outbox ([`Outbox::queue_body`]); a response
/// is made of its head and a few dozen pieces, so this is hundreds of
/// pipelined responses.
pub const MAX_QUEUED_BODIES: usize = 16 * 1024;

/// The outbox refused another shared body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{queued} shared bodies queued, the limit")]
pub struct BodyOverflow {
    /// Bodies already queued.
    pub queued: usize,
}

/// An operation was refused because the kernel holds a send of this outbox.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a send is in flight: its memory is the kernel's until its completion")]
pub struct SendInFlight;

/// What happened after the kernel reported `n` bytes sent.
#[derive(Debug, PartialEq, Eq)]
pub enum SendProgress {
    /// Everything in the send left; the outbox is free.
    Complete,
    /// Only part left; submit [`Outbox::resume`]'s header for the rest.
    Partial,
    /// No send was in flight: the completion is not this outbox's (ignored).
    NotInFlight,
    /// A sealed send's record buffer left, but gathered plaintext remains: call
    /// [`Outbox::seal`] again for the next part (nothing new is gathered first).
    MoreToSeal,
}

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

/// Scratch for the per-frame prefixes: heap memory, or a slot of the core's
/// registered region (then sends whose bodies are in the region too can name it).
enum Scratch {
    Heap(Box<[u8]>),
    Region(ScratchSlot),
}

impl Scratch {
    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Scratch::Heap(b) => b,
            Scratch::Region(slot) => slot.bytes_mut(),
        }
    }
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

/// Capacity of the record buffer kept between sealed sends; a larger one (after
/// a burst, e.g. a GOP-cache start) is freed once its send completed, so an idle
/// TLS viewer does not keep its largest send's buffer.
pub const SEALED_RETAIN: usize = 32 << 10;

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

    /// As [`Outbox::new`], with scratch in a registered region's slot. The slot must
    /// hold at least `PREFIX_SLOT * max_frames` bytes; `max_frames` is cut to fit.
    pub fn with_region_scratch(
        max_frames: usize,
        control_limit: usize,
        mut slot: ScratchSlot,
    ) -> Self {
        let max_frames = max_frames
            .max(1)
            .min(slot.bytes_mut().len() / PREFIX_SLOT)
            .max(1);
        if slot.bytes_mut().len() < PREFIX_SLOT {
            return Self::new(max_frames, control_limit);
        }
        Self::with_scratch(max_frames, control_limit, Scratch::Region(slot))
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

    /// Its scratch lives in a registered region.
    pub fn has_region_scratch(&self) -> bool {
        matches!(self.mem.scratch, Scratch::Region(_))
    }

    /// True once per outbox while its scratch is on the heap and no prefix is in
    /// use (idle, or assembling with no frame yet): the moment to call
    /// [`Outbox::adopt_scratch`].
    pub fn wants_region_scratch(&self) -> bool {
        let unused =
            self.state == State::Idle || (self.state == State::Assembling && self.frames == 0);
        !self.scratch_asked && unused && !self.has_region_scratch()
    }

    /// Moves the prefix scratch into a registered region's slot (`None`: the region
    /// had none; not asked again). Refused unless [`Outbox::wants_region_scratch`];
    /// a slot smaller than this outbox's scratch is refused too.
    pub fn adopt_scratch(&mut self, slot: Option<ScratchSlot>) -> Result<(), SendInFlight> {
        if !self.wants_region_scratch() {
            return Err(SendInFlight);
        }
        self.scratch_asked = true;
        if let Some(mut slot) = slot {
            if slot.bytes_mut().len() >= PREFIX_SLOT * self.max_frames {
                self.mem.scratch = Scratch::Region(slot);
            }
        }
        Ok(())
    }

    /// Control bytes waiting for the next send.
    pub fn has_control(&self) -> bool {
        !self.control_pending.is_empty()
    }

    /// Queues control bytes (session output) for the next send. Allowed while a
    /// send is in flight: queued bytes are not the kernel's until `begin`.
    pub fn queue_control(&mut self, bytes: &[u8]) -> Result<(), ControlOverflow> {
        let queued = self.control_pending.len();
        if queued + bytes.len() > self.control_limit {
            return Err(ControlOverflow {
                queued,
                adding: bytes.len(),
                limit: self.control_limit,
            });
        }
        self.control_pending.extend_from_slice(bytes);
        Ok(())
    }

    /// Queues a shared body (kept alive by its handle, never copied) for the
    /// next sends: after the queued control bytes, in the order queued, each
    /// taking one frame slot of a send (the rest go in the sends after).
    /// Allowed while a send is in flight.
    pub fn queue_body(&mut self, body: H) -> Result<(), BodyOverflow> {
        if self.bodies.len() >= MAX_QUEUED_BODIES {
            return Err(BodyOverflow {
                queued: self.bodies.len(),
            });
        }
        self.bodies.push_back(body);
        Ok(())
    }

    /// Shared bodies waiting for a send.
    pub fn queued_bodies(&self) -> usize {
        self.bodies.len()
    }

    /// Control bytes or shared bodies wait for a send.
    pub fn has_pending(&self) -> bool {
        self.has_control() || !self.bodies.is_empty()
    }

    /// Queues bytes behind everything queued so far: as control bytes
    /// (copied) while no shared body waits, else as a body made by `wrap`, so
    /// they never overtake a body queued before them.
    pub fn queue_in_order(
        &mut self,
        bytes: Bytes,
        wrap: impl FnOnce(Bytes) -> H,
    ) -> Result<(), ControlOverflow> {
        if self.bodies.is_empty() {
            return self.queue_control(&bytes);
        }
        self.queue_body(wrap(bytes)).map_err(|e| ControlOverflow {
            queued: e.queued,
            adding: 1,
            limit: MAX_QUEUED_BODIES,
        })
    }

    /// Starts assembling a send: moves queued control bytes to the front,
    /// then as many queued shared bodies as the send has frame room for.
    /// Refused while a send is in flight.
    pub fn begin(&mut self) -> Result<(), SendInFlight> {
        if self.is_busy() {
            return Err(SendInFlight);
        }
        self.clear();
        self.state = State::Assembling;
        self.mem.control_inflight = self.control_pending.split().freeze();
        if !self.mem.control_inflight.is_empty() {
            let (ptr, len) = (
                self.mem.control_inflight.as_ptr(),
                self.mem.control_inflight.len(),
            );
            self.push_iov(ptr, len);
        }
        while self.has_room() {
            let Some(body) = self.bodies.pop_front() else {
                break;
            };
            self.push_frame(|_| 0, body);
        }
        Ok(())
    }

    /// Room for another frame in this send.
    pub fn has_room(&self) -> bool {
        self.state == State::Assembling && self.frames < self.max_frames
    }

    /// How many more frames fit in this send.
    pub fn frames_room(&self) -> usize {
        if self.state == State::Assembling {
            self.max_frames - self.frames
        } else {
            0
        }
    }

    /// Bytes gathered into the send being assembled (or still unsent of the one in
    /// flight: for a sealed send, the record buffer's unsent bytes).
    pub fn bytes_queued(&self) -> usize {
        self.bytes_in_send
    }

    /// Whether a completion of `n` bytes ends the whole gathered send (every frame
    /// it holds delivered to the kernel).
    pub fn completes_send(&self, n: usize) -> bool {
        n >= self.bytes_in_send && (!self.sealed_send || self.plain_left == 0)
    }

    /// Adds a frame: `write_prefix` fills at most [`PREFIX_SLOT`] bytes of scratch and
    /// returns how many it wrote; then `hold.body()` is sent, kept alive by `hold`.
    ///
    /// Returns false (and adds nothing) when the send is full or not being assembled.
    pub fn push_frame(&mut self, write_prefix: impl FnOnce(&mut [u8]) -> usize, hold: H) -> bool {
        if !self.has_room() {
            return false;
        }
        let at = self.frames * PREFIX_SLOT;
        let slot = &mut self.mem.scratch.bytes_mut()[at..at + PREFIX_SLOT];
        let n = write_prefix(slot).min(PREFIX_SLOT);
        let prefix = slot.as_ptr();
        if n > 0 {
            self.push_iov(prefix, n);
        }
        // The handle moves into `held` first; the body is read from where it now lives
        // (SendBody: the bytes do not move with the handle).
        self.mem.held.push(hold);
        let body = self.mem.held.last().map_or(&[][..], |h| h.body());
        let (ptr, len) = (body.as_ptr(), body.len());
        if len > 0 {
            self.push_iov(ptr, len);
        }
        self.frames += 1;
        true
    }

    /// Adds bytes that belong to no frame (e.g. an end-of-stream marker), copied into
    /// a scratch slot. Returns false when the send is full or `bytes` exceed a slot.
    pub fn push_bytes(&mut self, bytes: &[u8], hold: H) -> bool {
        if bytes.len() > PREFIX_SLOT {
            return false;
        }
        self.push_frame(
            |scratch| {
                scratch[..bytes.len()].copy_from_slice(bytes);
                bytes.len()
            },
            hold,
        )
    }

    fn push_iov(&mut self, ptr: *const u8, len: usize) {
        self.mem.iov.push(libc::iovec {
            iov_base: ptr as *mut libc::c_void,
            iov_len: len,
        });
        self.bytes_in_send += len;
    }

    /// Finishes assembling. Returns the header to submit, or None when there is
    /// nothing to send (or no send was being assembled). From here the send is in
    /// flight: the header and everything it points to stay valid and untouched
    /// until `on_sent` or `on_failed` reports its completion.
    pub fn finish(&mut self) -> Option<*const libc::msghdr> {
        if self.state != State::Assembling {
            return None;
        }
        if self.bytes_in_send == 0 {
            self.clear();
            return None;
        }
        self.state = State::InFlight;
        Some(self.header())
    }

    /// After a [`SendProgress::Partial`]: the header for the unsent remainder, now in
    /// flight again. None in any other state.
    pub fn resume(&mut self) -> Option<*const libc::msghdr> {
        if self.state != State::Resumable {
            return None;
        }
        self.state = State::InFlight;
        Some(self.header())
    }

    fn header(&mut self) -> *const libc::msghdr {
        let mem = &mut **self.mem;
        if self.sealed_send {
            mem.msg.msg_iov = &mut mem.sealed_iov;
            mem.msg.msg_iovlen = 1;
            return &mem.msg;
        }
        let rest = &mut mem.iov[self.first_unsent..];
        mem.msg.msg_iov = rest.as_mut_ptr();
        mem.msg.msg_iovlen = rest.len() as _;
        &mem.msg
    }

    /// What the in-flight send holds, in order.
    pub fn held(&self) -> &[H] {
        &self.mem.held
    }

    /// The kernel's completion: it took `n` bytes of the in-flight send.
    pub fn on_sent(&mut self, n: usize) -> SendProgress {
        if self.state != State::InFlight {
            return SendProgress::NotInFlight;
        }
        if self.sealed_send {
            return self.on_sealed_sent(n);
        }
        self.bytes_in_send = self.bytes_in_send.saturating_sub(n);
        self.advance(n);
        if self.first_unsent >= self.mem.iov.len() {
            self.clear();
            SendProgress::Complete
        } else {
            self.state = State::Resumable;
            SendProgress::Partial
        }
    }

    fn on_sealed_sent(&mut self, n: usize) -> SendProgress {
        let iov = &mut self.mem.sealed_iov;
        let n = n.min(iov.iov_len);
        // SAFETY: advancing within the record buffer, n <= iov_len.
        iov.iov_base = unsafe { (iov.iov_base as *mut u8).add(n) } as *mut libc::c_void;
        iov.iov_len -= n;
        self.bytes_in_send = iov.iov_len;
        if iov.iov_len > 0 {
            self.state = State::Resumable;
            return SendProgress::Partial;
        }
        if self.plain_left > 0 {
            self.sealed_send = false;
            self.state = State::Resealable;
            return SendProgress::MoreToSeal;
        }
        self.clear();
        SendProgress::Complete
    }

    /// Seals (e.g. encrypts) the gathered send and puts its result in flight.
    ///
    /// Valid while assembling (after `begin` and the pushes) or
    /// [`Outbox::is_resealable`]. At most `max_plain` bytes of the gathered
    /// plaintext, in order, are passed to `transform` as one list of slices,
    /// together with whether they are the last of it; `transform` appends its
    /// output to the (empty) record buffer it is given. Returns the header to
    /// submit (the record buffer, in flight until its completion), or `None`
    /// when all plaintext is sealed and the transform wrote nothing (the outbox
    /// is idle again). When `transform` fails nothing is consumed: the caller
    /// drops the send ([`Outbox::release`]); the part it failed on is not consumed.
    pub fn seal<E>(
        &mut self,
        max_plain: usize,
        mut transform: impl FnMut(&[&[u8]], bool, &mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Option<*const libc::msghdr>, E> {
        match self.state {
            State::Assembling => self.plain_left = self.bytes_in_send,
            State::Resealable => {}
            _ => return Ok(None),
        }
        let max_plain = max_plain.max(1);
        self.mem.sealed.clear();
        // A part the transform turned into nothing (e.g. plaintext dropped after a
        // failure) is followed by the next one at once.
        while self.mem.sealed.is_empty() {
            let mut slices: Vec<&[u8]> = Vec::with_capacity(self.mem.iov.len() - self.first_unsent);
            let mut taken = 0usize;
            for iov in &self.mem.iov[self.first_unsent..] {
                if taken >= max_plain {
                    break;
                }
                let len = iov.iov_len.min(max_plain - taken);
                // SAFETY: every gathered iovec points into memory this outbox keeps
                // alive and unchanged until the send is over (control bytes,
                // scratch, held bodies); the slices do not outlive this loop turn.
                slices.push(unsafe { std::slice::from_raw_parts(iov.iov_base as *const u8, len) });
                taken += len;
            }
            let last = taken >= self.plain_left;
            let mem = &mut **self.mem;
            transform(&slices, last, &mut mem.sealed)?;
            drop(slices);
            self.advance(taken);
            self.plain_left -= taken.min(self.plain_left);
            if last {
                break;
            }
        }
        let sealed_len = self.mem.sealed.len();
        if sealed_len == 0 {
            self.clear();
            return Ok(None);
        }
        let mem = &mut **self.mem;
        mem.sealed_iov = libc::iovec {
            iov_base: mem.sealed.as_mut_ptr() as *mut libc::c_void,
            iov_len: sealed_len,
        };
        self.bytes_in_send = sealed_len;
        self.sealed_send = true;
        self.state = State::InFlight;
        Ok(Some(self.header()))
    }

    /// Skips `n` bytes of the gathered iovecs (sent, or sealed).
    fn advance(&mut self, mut n: usize) {
        while n > 0 && self.first_unsent < self.mem.iov.len() {
            let iov = &mut self.mem.iov[self.first_unsent];
            if n >= iov.iov_len {
                n -= iov.iov_len;
                self.first_unsent += 1;
            } else {
                // SAFETY: advancing within the same buffer, n < iov_len.
                iov.iov_base = unsafe { (iov.iov_base as *mut u8).add(n) } as *mut libc::c_void;
                iov.iov_len -= n;
                n = 0;
            }
        }
    }

    /// The send is over without (all of) its bytes leaving: its completion reported
    /// an error, or it was never handed to the kernel (queueing it failed). Drops
    /// everything it held. Only call when the kernel does not hold the send.
    pub fn on_failed(&mut self) {
        self.clear();
    }

    /// Drops what is being assembled (or a remainder that will not be resumed).
    /// Refused while the kernel holds a send.
    pub fn release(&mut self) -> Result<(), SendInFlight> {
        if self.state == State::InFlight {
            return Err(SendInFlight);
        }
        self.clear();
        Ok(())
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
    use crate::runtime::region::{RegionConfig, SendRegion};
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// The iovecs of the header the outbox handed out, as (ptr, len).
    fn iovecs(msg: *const libc::msghdr) -> Vec<(*const u8, usize)> {
        // SAFETY: the outbox keeps the header and its iovecs alive while in flight.
        let hdr = unsafe { &*msg };
        let iovs = unsafe { std::slice::from_raw_parts(hdr.msg_iov, hdr.msg_iovlen) };
        iovs.iter()
            .map(|v| (v.iov_base as *const u8, v.iov_len))
            .collect()
    }

    fn send_all(outbox: &mut Outbox<Bytes>, fd: i32, chunk_limit: usize) {
        let mut msg = outbox.finish().expect("something to send");
        loop {
            // Emulate a short write by sending at most chunk_limit bytes.
            let mut flat = Vec::new();
            for (ptr, len) in iovecs(msg) {
                flat.extend_from_slice(unsafe { std::slice::from_raw_parts(ptr, len) });
            }
            let take = flat.len().min(chunk_limit);
            let n = unsafe { libc::write(fd, flat.as_ptr() as *const _, take) };
            assert!(n > 0);
            match outbox.on_sent(n as usize) {
                SendProgress::Complete => break,
                SendProgress::Partial => msg = outbox.resume().expect("a remainder"),
                SendProgress::NotInFlight | SendProgress::MoreToSeal => {
                    panic!("the send was in flight, unsealed")
                }
            }
        }
    }

    fn prefixed(outbox: &mut Outbox<Bytes>, tag: u8, body: Bytes) -> bool {
        outbox.push_frame(
            |s| {
                s[..3].copy_from_slice(&[b'<', tag, b'>']);
                3
            },
            body,
        )
    }

    #[test]
    fn control_then_frames_with_prefixes_in_order_across_partial_sends() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut outbox: Outbox<Bytes> = Outbox::new(4, 1024);
        outbox.queue_control(b"CTRL").unwrap();
        outbox.begin().unwrap();
        for i in 0..4u8 {
            assert!(prefixed(
                &mut outbox,
                b'0' + i,
                Bytes::from(vec![b'a' + i; 10])
            ));
        }
        assert!(
            !outbox.push_frame(|_| 0, Bytes::from_static(b"x")),
            "fifth frame must not fit"
        );
        assert_eq!(outbox.bytes_queued(), 4 + 4 * 13);
        send_all(&mut outbox, a.as_raw_fd(), 7);
        assert!(!outbox.is_busy());
        drop(a);
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        let expected: Vec<u8> = b"CTRL"
            .iter()
            .copied()
            .chain((0..4u8).flat_map(|i| {
                let mut v = vec![b'<', b'0' + i, b'>'];
                v.extend(std::iter::repeat_n(b'a' + i, 10));
                v
            }))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn shared_bodies_follow_control_in_order_across_sends_without_copies() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut outbox: Outbox<Bytes> = Outbox::new(2, 1024);
        outbox.queue_control(b"HEAD1").unwrap();
        let bodies: Vec<Bytes> = (0..5u8).map(|i| Bytes::from(vec![b'a' + i; 3])).collect();
        for body in &bodies {
            outbox.queue_body(body.clone()).unwrap();
        }
        // Bytes queued after a body go behind it, as a body of their own.
        outbox
            .queue_in_order(Bytes::from_static(b"TAIL"), |b| b)
            .unwrap();
        assert_eq!(outbox.queued_bodies(), 6, "TAIL went behind the bodies");
        let mut sends = 0;
        while outbox.has_pending() {
            outbox.begin().unwrap();
            let msg = outbox.finish().unwrap();
            if sends == 0 {
                let iovs = iovecs(msg);
                assert_eq!(iovs[1].0, bodies[0].as_ptr(), "the body itself, not a copy");
            }
            let mut flat = Vec::new();
            for (ptr, len) in iovecs(msg) {
                flat.extend_from_slice(unsafe { std::slice::from_raw_parts(ptr, len) });
            }
            let n = unsafe { libc::write(a.as_raw_fd(), flat.as_ptr() as *const _, flat.len()) };
            assert_eq!(outbox.on_sent(n as usize), SendProgress::Complete);
            sends += 1;
        }
        assert_eq!(sends, 3, "two bodies per send");
        drop(a);
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"HEAD1aaabbbcccdddeeeTAIL");
    }

    #[test]
    fn queued_bodies_are_bounded() {
        let mut outbox: Outbox<()> = Outbox::new(1, 8);
        for _ in 0..MAX_QUEUED_BODIES {
            outbox.queue_body(()).unwrap();
        }
        assert_eq!(
            outbox.queue_body(()),
            Err(BodyOverflow {
                queued: MAX_QUEUED_BODIES
            })
        );
    }

    #[test]
    fn control_queue_is_bounded() {
        let mut outbox: Outbox<()> = Outbox::new(1, 8);
        outbox.queue_control(b"12345").unwrap();
        let err = outbox.queue_control(b"6789").unwrap_err();
        assert_eq!(
            err,
            ControlOverflow {
                queued: 5,
                adding: 4,
                limit: 8
            }
        );
    }

    #[test]
    fn empty_send_is_none_and_outbox_stays_free() {
        let mut outbox: Outbox<()> = Outbox::new(2, 8);
        outbox.begin().unwrap();
        assert!(outbox.finish().is_none());
        assert!(!outbox.is_busy());
    }

    #[test]
    fn a_send_in_flight_cannot_be_refilled_cleared_or_resubmitted() {
        let mut outbox: Outbox<Bytes> = Outbox::new(4, 1024);
        outbox.begin().unwrap();
        assert!(prefixed(&mut outbox, b'0', Bytes::from_static(b"body")));
        let msg = outbox.finish().unwrap();
        let before = iovecs(msg);
        // Everything that would touch the kernel's memory is refused.
        assert_eq!(outbox.begin(), Err(SendInFlight));
        assert_eq!(outbox.release(), Err(SendInFlight));
        assert!(!prefixed(&mut outbox, b'1', Bytes::from_static(b"more")));
        assert!(
            outbox.finish().is_none(),
            "no second header for the same send"
        );
        assert!(
            outbox.resume().is_none(),
            "nothing to resume before a completion"
        );
        assert_eq!(iovecs(msg), before, "header and iovecs unchanged");
        assert_eq!(outbox.held().len(), 1);
        // Control bytes may still queue: they are not part of the send.
        outbox.queue_control(b"later").unwrap();
        // A short completion: the remainder may be resumed or dropped, not refilled.
        assert_eq!(outbox.on_sent(2), SendProgress::Partial);
        assert_eq!(outbox.begin(), Err(SendInFlight));
        let rest = outbox.resume().unwrap();
        assert_eq!(iovecs(rest).iter().map(|v| v.1).sum::<usize>(), 5);
        assert_eq!(
            outbox.release(),
            Err(SendInFlight),
            "resumed: in flight again"
        );
        assert_eq!(outbox.on_sent(5), SendProgress::Complete);
        assert_eq!(outbox.on_sent(5), SendProgress::NotInFlight);
        outbox.begin().unwrap();
    }

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

    #[test]
    fn a_failed_send_frees_its_bodies() {
        let body = Bytes::from(vec![1u8; 100]);
        let mut outbox: Outbox<Bytes> = Outbox::new(2, 64);
        outbox.begin().unwrap();
        assert!(prefixed(&mut outbox, b'0', body.clone()));
        outbox.finish().unwrap();
        outbox.on_failed();
        assert!(!outbox.is_busy());
        assert!(outbox.held().is_empty());
        assert!(body.is_unique(), "the outbox let go of its handle");
    }

    /// Reads the iovecs of a header into one buffer.
    fn flat(msg: *const libc::msghdr) -> Vec<u8> {
        let mut out = Vec::new();
        for (ptr, len) in iovecs(msg) {
            out.extend_from_slice(unsafe { std::slice::from_raw_parts(ptr, len) });
        }
        out
    }

    /// A stand-in transform: each part becomes `[` + its bytes upper-cased + `]`
    /// (`!` after the last part), so the test sees part boundaries and order.
    fn bracket(slices: &[&[u8]], last: bool, out: &mut Vec<u8>) -> Result<(), ()> {
        out.push(b'[');
        for s in slices {
            out.extend(s.iter().map(u8::to_ascii_uppercase));
        }
        out.push(b']');
        if last {
            out.push(b'!');
        }
        Ok(())
    }

    #[test]
    fn sealed_sends_transform_the_gathered_bytes_in_bounded_parts_in_order() {
        let mut outbox: Outbox<Bytes> = Outbox::new(4, 1024);
        outbox.queue_control(b"head;").unwrap();
        outbox.begin().unwrap();
        assert!(prefixed(&mut outbox, b'1', Bytes::from_static(b"abcdef")));
        assert!(prefixed(&mut outbox, b'2', Bytes::from_static(b"gh")));
        // 5 + 9 + 5 = 19 bytes of plaintext, sealed at most 8 at a time.
        let mut wire = Vec::new();
        let mut msg = outbox.seal(8, bracket).unwrap().expect("a sealed part");
        let mut parts = 1;
        loop {
            // Short writes of the record buffer resume it, not the plaintext.
            let bytes = flat(msg);
            let n = bytes.len().min(3);
            wire.extend_from_slice(&bytes[..n]);
            assert!(!outbox.completes_send(n) || n == bytes.len());
            match outbox.on_sent(n) {
                SendProgress::Partial => msg = outbox.resume().expect("the rest"),
                SendProgress::MoreToSeal => {
                    assert!(outbox.is_busy() && outbox.is_resealable());
                    assert_eq!(outbox.begin(), Err(SendInFlight), "gathered memory in use");
                    assert_eq!(outbox.held().len(), 2, "frames held until sealed and sent");
                    msg = outbox.seal(8, bracket).unwrap().expect("the next part");
                    parts += 1;
                }
                SendProgress::Complete => break,
                SendProgress::NotInFlight => panic!("in flight"),
            }
        }
        assert_eq!(parts, 3);
        assert_eq!(wire, b"[HEAD;<1>][ABCDEF<2][>GH]!".to_vec());
        assert!(!outbox.is_busy());
        assert!(outbox.held().is_empty());
        outbox.begin().unwrap();
    }

    #[test]
    fn a_sealed_send_with_no_plaintext_carries_what_the_transform_adds() {
        let mut outbox: Outbox<Bytes> = Outbox::new(2, 64);
        // Nothing gathered, but the transform has bytes of its own (a handshake flight).
        outbox.begin().unwrap();
        let msg = outbox
            .seal(16, |s: &[&[u8]], last, out: &mut Vec<u8>| {
                assert!(s.is_empty() && last);
                out.extend_from_slice(b"flight");
                Ok::<(), ()>(())
            })
            .unwrap()
            .expect("the flight");
        assert_eq!(flat(msg), b"flight");
        assert_eq!(outbox.on_sent(6), SendProgress::Complete);
        // Nothing at all: no send, idle again.
        outbox.begin().unwrap();
        assert!(outbox
            .seal(16, |_, _, _| Ok::<(), ()>(()))
            .unwrap()
            .is_none());
        assert!(!outbox.is_busy());
    }

    #[test]
    fn a_failed_seal_consumes_nothing_and_the_send_can_be_dropped() {
        let body = Bytes::from(vec![7u8; 10]);
        let mut outbox: Outbox<Bytes> = Outbox::new(2, 64);
        outbox.begin().unwrap();
        assert!(prefixed(&mut outbox, b'0', body.clone()));
        assert_eq!(outbox.seal(4, |_, _, _| Err("full")), Err("full"));
        assert_eq!(outbox.bytes_queued(), 13);
        outbox.release().unwrap();
        assert!(body.is_unique());
        // Parts a transform drops are skipped to the next one.
        outbox.begin().unwrap();
        assert!(prefixed(&mut outbox, b'0', body.clone()));
        let msg = outbox
            .seal(4, |_, last, out: &mut Vec<u8>| {
                if last {
                    out.extend_from_slice(b"alert");
                }
                Ok::<(), ()>(())
            })
            .unwrap()
            .expect("the last part's output");
        assert_eq!(flat(msg), b"alert");
        assert_eq!(outbox.on_sent(5), SendProgress::Complete);
    }

    #[test]
    fn region_scratch_and_staged_bodies_put_every_iovec_in_the_region() {
        let cfg = RegionConfig {
            scratch_slots: 2,
            scratch_slot_size: 4 * PREFIX_SLOT,
            staging_bytes: 1 << 16,
            block_size: 1 << 16,
        };
        let mut region = SendRegion::new(cfg).unwrap();
        let mut outbox: Outbox<Bytes> =
            Outbox::with_region_scratch(64, 64, region.scratch().unwrap());
        assert!(outbox.has_region_scratch());
        outbox.begin().unwrap();
        for i in 0..4u8 {
            let staged = region.stage(&[i; 1000]).unwrap();
            assert!(prefixed(&mut outbox, b'0' + i, staged));
        }
        assert!(!outbox.has_room(), "max_frames cut to what the slot holds");
        let msg = outbox.finish().unwrap();
        let iovs = iovecs(msg);
        assert_eq!(iovs.len(), 8);
        assert!(iovs.iter().all(|&(p, l)| region.mem().contains(p, l)));
        // A heap body breaks the rule: the caller must then use the non-fixed path.
        let mut other: Outbox<Bytes> =
            Outbox::with_region_scratch(4, 64, region.scratch().unwrap());
        other.begin().unwrap();
        assert!(prefixed(&mut other, b'x', Bytes::from(vec![9u8; 10])));
        let iovs = iovecs(other.finish().unwrap());
        assert!(region.mem().contains(iovs[0].0, iovs[0].1));
        assert!(!region.mem().contains(iovs[1].0, iovs[1].1));
        other.on_failed();
        outbox.on_failed();
    }
}
