//! Listeners and sessions: glue between the reactor, the protocol state machines
//! and the stream layer.

pub mod outbox;
pub mod signals;
pub mod token;

use crate::config::Config;

/// Runs the server until SIGTERM/SIGINT. (Being built: see issue 3.)
pub fn serve(_config: Config) -> std::io::Result<()> {
    Err(std::io::Error::other("server not built yet"))
}
