//! One viewer's gathered send: small per-viewer header bytes and shared payloads
//! in one iovec list, kept alive (and unmoved) until the kernel is done with it.
//!
//! The send path (DESIGN.md "Egress") is `[scratch hdr, shared body, scratch hdr,
//! shared body, ...]` in one `sendmsg`. `GatherSend` owns the iovecs, the msghdr,
//! a copy of each header in its own scratch area and a `Bytes` reference to each
//! body, so the pointers handed to [`Reactor::sendmsg`](super::Reactor::sendmsg)
//! stay valid until its completion. After a short send, [`GatherSend::advance`]
//! trims what went out so the same value can be submitted again.

use bytes::Bytes;
use thiserror::Error;

/// Most iovecs in one send (64 frames of header + body, the DESIGN.md cap).
pub const MAX_IOVECS: usize = 128;
/// Most payload bytes in one send.
pub const MAX_SEND_BYTES: usize = 1 << 20;
/// Room for per-viewer header copies (64 frames × up to 64 header bytes).
pub const SCRATCH_BYTES: usize = 4096;

/// Why a piece could not be added.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum GatherError {
    /// All iovec slots are used.
    #[error("gathered send has {limit} iovecs already")]
    TooManyIovecs {
        /// [`MAX_IOVECS`].
        limit: usize,
    },
    /// The send would carry more than [`MAX_SEND_BYTES`].
    #[error("gathered send would carry {len} bytes, limit {limit}")]
    TooManyBytes {
        /// Bytes it would carry.
        len: usize,
        /// [`MAX_SEND_BYTES`].
        limit: usize,
    },
    /// The header scratch area is full.
    #[error("header scratch would need {len} bytes, limit {limit}")]
    ScratchFull {
        /// Bytes it would need.
        len: usize,
        /// [`SCRATCH_BYTES`].
        limit: usize,
    },
    /// More bytes were reported sent than were queued.
    #[error("{sent} bytes reported sent but only {queued} queued")]
    Overrun {
        /// Reported.
        sent: usize,
        /// Queued.
        queued: usize,
    },
}

/// A reusable gathered send for one connection.
pub struct GatherSend {
    iov: Box<[libc::iovec; MAX_IOVECS]>,
    msg: Box<libc::msghdr>,
    scratch: Box<[u8; SCRATCH_BYTES]>,
    scratch_used: usize,
    /// Keeps every shared body alive while the kernel may read it.
    held: Vec<Bytes>,
    /// First iovec not fully sent.
    first: usize,
    len: usize,
    bytes: usize,
}

// SAFETY: the raw pointers only point into the value's own boxes and the `Bytes`
// it holds, which are Send; nothing is shared with another owner.
unsafe impl Send for GatherSend {}

impl Default for GatherSend {
    fn default() -> Self {
        GatherSend::new()
    }
}

impl GatherSend {
    /// An empty send. Allocates its fixed buffers once; reuse it with `clear`.
    pub fn new() -> GatherSend {
        let empty = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
        GatherSend {
            iov: Box::new([empty; MAX_IOVECS]),
            // SAFETY: msghdr is plain old data; all-zero is an empty header.
            msg: Box::new(unsafe { std::mem::zeroed() }),
            scratch: Box::new([0; SCRATCH_BYTES]),
            scratch_used: 0,
            held: Vec::with_capacity(MAX_IOVECS),
            first: 0,
            len: 0,
            bytes: 0,
        }
    }

    /// Appends a copy of `header` (per-viewer bytes such as an FLV tag prefix).
    pub fn push_header(&mut self, header: &[u8]) -> Result<(), GatherError> {
        let end = self.scratch_used + header.len();
        if end > SCRATCH_BYTES {
            return Err(GatherError::ScratchFull { len: end, limit: SCRATCH_BYTES });
        }
        self.check_room(header.len())?;
        let Some(dst) = self.scratch.get_mut(self.scratch_used..end) else {
            return Err(GatherError::ScratchFull { len: end, limit: SCRATCH_BYTES });
        };
        dst.copy_from_slice(header);
        let ptr = dst.as_mut_ptr();
        self.scratch_used = end;
        self.push_iovec(ptr, header.len());
        Ok(())
    }

    /// Appends a shared body; the send keeps a reference until it is cleared.
    pub fn push_shared(&mut self, body: Bytes) -> Result<(), GatherError> {
        self.check_room(body.len())?;
        if body.is_empty() {
            return Ok(());
        }
        self.push_iovec(body.as_ptr().cast_mut(), body.len());
        self.held.push(body);
        Ok(())
    }

    /// Whether `extra_iovecs` more pieces totalling `extra_bytes` would still fit:
    /// check before starting a frame so frames are never split across sends.
    pub fn has_room(&self, extra_iovecs: usize, extra_bytes: usize) -> bool {
        self.len + extra_iovecs <= MAX_IOVECS && self.bytes + extra_bytes <= MAX_SEND_BYTES
    }

    /// Bytes still to send.
    pub fn remaining(&self) -> usize {
        self.bytes
    }

    /// True when nothing is left to send.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// The msghdr to pass to `Reactor::sendmsg`. Valid until this value is cleared,
    /// advanced, changed or dropped, none of which may happen while a send is in flight.
    pub fn msghdr(&mut self) -> *const libc::msghdr {
        let pending = self.iov.get_mut(self.first..self.len).unwrap_or_default();
        self.msg.msg_iov = pending.as_mut_ptr();
        self.msg.msg_iovlen = pending.len();
        &*self.msg
    }

    /// Records that the kernel sent `sent` bytes. Returns true when everything went;
    /// otherwise the remainder is ready to be submitted again with `msghdr()`.
    pub fn advance(&mut self, mut sent: usize) -> Result<bool, GatherError> {
        if sent > self.bytes {
            return Err(GatherError::Overrun { sent, queued: self.bytes });
        }
        self.bytes -= sent;
        while sent > 0 {
            let Some(iov) = self.iov.get_mut(self.first) else { break };
            if sent >= iov.iov_len {
                sent -= iov.iov_len;
                iov.iov_len = 0;
                self.first += 1;
            } else {
                // SAFETY: sent < iov_len, so the new base stays inside the piece.
                iov.iov_base = unsafe { iov.iov_base.cast::<u8>().add(sent) }.cast();
                iov.iov_len -= sent;
                sent = 0;
            }
        }
        Ok(self.bytes == 0)
    }

    /// Empties the send and drops its body references, keeping its buffers.
    pub fn clear(&mut self) {
        self.held.clear();
        self.scratch_used = 0;
        self.first = 0;
        self.len = 0;
        self.bytes = 0;
    }

    fn check_room(&self, bytes: usize) -> Result<(), GatherError> {
        if self.len >= MAX_IOVECS {
            return Err(GatherError::TooManyIovecs { limit: MAX_IOVECS });
        }
        if self.bytes + bytes > MAX_SEND_BYTES {
            return Err(GatherError::TooManyBytes { len: self.bytes + bytes, limit: MAX_SEND_BYTES });
        }
        Ok(())
    }

    fn push_iovec(&mut self, ptr: *mut u8, len: usize) {
        if let Some(slot) = self.iov.get_mut(self.len) {
            *slot = libc::iovec { iov_base: ptr.cast(), iov_len: len };
            self.len += 1;
            self.bytes += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    fn socketpair() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: valid out-array; fds checked and owned below.
        let rc = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0, fds.as_mut_ptr()) };
        assert_eq!(rc, 0);
        // SAFETY: fresh fds we own.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    fn read_all(fd: &OwnedFd) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            // SAFETY: buf is live and sized.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
    }

    #[test]
    fn headers_and_shared_bodies_go_out_in_order() {
        let (tx, rx) = socketpair();
        let body = Bytes::from_static(b"shared-body");
        let mut send = GatherSend::new();
        for i in 0..3u8 {
            send.push_header(&[b'<', b'0' + i, b'>']).unwrap();
            send.push_shared(body.clone()).unwrap();
        }
        assert_eq!(send.remaining(), 3 * (3 + 11));
        // SAFETY: the msghdr and everything it points to live in `send`.
        let n = unsafe { libc::sendmsg(tx.as_raw_fd(), send.msghdr(), 0) };
        assert!(send.advance(n as usize).unwrap());
        assert_eq!(read_all(&rx), b"<0>shared-body<1>shared-body<2>shared-body");
    }

    #[test]
    fn a_short_send_resumes_where_it_stopped() {
        let (tx, rx) = socketpair();
        let big = Bytes::from(vec![7u8; 300_000]);
        let mut send = GatherSend::new();
        send.push_header(b"HDR").unwrap();
        send.push_shared(big.clone()).unwrap();
        send.push_header(b"END").unwrap();
        let mut received = Vec::new();
        let mut rounds = 0;
        while !send.is_empty() {
            rounds += 1;
            // SAFETY: as above.
            let n = unsafe { libc::sendmsg(tx.as_raw_fd(), send.msghdr(), 0) };
            if n > 0 {
                send.advance(n as usize).unwrap();
            }
            received.extend(read_all(&rx));
        }
        received.extend(read_all(&rx));
        assert!(rounds > 1, "the socket buffer forced a short send");
        assert_eq!(received.len(), 300_006);
        assert_eq!(&received[..3], b"HDR");
        assert_eq!(&received[300_003..], b"END");
        assert!(received[3..300_003].iter().all(|&b| b == 7));
    }

    #[test]
    fn limits_are_enforced_and_clear_resets() {
        let mut send = GatherSend::new();
        assert_eq!(
            send.push_shared(Bytes::from(vec![0; MAX_SEND_BYTES + 1])),
            Err(GatherError::TooManyBytes { len: MAX_SEND_BYTES + 1, limit: MAX_SEND_BYTES })
        );
        assert!(matches!(send.push_header(&[0; SCRATCH_BYTES + 1]), Err(GatherError::ScratchFull { .. })));
        for _ in 0..MAX_IOVECS {
            send.push_header(b"x").unwrap();
        }
        assert!(!send.has_room(1, 0));
        assert_eq!(send.push_header(b"x"), Err(GatherError::TooManyIovecs { limit: MAX_IOVECS }));
        assert_eq!(send.advance(MAX_IOVECS + 1), Err(GatherError::Overrun { sent: MAX_IOVECS + 1, queued: MAX_IOVECS }));
        send.clear();
        assert!(send.is_empty() && send.has_room(MAX_IOVECS, MAX_SEND_BYTES));
    }

    #[test]
    fn bodies_are_released_on_clear() {
        let body = Bytes::from(vec![1u8; 100]);
        let mut send = GatherSend::new();
        send.push_shared(body.clone()).unwrap();
        assert!(!body.is_unique());
        send.clear();
        assert!(body.is_unique());
    }
}
