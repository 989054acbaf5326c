//! The HTTP request-head parser, and the client-side head and chunked parsers.
//! The body is `ringcast::fuzzing::http_request` (documented there), shared with the corpus
//! replay in `tests/fuzz_corpus.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast::fuzzing::http_request(data));
