//! Sealed sends (TLS): the gathered plaintext goes, at most `max_plain` bytes at
//! a time, through a transform (e.g. encryption) into the outbox's bounded record
//! buffer, and the kernel is handed that buffer.

use super::{Outbox, SendBody, SendProgress, State};

/// Capacity of the record buffer kept between sealed sends; a larger one (after
/// a burst, e.g. a GOP-cache start) is freed once its send completed, so an idle
/// TLS viewer does not keep its largest send's buffer.
pub const SEALED_RETAIN: usize = 32 << 10;

impl<H: SendBody> Outbox<H> {
    pub(super) fn on_sealed_sent(&mut self, n: usize) -> SendProgress {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::outbox::test_support::{iovecs, prefixed};
    use crate::runtime::outbox::SendInFlight;
    use bytes::Bytes;

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
}
