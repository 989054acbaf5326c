//! Single-shot operations other than sends: `connect`, `close`, cancelling an fd's
//! operations, reading an eventfd (cross-core wake-ups) and `MSG_RING`.

use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{Reactor, SubmitError};

impl Reactor {
    /// Queues a `connect` of `fd` to the socket address at `addr` (`IORING_OP_CONNECT`).
    /// The completion's result is 0 on success or `-errno` (e.g. `-ECONNREFUSED`).
    ///
    /// # Safety
    /// `addr` must point to `len` valid bytes of a socket address that stay valid
    /// and unmoved until this operation's completion is drained.
    pub unsafe fn connect(
        &mut self,
        fd: RawFd,
        addr: *const libc::sockaddr,
        len: libc::socklen_t,
        user_data: u64,
    ) -> Result<(), SubmitError> {
        let entry = opcode::Connect::new(types::Fd(fd), addr, len)
            .build()
            .user_data(user_data);
        self.push(entry)
    }

    /// Closes `fd`; any multishot still armed on it is forgotten (cancel it first). A
    /// receive parked for lack of buffers on `fd` ends with a synthetic `-ECANCELED`
    /// completion from the next `drain_completions`.
    pub fn close(&mut self, fd: RawFd, user_data: u64) -> Result<(), SubmitError> {
        self.retire_recv_of(fd);
        self.push(
            opcode::Close::new(types::Fd(fd))
                .build()
                .user_data(user_data),
        )
    }

    /// Cancels every operation in flight on `fd`; they complete with `-ECANCELED`
    /// (a parked receive too, synthetically, from the next `drain_completions`).
    pub fn cancel_fd(&mut self, fd: RawFd, user_data: u64) -> Result<(), SubmitError> {
        self.retire_recv_of(fd);
        let builder = types::CancelBuilder::fd(types::Fd(fd)).all();
        self.push(
            opcode::AsyncCancel2::new(builder)
                .build()
                .user_data(user_data),
        )
    }

    /// Reads the 8-byte counter of eventfd `efd` into `*buf`: a cross-core wake-up.
    ///
    /// # Safety
    /// `buf` must stay valid until the completion is drained.
    pub unsafe fn read_eventfd(
        &mut self,
        efd: RawFd,
        buf: *mut u64,
        user_data: u64,
    ) -> Result<(), SubmitError> {
        let entry = opcode::Read::new(types::Fd(efd), buf.cast::<u8>(), 8)
            .build()
            .user_data(user_data);
        self.push(entry)
    }

    /// Posts a CQE with `user_data`/`result` into another ring (`IORING_OP_MSG_RING`),
    /// without producing a completion on ours.
    pub fn msg_ring(
        &mut self,
        target_ring_fd: RawFd,
        result: i32,
        user_data: u64,
    ) -> Result<(), SubmitError> {
        let entry = opcode::MsgRingData::new(types::Fd(target_ring_fd), result, user_data, None)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS);
        // No CQE on success: not counted as held by the kernel.
        self.push_counted(entry, false)
    }
}
