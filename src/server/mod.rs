//! Listeners and sessions: glue between the reactor, the protocol state machines
//! and the stream layer.

pub mod api;
