//! A per-core payload arena: message payloads are carved, 64-byte aligned, out
//! of large preallocated blocks instead of one heap allocation each.
//!
//! A piece is a `BytesMut` that shares its block (`BytesMut::split_to`), so a
//! frame's payload keeps its block alive and the block is freed when the last
//! frame carved from it drops. When the current block is used up and nothing
//! else references it any more, it is reclaimed in place instead of allocating
//! a new one: a steady stream whose frames die young reuses one block forever.
//!
//! The arena is not what zero-copy sends register with the ring: a `BytesMut` can
//! only live in its own allocation, so its blocks cannot sit inside one registered
//! buffer with the viewers' scratch; `runtime::region` holds a per-core copy instead.

use std::collections::VecDeque;

use bytes::BytesMut;

use crate::payload::PayloadAllocator;

/// Alignment of every piece: one cache line, so payloads never share a line with
/// a neighbour written by the decoder at the same time, and SIMD copies are aligned.
pub const ALIGN: usize = 64;
/// Default block size.
pub const DEFAULT_BLOCK_SIZE: usize = 4 << 20;

/// Used-up blocks kept for reuse. Beyond this the arena stops tracking old blocks,
/// so its own footprint is at most `(1 + RETIRED_BLOCKS) * block_size` plus whatever
/// live frames pin.
pub const RETIRED_BLOCKS: usize = 8;

/// Counters that show whether the arena is doing its job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArenaStats {
    /// Blocks allocated from the heap.
    pub blocks_allocated: u64,
    /// Blocks reused in place because every piece carved from them had dropped.
    pub blocks_reclaimed: u64,
    /// Pieces carved from blocks.
    pub pieces: u64,
    /// Requests too large for a block piece, given their own allocation.
    pub oversize: u64,
}

/// Carves aligned payload buffers out of large blocks. One per core thread.
pub struct AlignedArena {
    block_size: usize,
    /// Requests above this get their own allocation, so one big keyframe does not
    /// waste the tail of a block.
    oversize_threshold: usize,
    /// The unused tail of the current block (len == remaining bytes, all initialised).
    block: BytesMut,
    /// Used-up blocks that may still have live pieces, checked for reuse on refill.
    retired: VecDeque<BytesMut>,
    stats: ArenaStats,
}

impl AlignedArena {
    /// An arena of `block_size`-byte blocks (at least 64 KiB). Requests larger than a
    /// quarter block get their own aligned allocation.
    pub fn new(block_size: usize) -> AlignedArena {
        let block_size = block_size.max(64 << 10).next_multiple_of(ALIGN);
        AlignedArena {
            block_size,
            oversize_threshold: block_size / 4,
            block: BytesMut::new(),
            retired: VecDeque::with_capacity(RETIRED_BLOCKS),
            stats: ArenaStats::default(),
        }
    }

    /// Counters since creation.
    pub fn stats(&self) -> ArenaStats {
        self.stats
    }

    /// The block size in bytes.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    fn carve(&mut self, rounded: usize) -> BytesMut {
        if self.block.len() < rounded {
            self.refill();
        }
        self.stats.pieces += 1;
        let mut piece = self.block.split_to(rounded.min(self.block.len()));
        piece.clear();
        piece
    }

    fn refill(&mut self) {
        let mut old = std::mem::take(&mut self.block);
        old.clear();
        if old.capacity() > 0 {
            if self.retired.len() == RETIRED_BLOCKS {
                // Forget the oldest: it is freed when its last piece drops.
                self.retired.pop_front();
            }
            self.retired.push_back(old);
        }
        // try_reclaim succeeds only when no piece of a block is alive any more: it
        // then moves the view back to the start of the allocation without allocating.
        let total = self.block_size + ALIGN;
        let reclaimable = self
            .retired
            .iter_mut()
            .position(|block| block.try_reclaim(total));
        if let Some(mut block) = reclaimable.and_then(|i| self.retired.remove(i)) {
            // SAFETY: the whole allocation was zero-initialised when created, and
            // pieces only ever wrote initialised bytes into it.
            unsafe { block.set_len(block.capacity()) };
            self.stats.blocks_reclaimed += 1;
            self.block = aligned_tail(block);
        } else {
            self.stats.blocks_allocated += 1;
            self.block = aligned_tail(BytesMut::zeroed(total));
        }
    }
}

impl Default for AlignedArena {
    fn default() -> Self {
        AlignedArena::new(DEFAULT_BLOCK_SIZE)
    }
}

impl PayloadAllocator for AlignedArena {
    fn allocate(&mut self, len: usize) -> BytesMut {
        let rounded = len.max(1).next_multiple_of(ALIGN);
        if rounded > self.oversize_threshold {
            self.stats.oversize += 1;
            let mut own = aligned_tail(BytesMut::zeroed(rounded + ALIGN));
            own.clear();
            return own;
        }
        self.carve(rounded)
    }
}

/// Drops the unaligned prefix of `buf` so its start is `ALIGN`-aligned.
fn aligned_tail(mut buf: BytesMut) -> BytesMut {
    let pad = buf.as_ptr().align_offset(ALIGN).min(buf.len());
    let _ = buf.split_to(pad);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_aligned_and_sized() {
        let mut arena = AlignedArena::new(1 << 20);
        for len in [0, 1, 63, 64, 65, 3000, 16 * 1024, 200 * 1024, 300 * 1024] {
            let piece = arena.allocate(len);
            assert_eq!(piece.as_ptr() as usize % ALIGN, 0, "len {len}");
            assert!(piece.capacity() >= len);
            assert!(piece.is_empty());
        }
        assert_eq!(
            arena.stats().oversize,
            1,
            "only the 300 KiB request exceeds a quarter block"
        );
    }

    #[test]
    fn filling_to_len_does_not_reallocate_or_touch_neighbours() {
        let mut arena = AlignedArena::new(1 << 20);
        let mut a = arena.allocate(100);
        let mut b = arena.allocate(100);
        let a_ptr = a.as_ptr();
        a.extend_from_slice(&[0xAA; 100]);
        b.extend_from_slice(&[0xBB; 100]);
        assert_eq!(a.as_ptr(), a_ptr, "no reallocation");
        assert!(a.iter().all(|&x| x == 0xAA) && b.iter().all(|&x| x == 0xBB));
        // Both live in one block, a cache line apart at least.
        let gap = (b.as_ptr() as usize).abs_diff(a.as_ptr() as usize);
        assert!((128..1 << 20).contains(&gap));
        assert_eq!(arena.stats().blocks_allocated, 1);
    }

    #[test]
    fn short_lived_pieces_reuse_one_block() {
        let mut arena = AlignedArena::new(64 << 10);
        for i in 0..10_000u32 {
            let mut piece = arena.allocate(3000);
            piece.extend_from_slice(&i.to_le_bytes());
            let frozen = piece.freeze();
            assert_eq!(frozen[..4], i.to_le_bytes());
        }
        let stats = arena.stats();
        assert_eq!(stats.blocks_allocated, 1, "{stats:?}");
        assert!(stats.blocks_reclaimed > 100, "{stats:?}");
    }

    #[test]
    fn memory_is_bounded_by_live_pieces() {
        let block = 64 << 10;
        let mut arena = AlignedArena::new(block);
        // Keep a sliding window of 40 live frames (~120 KB), like a GOP cache.
        let mut live = std::collections::VecDeque::new();
        for _ in 0..5_000 {
            live.push_back(arena.allocate(3000).freeze());
            if live.len() > 40 {
                live.pop_front();
            }
        }
        let stats = arena.stats();
        // The window spans about two blocks; once retired blocks outnumber it they
        // come back empty and are reused, so allocation stops after warm-up.
        assert!(
            stats.blocks_allocated <= 1 + RETIRED_BLOCKS as u64,
            "{stats:?}"
        );
        assert!(stats.blocks_reclaimed > 200, "{stats:?}");
    }
}
