//! ringcast: a live-streaming edge server.
//!
//! Layers, from the wire up:
//! - [`protocol`]: sans-IO codecs and state machines (RTMP, FLV, HTTP). Bytes and a
//!   clock value in, events and bytes out. No sockets, no threads.
//! - [`runtime`]: the per-core io_uring reactor, buffer pools and cross-core queues.
//!   It moves bytes and knows nothing of protocols.
//! - [`stream`]: the registry of live streams, per-core GOP rings and viewer cursors.
//!   It routes frames and knows nothing of sockets.
//! - [`server`]: listeners and sessions, gluing the three together.
//!
//! [`fuzzing`] holds the fuzz targets' bodies (shared with the corpus replay test).
//! [`payload`] (the payload allocator trait) sits below both the protocol layer and
//! the runtime, so that neither imports the other.

pub mod auth;
pub mod config;
pub mod edge;
pub mod fuzzing;
pub mod metrics;
pub mod payload;
pub mod protocol;
pub mod runtime;
pub mod server;
pub mod stream;
pub mod tls;
