//! Teardown: [`Reactor::quiesce`] (cancel everything, refuse new operations, wait
//! until the kernel holds nothing) and the reactor's `Drop`, which frees the memory
//! the ring points at only after the ring is gone.

use std::mem::ManuallyDrop;
use std::time::{Duration, Instant};

use io_uring::{opcode, types};

use super::{Completion, Reactor, BUFFER_GROUP};

/// `user_data` of the reactor's own cancel-everything in [`Reactor::quiesce`]; callers
/// must not use it.
pub const QUIESCE_USER_DATA: u64 = u64::MAX;

/// How long dropping a reactor waits for the kernel to finish what it holds.
const DROP_QUIESCE_LIMIT: Duration = Duration::from_secs(2);

impl Reactor {
    /// Cancels every operation the kernel holds, refuses new ones, and drains
    /// completions (each handed to `f`, which may no longer queue anything) until
    /// the kernel holds nothing or `limit` passes. Returns true when it holds nothing:
    /// only then may memory those operations point at be freed. Call it before
    /// dropping state the kernel reads or writes; the reactor's own `Drop` calls it too.
    pub fn quiesce(
        &mut self,
        limit: Duration,
        mut f: impl FnMut(&mut Reactor, Completion),
    ) -> bool {
        self.quiescing = true;
        // Queued behind a full SQ: never handed to the kernel, just dropped.
        self.backlog.clear();
        self.starved.clear();
        if self.in_kernel == 0 {
            return true;
        }
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(QUIESCE_USER_DATA);
        // SAFETY: no pointers in a cancel.
        if unsafe { self.ring.submission().push(&cancel) }.is_ok() {
            self.in_kernel += 1;
        }
        let deadline = Instant::now() + limit;
        while self.in_kernel > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if self
                .submit_and_wait(1, Some(left.min(Duration::from_millis(50))))
                .is_err()
            {
                break;
            }
            self.drain_completions(|r, c| {
                if c.user_data != QUIESCE_USER_DATA {
                    f(r, c)
                }
            });
        }
        if self.in_kernel > 0 {
            tracing::error!(
                in_kernel = self.in_kernel,
                "io_uring operations still in flight after quiesce"
            );
        }
        self.in_kernel == 0
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        // 1. Nothing in the kernel any more (or give up and leak, below).
        let quiet = self.quiesce(DROP_QUIESCE_LIMIT, |_, _| {});
        // 2. Stop the kernel from picking buffers or reading the region.
        let _ = self.ring.submitter().unregister_buf_ring(BUFFER_GROUP);
        if self.region.is_some() {
            let _ = self.ring.submitter().unregister_buffers();
        }
        // 3. Close the ring.
        // SAFETY: dropped once, here; not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.ring) };
        // 4. Only now the memory it pointed at.
        if quiet {
            // SAFETY: dropped once, here; not used afterwards.
            unsafe { ManuallyDrop::drop(&mut self.buffers) };
        } else {
            tracing::error!("leaking the receive buffers and send region of a reactor the kernel did not release");
            std::mem::forget(self.region.take());
        }
    }
}
