//! A connection's outgoing bytes, sent as one gathered `sendmsg` at a time.
//!
//! Each send carries, in order: control bytes the session queued (command
//! responses, acks), then up to `max_frames` media frames, each as a small
//! per-viewer prefix (written into this outbox's scratch) followed by the shared
//! frame body. Bodies are never copied: the outbox holds a handle (`H`) that keeps
//! each body alive until the kernel has taken the bytes.
//!
//! All memory the kernel reads (`msghdr`, iovecs, scratch) is heap-allocated once
//! per connection and never moves, so the outbox itself may move (e.g. inside a
//! slab) while a send is in flight.

use bytes::{Bytes, BytesMut};

/// Bytes of scratch reserved per frame for its prefix (HTTP chunk line + FLV
/// PreviousTagSize + tag header is 27; an RTMP first chunk header at most 18).
pub const PREFIX_SLOT: usize = 32;

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

/// What happened after the kernel reported `n` bytes sent.
#[derive(Debug, PartialEq, Eq)]
pub enum SendProgress {
    /// Everything in the send left; the outbox is free.
    Complete,
    /// Only part left; submit [`Outbox::msghdr`] again for the rest.
    Partial,
}

/// One connection's outgoing state.
pub struct Outbox<H> {
    msg: Box<libc::msghdr>,
    iov: Vec<libc::iovec>,
    scratch: Box<[u8]>,
    held: Vec<H>,
    control_pending: BytesMut,
    control_inflight: Bytes,
    control_limit: usize,
    max_frames: usize,
    frames: usize,
    first_unsent: usize,
    busy: bool,
    bytes_in_send: usize,
}

// SAFETY: the raw pointers in `msg`/`iov` point only into memory this struct owns
// (`iov`, `scratch`, `control_inflight`) or keeps alive through `held`.
unsafe impl<H: Send> Send for Outbox<H> {}

impl<H> Outbox<H> {
    /// An outbox gathering at most `max_frames` frames per send and queueing at most
    /// `control_limit` bytes of control data.
    pub fn new(max_frames: usize, control_limit: usize) -> Self {
        let max_frames = max_frames.max(1);
        // SAFETY: msghdr is plain old data; all-zero is a valid empty header.
        let msg: libc::msghdr = unsafe { std::mem::zeroed() };
        Outbox {
            msg: Box::new(msg),
            iov: Vec::with_capacity(1 + 2 * max_frames),
            scratch: vec![0u8; PREFIX_SLOT * max_frames].into_boxed_slice(),
            held: Vec::with_capacity(max_frames),
            control_pending: BytesMut::new(),
            control_inflight: Bytes::new(),
            control_limit,
            max_frames,
            frames: 0,
            first_unsent: 0,
            busy: false,
            bytes_in_send: 0,
        }
    }

    /// A send is in flight; nothing may be added until it completes.
    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// Control bytes waiting for the next send.
    pub fn has_control(&self) -> bool {
        !self.control_pending.is_empty()
    }

    /// Queues control bytes (session output) for the next send.
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

    /// Starts assembling a send: moves queued control bytes to the front.
    ///
    /// Must not be called while busy.
    pub fn begin(&mut self) {
        debug_assert!(!self.busy, "begin() while a send is in flight");
        self.iov.clear();
        self.held.clear();
        self.frames = 0;
        self.first_unsent = 0;
        self.bytes_in_send = 0;
        self.control_inflight = self.control_pending.split().freeze();
        if !self.control_inflight.is_empty() {
            let (ptr, len) = (self.control_inflight.as_ptr(), self.control_inflight.len());
            self.push_iov(ptr, len);
        }
    }

    /// Room for another frame in this send.
    pub fn has_room(&self) -> bool {
        self.frames < self.max_frames
    }

    /// How many more frames fit in this send.
    pub fn frames_room(&self) -> usize {
        self.max_frames - self.frames
    }

    /// Bytes gathered into the send being assembled.
    pub fn bytes_queued(&self) -> usize {
        self.bytes_in_send
    }

    /// Adds a frame: `write_prefix` fills at most [`PREFIX_SLOT`] bytes of scratch and
    /// returns how many it wrote; `body` must stay valid as long as `hold` lives.
    ///
    /// Returns false (and adds nothing) when the send is full.
    pub fn push_frame(
        &mut self,
        write_prefix: impl FnOnce(&mut [u8]) -> usize,
        body: &[u8],
        hold: H,
    ) -> bool {
        if !self.has_room() {
            return false;
        }
        let slot = self.frames * PREFIX_SLOT;
        let scratch = &mut self.scratch[slot..slot + PREFIX_SLOT];
        let n = write_prefix(scratch).min(PREFIX_SLOT);
        if n > 0 {
            let ptr = scratch.as_ptr();
            self.push_iov(ptr, n);
        }
        if !body.is_empty() {
            self.push_iov(body.as_ptr(), body.len());
        }
        self.held.push(hold);
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
            &[],
            hold,
        )
    }

    fn push_iov(&mut self, ptr: *const u8, len: usize) {
        self.iov.push(libc::iovec {
            iov_base: ptr as *mut libc::c_void,
            iov_len: len,
        });
        self.bytes_in_send += len;
    }

    /// Finishes assembling. Returns the header to submit, or None when there is
    /// nothing to send. The pointer stays valid until the send completes.
    pub fn finish(&mut self) -> Option<*const libc::msghdr> {
        if self.bytes_in_send == 0 {
            self.held.clear();
            return None;
        }
        self.busy = true;
        Some(self.msghdr())
    }

    /// The header for the unsent remainder of the in-flight send.
    pub fn msghdr(&mut self) -> *const libc::msghdr {
        let rest = &mut self.iov[self.first_unsent..];
        self.msg.msg_iov = rest.as_mut_ptr();
        self.msg.msg_iovlen = rest.len() as _;
        &*self.msg
    }

    /// What the in-flight send holds, in order.
    pub fn held(&self) -> &[H] {
        &self.held
    }

    /// Records that the kernel took `n` bytes of the in-flight send.
    pub fn on_sent(&mut self, mut n: usize) -> SendProgress {
        self.bytes_in_send = self.bytes_in_send.saturating_sub(n);
        while n > 0 && self.first_unsent < self.iov.len() {
            let iov = &mut self.iov[self.first_unsent];
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
        if self.first_unsent >= self.iov.len() {
            self.release();
            SendProgress::Complete
        } else {
            SendProgress::Partial
        }
    }

    /// Drops everything in flight (the connection is closing).
    pub fn release(&mut self) {
        self.busy = false;
        self.iov.clear();
        self.held.clear();
        self.frames = 0;
        self.first_unsent = 0;
        self.bytes_in_send = 0;
        self.control_inflight = Bytes::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    fn send_all(outbox: &mut Outbox<Bytes>, fd: i32, chunk_limit: usize) {
        let mut msg = outbox.finish().expect("something to send");
        loop {
            // Emulate a short write by sending at most chunk_limit bytes.
            let hdr = unsafe { &*msg };
            // msg_iovlen is size_t on glibc but c_int on musl: keep the cast.
            #[allow(clippy::unnecessary_cast)]
            let iovs = unsafe { std::slice::from_raw_parts(hdr.msg_iov, hdr.msg_iovlen as usize) };
            let mut flat = Vec::new();
            for iov in iovs {
                flat.extend_from_slice(unsafe {
                    std::slice::from_raw_parts(iov.iov_base as *const u8, iov.iov_len)
                });
            }
            let take = flat.len().min(chunk_limit);
            let n = unsafe { libc::write(fd, flat.as_ptr() as *const _, take) };
            assert!(n > 0);
            match outbox.on_sent(n as usize) {
                SendProgress::Complete => break,
                SendProgress::Partial => msg = outbox.msghdr(),
            }
        }
    }

    #[test]
    fn control_then_frames_with_prefixes_in_order_across_partial_sends() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut outbox: Outbox<Bytes> = Outbox::new(4, 1024);
        outbox.queue_control(b"CTRL").unwrap();
        outbox.begin();
        for i in 0..4u8 {
            let body = Bytes::from(vec![b'a' + i; 10]);
            let pushed = outbox.push_frame(
                |s| {
                    s[..3].copy_from_slice(&[b'<', b'0' + i, b'>']);
                    3
                },
                &body.clone(),
                body,
            );
            assert!(pushed);
        }
        assert!(
            !outbox.push_frame(|_| 0, b"x", Bytes::new()),
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
        outbox.begin();
        assert!(outbox.finish().is_none());
        assert!(!outbox.is_busy());
    }
}
