//! Queuing operations: into the SQ (submitting to make room when it is full) or,
//! when even that fails, in order into a bounded backlog; and `io_uring_enter`,
//! which submits them and waits for completions.

use std::io;
use std::time::{Duration, Instant};

use io_uring::{squeue, types};
use thiserror::Error;

use super::Reactor;

/// Why an operation could not be queued.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SubmitError {
    /// The SQ is full and so is the bounded backlog behind it.
    #[error("submission backlog full ({len} operations queued, limit {limit})")]
    BacklogFull {
        /// Operations currently queued in the backlog.
        len: usize,
        /// The configured `backlog_limit`.
        limit: usize,
    },
    /// The reactor is being torn down ([`Reactor::quiesce`]): nothing new is queued.
    #[error("reactor is quiescing: no new operations")]
    Quiescing,
}

impl Reactor {
    /// Submits everything queued and waits until `want` completions are ready or
    /// `timeout` passes. Returns the number of SQEs submitted. Interrupted waits and
    /// timeouts are not errors: drain whatever is there.
    pub fn submit_and_wait(&mut self, want: usize, timeout: Option<Duration>) -> io::Result<usize> {
        self.rearm_starved();
        // Synthetic completions are ready now: nothing to wait for.
        let want = if self.synthetic.is_empty() { want } else { 0 };
        let mut submitted = 0usize;
        loop {
            self.flush_backlog();
            let to_submit = self.ring.submission().len();
            let last = self.backlog.is_empty();
            // Only the final enter waits; earlier ones just make room for the backlog.
            let wait = if last { want } else { 0 };
            let started = Instant::now();
            let res = self.enter(to_submit, wait, if last { timeout } else { None });
            if wait > 0 {
                self.stats.idle += started.elapsed();
            }
            match res {
                Ok(n) => {
                    self.stats.submits += 1;
                    self.stats.sqes_submitted += n as u64;
                    submitted += n;
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME) | Some(libc::EINTR)) => {
                    self.stats.submits += 1;
                }
                // The CQ is full: the caller must drain before we can submit more.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Ok(submitted),
                Err(e) => return Err(e),
            }
            if last || self.ring.submission().is_full() {
                return Ok(submitted);
            }
        }
    }

    /// Operations queued behind a full SQ.
    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    pub(super) fn push(&mut self, entry: squeue::Entry) -> Result<(), SubmitError> {
        self.push_counted(entry, true)
    }

    /// Queues `entry`; `counted`: it ends with a final CQE (tracked in `in_kernel`).
    pub(super) fn push_counted(
        &mut self,
        entry: squeue::Entry,
        counted: bool,
    ) -> Result<(), SubmitError> {
        if self.quiescing {
            return Err(SubmitError::Quiescing);
        }
        if self.backlog.is_empty() {
            // SAFETY: the entry's pointers are valid per the contract of the public
            // method that built it.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                self.in_kernel += u64::from(counted);
                return Ok(());
            }
            // The SQ is full: hand it to the kernel and retry once.
            let queued = self.ring.submission().len();
            if self.enter(queued, 0, None).is_ok() {
                self.stats.submits += 1;
                // SAFETY: as above.
                if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                    self.in_kernel += u64::from(counted);
                    return Ok(());
                }
            }
        }
        if self.backlog.len() >= self.backlog_limit {
            return Err(SubmitError::BacklogFull {
                len: self.backlog.len(),
                limit: self.backlog_limit,
            });
        }
        self.stats.backlogged += 1;
        self.backlog.push_back((entry, counted));
        Ok(())
    }

    fn flush_backlog(&mut self) {
        let mut sq = self.ring.submission();
        while let Some((entry, counted)) = self.backlog.front() {
            // SAFETY: entries were valid when queued and their owners keep them alive.
            if unsafe { sq.push(entry) }.is_err() {
                break;
            }
            self.in_kernel += u64::from(*counted);
            self.backlog.pop_front();
        }
    }

    pub(super) fn enter(
        &mut self,
        to_submit: usize,
        want: usize,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let submitter = self.ring.submitter();
        if self.features.sqpoll {
            return match timeout {
                Some(t) if want > 0 => {
                    let ts = timespec(t);
                    submitter.submit_with_args(want, &types::SubmitArgs::new().timespec(&ts))
                }
                _ => submitter.submit_and_wait(want),
            };
        }
        // With DEFER_TASKRUN, completions only appear when we pass GETEVENTS, so a
        // plain submit must still carry it to collect what has finished meanwhile.
        let mut flags = io_uring::EnterFlags::empty();
        if want > 0 || self.features.defer_taskrun {
            flags |= io_uring::EnterFlags::GETEVENTS;
        }
        match timeout {
            Some(t) if want > 0 && self.features.ext_arg => {
                let ts = timespec(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                flags |= io_uring::EnterFlags::EXT_ARG;
                // SAFETY: args outlives the call and matches the EXT_ARG layout.
                unsafe { submitter.enter(to_submit as u32, want as u32, flags.bits(), Some(&args)) }
            }
            // SAFETY: no argument pointer.
            _ => unsafe {
                submitter.enter::<libc::sigset_t>(to_submit as u32, want as u32, flags.bits(), None)
            },
        }
    }
}

fn timespec(d: Duration) -> types::Timespec {
    types::Timespec::new()
        .sec(d.as_secs())
        .nsec(d.subsec_nanos())
}
