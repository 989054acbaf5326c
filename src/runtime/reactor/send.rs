//! Sends: plain `send`/`sendmsg`, zero-copy `sendmsg`, and zero-copy `sendmsg`
//! from the registered send region (`IORING_RECVSEND_FIXED_BUF`), with the region's
//! registration.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;

use io_uring::{opcode, squeue, types};

use super::{Reactor, SubmitError};
use crate::runtime::region::{RegionMem, REGION_BUF_INDEX};

/// `IORING_RECVSEND_FIXED_BUF`, in the SQE's `ioprio` of a send: the iovecs are
/// inside the registered buffer `buf_index` (for `SENDMSG_ZC`: kernel 6.15+).
const RECVSEND_FIXED_BUF: u16 = 1 << 2;

/// Byte offset of `buf_index` in an SQE (`struct io_uring_sqe`, the kernel ABI).
const SQE_BUF_INDEX_OFFSET: usize = 40;

impl Reactor {
    /// Queues a `sendmsg` with `MSG_NOSIGNAL`.
    ///
    /// # Safety
    /// `msg`, its iovec array and every buffer it points to must stay valid and
    /// unmoved until this operation's completion is drained. Keep at most one send
    /// in flight per socket: the kernel does not order concurrent sends.
    pub unsafe fn sendmsg(
        &mut self,
        fd: RawFd,
        msg: *const libc::msghdr,
        user_data: u64,
    ) -> Result<(), SubmitError> {
        let entry = opcode::SendMsg::new(types::Fd(fd), msg).flags(libc::MSG_NOSIGNAL as u32);
        self.push_send(entry.build(), user_data)
    }

    /// Queues a `send` of `len` bytes at `buf` with `MSG_NOSIGNAL`.
    ///
    /// # Safety
    /// The bytes must stay valid and unmoved until the completion is drained.
    pub unsafe fn send(
        &mut self,
        fd: RawFd,
        buf: *const u8,
        len: u32,
        user_data: u64,
    ) -> Result<(), SubmitError> {
        let entry = opcode::Send::new(types::Fd(fd), buf, len).flags(libc::MSG_NOSIGNAL);
        self.push_send(entry.build(), user_data)
    }

    /// Queues a zero-copy `sendmsg`. Two CQEs come back: the result (with `more()` set)
    /// and later a notification (`is_notification()`) once the kernel released the buffers.
    ///
    /// # Safety
    /// As [`Reactor::sendmsg`], but the buffers must live until the notification.
    pub unsafe fn sendmsg_zc(
        &mut self,
        fd: RawFd,
        msg: *const libc::msghdr,
        user_data: u64,
    ) -> Result<(), SubmitError> {
        let entry = opcode::SendMsgZc::new(types::Fd(fd), msg).flags(libc::MSG_NOSIGNAL as u32);
        self.push_send(entry.build(), user_data)
    }

    /// Registers `region` as fixed buffer [`REGION_BUF_INDEX`] (pinning it; see
    /// `runtime::region` for the cost). The reactor keeps the memory alive until its
    /// ring is gone. Fails when a region is already registered or the kernel refuses
    /// (e.g. `ENOMEM` from `RLIMIT_MEMLOCK`).
    pub fn register_region(&mut self, region: &Arc<RegionMem>) -> io::Result<()> {
        if self.region.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a send region is already registered",
            ));
        }
        let (ptr, len) = region.range();
        let iov = [libc::iovec {
            iov_base: ptr as *mut libc::c_void,
            iov_len: len,
        }];
        // SAFETY: the memory stays allocated while `self.region` holds its Arc, which is
        // released only after the ring is closed (Drop).
        unsafe { self.ring.submitter().register_buffers(&iov)? };
        self.region = Some(region.clone());
        Ok(())
    }

    /// Queues a zero-copy `sendmsg` that names the registered region
    /// (`IORING_RECVSEND_FIXED_BUF`) when every iovec of `msg` lies inside it, and a
    /// plain [`Reactor::sendmsg_zc`] otherwise (the kernel would fail a fixed send
    /// with any iovec outside the buffer). Returns whether the fixed path was taken.
    ///
    /// # Safety
    /// As [`Reactor::sendmsg_zc`].
    pub unsafe fn sendmsg_zc_registered(
        &mut self,
        fd: RawFd,
        msg: *const libc::msghdr,
        user_data: u64,
    ) -> Result<bool, SubmitError> {
        // SAFETY: the caller guarantees `msg` and its iovec array are valid.
        let fixed = self
            .region
            .as_ref()
            .is_some_and(|region| unsafe { all_iovecs_in(msg, region) });
        let mut entry = opcode::SendMsgZc::new(types::Fd(fd), msg).flags(libc::MSG_NOSIGNAL as u32);
        if fixed {
            entry = entry.ioprio(RECVSEND_FIXED_BUF);
        }
        let entry = if fixed {
            with_buf_index(entry.build(), REGION_BUF_INDEX)
        } else {
            entry.build()
        };
        self.push_send(entry, user_data)?;
        if fixed {
            self.stats.fixed_sends += 1;
        }
        Ok(fixed)
    }

    /// Counts a send (queued or refused, as every caller's attempt) and queues it.
    pub(super) fn push_send(
        &mut self,
        entry: squeue::Entry,
        user_data: u64,
    ) -> Result<(), SubmitError> {
        self.stats.sends += 1;
        self.push(entry.user_data(user_data))
    }
}

/// True when every iovec of `msg` lies inside `region`.
///
/// # Safety
/// `msg` and its iovec array must be valid for reads.
unsafe fn all_iovecs_in(msg: *const libc::msghdr, region: &RegionMem) -> bool {
    // SAFETY: per the caller.
    let hdr = unsafe { &*msg };
    if hdr.msg_iov.is_null() {
        return false;
    }
    // SAFETY: per the caller, `msg_iov` points at `msg_iovlen` iovecs.
    let iovs = unsafe { std::slice::from_raw_parts(hdr.msg_iov, hdr.msg_iovlen) };
    !iovs.is_empty()
        && iovs
            .iter()
            .all(|v| region.contains(v.iov_base as *const u8, v.iov_len))
}

/// Sets the SQE's `buf_index`, which the crate's `SendMsgZc` builder does not expose.
fn with_buf_index(entry: squeue::Entry, index: u16) -> squeue::Entry {
    const _: () = assert!(std::mem::size_of::<squeue::Entry>() == 64);
    // SAFETY: `squeue::Entry` is `#[repr(C)]` around `struct io_uring_sqe` (64 bytes, the
    // kernel ABI, size checked above), so it and `[u8; 64]` have the same size and every
    // bit pattern of an SQE is a valid value of both; `buf_index` is the u16 at byte 40.
    let mut raw: [u8; 64] = unsafe { std::mem::transmute(entry) };
    raw[SQE_BUF_INDEX_OFFSET..SQE_BUF_INDEX_OFFSET + 2].copy_from_slice(&index.to_ne_bytes());
    // SAFETY: as above.
    unsafe { std::mem::transmute::<[u8; 64], squeue::Entry>(raw) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::reactor::ReactorConfig;
    use std::time::Duration;

    #[test]
    fn buf_index_lands_where_the_crate_puts_it() {
        // The crate sets buf_index for SendZc; ours must write the same bytes.
        let buf = [0u8; 4];
        let theirs = opcode::SendZc::new(types::Fd(3), buf.as_ptr(), 4)
            .buf_index(Some(0x1234))
            .build();
        let ours = with_buf_index(
            opcode::SendZc::new(types::Fd(3), buf.as_ptr(), 4).build(),
            0x1234,
        );
        // SAFETY: as in with_buf_index.
        let (a, b) = unsafe {
            (
                std::mem::transmute::<squeue::Entry, [u8; 64]>(theirs),
                std::mem::transmute::<squeue::Entry, [u8; 64]>(ours),
            )
        };
        assert_eq!(
            a[SQE_BUF_INDEX_OFFSET..SQE_BUF_INDEX_OFFSET + 2],
            b[SQE_BUF_INDEX_OFFSET..SQE_BUF_INDEX_OFFSET + 2]
        );
        assert_eq!(u16::from_ne_bytes([b[40], b[41]]), 0x1234);
    }

    #[test]
    fn the_kernel_honours_the_fixed_buffer_flag() {
        use crate::runtime::region::{RegionConfig, SendRegion};
        use std::os::fd::AsRawFd;
        let mut reactor = Reactor::new(&ReactorConfig {
            entries: 8,
            recv_buffers: 2,
            recv_buffer_size: 64,
            ..ReactorConfig::default()
        })
        .unwrap();
        let cfg = RegionConfig {
            scratch_slots: 1,
            scratch_slot_size: 64,
            staging_bytes: 1 << 16,
            block_size: 1 << 16,
        };
        let region = SendRegion::new(cfg).unwrap();
        reactor.register_region(region.mem()).unwrap();
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        // A heap iovec named as fixed buffer 0: the kernel must refuse it, which shows
        // it reads the flag (and so checks the iovecs of the sends we do mark fixed).
        let heap = [1u8; 100];
        let mut iov = [libc::iovec {
            iov_base: heap.as_ptr() as *mut libc::c_void,
            iov_len: heap.len(),
        }];
        // SAFETY: all-zero msghdr is valid; pointers set below outlive the wait.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = 1;
        let entry = opcode::SendMsgZc::new(types::Fd(a.as_raw_fd()), &msg)
            .ioprio(RECVSEND_FIXED_BUF)
            .build();
        reactor
            .push_send(with_buf_index(entry, REGION_BUF_INDEX), 7)
            .unwrap();
        let mut result = None;
        for _ in 0..100 {
            reactor
                .submit_and_wait(1, Some(Duration::from_millis(100)))
                .unwrap();
            reactor.drain_completions(|_, c| {
                if !c.is_notification() {
                    result = Some(c.result);
                }
            });
            if result.is_some() && reactor.in_kernel() == 0 {
                break;
            }
        }
        assert_eq!(
            result,
            Some(-libc::EFAULT),
            "an iovec outside the registered buffer is refused"
        );
    }
}
