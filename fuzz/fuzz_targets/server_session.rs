//! Arbitrary bytes into a ServerSession after a valid handshake, the clock advancing.
//! The body is `ringcast::fuzzing::server_session` (documented there), shared with the corpus
//! replay in `tests/fuzz_corpus.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast::fuzzing::server_session(data));
