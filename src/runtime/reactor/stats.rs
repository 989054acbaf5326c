//! [`ReactorStats`]: counters describing how hard a reactor works.

use std::time::Duration;

/// Counters describing how hard the reactor works.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReactorStats {
    /// `io_uring_enter` calls.
    pub submits: u64,
    /// SQEs handed to the kernel.
    pub sqes_submitted: u64,
    /// CQEs delivered to the caller (plus those the reactor consumed itself).
    pub completions: u64,
    /// Send/sendmsg operations queued.
    pub sends: u64,
    /// Of those, zero-copy sends from the registered region (`IORING_RECVSEND_FIXED_BUF`).
    pub fixed_sends: u64,
    /// Multishot operations the reactor re-armed after they stopped.
    pub rearms: u64,
    /// Multishot receives that stopped because the buffer ring was empty.
    pub enobufs: u64,
    /// Times a drain found completions parked in the kernel's overflow list (the CQ
    /// ring was full) and had them moved into the ring.
    pub overflow_flushes: u64,
    /// Operations that went through the backlog because the SQ was full.
    pub backlogged: u64,
    /// Time spent outside `io_uring_enter` waits since the reactor was created.
    pub busy: Duration,
    /// Time spent blocked in `io_uring_enter` waiting for completions.
    pub idle: Duration,
}

impl ReactorStats {
    /// Mean number of sends per `io_uring_enter`, the batching we are after.
    pub fn sends_per_submit(&self) -> f64 {
        if self.submits == 0 {
            0.0
        } else {
            self.sends as f64 / self.submits as f64
        }
    }
}
