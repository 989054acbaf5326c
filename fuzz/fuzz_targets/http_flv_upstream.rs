//! The edge's HTTP-FLV upstream: response head, chunked body, FLV demux, the clock advancing.
//! The body is `ringcast::fuzzing::http_flv_upstream` (documented there), shared with the corpus
//! replay in `tests/fuzz_corpus.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast::fuzzing::http_flv_upstream(data));
