//! Server (and client) handshake fed arbitrary bytes at arbitrary split points.
//! The body is `ringcast::fuzzing::handshake` (documented there), shared with the corpus
//! replay in `tests/fuzz_corpus.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast::fuzzing::handshake(data));
