//! A core's wake-up: an eventfd the core keeps a read armed on, written by a
//! sender only when the target may be asleep and was not told yet (the
//! `notified` flag; see the module doc of [`super`] for why an eventfd).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};

/// One core's wake-up: an eventfd plus whether someone already wrote it.
pub(super) struct Waker {
    pub(super) fd: OwnedFd,
    pub(super) notified: AtomicBool,
}

impl Waker {
    pub(super) fn new() -> io::Result<Waker> {
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(Waker {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            notified: AtomicBool::new(false),
        })
    }

    /// Writes the eventfd unless a wake is already pending; true if it wrote.
    pub(super) fn wake(&self) -> bool {
        // Pairs with the fence in `CoreLink::drain`: either the target sees our
        // items, or we see its cleared flag and write.
        fence(Ordering::SeqCst);
        if self.notified.swap(true, Ordering::SeqCst) {
            return false;
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we keep open.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if n != 8 {
            // EAGAIN means the counter is saturated: the target is already awake-able.
            tracing::debug!(error = %io::Error::last_os_error(), "eventfd wake write");
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::runtime::mesh::tests::sized;
    use crate::runtime::mesh::{Lane, Mesh, DRAIN_BATCH};

    #[test]
    fn one_wake_per_target_until_it_drains() {
        let mut links = Mesh::new::<u32>(2, sized(64, 64, 0)).unwrap();
        for i in 0..10 {
            links[0].send(1, Lane::Media, i).unwrap();
        }
        assert_eq!(links[0].flush_wakeups(), 1, "one wake for ten items");
        links[0].send(1, Lane::Control, 10).unwrap();
        assert_eq!(
            links[0].flush_wakeups(),
            0,
            "target not drained yet: already notified"
        );
        let mut counter = 0u64;
        // SAFETY: reading 8 bytes into a live u64 from our eventfd.
        let n = unsafe { libc::read(links[1].wake_fd(), (&mut counter as *mut u64).cast(), 8) };
        assert_eq!((n, counter), (8, 1));
        assert_eq!(links[1].drain(|_, _| {}), 11);
        links[0].send(1, Lane::Media, 11).unwrap();
        assert_eq!(
            links[0].flush_wakeups(),
            1,
            "drained, so it may sleep again: wake"
        );
        assert_eq!(links[0].flush_wakeups(), 0, "nothing sent since");
    }

    #[test]
    fn items_left_by_the_batch_cap_keep_the_core_awake() {
        let mut links = Mesh::new::<u32>(2, sized(2 * DRAIN_BATCH, 2, 0)).unwrap();
        for i in 0..(DRAIN_BATCH as u32 + 5) {
            links[0].send(1, Lane::Media, i).unwrap();
        }
        assert_eq!(links[1].drain(|_, _| {}), DRAIN_BATCH);
        let mut counter = 0u64;
        // SAFETY: reading 8 bytes into a live u64 from our eventfd (nonblocking).
        let n = unsafe { libc::read(links[1].wake_fd(), (&mut counter as *mut u64).cast(), 8) };
        assert_eq!(n, 8, "self-wake written");
        assert_eq!(links[1].drain(|_, _| {}), 5);
    }
}
