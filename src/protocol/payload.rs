//! Where decoders put message payloads: [`PayloadAllocator`] and
//! [`HeapAllocator`], defined in the neutral [`crate::payload`] module (below both
//! this layer and the runtime, whose arena implements the trait) and re-exported
//! here for the decoders' callers.

pub use crate::payload::{HeapAllocator, PayloadAllocator};
