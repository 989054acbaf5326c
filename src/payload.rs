//! Where decoders put message payloads: the allocator trait shared by the
//! protocol layer (which fills the buffers) and the runtime (whose per-core
//! arena supplies them).
//!
//! It lives below both layers so that neither imports the other: decoders (RTMP
//! chunk, FLV demux) assemble each message payload into a buffer obtained from a
//! [`PayloadAllocator`]; the server passes its aligned arena
//! (`runtime::arena::AlignedArena`), tests and tools pass [`HeapAllocator`].

#![forbid(unsafe_code)]

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
