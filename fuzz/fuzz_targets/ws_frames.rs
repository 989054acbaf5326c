//! The WebSocket client-frame reader (whole and split reads must agree) and the
//! upgrade handshake. The body is `ringcast::fuzzing::ws_frames` (documented there),
//! shared with the corpus replay in `tests/fuzz_corpus.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast::fuzzing::ws_frames(data));
