//! What waits for the next sends: control bytes (copied, bounded by the
//! outbox's `control_limit`) and shared bodies (kept by handle, never copied,
//! bounded by [`MAX_QUEUED_BODIES`]), in the order queued.

use bytes::Bytes;

use super::{Outbox, SendBody};

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

impl<H: SendBody> Outbox<H> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::outbox::test_support::iovecs;
    use crate::runtime::outbox::SendProgress;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

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
}
