//! Sans-IO protocol code: pure parsers, encoders and state machines.
//!
//! Nothing here touches a socket or reads a clock: input bytes and the current
//! time (as a [`std::time::Duration`] since an arbitrary epoch, or milliseconds)
//! are passed in, events and output bytes come out into caller-provided buffers.
//! Every parser enforces explicit limits and reports a typed error naming the
//! limit that was broken.

pub mod flv;
pub mod hls;
pub mod http;
pub mod payload;
pub mod rtmp;

pub use flv::frame::{Frame, FrameKind};
