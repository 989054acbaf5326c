//! Helpers shared by the outbox's unit tests.

use bytes::Bytes;

use super::Outbox;

/// The iovecs of the header the outbox handed out, as (ptr, len).
pub(super) fn iovecs(msg: *const libc::msghdr) -> Vec<(*const u8, usize)> {
    // SAFETY: the outbox keeps the header and its iovecs alive while in flight.
    let hdr = unsafe { &*msg };
    let iovs = unsafe { std::slice::from_raw_parts(hdr.msg_iov, hdr.msg_iovlen) };
    iovs.iter()
        .map(|v| (v.iov_base as *const u8, v.iov_len))
        .collect()
}

pub(super) fn prefixed(outbox: &mut Outbox<Bytes>, tag: u8, body: Bytes) -> bool {
    outbox.push_frame(
        |s| {
            s[..3].copy_from_slice(&[b'<', tag, b'>']);
            3
        },
        body,
    )
}
