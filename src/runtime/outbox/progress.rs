//! A send's completion: [`SendProgress`] after `n` bytes left (complete, or a
//! partial send whose remainder is resumed from the first unsent byte), a failed
//! send, or one dropped before it was handed over.

use super::{Outbox, SendBody, SendInFlight, State};

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

impl<H: SendBody> Outbox<H> {
    /// After a [`SendProgress::Partial`]: the header for the unsent remainder, now in
    /// flight again. None in any other state.
    pub fn resume(&mut self) -> Option<*const libc::msghdr> {
        if self.state != State::Resumable {
            return None;
        }
        self.state = State::InFlight;
        Some(self.header())
    }

    pub(super) fn header(&mut self) -> *const libc::msghdr {
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

    /// Skips `n` bytes of the gathered iovecs (sent, or sealed).
    pub(super) fn advance(&mut self, mut n: usize) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::outbox::test_support::{iovecs, prefixed};
    use bytes::Bytes;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

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
}
