//! The provided-buffer ring that multishot receives pick their buffers from.
//!
//! The kernel takes a buffer from the ring head for each receive completion and
//! reports its id in the CQE; the reactor hands the bytes to the caller, who
//! recycles the id once it has consumed them. Both the ring and the buffers are
//! one anonymous mapping each, so they are page aligned and never move.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

/// Largest ring the kernel accepts (`IORING_REGISTER_PBUF_RING` limit).
pub const MAX_RING_ENTRIES: u16 = 32768;
/// Largest single receive buffer we hand to the kernel.
pub const MAX_BUFFER_SIZE: u32 = 16 << 20;

/// An anonymous, page-aligned, zeroed memory mapping.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: anonymous private mapping; no file, no aliasing.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(ptr.cast::<u8>())
            .map(|ptr| Mapping { ptr, len })
            .ok_or_else(|| io::Error::other("mmap returned null"))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len come from a successful mmap and are unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A registered provided-buffer ring plus the buffers it points into.
pub struct BufRing {
    ring: Mapping,
    buffers: Mapping,
    entries: u16,
    buffer_size: u32,
    /// Our private copy of the tail; published to the kernel with a release store.
    tail: u16,
    /// One bit per buffer id: set while the caller holds it.
    held: Vec<u64>,
    held_count: usize,
}

impl BufRing {
    /// Allocates `entries` buffers of `buffer_size` bytes; none are handed to the kernel yet.
    pub fn new(entries: u16, buffer_size: u32) -> io::Result<BufRing> {
        if entries == 0 || !entries.is_power_of_two() || entries > MAX_RING_ENTRIES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "recv_buffers must be a power of two in 1..={MAX_RING_ENTRIES}, got {entries}"
                ),
            ));
        }
        if buffer_size == 0 || buffer_size > MAX_BUFFER_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("recv_buffer_size must be in 1..={MAX_BUFFER_SIZE}, got {buffer_size}"),
            ));
        }
        let ring_len = usize::from(entries) * std::mem::size_of::<BufRingEntry>();
        let buffers_len = usize::from(entries)
            .checked_mul(buffer_size as usize)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "buffer pool size overflows")
            })?;
        let mut ring = BufRing {
            ring: Mapping::new(ring_len)?,
            buffers: Mapping::new(buffers_len)?,
            entries,
            buffer_size,
            tail: 0,
            held: vec![0; usize::from(entries).div_ceil(64)],
            held_count: 0,
        };
        for id in 0..entries {
            ring.push(id);
        }
        ring.publish();
        Ok(ring)
    }

    /// Address of the ring memory, for `register_buf_ring_with_flags`.
    pub fn ring_addr(&self) -> u64 {
        self.ring.ptr.as_ptr() as u64
    }

    /// Number of buffers (and ring slots).
    pub fn entries(&self) -> u16 {
        self.entries
    }

    /// Size of each buffer in bytes.
    pub fn buffer_size(&self) -> u32 {
        self.buffer_size
    }

    /// How many buffers the caller currently holds (delivered, not yet recycled).
    pub fn held(&self) -> usize {
        self.held_count
    }

    /// Whether the kernel has at least one buffer to receive into.
    pub fn kernel_has_buffers(&self) -> bool {
        self.held_count < usize::from(self.entries)
    }

    /// Records that the kernel delivered buffer `id` to us; false if `id` is unknown
    /// or already held (which would mean the kernel and we disagree).
    pub fn mark_held(&mut self, id: u16) -> bool {
        let Some(word) = self.held.get_mut(usize::from(id / 64)) else {
            return false;
        };
        let bit = 1u64 << (id % 64);
        if id >= self.entries || *word & bit != 0 {
            return false;
        }
        *word |= bit;
        self.held_count += 1;
        true
    }

    /// The first `len` bytes of buffer `id`, if `id` is held and `len` fits.
    pub fn data(&self, id: u16, len: usize) -> Option<&[u8]> {
        if !self.is_held(id) || len > self.buffer_size as usize {
            return None;
        }
        let offset = usize::from(id) * self.buffer_size as usize;
        // SAFETY: id < entries and len <= buffer_size, so the range lies inside the
        // buffers mapping; the kernel no longer writes to a buffer it has completed.
        Some(unsafe { std::slice::from_raw_parts(self.buffers.ptr.as_ptr().add(offset), len) })
    }

    /// Gives buffer `id` back to the kernel; false if it was not held.
    pub fn recycle(&mut self, id: u16) -> bool {
        if !self.is_held(id) {
            return false;
        }
        if let Some(word) = self.held.get_mut(usize::from(id / 64)) {
            *word &= !(1u64 << (id % 64));
        }
        self.held_count -= 1;
        self.push(id);
        self.publish();
        true
    }

    fn is_held(&self, id: u16) -> bool {
        id < self.entries
            && self
                .held
                .get(usize::from(id / 64))
                .is_some_and(|word| word & (1u64 << (id % 64)) != 0)
    }

    fn push(&mut self, id: u16) {
        let mask = self.entries - 1;
        let slot = usize::from(self.tail & mask);
        let offset = usize::from(id) * self.buffer_size as usize;
        // SAFETY: slot < entries, so the entry lies inside the ring mapping; the kernel
        // only reads slots between its head and our published tail, and this slot is
        // past the published tail.
        unsafe {
            let entry = &mut *self.ring.ptr.as_ptr().cast::<BufRingEntry>().add(slot);
            entry.set_addr(self.buffers.ptr.as_ptr().add(offset) as u64);
            entry.set_len(self.buffer_size);
            entry.set_bid(id);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field overlays the first entry's reserved field, which the
        // kernel reads with acquire semantics; AtomicU16 has the layout of u16.
        unsafe {
            let tail = BufRingEntry::tail(self.ring.ptr.as_ptr().cast::<BufRingEntry>());
            (*tail.cast::<AtomicU16>()).store(self.tail, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_sizes() {
        assert!(BufRing::new(3, 4096).is_err());
        assert!(BufRing::new(0, 4096).is_err());
        assert!(BufRing::new(8, 0).is_err());
        assert!(BufRing::new(8, MAX_BUFFER_SIZE + 1).is_err());
    }

    #[test]
    fn hold_and_recycle_track_ownership() {
        let mut ring = BufRing::new(4, 64).unwrap();
        assert!(ring.kernel_has_buffers());
        assert!(ring.data(1, 8).is_none(), "not held yet");
        assert!(ring.mark_held(1));
        assert!(!ring.mark_held(1), "double delivery is refused");
        assert!(!ring.mark_held(4), "out of range id");
        assert_eq!(ring.data(1, 64).map(<[u8]>::len), Some(64));
        assert!(ring.data(1, 65).is_none());
        assert_eq!(ring.held(), 1);
        assert!(ring.recycle(1));
        assert!(!ring.recycle(1), "double recycle is refused");
        assert_eq!(ring.held(), 0);
        for id in 0..4 {
            assert!(ring.mark_held(id));
        }
        assert!(!ring.kernel_has_buffers());
    }
}
