//! The FLV demuxer with arbitrary bytes fed in arbitrary splits.
//! The body is `ringcast::fuzzing::flv_demux` (documented there), shared with the corpus
//! replay in `tests/fuzz_corpus.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast::fuzzing::flv_demux(data));
