//! One payload arena per worker thread, shared by all its viewers' decoders.
//!
//! Decoders (HTTP-FLV viewers' FLV demuxers, RTMP viewers' `ClientSession`s) assemble
//! each frame or message into a buffer from a [`PayloadAllocator`]. Giving
//! every frame its own heap allocation would cost one malloc per frame per viewer;
//! instead buffers are carved from a large block, and because viewers drop their
//! frames as soon as they are measured, the block is usually unique again when it
//! runs out and `BytesMut::reserve` reclaims it in place. Allocation then happens
//! about once per block, not per frame.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::BytesMut;
use ringcast::protocol::payload::PayloadAllocator;

/// Size of each block carved into frame buffers.
pub const BLOCK_SIZE: usize = 1 << 20;

/// A cheap handle to the worker's arena; clone one into each viewer's decoder.
#[derive(Clone, Debug)]
pub struct SharedArena(Rc<RefCell<BytesMut>>);

impl Default for SharedArena {
    fn default() -> Self {
        SharedArena(Rc::new(RefCell::new(BytesMut::with_capacity(BLOCK_SIZE))))
    }
}

impl PayloadAllocator for SharedArena {
    fn allocate(&mut self, len: usize) -> BytesMut {
        let mut block = self.0.borrow_mut();
        block.clear();
        if block.capacity() < len {
            // Reclaims the whole block when every buffer carved from it was dropped.
            block.reserve(len.max(BLOCK_SIZE));
        }
        // `split_off(len)` leaves `block` as an empty buffer of capacity `len`.
        let rest = block.split_off(len);
        std::mem::replace(&mut *block, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_have_room_and_do_not_overlap() {
        let mut arena = SharedArena::default();
        let mut a = arena.allocate(100);
        let mut b = arena.allocate(50);
        assert!(a.is_empty() && a.capacity() >= 100 && b.capacity() >= 50);
        let a_ptr = a.as_ptr();
        a.extend_from_slice(&[1; 100]);
        b.extend_from_slice(&[2; 50]);
        assert_eq!(a.as_ptr(), a_ptr, "filling to len must not reallocate");
        assert!(a.iter().all(|&x| x == 1) && b.iter().all(|&x| x == 2));
    }

    #[test]
    fn block_is_reused_once_frames_are_dropped() {
        let mut arena = SharedArena::default();
        let first = arena.allocate(1000).as_ptr();
        // Run through many blocks' worth of frames, dropping each like a viewer does.
        let mut reused = false;
        for _ in 0..(4 * BLOCK_SIZE / 1000) {
            let mut buf = arena.allocate(1000);
            reused |= buf.as_ptr() == first;
            buf.extend_from_slice(&[0; 1000]);
            drop(buf.freeze());
        }
        assert!(
            reused,
            "the first block was reclaimed rather than reallocated"
        );
    }

    #[test]
    fn oversized_requests_still_fit() {
        let mut arena = SharedArena::default();
        let big = arena.allocate(3 * BLOCK_SIZE);
        assert!(big.capacity() >= 3 * BLOCK_SIZE);
    }
}
