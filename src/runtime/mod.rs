//! The per-core runtime: an io_uring reactor per pinned thread, preallocated
//! aligned buffer pools, and lock-free cross-core queues with wake-ups.
//! It moves bytes and knows nothing of protocols.
