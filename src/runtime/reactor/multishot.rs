//! Multishot accept and receive: the reactor tracks them by `user_data`, re-arms
//! one the kernel stopped without an error the caller should see (CQ pressure, or
//! an empty buffer ring: parked as starved until buffers are recycled), and makes
//! sure each ends with exactly one final completion (see the module doc of
//! [`super`]).

use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{Completion, Reactor, SubmitError, BUFFER_GROUP};

/// `IORING_CQE_F_MORE` (the crate keeps its sys bindings private).
const CQE_F_MORE: u32 = 1 << 1;

/// Which multishot operation a `user_data` stands for, to re-arm it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Multishot {
    Accept(RawFd),
    /// A receive armed in the kernel.
    Recv(RawFd),
    /// A receive parked in `starved`: not in the kernel.
    Starved(RawFd),
    /// A receive whose fd the caller closed or cancelled: it is never re-armed, since
    /// the fd number may already name another socket; its next final CQE ends it.
    Closing,
}

impl Reactor {
    /// Accepts connections on `listener` until cancelled; each CQE's result is a new fd.
    pub fn accept_multishot(&mut self, listener: RawFd, user_data: u64) -> Result<(), SubmitError> {
        self.multishot
            .insert(user_data, Multishot::Accept(listener));
        self.push_multishot(accept_entry(listener, user_data), user_data)
    }

    /// Receives on `fd` until EOF, error or cancel, into buffers from the provided ring.
    /// Each data CQE carries a `buffer_id()`: read it with [`Reactor::recv_buffer`], then
    /// [`Reactor::recycle_buffer`] it. `user_data` must be unique among live multishots,
    /// and an fd has at most one receive armed at a time.
    pub fn recv_multishot(&mut self, fd: RawFd, user_data: u64) -> Result<(), SubmitError> {
        self.multishot.insert(user_data, Multishot::Recv(fd));
        self.recv_fds.insert(fd, user_data);
        self.push_multishot(recv_entry(fd, user_data), user_data)
    }

    /// Queues a newly armed multishot; one that could not be queued is not tracked.
    fn push_multishot(&mut self, entry: squeue::Entry, user_data: u64) -> Result<(), SubmitError> {
        let res = self.push(entry);
        if res.is_err() {
            self.retire(user_data);
        }
        res
    }

    /// Tracks buffers and multishot state for one CQE; `None` if the caller should
    /// not see it (an ENOBUFS the reactor recovers from by itself).
    pub(super) fn observe(&mut self, mut completion: Completion) -> Option<Completion> {
        if let Some(id) = completion.buffer_id() {
            if !self.buffers.mark_held(id) {
                tracing::error!(id, "kernel delivered a buffer id we do not own");
            }
        }
        if completion.more() {
            return Some(completion);
        }
        let Some(kind) = self.multishot.get(&completion.user_data).copied() else {
            return Some(completion);
        };
        match (kind, completion.result) {
            (Multishot::Recv(fd), r) if r == -libc::ENOBUFS => {
                self.stats.enobufs += 1;
                self.multishot
                    .insert(completion.user_data, Multishot::Starved(fd));
                self.starved.push_back((completion.user_data, fd));
                None
            }
            // The kernel stopped a healthy multishot (e.g. CQ pressure): keep it going.
            // If it cannot be re-armed, the caller sees this completion as its last.
            (Multishot::Recv(fd), r) if r > 0 => {
                self.stats.rearms += 1;
                if self
                    .requeue(recv_entry(fd, completion.user_data), completion.user_data)
                    .is_ok()
                {
                    completion.flags |= CQE_F_MORE;
                }
                Some(completion)
            }
            (Multishot::Accept(fd), r) if r >= 0 => {
                self.stats.rearms += 1;
                if self
                    .requeue(accept_entry(fd, completion.user_data), completion.user_data)
                    .is_ok()
                {
                    completion.flags |= CQE_F_MORE;
                }
                Some(completion)
            }
            _ => {
                self.retire(completion.user_data);
                Some(completion)
            }
        }
    }

    /// Stops tracking a multishot that is over.
    fn retire(&mut self, user_data: u64) {
        if let Some(Multishot::Recv(fd) | Multishot::Starved(fd)) =
            self.multishot.remove(&user_data)
        {
            if self.recv_fds.get(&fd) == Some(&user_data) {
                self.recv_fds.remove(&fd);
            }
        }
    }

    /// Re-queues a multishot; if even the backlog is full the op is over for the caller.
    fn requeue(&mut self, entry: squeue::Entry, user_data: u64) -> Result<(), SubmitError> {
        let res = self.push(entry);
        if let Err(e) = &res {
            tracing::error!(user_data, error = %e, "could not re-arm multishot");
            self.retire(user_data);
        }
        res
    }

    /// The caller is closing (or cancelling) `fd`. A starved receive on it is not in
    /// the kernel, so no final CQE will retire it: drop it here and post its final
    /// completion ourselves, as a cancel would have (`-ECANCELED`), so the caller's
    /// count of operations in flight on the connection still reaches zero. A receive
    /// still in the kernel is marked so it is never re-armed: its next final CQE
    /// (EOF, error, or an ENOBUFS that would otherwise park it) ends it.
    pub(super) fn retire_recv_of(&mut self, fd: RawFd) {
        let Some(user_data) = self.recv_fds.remove(&fd) else {
            return;
        };
        match self.multishot.get(&user_data).copied() {
            Some(Multishot::Starved(_)) => {
                self.multishot.remove(&user_data);
                self.starved.retain(|&(parked, _)| parked != user_data);
                self.synthetic.push_back(Completion {
                    user_data,
                    result: -libc::ECANCELED,
                    flags: 0,
                });
            }
            Some(Multishot::Recv(_)) => {
                self.multishot.insert(user_data, Multishot::Closing);
            }
            _ => {}
        }
    }

    /// Re-arms starved receives, oldest first, at most one per buffer the kernel has
    /// free. Each starved socket has data waiting, so a re-armed receive takes at least
    /// one buffer at once: re-arming more than there are buffers only buys ENOBUFS
    /// completions (one per surplus socket, every loop turn, a storm under load). Called
    /// once per loop turn, just before submitting, when every buffer the caller gave
    /// back this turn is counted and the CQEs of the last turn were drained.
    pub(super) fn rearm_starved(&mut self) {
        let free = usize::from(self.buffers.entries()).saturating_sub(self.buffers.held());
        let budget = free.min(self.starved.len());
        for _ in 0..budget {
            let Some((user_data, fd)) = self.starved.pop_front() else {
                break;
            };
            self.stats.rearms += 1;
            self.multishot.insert(user_data, Multishot::Recv(fd));
            if self.requeue(recv_entry(fd, user_data), user_data).is_err() {
                // Not armed and never will be: end it with the error that parked it.
                self.synthetic.push_back(Completion {
                    user_data,
                    result: -libc::ENOBUFS,
                    flags: 0,
                });
            }
        }
    }
}

fn accept_entry(listener: RawFd, user_data: u64) -> squeue::Entry {
    opcode::AcceptMulti::new(types::Fd(listener))
        .build()
        .user_data(user_data)
}

pub(super) fn recv_entry(fd: RawFd, user_data: u64) -> squeue::Entry {
    opcode::RecvMulti::new(types::Fd(fd), BUFFER_GROUP)
        .build()
        .user_data(user_data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::reactor::ReactorConfig;
    use io_uring::opcode;

    fn small() -> Reactor {
        let cfg = ReactorConfig {
            entries: 4,
            recv_buffers: 2,
            recv_buffer_size: 64,
            ..Default::default()
        };
        Reactor::new(&cfg).unwrap()
    }

    /// What `r` makes of a kernel completion for `user_data` with `result` and no flags.
    fn observe_flagless(r: &mut Reactor, user_data: u64, result: i32) -> Completion {
        r.observe(Completion {
            user_data,
            result,
            flags: 0,
        })
        .unwrap()
    }

    /// A reactor whose backlog is full, so every further push fails.
    fn jammed() -> Reactor {
        let mut r = small();
        r.backlog_limit = 1;
        r.backlog
            .push_back((opcode::Nop::new().build().user_data(u64::MAX), false));
        r
    }

    #[test]
    fn a_starved_receive_that_cannot_be_rearmed_ends_with_enobufs() {
        let mut r = jammed();
        r.multishot.insert(7, Multishot::Starved(-1));
        r.recv_fds.insert(-1, 7);
        r.starved.push_back((7, -1));
        r.rearm_starved();
        let mut seen = Vec::new();
        r.drain_completions(|_, c| seen.push(c));
        assert_eq!(
            seen,
            [Completion {
                user_data: 7,
                result: -libc::ENOBUFS,
                flags: 0
            }]
        );
        assert!(r.multishot.is_empty() && r.starved.is_empty() && r.recv_fds.is_empty());
    }

    #[test]
    fn a_stopped_receive_that_cannot_be_rearmed_is_reported_as_final() {
        let mut r = jammed();
        r.multishot.insert(9, Multishot::Recv(-1));
        let c = observe_flagless(&mut r, 9, 100);
        assert!(
            !c.more(),
            "the caller must not believe the receive is still armed"
        );
        assert!(r.multishot.is_empty());
        r.multishot.insert(10, Multishot::Accept(-1));
        let c = observe_flagless(&mut r, 10, 5);
        assert!(!c.more());
    }

    #[test]
    fn a_multishot_that_cannot_be_queued_is_not_tracked() {
        let mut r = jammed();
        assert!(r.recv_multishot(-1, 3).is_err());
        assert!(r.accept_multishot(-1, 4).is_err());
        assert!(r.multishot.is_empty() && r.recv_fds.is_empty());
    }

    #[test]
    fn closing_a_starved_fd_posts_its_final_completion_once() {
        let mut r = small();
        // Negative fds: nothing here is ever submitted, but never name a real fd.
        for (ud, fd) in [(1, -2), (2, -3)] {
            r.multishot.insert(ud, Multishot::Starved(fd));
            r.recv_fds.insert(fd, ud);
            r.starved.push_back((ud, fd));
        }
        r.close(-2, 50).unwrap();
        let mut seen = Vec::new();
        r.drain_completions(|_, c| seen.push((c.user_data, c.result)));
        assert_eq!(seen, [(1, -libc::ECANCELED)]);
        assert_eq!(r.starved, [(2, -3)]);
        r.cancel_fd(-2, 51).unwrap();
        r.drain_completions(|_, c| panic!("nothing more is synthetic: {c:?}"));
    }

    #[test]
    fn a_receive_whose_fd_closed_is_never_parked_or_rearmed() {
        let mut r = small();
        r.multishot.insert(1, Multishot::Recv(-2));
        r.recv_fds.insert(-2, 1);
        r.multishot.insert(2, Multishot::Recv(-3));
        r.recv_fds.insert(-3, 2);
        r.close(-2, 50).unwrap();
        r.close(-3, 51).unwrap();
        // The kernel ran the receive once more after the close was queued and found no
        // buffer: re-arming it later could read whatever socket reuses the fd number.
        let c = observe_flagless(&mut r, 1, -libc::ENOBUFS);
        assert_eq!(c.result, -libc::ENOBUFS);
        assert!(r.starved.is_empty());
        // Stopped with data (CQ pressure): reported as final, not re-armed.
        let c = observe_flagless(&mut r, 2, 10);
        assert!(!c.more());
        assert_eq!(r.stats().rearms, 0);
        assert!(r.multishot.is_empty() && r.recv_fds.is_empty());
    }
}
