//! Building one gathered send: the queued control bytes first, then frames, each
//! a per-viewer prefix written into the scratch followed by its shared body, up
//! to `max_frames`; `finish` hands the header to the caller, in flight from then.

use super::{Outbox, SendBody, SendInFlight, State, PREFIX_SLOT};

impl<H: SendBody> Outbox<H> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_send_is_none_and_outbox_stays_free() {
        let mut outbox: Outbox<()> = Outbox::new(2, 8);
        outbox.begin().unwrap();
        assert!(outbox.finish().is_none());
        assert!(!outbox.is_busy());
    }
}
