//! Where decoders put message payloads.
//!
//! Decoders (RTMP chunk, FLV demux) assemble each message payload into a buffer
//! obtained from a [`PayloadAllocator`], so the server can hand them buffers from its
//! per-core aligned arena (`runtime::arena`) while tests and tools use the heap.

use bytes::BytesMut;

/// Supplies empty buffers with room for exactly `len` bytes of payload.
pub trait PayloadAllocator {
    /// Returns an empty buffer with `capacity() >= len`. Filling it up to `len`
    /// must not reallocate.
    fn allocate(&mut self, len: usize) -> BytesMut;
}

/// Plain heap allocation: what tests, fuzzers and tools use.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeapAllocator;

impl PayloadAllocator for HeapAllocator {
    fn allocate(&mut self, len: usize) -> BytesMut {
        BytesMut::with_capacity(len)
    }
}
