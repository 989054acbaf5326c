//! The bodies of the fuzz targets in `fuzz/fuzz_targets/`, one function per
//! target, in the library so that `tests/fuzz_corpus.rs` replays every committed
//! corpus file (`fuzz/corpus/<target>/`) through exactly what the fuzzer runs,
//! on every plain `cargo test`.
//!
//! Each function takes arbitrary bytes. Errors from the code under test are
//! expected; a panic (an assertion here, or one in the code) is a finding.
//! The session targets also advance a fake clock and call `handle_timeout`, so
//! the deadlines are fuzzed with the input.

mod http;
mod media;
mod rtmp;
mod tls;
mod ws;

pub use http::{http_flv_upstream, http_request};
pub use media::flv_demux;
pub use rtmp::{amf0_decode, chunk_decoder, client_session, handshake, server_session};
pub use tls::tls_server;
pub use ws::ws_frames;

/// A fuzz target's body.
pub type FuzzFn = fn(&[u8]);

/// Every fuzz target: its name (= its `fuzz/fuzz_targets/<name>.rs` and
/// `fuzz/corpus/<name>/`) and its body.
pub const TARGETS: &[(&str, FuzzFn)] = &[
    ("handshake", handshake),
    ("chunk_decoder", chunk_decoder),
    ("amf0_decode", amf0_decode),
    ("server_session", server_session),
    ("client_session", client_session),
    ("flv_demux", flv_demux),
    ("http_request", http_request),
    ("http_flv_upstream", http_flv_upstream),
    ("tls_server", tls_server),
    ("ws_frames", ws_frames),
];
