//! The RTMP client session (origin pull, relay) fed bytes from an origin, the clock advancing.
//! The body is `ringcast::fuzzing::client_session` (documented there), shared with the corpus
//! replay in `tests/fuzz_corpus.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast::fuzzing::client_session(data));
