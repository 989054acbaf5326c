//! RTMP session state machines, sans-IO: one per connection, owning the handshake,
//! the chunk decoder and encoder, and command handling.
//!
//! - [`server::ServerSession`]: accepts publishers and players; the caller decides
//!   whether a publish/play is allowed (`accept_*` / `reject_*`).
//! - [`client::ClientSession`]: publishes or plays one stream (origin pull, loadgen).
//!
//! Both take input bytes and a millisecond clock value, and append output bytes and
//! events to caller buffers. Any error means the connection must be closed (after
//! flushing `out`, which may hold a final status message).
//!
//! Their deadlines (handshake, first media, idle) live here too, quinn-proto style:
//! `poll_timeout()` says when the session next needs the clock, and the caller calls
//! `handle_timeout(now)` at (or after) that time; it fails with
//! [`SessionError::TimedOut`] when the wait ran out.

mod aggregate;
pub mod client;
pub mod csid;
mod deadline;
mod error;
pub mod server;
mod transport;

#[cfg(test)]
mod pair_tests;

pub use error::SessionError;
