//! A server connection's TLS glue (`TlsSession`) fed arbitrary bytes at
//! arbitrary split points, with a clock. The body is `ringcast::fuzzing::tls_server`
//! (documented there), shared with the corpus replay in `tests/fuzz_corpus.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcast::fuzzing::tls_server(data));
