//! WebSocket: the client frames a WebSocket-FLV viewer sends, and the upgrade
//! request before them.

use bytes::BytesMut;

use crate::protocol::http::request::{Parsed, RequestParser};
use crate::protocol::http::response::{write_error_with, write_flv_head, ResponseContext};
use crate::protocol::ws::frame::MAX_CONTROL_PAYLOAD;
use crate::protocol::ws::handshake::upgrade_request;
use crate::protocol::ws::reader::{FrameReader, Incoming, ReaderLimits, WsError};

/// The client-frame reader fed `data` whole and in reads of 1 to 16 bytes (the
/// first byte picks the size): both must agree on the error (if any), the close,
/// the data bytes skipped and the last ping to answer; control payloads stay at
/// most 125 bytes, and nothing is read after a close or an error. If `data` is an
/// HTTP request, its upgrade is checked and answered.
pub fn ws_frames(data: &[u8]) {
    let limits = ReaderLimits { max_message: 4096 };
    let whole = read_all(limits, [data].into_iter());
    let read = data.first().map_or(1, |&b| usize::from(b % 16) + 1);
    let split = read_all(limits, data.chunks(read));
    assert_eq!(whole, split, "the split of the input changed the outcome");
    if let Ok(Parsed::Complete(req)) = RequestParser::default().parse(data) {
        let mut ctx = ResponseContext::for_request(&req);
        let mut out = BytesMut::new();
        match upgrade_request(&req) {
            Ok(accept) => {
                if let Some(accept) = accept {
                    assert_eq!(accept.as_str().len(), 28);
                }
                ctx.websocket = accept;
                write_flv_head(&ctx, &mut out);
            }
            Err(e) => {
                assert!(matches!(e.status(), 400 | 426));
                write_error_with(&ctx, e.status(), e.headers(), &mut out);
            }
        }
    }
}

/// What one reader made of its input: the first error, else the close, the data
/// skipped and the last pong's payload.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    error: Option<WsError>,
    close: Option<Option<u16>>,
    data_bytes: u64,
    last_pong: Option<Vec<u8>>,
}

fn read_all<'a>(limits: ReaderLimits, pieces: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut reader = FrameReader::new(limits);
    let mut out = Outcome {
        error: None,
        close: None,
        data_bytes: 0,
        last_pong: None,
    };
    for piece in pieces {
        let was_done = reader.is_done();
        match reader.push(piece) {
            Ok(Incoming {
                pong,
                close,
                data_bytes,
            }) => {
                if was_done {
                    assert_eq!((pong, close, data_bytes), (None, None, 0));
                }
                if let Some(p) = pong {
                    assert!(p.as_bytes().len() <= MAX_CONTROL_PAYLOAD);
                    out.last_pong = Some(p.as_bytes().to_vec());
                }
                if close.is_some() {
                    assert!(reader.is_done());
                    out.close = close;
                }
                out.data_bytes += data_bytes;
                // Data bytes of one message never pass the limit.
                assert!(data_bytes <= piece.len() as u64);
            }
            Err(e) => {
                assert!(reader.is_done());
                out.error = Some(e);
                // A pong found before the error in the same read is lost with it;
                // make the outcomes comparable.
                out.last_pong = None;
                out.data_bytes = 0;
                break;
            }
        }
    }
    out
}
