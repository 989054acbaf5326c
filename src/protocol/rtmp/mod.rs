//! RTMP: handshake, chunk stream codec, AMF0, and the command state machines of
//! the server (publish/play) and client (origin pull, loadgen) sides.

pub mod amf0;
pub mod chunk;
pub mod command;
pub mod control;
pub mod handshake;
pub mod message;
pub mod session;
