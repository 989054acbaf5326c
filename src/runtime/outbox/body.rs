//! [`SendBody`]: a handle that keeps bytes to send alive and unmoved while the
//! outbox (and the kernel) point at them.

use bytes::Bytes;

/// A handle that keeps bytes to send alive.
///
/// # Safety
/// The slice `body()` returns must stay at the same address, with the same
/// contents, for as long as the handle lives, even when the handle itself moves.
pub unsafe trait SendBody {
    /// The bytes to send after this element's prefix (may be empty).
    fn body(&self) -> &[u8];
}

// SAFETY: a `Bytes`' data is immutable and never moves with the handle.
unsafe impl SendBody for Bytes {
    fn body(&self) -> &[u8] {
        self
    }
}

// SAFETY: no bytes.
unsafe impl SendBody for () {
    fn body(&self) -> &[u8] {
        &[]
    }
}
