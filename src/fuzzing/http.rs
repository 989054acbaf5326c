//! HTTP: the server's request heads, and the edge's HTTP-FLV upstream.

use bytes::BytesMut;

use crate::edge::http_flv::{HttpFlvClient, HttpFlvError};
use crate::edge::upstream::{UpstreamEvent, UpstreamTimeouts};
use crate::protocol::http::chunked::{ChunkedDecoder, ChunkedEvent, ChunkedLimits};
use crate::protocol::http::client::{parse_response_head, ResponseLimits};
use crate::protocol::http::connection::{HttpConnection, HttpTimeouts};
use crate::protocol::http::request::{Parsed, RequestParser};
use crate::protocol::http::response::{write_error, write_flv_head, ResponseContext};

/// The HTTP request-head parser: the whole input and every growing prefix must
/// agree (a prefix is Partial or fails the same way), and a parsed request must
/// be answerable. The same bytes also go through the client side: the
/// response-head parser and the chunked-body decoder; and through a server
/// [`HttpConnection`] in reads of 1 to 32 bytes, the clock advancing 700 ms per
/// read, its deadlines checked before each.
pub fn http_request(data: &[u8]) {
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
            let again = parser.parse(data.get(..req.head_len).unwrap_or(data));
            assert_eq!(again.as_ref().ok(), whole.as_ref().ok());
        }
        Ok(Parsed::Partial) => assert!(data.len() < 8 * 1024),
        Err(e) => assert!(matches!(e.status(), 400 | 405 | 411 | 413 | 414 | 431)),
    }
    // Feeding the same bytes a few at a time never completes early with a
    // different request.
    for cut in (0..data.len().min(512)).step_by(7) {
        if let Ok(Parsed::Complete(r)) = parser.parse(data.get(..cut).unwrap_or(data)) {
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
    connection(parser, data);
}

/// A server connection fed `data`: requests are answered (keep-alive as asked),
/// `.flv` ones hold the connection.
fn connection(parser: RequestParser, data: &[u8]) {
    let read = data.first().map_or(1, |&b| usize::from(b % 32) + 1);
    let mut conn = HttpConnection::new(
        parser,
        HttpTimeouts {
            head_ms: 3_000,
            idle_ms: 2_000,
        },
        0,
    );
    let mut now = 0;
    for piece in data.chunks(read) {
        now += 700;
        match conn.poll_timeout() {
            Some(deadline) if now >= deadline => {
                assert!(conn.handle_timeout(now).is_err());
                return;
            }
            Some(_) => assert_eq!(conn.handle_timeout(now), Ok(())),
            None => {
                assert!(conn.is_held());
                assert_eq!(conn.handle_timeout(now), Ok(()));
            }
        }
        conn.push(piece);
        loop {
            match conn.next_request() {
                Ok(Some(req)) if req.path.ends_with(".flv") => conn.hold(),
                Ok(Some(req)) => conn.answered(now, req.keep_alive),
                Ok(None) => break,
                Err(e) => {
                    assert!(matches!(e.status(), 400 | 405 | 411 | 413 | 414 | 431));
                    return;
                }
            }
        }
    }
}

/// Largest FLV tag the upstream fuzz target accepts.
const MAX_TAG: u32 = 64 << 10;
/// Deadlines of the fuzzed upstream, short enough for the input to reach them.
const UPSTREAM_TIMEOUTS: UpstreamTimeouts = UpstreamTimeouts {
    start_ms: 3_000,
    idle_ms: 2_000,
};

/// The edge's HTTP-FLV upstream path as `edge::http_flv` runs it: response head,
/// then (chunked or not) the body de-chunked and demuxed into frames, with the
/// clock advancing between reads and the deadlines checked after each.
///
/// Input: `[ctl][response bytes...]`: the low 6 bits of `ctl` pick the read
/// size (1..=64), the top 2 bits the milliseconds each read advances the
/// clock (0, 250, 1000 or 2500).
pub fn http_flv_upstream(data: &[u8]) {
    let Some((&ctl, response)) = data.split_first() else {
        return;
    };
    let piece = usize::from(ctl & 0x3F) + 1;
    let step_ms = [0u64, 250, 1_000, 2_500][usize::from(ctl >> 6)];
    let mut client = HttpFlvClient::new("/live/cam.flv", "origin:8080", MAX_TAG, UPSTREAM_TIMEOUTS);
    let mut out = BytesMut::new();
    let mut now = 1_000u64;
    client.start(now, &mut out);
    assert!(out.starts_with(b"GET /live/cam.flv HTTP/1.1\r\n"));
    let mut events = Vec::new();
    let mut started = false;
    let mut finished = false;
    for read in response.chunks(piece) {
        now += step_ms;
        // The deadline first, as the server's timer would fire before the read.
        match client.poll_timeout() {
            Some(deadline) if now >= deadline => {
                let err = client
                    .handle_timeout(now)
                    .expect_err("a passed deadline is a timeout");
                assert!(matches!(err, HttpFlvError::TimedOut { .. }), "{err}");
                return;
            }
            _ => assert_eq!(client.handle_timeout(now), Ok(())),
        }
        if client.handle_input(read, now, &mut events).is_err() {
            return;
        }
        for event in events.drain(..) {
            assert!(!finished, "nothing after the end: {event:?}");
            match event {
                UpstreamEvent::Started => {
                    assert!(!started, "started twice");
                    started = true;
                }
                UpstreamEvent::Frame(f) => {
                    assert!(started, "a frame before the head");
                    assert!(!f.payload.is_empty() && f.payload.len() <= MAX_TAG as usize);
                }
                UpstreamEvent::NotFound | UpstreamEvent::Ended => finished = true,
            }
        }
        if finished {
            assert_eq!(
                client.poll_timeout(),
                None,
                "a finished upstream waits for nothing"
            );
        }
    }
    // Then the origin falls silent for a minute: any deadline left passes.
    now += 60_000;
    match client.poll_timeout() {
        Some(_) => assert!(matches!(
            client.handle_timeout(now),
            Err(HttpFlvError::TimedOut { .. })
        )),
        None => assert_eq!(client.handle_timeout(now), Ok(())),
    }
}
