//! Fuzzes the HTTP request-head parser: whole input and every growing prefix
//! must agree (a prefix is Partial or fails the same way), and a parsed request
//! must be answerable. The same bytes also go through the client side: the
//! response-head parser and the chunked-body decoder.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringcast::protocol::http::chunked::{ChunkedDecoder, ChunkedEvent, ChunkedLimits};
use ringcast::protocol::http::client::{parse_response_head, ResponseLimits};
use ringcast::protocol::http::request::{Parsed, RequestParser};
use ringcast::protocol::http::response::{write_error, write_flv_head, ResponseContext};

fuzz_target!(|data: &[u8]| {
    let parser = RequestParser::default();
    let whole = parser.parse(data);
    match &whole {
        Ok(Parsed::Complete(req)) => {
            assert!(req.head_len <= data.len());
            assert!(req.target.len() <= 2048);
            assert!(req.headers.len() <= 64);
            let ctx = ResponseContext::for_request(req);
            let mut out = BytesMut::new();
            write_flv_head(&ctx, &mut out);
            write_error(&ctx, 404, &mut out);
            // The head alone parses to the same request.
            let again = parser.parse(&data[..req.head_len]);
            assert_eq!(again.as_ref().ok(), whole.as_ref().ok());
        }
        Ok(Parsed::Partial) => assert!(data.len() < 8 * 1024),
        Err(e) => assert!(matches!(e.status(), 400 | 405 | 411 | 413 | 414 | 431)),
    }
    // Feeding the same bytes a few at a time never completes early with a
    // different request.
    for cut in (0..data.len().min(512)).step_by(7) {
        if let Ok(Parsed::Complete(r)) = parser.parse(&data[..cut]) {
            assert!(matches!(&whole, Ok(Parsed::Complete(w)) if w.head_len == r.head_len));
        }
    }
    if let Ok(Some(head)) = parse_response_head(data, &ResponseLimits::default()) {
        assert!(head.head_len <= data.len());
    }
    let mut chunked = ChunkedDecoder::new(ChunkedLimits::default());
    let mut input = data;
    let mut body = 0usize;
    while let Ok(ChunkedEvent::Data(d)) = chunked.decode(&mut input) {
        body += d.len();
    }
    assert!(body <= data.len());
});
