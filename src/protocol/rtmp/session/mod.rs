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

mod aggregate;
pub mod client;
pub mod csid;
mod error;
pub mod server;
mod transport;

#[cfg(test)]
mod pair_tests;

pub use error::SessionError;
