//! Sans-IO HTTP-FLV client for origin pulls: writes the `GET`, parses the
//! response head (bounded), then de-chunks (if chunked) and demuxes the body
//! into frames.

use bytes::BytesMut;

use super::chunked::{ChunkedDecoder, ChunkedError};
use super::upstream::UpstreamEvent;
use crate::protocol::flv::demux::{FlvDemuxer, FlvLimits};
use crate::protocol::flv::error::FlvError;
use crate::protocol::Frame;

/// Largest response head accepted.
pub const MAX_HEAD: usize = 16 << 10;
/// Most response header lines accepted.
pub const MAX_HEADERS: usize = 64;

/// Why an HTTP-FLV upstream failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpFlvError {
    /// The response head is larger than [`MAX_HEAD`].
    #[error("response head exceeds {limit} bytes")]
    HeadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The head did not parse.
    #[error("malformed response head: {0}")]
    BadHead(String),
    /// A status other than 200 or 404.
    #[error("origin answered HTTP {status}")]
    Status {
        /// The status code.
        status: u16,
    },
    /// The chunked framing broke.
    #[error(transparent)]
    Chunked(#[from] ChunkedError),
    /// The FLV body broke.
    #[error(transparent)]
    Flv(#[from] FlvError),
}

enum Body {
    Identity,
    Chunked(ChunkedDecoder),
}

enum State {
    Head(BytesMut),
    Body(Body),
    /// 404, or the body ended: nothing more is read.
    Finished,
}

/// One HTTP-FLV GET against an origin.
pub struct HttpFlvClient {
    request: Vec<u8>,
    state: State,
    demux: FlvDemuxer,
    /// Body bytes de-chunked in the current call, waiting for the demuxer.
    scratch: Vec<u8>,
}

impl HttpFlvClient {
    /// A client that will `GET path_and_query` from `host`, accepting tags up to `max_tag` bytes.
    pub fn new(path_and_query: &str, host: &str, max_tag: u32) -> Self {
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ringcast-edge\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        let limits = FlvLimits {
            max_tag_size: max_tag,
            ..FlvLimits::default()
        };
        HttpFlvClient {
            request,
            state: State::Head(BytesMut::new()),
            demux: FlvDemuxer::new(limits),
            scratch: Vec::new(),
        }
    }

    /// Writes the request; call once, right after connecting.
    pub fn start(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(&self.request);
    }

    /// Consumes bytes from the origin, appending what happened to `events`.
    pub fn handle_input(
        &mut self,
        input: &[u8],
        events: &mut Vec<UpstreamEvent>,
    ) -> Result<(), HttpFlvError> {
        let body_start = match &mut self.state {
            State::Finished => return Ok(()),
            State::Body(_) => 0,
            State::Head(buf) => {
                let before = buf.len();
                let room = MAX_HEAD.saturating_sub(before);
                buf.extend_from_slice(input.get(..input.len().min(room)).unwrap_or_default());
                let Some((status, head_len, chunked)) = parse_head(buf)? else {
                    if buf.len() >= MAX_HEAD {
                        return Err(HttpFlvError::HeadTooLarge { limit: MAX_HEAD });
                    }
                    return Ok(());
                };
                match status {
                    200 => {
                        events.push(UpstreamEvent::Started);
                        let body = if chunked {
                            Body::Chunked(ChunkedDecoder::default())
                        } else {
                            Body::Identity
                        };
                        self.state = State::Body(body);
                        head_len.saturating_sub(before)
                    }
                    404 => {
                        events.push(UpstreamEvent::NotFound);
                        self.state = State::Finished;
                        return Ok(());
                    }
                    status => return Err(HttpFlvError::Status { status }),
                }
            }
        };
        let rest = input.get(body_start..).unwrap_or_default();
        self.body(rest, events)
    }

    fn body(&mut self, input: &[u8], events: &mut Vec<UpstreamEvent>) -> Result<(), HttpFlvError> {
        let State::Body(body) = &mut self.state else {
            return Ok(());
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let (bytes, ended): (&[u8], bool) = match body {
            Body::Identity => (input, false),
            Body::Chunked(decoder) => {
                decoder.decode(input, |b| scratch.extend_from_slice(b))?;
                (&scratch, decoder.is_done())
            }
        };
        let mut cursor = bytes;
        let result = loop {
            match self.demux.decode(&mut cursor) {
                Ok(Some(frame)) => push_frame(frame, events),
                Ok(None) => break Ok(()),
                Err(e) => break Err(HttpFlvError::Flv(e)),
            }
        };
        if ended {
            events.push(UpstreamEvent::Ended);
            self.state = State::Finished;
        }
        self.scratch = scratch;
        result
    }
}

fn push_frame(frame: Frame, events: &mut Vec<UpstreamEvent>) {
    if !frame.payload.is_empty() {
        events.push(UpstreamEvent::Frame(frame));
    }
}

/// (status, head length, chunked) once the head is complete.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize, bool)>, HttpFlvError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HttpFlvError::BadHead(e.to_string())),
    };
    let status = response.code.unwrap_or(0);
    let chunked = response.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && std::str::from_utf8(h.value)
                .is_ok_and(|v| v.to_ascii_lowercase().contains("chunked"))
    });
    Ok(Some((status, head_len, chunked)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::flv::tag::write_tag_prefix;
    use crate::protocol::FrameKind;

    /// An FLV body: header, then video tags with the given bodies.
    fn flv(tags: &[&[u8]]) -> Vec<u8> {
        let mut out = b"FLV\x01\x05\x00\x00\x00\x09".to_vec();
        let mut prev = 0u32;
        for (i, body) in tags.iter().enumerate() {
            let mut prefix = [0u8; 15];
            write_tag_prefix(
                prev,
                FrameKind::Video,
                i as u32 * 40,
                body.len() as u32,
                &mut prefix,
            )
            .unwrap();
            out.extend_from_slice(&prefix);
            out.extend_from_slice(body);
            prev = body.len() as u32 + 11;
        }
        out
    }

    fn frames(events: &[UpstreamEvent]) -> Vec<(u32, Vec<u8>)> {
        events
            .iter()
            .filter_map(|e| match e {
                UpstreamEvent::Frame(f) => Some((f.timestamp, f.payload.to_vec())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn writes_the_get() {
        let mut c = HttpFlvClient::new("/live/cam.flv?t=1", "o:8080", 1 << 20);
        let mut out = BytesMut::new();
        c.start(&mut out);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(
            text.starts_with("GET /live/cam.flv?t=1 HTTP/1.1\r\nHost: o:8080\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn identity_body_split_byte_by_byte() {
        let key = [0x17u8, 1, 0, 0, 0, 0xaa];
        let inter = [0x27u8, 1, 0, 0, 0, 0xbb];
        let mut wire = b"HTTP/1.0 200 OK\r\nContent-Type: video/x-flv\r\n\r\n".to_vec();
        wire.extend(flv(&[&key, &inter]));
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 1 << 20);
        let mut events = Vec::new();
        for b in &wire {
            c.handle_input(std::slice::from_ref(b), &mut events)
                .unwrap();
        }
        assert_eq!(events.first(), Some(&UpstreamEvent::Started));
        assert_eq!(
            frames(&events),
            vec![(0, key.to_vec()), (40, inter.to_vec())]
        );
    }

    #[test]
    fn chunked_body_and_its_end() {
        let body = flv(&[&[0x17, 1, 0, 0, 0, 1, 2, 3]]);
        let (a, b) = body.split_at(10);
        let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for part in [a, b] {
            wire.extend(format!("{:x}\r\n", part.len()).into_bytes());
            wire.extend_from_slice(part);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 1 << 20);
        let mut events = Vec::new();
        c.handle_input(&wire, &mut events).unwrap();
        assert_eq!(frames(&events).len(), 1);
        assert_eq!(events.last(), Some(&UpstreamEvent::Ended));
    }

    #[test]
    fn not_found_and_other_statuses() {
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 1 << 20);
        let mut events = Vec::new();
        c.handle_input(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
            &mut events,
        )
        .unwrap();
        assert_eq!(events, vec![UpstreamEvent::NotFound]);
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 1 << 20);
        assert_eq!(
            c.handle_input(b"HTTP/1.1 503 Busy\r\n\r\n", &mut events),
            Err(HttpFlvError::Status { status: 503 })
        );
    }

    #[test]
    fn hostile_input_is_bounded() {
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 1 << 20);
        let mut events = Vec::new();
        let junk = vec![b'a'; MAX_HEAD + 10];
        assert!(matches!(
            c.handle_input(&junk, &mut events),
            Err(HttpFlvError::BadHead(_)) | Err(HttpFlvError::HeadTooLarge { .. })
        ));
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 1 << 20);
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        endless.extend(b"X-A: b\r\n".repeat(MAX_HEAD / 8 + 1));
        let err = c.handle_input(&endless, &mut events).unwrap_err();
        assert!(
            matches!(
                err,
                HttpFlvError::HeadTooLarge { limit: MAX_HEAD } | HttpFlvError::BadHead(_)
            ),
            "{err}"
        );
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 16);
        let mut wire = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        wire.extend(flv(&[&[0u8; 64]]));
        assert!(matches!(
            c.handle_input(&wire, &mut events),
            Err(HttpFlvError::Flv(FlvError::TagTooLarge { .. }))
        ));
    }
}
