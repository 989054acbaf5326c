//! The chunk decoder fed arbitrary bytes, with Set Chunk Size messages injected.
//! The body is `ringcast::fuzzing::chunk_decoder` (documented there), shared with the corpus
//! replay in `tests/fuzz_corpus.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast::fuzzing::chunk_decoder(data));
