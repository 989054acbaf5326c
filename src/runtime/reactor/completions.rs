//! [`Completion`], a finished operation, and draining the CQ ring into the
//! caller's handler, including completions parked in the kernel's overflow list.

use std::io;

use io_uring::cqueue;

use super::Reactor;

/// Most times one drain asks the kernel to move overflowed completions into the CQ
/// ring, each flush moving up to a ring's worth: bounds the drain however fast
/// completions keep coming.
const MAX_OVERFLOW_FLUSHES: u32 = 64;

/// A finished operation as reported by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The caller's tag given when queuing the operation.
    pub user_data: u64,
    /// Bytes transferred, a new fd, or `-errno`.
    pub result: i32,
    /// `IORING_CQE_F_*` flags.
    pub flags: u32,
}

impl Completion {
    /// True while the (multishot) operation keeps producing completions.
    pub fn more(&self) -> bool {
        cqueue::more(self.flags)
    }

    /// The provided buffer that holds this receive's bytes, if any.
    pub fn buffer_id(&self) -> Option<u16> {
        cqueue::buffer_select(self.flags)
    }

    /// For a zero-copy send: this CQE is the notification that the buffers are free.
    pub fn is_notification(&self) -> bool {
        cqueue::notif(self.flags)
    }

    /// The error, if the result is a negative errno.
    pub fn error(&self) -> Option<io::Error> {
        (self.result < 0).then(|| io::Error::from_raw_os_error(-self.result))
    }
}

impl Reactor {
    /// Calls `f` for each ready completion. `f` gets the reactor back, so it can read
    /// and recycle buffers and queue new operations while handling a completion.
    /// Synthetic final completions (see the module doc) come first, including those
    /// that `f` itself causes by closing an fd.
    ///
    /// Completions the kernel could not post because the CQ ring was full wait in its
    /// overflow list, in order, and enter the ring only on an `io_uring_enter` with
    /// GETEVENTS. A drain keeps flushing them until none are left (bounded by
    /// `MAX_OVERFLOW_FLUSHES`): otherwise, once a loop turn's completions outnumber
    /// the ring (a frame fanned out to more viewers than the CQ holds), the backlog grows
    /// every turn and everything behind it is delayed without bound, such as the final
    /// completion of a multishot accept the CQ pressure stopped, which the reactor must
    /// see to re-arm it: measured as a server that stopped accepting once its viewers
    /// outnumbered its CQ while its cores were busy (requests then time out unanswered).
    pub fn drain_completions(&mut self, mut f: impl FnMut(&mut Reactor, Completion)) {
        let mut batch = std::mem::take(&mut self.batch);
        let mut flushes = 0;
        loop {
            while let Some(completion) = self.synthetic.pop_front() {
                f(self, completion);
            }
            batch.clear();
            batch.extend(self.ring.completion().map(|cqe| Completion {
                user_data: cqe.user_data(),
                result: cqe.result(),
                flags: cqe.flags(),
            }));
            if batch.is_empty() && self.synthetic.is_empty() {
                if flushes < MAX_OVERFLOW_FLUSHES
                    && self.ring.submission().cq_overflow()
                    && self.flush_overflow()
                {
                    flushes += 1;
                    continue;
                }
                break;
            }
            let finished = batch.iter().filter(|c| !c.more()).count() as u64;
            self.in_kernel = self.in_kernel.saturating_sub(finished);
            self.stats.completions += batch.len() as u64;
            for completion in batch.drain(..) {
                if let Some(completion) = self.observe(completion) {
                    f(self, completion);
                }
            }
        }
        self.batch = batch;
    }

    /// Asks the kernel to move overflowed completions into the (drained) CQ ring.
    fn flush_overflow(&mut self) -> bool {
        self.stats.overflow_flushes += 1;
        let flags = io_uring::EnterFlags::GETEVENTS.bits();
        // SAFETY: no argument pointer; submits nothing and waits for nothing.
        let res = unsafe {
            self.ring
                .submitter()
                .enter::<libc::sigset_t>(0, 0, flags, None)
        };
        res.is_ok()
            || matches!(res, Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::ETIME)))
    }
}
