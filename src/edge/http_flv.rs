//! Sans-IO HTTP-FLV client for origin pulls: writes the `GET`, parses the
//! response head (bounded), then de-chunks (if chunked) and demuxes the body
//! into frames.

use bytes::BytesMut;

use super::chunked::{ChunkedDecoder, ChunkedError};
use super::upstream::{UpstreamEvent, UpstreamTimeouts};
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
    /// The origin did not get through `phase` (response head, body) in time.
    #[error("{phase} timeout: nothing within {limit_ms} ms")]
    TimedOut {
        /// What the client waited for.
        phase: &'static str,
        /// The limit that passed, in ms.
        limit_ms: u64,
    },
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
    timeouts: UpstreamTimeouts,
    /// When the request was written (the head deadline's start); `None` until
    /// [`HttpFlvClient::start`]. Before that the client has no deadline: the
    /// server creates it before its TCP connect, which has its own, and a head
    /// deadline counted from clock 0 would already have passed (a fresh pull's
    /// upstream then timed out before its connect completed).
    started_ms: Option<u64>,
    /// When the last input arrived (the body's idle deadline's start).
    last_input_ms: u64,
}

impl HttpFlvClient {
    /// A client that will `GET path_and_query` from `host`, accepting tags up to
    /// `max_tag` bytes, with the response head and body bounded by `timeouts`.
    pub fn new(path_and_query: &str, host: &str, max_tag: u32, timeouts: UpstreamTimeouts) -> Self {
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
            timeouts,
            started_ms: None,
            last_input_ms: 0,
        }
    }

    /// Writes the request at `now_ms` (which starts the head deadline); call
    /// once, right after connecting.
    pub fn start(&mut self, now_ms: u64, out: &mut BytesMut) {
        self.started_ms = Some(now_ms);
        self.last_input_ms = now_ms;
        out.extend_from_slice(&self.request);
    }

    /// When the client next needs [`HttpFlvClient::handle_timeout`]: none before
    /// [`HttpFlvClient::start`], then the head deadline, then the body's idle one.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.wait()
            .map(|(_, since, limit)| since.saturating_add(limit))
    }

    /// Checks the deadline at `now_ms`: [`HttpFlvError::TimedOut`] once it passed.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Result<(), HttpFlvError> {
        match self.wait() {
            Some((phase, since, limit_ms)) if now_ms >= since.saturating_add(limit_ms) => {
                Err(HttpFlvError::TimedOut { phase, limit_ms })
            }
            _ => Ok(()),
        }
    }

    fn wait(&self) -> Option<(&'static str, u64, u64)> {
        match self.state {
            State::Head(_) => self
                .started_ms
                .map(|since| ("response head", since, self.timeouts.start_ms)),
            State::Body(_) => Some(("body", self.last_input_ms, self.timeouts.idle_ms)),
            State::Finished => None,
        }
    }

    /// Consumes bytes from the origin at `now_ms`, appending what happened to `events`.
    pub fn handle_input(
        &mut self,
        input: &[u8],
        now_ms: u64,
        events: &mut Vec<UpstreamEvent>,
    ) -> Result<(), HttpFlvError> {
        if !input.is_empty() {
            self.last_input_ms = now_ms;
        }
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

    const T: UpstreamTimeouts = UpstreamTimeouts {
        start_ms: 5_000,
        idle_ms: 10_000,
    };

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
        let mut c = HttpFlvClient::new("/live/cam.flv?t=1", "o:8080", 1 << 20, T);
        let mut out = BytesMut::new();
        c.start(0, &mut out);
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
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 1 << 20, T);
        let mut events = Vec::new();
        for b in &wire {
            c.handle_input(std::slice::from_ref(b), 0, &mut events)
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
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 1 << 20, T);
        let mut events = Vec::new();
        c.handle_input(&wire, 0, &mut events).unwrap();
        assert_eq!(frames(&events).len(), 1);
        assert_eq!(events.last(), Some(&UpstreamEvent::Ended));
    }

    #[test]
    fn not_found_and_other_statuses() {
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 1 << 20, T);
        let mut events = Vec::new();
        c.handle_input(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
            0,
            &mut events,
        )
        .unwrap();
        assert_eq!(events, vec![UpstreamEvent::NotFound]);
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 1 << 20, T);
        assert_eq!(
            c.handle_input(b"HTTP/1.1 503 Busy\r\n\r\n", 0, &mut events),
            Err(HttpFlvError::Status { status: 503 })
        );
    }

    #[test]
    fn hostile_input_is_bounded() {
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 1 << 20, T);
        let mut events = Vec::new();
        let junk = vec![b'a'; MAX_HEAD + 10];
        assert!(matches!(
            c.handle_input(&junk, 0, &mut events),
            Err(HttpFlvError::BadHead(_)) | Err(HttpFlvError::HeadTooLarge { .. })
        ));
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 1 << 20, T);
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        endless.extend(b"X-A: b\r\n".repeat(MAX_HEAD / 8 + 1));
        let err = c.handle_input(&endless, 0, &mut events).unwrap_err();
        assert!(
            matches!(
                err,
                HttpFlvError::HeadTooLarge { limit: MAX_HEAD } | HttpFlvError::BadHead(_)
            ),
            "{err}"
        );
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 16, T);
        let mut wire = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        wire.extend(flv(&[&[0u8; 64]]));
        assert!(matches!(
            c.handle_input(&wire, 0, &mut events),
            Err(HttpFlvError::Flv(FlvError::TagTooLarge { .. }))
        ));
    }

    #[test]
    fn no_deadline_before_the_request_is_written() {
        // Created long after the clock's origin, as a fresh pull's upstream is:
        // nothing may time out before `start` (the TCP connect is in flight).
        const CREATED: u64 = 60_000;
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 1 << 20, T);
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.handle_timeout(CREATED), Ok(()));
        let mut out = BytesMut::new();
        c.start(CREATED + 30, &mut out);
        assert_eq!(c.poll_timeout(), Some(CREATED + 30 + T.start_ms));
        assert_eq!(c.handle_timeout(CREATED + 30 + T.start_ms - 1), Ok(()));
    }

    #[test]
    fn head_then_body_deadlines_on_a_fake_clock() {
        const BASE: u64 = 9_000_000;
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 1 << 20, T);
        let mut out = BytesMut::new();
        c.start(BASE + 1_000, &mut out);
        let mut events = Vec::new();
        c.handle_input(b"HTTP/1.1 200 OK\r\n", BASE + 5_000, &mut events)
            .unwrap();
        assert_eq!(
            c.poll_timeout(),
            Some(BASE + 6_000),
            "a partial head does not extend it"
        );
        assert_eq!(
            c.handle_timeout(BASE + 6_000),
            Err(HttpFlvError::TimedOut {
                phase: "response head",
                limit_ms: 5_000
            })
        );
        c.handle_input(b"\r\n", BASE + 5_500, &mut events).unwrap();
        assert_eq!(
            c.poll_timeout(),
            Some(BASE + 15_500),
            "then idle from the last input"
        );
        c.handle_input(b"FLV", BASE + 12_000, &mut events).unwrap();
        assert_eq!(c.handle_timeout(BASE + 21_999), Ok(()));
        assert_eq!(
            c.handle_timeout(BASE + 22_000),
            Err(HttpFlvError::TimedOut {
                phase: "body",
                limit_ms: 10_000
            })
        );
        let mut c = HttpFlvClient::new("/a/b.flv", "h:1", 1 << 20, T);
        c.handle_input(b"HTTP/1.1 404 Not Found\r\n\r\n", BASE, &mut events)
            .unwrap();
        assert_eq!(
            c.poll_timeout(),
            None,
            "a finished client waits for nothing"
        );
    }
}
