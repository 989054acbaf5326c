//! A core's registered send region: one block of memory, registered with the
//! core's io_uring as fixed buffer [`REGION_BUF_INDEX`], that holds both the
//! per-viewer scratch (prefixes) and a copy of each frame body this core sends.
//!
//! A fixed-buffer `SENDMSG_ZC` names one registered buffer and every iovec of it
//! must lie inside that buffer. A viewer's send gathers `[its prefix, a shared
//! body, its prefix, a shared body, ...]`, so the prefixes and the bodies must
//! live in the same registered buffer. The ingest arena (`runtime::arena`) cannot
//! be that buffer: its pieces are `BytesMut` (what decoders fill), and `bytes`
//! can only free a `BytesMut` through its own allocation, one per arena block;
//! and frames replicated from another core live in that core's arena anyway. So
//! each core copies a frame body into its region once, the first time one of its
//! viewers sends it (the copy is cached on the ring entry beside the RTMP chunk
//! body, so a frame is copied once per core, never per viewer), and the viewers'
//! scratch areas are carved from the same region.
//!
//! Layout: `[scratch slots][staging blocks]`, all in one page-aligned allocation.
//! Staged copies are `Bytes` whose owner counts itself on its block; a block is
//! reused only when no copy in it is alive any more. When the region has no room
//! (every block holds live frames, every scratch slot is taken) callers fall back
//! to heap memory, and such sends take the non-fixed path.
//!
//! Memory cost: the whole region is pinned by the registration (it cannot be
//! swapped or reclaimed) and is charged to the process's memory cgroup like any
//! anonymous memory; unless the process has `CAP_IPC_LOCK` the kernel also counts
//! it against `RLIMIT_MEMLOCK`, so a non-root server needs
//! `LimitMEMLOCK >= cores * region size`. Registration failing (e.g. `ENOMEM`
//! for the memlock limit) is not fatal: the core then sends without fixed buffers.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// The fixed-buffer index the region is registered under on its core's ring.
pub const REGION_BUF_INDEX: u16 = 0;
/// Alignment of the region (a page) and of every staged copy (a cache line).
const PAGE: usize = 4096;
const COPY_ALIGN: usize = 64;

/// Sizes of a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionConfig {
    /// Scratch slots: one per viewer connection that sends from the region.
    pub scratch_slots: usize,
    /// Bytes of each scratch slot.
    pub scratch_slot_size: usize,
    /// Bytes of frame copies the region holds.
    pub staging_bytes: usize,
    /// Size of each staging block; frames larger than this are not staged.
    pub block_size: usize,
}

impl RegionConfig {
    /// Total bytes the region allocates (and the registration pins).
    pub fn total_bytes(&self) -> usize {
        let scratch = (self.scratch_slots * self.scratch_slot_size).next_multiple_of(PAGE);
        scratch + self.blocks() * self.block_size()
    }

    fn block_size(&self) -> usize {
        self.block_size.max(PAGE).next_multiple_of(PAGE)
    }

    fn blocks(&self) -> usize {
        self.staging_bytes / self.block_size()
    }
}

/// Counters of a region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionStats {
    /// Frame bodies copied into the region.
    pub staged: u64,
    /// Frame bodies that found no room (or were too large) and stay on the heap.
    pub stage_misses: u64,
    /// Scratch requests refused because every slot was taken.
    pub scratch_misses: u64,
}

/// The memory itself, shared by the region, its staged copies, its scratch
/// slots and the reactor that registered it: it is freed only when all of them
/// are gone, so neither a live frame nor the ring's registration can outlive it.
pub struct RegionMem {
    ptr: *mut u8,
    layout: Layout,
    scratch_slot_size: usize,
    scratch_bytes: usize,
    block_size: usize,
    /// Per staging block: live copies in it, plus one while it is the block being filled.
    live: Box<[AtomicU32]>,
    /// Free scratch slots. Touched when a connection opens or closes, never per frame.
    free_scratch: Mutex<Vec<u32>>,
}

// SAFETY: the memory is only written through a scratch slot (exclusively owned)
// or by the region's stager into a block no live copy covers (checked with the
// `live` counters, acquire/release); staged copies are read-only.
unsafe impl Send for RegionMem {}
// SAFETY: as above; shared access is read-only or goes through atomics/the mutex.
unsafe impl Sync for RegionMem {}

impl RegionMem {
    /// The address range `[start, start + len)` to register with the kernel.
    pub fn range(&self) -> (*const u8, usize) {
        (self.ptr, self.layout.size())
    }

    /// True when `[ptr, ptr + len)` lies inside the region.
    pub fn contains(&self, ptr: *const u8, len: usize) -> bool {
        let (start, end) = (self.ptr as usize, self.ptr as usize + self.layout.size());
        let p = ptr as usize;
        p >= start && p.checked_add(len).is_some_and(|e| e <= end)
    }
}

impl Drop for RegionMem {
    fn drop(&mut self) {
        // SAFETY: allocated in `SendRegion::new` with this layout; every user (copies,
        // slots, the ring's registration) held an `Arc` to us, and all are gone.
        unsafe { dealloc(self.ptr, self.layout) };
    }
}

/// One core's registered send region (see the module doc). Owned by the core.
pub struct SendRegion {
    mem: Arc<RegionMem>,
    /// The block being filled and the offset of its first free byte.
    current: Option<(usize, usize)>,
    stats: RegionStats,
}

impl SendRegion {
    /// Allocates a zeroed region of `cfg.total_bytes()`.
    pub fn new(cfg: RegionConfig) -> std::io::Result<SendRegion> {
        let block_size = cfg.block_size();
        let scratch_slot_size = cfg.scratch_slot_size.max(1);
        let scratch_slots = u32::try_from(cfg.scratch_slots).map_err(std::io::Error::other)?;
        let scratch_bytes = (cfg.scratch_slots * scratch_slot_size).next_multiple_of(PAGE);
        let size = cfg.total_bytes().max(PAGE);
        let layout = Layout::from_size_align(size, PAGE).map_err(std::io::Error::other)?;
        // SAFETY: non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(std::io::Error::from(std::io::ErrorKind::OutOfMemory));
        }
        let live = (0..cfg.blocks()).map(|_| AtomicU32::new(0)).collect();
        let free_scratch = Mutex::new((0..scratch_slots).rev().collect());
        let mem = RegionMem {
            ptr,
            layout,
            scratch_slot_size,
            scratch_bytes,
            block_size,
            live,
            free_scratch,
        };
        Ok(SendRegion {
            mem: Arc::new(mem),
            current: None,
            stats: RegionStats::default(),
        })
    }

    /// The shared memory (for the reactor's registration).
    pub fn mem(&self) -> &Arc<RegionMem> {
        &self.mem
    }

    /// Counters since creation.
    pub fn stats(&self) -> RegionStats {
        self.stats
    }

    /// A scratch slot of `RegionConfig::scratch_slot_size` bytes, or None when all are taken.
    pub fn scratch(&mut self) -> Option<ScratchSlot> {
        let index = self.mem.free_scratch.lock().ok()?.pop();
        if index.is_none() {
            self.stats.scratch_misses += 1;
        }
        index.map(|index| ScratchSlot {
            mem: self.mem.clone(),
            index,
        })
    }

    /// Copies `data` into the region: the copy is the returned `Bytes`, which keeps
    /// its block from reuse while it (or a clone) lives. None when `data` is empty,
    /// larger than a block, or no block is free.
    pub fn stage(&mut self, data: &[u8]) -> Option<Bytes> {
        let need = data.len().next_multiple_of(COPY_ALIGN);
        if data.is_empty() || need > self.mem.block_size {
            self.stats.stage_misses += 1;
            return None;
        }
        let (block, offset) = match self.current {
            Some((block, offset)) if offset + need <= self.mem.block_size => (block, offset),
            _ => match self.next_block() {
                Some(block) => (block, 0),
                None => {
                    self.stats.stage_misses += 1;
                    return None;
                }
            },
        };
        let mem = &self.mem;
        let start = mem.scratch_bytes + block * mem.block_size + offset;
        // SAFETY: `[start, start + len)` lies in block `block`, past every copy carved
        // from it since it became current; the block was taken when no copy in it was
        // alive (acquire), so nothing else reads or writes these bytes.
        let ptr = unsafe {
            let ptr = mem.ptr.add(start);
            std::ptr::copy_nonoverlapping(data.as_ptr(), ptr, data.len());
            ptr
        };
        mem.live[block].fetch_add(1, Ordering::Relaxed);
        self.current = Some((block, offset + need));
        self.stats.staged += 1;
        Some(Bytes::from_owner(StagedCopy {
            mem: mem.clone(),
            block,
            ptr,
            len: data.len(),
        }))
    }

    /// Leaves the current block and takes a block without live copies, if any.
    fn next_block(&mut self) -> Option<usize> {
        let blocks = self.mem.live.len();
        let from = self.current.map_or(0, |(b, _)| b + 1);
        if let Some((old, _)) = self.current.take() {
            // Drop the stager's own count; the block is free once its copies are.
            self.mem.live[old].fetch_sub(1, Ordering::Release);
        }
        (0..blocks).map(|i| (from + i) % blocks).find(|&b| {
            // Acquire: readers of the copies that were in it are done before we write.
            self.mem.live[b]
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })
    }
}

impl Drop for SendRegion {
    fn drop(&mut self) {
        if let Some((block, _)) = self.current.take() {
            self.mem.live[block].fetch_sub(1, Ordering::Release);
        }
    }
}

/// A frame body copied into a region (the owner behind a staged `Bytes`).
struct StagedCopy {
    mem: Arc<RegionMem>,
    block: usize,
    ptr: *const u8,
    len: usize,
}

// SAFETY: the bytes are never written while this copy is alive (its block's count
// is non-zero) and `mem` keeps them allocated.
unsafe impl Send for StagedCopy {}

impl AsRef<[u8]> for StagedCopy {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: see the `Send` impl.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for StagedCopy {
    fn drop(&mut self) {
        // Release: our reads happen before the stager reuses the block.
        self.mem.live[self.block].fetch_sub(1, Ordering::Release);
    }
}

/// A connection's scratch area inside a region, exclusively its own until dropped.
pub struct ScratchSlot {
    mem: Arc<RegionMem>,
    index: u32,
}

impl ScratchSlot {
    /// The slot's bytes.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let size = self.mem.scratch_slot_size;
        // SAFETY: slot `index` lies in the scratch area; the free list hands each
        // index to one slot at a time, so this `&mut self` is its only accessor.
        unsafe {
            std::slice::from_raw_parts_mut(self.mem.ptr.add(self.index as usize * size), size)
        }
    }

    /// The region this slot lives in.
    pub fn region(&self) -> &RegionMem {
        &self.mem
    }
}

impl Drop for ScratchSlot {
    fn drop(&mut self) {
        if let Ok(mut free) = self.mem.free_scratch.lock() {
            free.push(self.index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> RegionConfig {
        RegionConfig {
            scratch_slots: 4,
            scratch_slot_size: 256,
            staging_bytes: 2 * PAGE,
            block_size: PAGE,
        }
    }

    #[test]
    fn staged_copies_and_scratch_lie_in_the_region() {
        let mut region = SendRegion::new(small()).unwrap();
        let copy = region.stage(b"hello").unwrap();
        assert_eq!(&copy[..], b"hello");
        assert!(region.mem().contains(copy.as_ptr(), copy.len()));
        let mut slot = region.scratch().unwrap();
        let s = slot.bytes_mut();
        assert_eq!(s.len(), 256);
        assert!(region.mem().contains(s.as_ptr(), s.len()));
        assert!(!region
            .mem()
            .contains(s.as_ptr(), region.mem().range().1 + 1));
    }

    #[test]
    fn a_block_is_reused_only_when_its_copies_are_gone() {
        let mut region = SendRegion::new(small()).unwrap();
        let big = vec![7u8; PAGE];
        let a = region.stage(&big).unwrap();
        let b = region.stage(&big).unwrap();
        assert!(region.stage(&big).is_none(), "both blocks hold a live copy");
        assert_eq!(region.stats().stage_misses, 1);
        let a_ptr = a.as_ptr();
        drop(a);
        let c = region.stage(&[9u8; 100]).unwrap();
        assert_eq!(
            c.as_ptr(),
            a_ptr,
            "the freed block is reused from its start"
        );
        assert!(b.iter().all(|&x| x == 7), "the live copy is untouched");
        assert!(
            region.stage(&vec![0u8; PAGE + 1]).is_none(),
            "larger than a block"
        );
    }

    #[test]
    fn scratch_slots_are_bounded_and_returned() {
        let mut region = SendRegion::new(small()).unwrap();
        let slots: Vec<_> = (0..4).map(|_| region.scratch().unwrap()).collect();
        assert!(region.scratch().is_none());
        drop(slots);
        assert!(region.scratch().is_some());
    }

    #[test]
    fn memory_outlives_the_region_while_copies_live() {
        let mut region = SendRegion::new(small()).unwrap();
        let copy = region.stage(b"still here").unwrap();
        drop(region);
        assert_eq!(&copy[..], b"still here");
    }
}
