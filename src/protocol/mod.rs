//! Sans-IO protocol code: pure parsers, encoders and state machines.
//!
//! Nothing here touches a socket or reads a clock: input bytes and the current
//! time (as a [`std::time::Duration`] since an arbitrary epoch, or milliseconds)
//! are passed in, events and output bytes come out into caller-provided buffers.
//! Every parser enforces explicit limits and reports a typed error naming the
//! limit that was broken.
//!
//! Input never makes this code panic, and the compiler keeps it so: no `unsafe`,
//! no indexing or slicing (read through [`reader::Reader`], or `get`), no
//! `unwrap`/`expect` outside tests (`clippy.toml` allows them in tests).
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

pub mod flv;
pub mod fmp4;
pub mod hls;
pub mod http;
pub mod payload;
pub mod reader;
pub mod rtmp;
pub mod ts;
pub mod writer;
pub mod ws;

pub use flv::frame::{Frame, FrameKind};
