//! AMF0 decoding, and the command and data messages built on it.
//! The body is `ringcast::fuzzing::amf0_decode` (documented there), shared with the corpus
//! replay in `tests/fuzz_corpus.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast::fuzzing::amf0_decode(data));
