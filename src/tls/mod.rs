//! TLS glue, sans-IO: rustls 0.23's buffered `ServerConnection` /
//! `ClientConnection` fed from the caller's own buffers. Ciphertext comes in as
//! a byte slice, plaintext goes out to the protocol layer; the protocol layer's
//! plaintext (several slices: per-viewer headers and shared bodies) is encrypted
//! in one pass and appended to one caller-owned ciphertext buffer per send.
//! Time is passed in (`now_ms`), as in the protocol layer.
//!
//! * [`load`] reads the PEM files named in `[tls]` (the only part that touches
//!   files) and turns each failure into a [`LoadError`] naming the file;
//! * [`certs`] holds the certificate set: SNI selection over a map by name with
//!   a default, swapped as a whole by [`ServerTls::reload`] so that new
//!   handshakes see the new certificates and established sessions are untouched;
//! * [`session`] is the per-connection glue ([`TlsSession`]): bounded buffers,
//!   a handshake deadline, plaintext-on-a-TLS-port detection, close_notify.
//!
//! The crypto provider is rustls' `ring` one: it builds with the C compiler
//! alone and adds three small crates; aws-lc-rs would add a much larger C build
//! to a machine where compile time is the scarce resource.
//!
//! The HTTPS and RTMPS listeners and edge pulls from `https://` / `rtmps://`
//! origins (the [`ClientTls`] side) use it through `server::tls_conn`.

#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

pub mod certs;
pub mod load;
pub mod session;

pub use certs::{CertResolver, CertSet, ClientTls, ServerTls};
pub use load::{CertFiles, LoadError, TlsConfig};
pub use session::{Plaintext, TlsError, TlsLimits, TlsSession};

/// The ALPN protocol HTTPS listeners offer (RTMPS offers none).
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The record type byte every TLS connection starts with (a handshake record
/// carrying the ClientHello).
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Whether the first byte a client sent starts a TLS handshake: lets a plain
/// listener count "TLS on a plain port" without parsing further.
pub fn looks_like_tls(first_byte: u8) -> bool {
    first_byte == TLS_HANDSHAKE_RECORD
}
