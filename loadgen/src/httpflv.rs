//! The HTTP-FLV viewer protocol, sans-IO: a GET request out, then the response head,
//! then an endless FLV body, chunked or not, demuxed by ringcast's own [`FlvDemuxer`]
//! for sampled viewers and only counted for the rest. The request writer, the bounded
//! head parser and the chunked decoder are ringcast's (`protocol::http`), so loadgen
//! has no HTTP code of its own.

use bytes::BytesMut;
use ringcast::protocol::flv::{FlvDemuxer, FlvError, FlvLimits};
use ringcast::protocol::http::chunked::{ChunkedDecoder, ChunkedEvent, ChunkedLimits};
use ringcast::protocol::http::client::{
    parse_response_head, write_get_request, ClientError, ResponseBody, ResponseLimits,
};
use thiserror::Error;

use crate::arena::SharedArena;
use crate::stats::{FailureKind, Interval, Phase};
use crate::target::Target;
use crate::viewer::{Now, ViewerMeter};

/// Largest response head accepted.
pub const MAX_HEAD_LEN: usize = 8 * 1024;
/// Most response headers accepted.
const MAX_HEADERS: usize = 32;
/// What this viewer calls itself in `User-Agent`.
const USER_AGENT: &str = "ringcast-loadgen";

const HEAD_LIMITS: ResponseLimits = ResponseLimits {
    max_head: MAX_HEAD_LEN,
    max_headers: MAX_HEADERS,
};

/// Why an HTTP-FLV viewer gave up.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HttpFlvError {
    /// The server answered with something other than 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The response head or the chunked framing is broken or over a limit.
    #[error(transparent)]
    Http(#[from] ClientError),
    /// The FLV body is broken.
    #[error(transparent)]
    Flv(#[from] FlvError),
    /// The server ended the chunked body (zero-size chunk) while the run goes on.
    #[error("body ended")]
    Ended,
}

impl HttpFlvError {
    /// Phase and kind to count this failure under.
    pub fn classify(&self) -> (Phase, FailureKind) {
        match self {
            HttpFlvError::Status(_) => (Phase::Request, FailureKind::HttpStatus),
            HttpFlvError::Http(
                ClientError::Malformed { .. }
                | ClientError::HeadTooLarge { .. }
                | ClientError::TooManyHeaders { .. },
            ) => (Phase::Request, FailureKind::Protocol),
            HttpFlvError::Http(_) | HttpFlvError::Flv(_) => {
                (Phase::Streaming, FailureKind::Protocol)
            }
            HttpFlvError::Ended => (Phase::Streaming, FailureKind::EarlyEof),
        }
    }
}

/// Writes the GET request for `target` into `out`.
pub fn write_request(target: &Target, out: &mut BytesMut) {
    write_get_request(&target.path, &target.authority, USER_AGENT, out);
}

#[derive(Debug)]
enum Body {
    /// Collecting the response head; the buffer is dropped once it is parsed.
    Head(Vec<u8>),
    /// Counting body bytes only.
    Counted,
    /// Demuxing the body.
    Parsed {
        dechunk: Option<ChunkedDecoder>,
        demux: Box<FlvDemuxer<SharedArena>>,
    },
}

/// One HTTP-FLV viewer's protocol state.
#[derive(Debug)]
pub struct HttpFlvViewer {
    body: Body,
    arena: SharedArena,
}

impl HttpFlvViewer {
    /// A viewer that has sent its request and awaits the response.
    pub fn new(arena: SharedArena) -> Self {
        HttpFlvViewer {
            body: Body::Head(Vec::new()),
            arena,
        }
    }

    /// The phase a connection loss now would count under.
    pub fn phase(&self) -> Phase {
        match self.body {
            Body::Head(_) => Phase::Request,
            _ => Phase::Streaming,
        }
    }

    /// Feeds received bytes.
    pub fn on_bytes(
        &mut self,
        data: &[u8],
        now: Now,
        meter: &mut ViewerMeter,
        iv: &mut Interval,
    ) -> Result<(), HttpFlvError> {
        meter.on_bytes(data.len(), now, iv);
        let mut body = data;
        if let Body::Head(head) = &mut self.body {
            // Never hold more than the limit plus one byte: enough for the parser to tell "too large".
            let take = data
                .len()
                .min((MAX_HEAD_LEN + 1).saturating_sub(head.len()));
            head.extend_from_slice(data.get(..take).unwrap_or_default());
            let Some(resp) = parse_response_head(head, &HEAD_LIMITS)? else {
                return Ok(());
            };
            if resp.status != 200 {
                return Err(HttpFlvError::Status(resp.status));
            }
            // Body bytes that arrived with the head: those past it in this read.
            let head_bytes_before = head.len() - take;
            body = data
                .get(resp.head_len.saturating_sub(head_bytes_before)..)
                .unwrap_or_default();
            self.body = if meter.sampled() {
                let demux = FlvDemuxer::with_allocator(FlvLimits::default(), self.arena.clone());
                let dechunk = (resp.body == ResponseBody::Chunked)
                    .then(|| ChunkedDecoder::new(ChunkedLimits::default()));
                Body::Parsed {
                    dechunk,
                    demux: Box::new(demux),
                }
            } else {
                Body::Counted
            };
        }
        if let Body::Parsed { dechunk, demux } = &mut self.body {
            match dechunk {
                Some(d) => loop {
                    match d.decode(&mut body)? {
                        ChunkedEvent::Data(piece) => demux_into(demux, piece, now, meter, iv)?,
                        ChunkedEvent::NeedMore => break,
                        ChunkedEvent::End => return Err(HttpFlvError::Ended),
                    }
                },
                None => demux_into(demux, body, now, meter, iv)?,
            }
        }
        Ok(())
    }
}

fn demux_into(
    demux: &mut FlvDemuxer<SharedArena>,
    mut input: &[u8],
    now: Now,
    meter: &mut ViewerMeter,
    iv: &mut Interval,
) -> Result<(), FlvError> {
    while let Some(frame) = demux.decode(&mut input)? {
        meter.on_frame(frame.kind, &frame.payload, now, iv);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use ringcast::protocol::flv::tag::{encode_tag, write_file_header, FILE_HEADER_WITH_PTS0_LEN};

    use crate::stamp::{stamp_avc_tag, Stamp};
    use crate::synthetic::{SyntheticConfig, SyntheticSource, NAL_LENGTH_SIZE};

    fn now(ms: u64) -> Now {
        Now {
            mono_us: ms * 1000,
            unix_us: 1_000_000_000 + ms * 1000,
        }
    }

    /// An FLV stream of 50 stamped video frames (25 fps, 1 s GOP) plus audio.
    fn flv_body() -> Vec<u8> {
        let mut hdr = [0u8; FILE_HEADER_WITH_PTS0_LEN];
        write_file_header(true, true, &mut hdr);
        let mut out = BytesMut::from(&hdr[..]);
        let mut src = SyntheticSource::new(SyntheticConfig {
            video_bitrate: 200_000,
            audio_bitrate: 32_000,
            fps: 25,
            gop_ms: 1000,
        })
        .unwrap();
        for f in src.sequence_headers() {
            encode_tag(&f, &mut out).unwrap();
        }
        let mut seq = 0;
        let mut stamped = Vec::new();
        while seq < 50 {
            let mut f = src.next_frame();
            if f.kind == ringcast::protocol::FrameKind::Video {
                let stamp = Stamp {
                    sent_unix_us: 1_000_000_000,
                    sequence: seq,
                };
                stamp_avc_tag(&f.payload, NAL_LENGTH_SIZE, stamp, &mut stamped).unwrap();
                f.payload = bytes::Bytes::copy_from_slice(&stamped);
                seq += 1;
            }
            encode_tag(&f, &mut out).unwrap();
        }
        out.to_vec()
    }

    fn chunk(body: &[u8], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for c in body.chunks(size) {
            out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    fn run(wire: &[u8], read_size: usize, sampled: bool) -> (Result<(), HttpFlvError>, Interval) {
        let mut iv = Interval::default();
        let mut meter = ViewerMeter::new(now(0), sampled, &mut iv);
        let mut v = HttpFlvViewer::new(SharedArena::default());
        for (i, piece) in wire.chunks(read_size).enumerate() {
            if let Err(e) = v.on_bytes(piece, now(10 + i as u64), &mut meter, &mut iv) {
                return (Err(e), iv);
            }
        }
        (Ok(()), iv)
    }

    #[test]
    fn counts_every_frame_plain_and_chunked_in_any_read_size() {
        let body = flv_body();
        let mut plain = b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\n\r\n".to_vec();
        plain.extend_from_slice(&body);
        let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        chunked.extend_from_slice(&chunk(&body, 1000));
        for wire in [&plain, &chunked] {
            for read_size in [1, 7, 1500, 65536] {
                let (res, iv) = run(wire, read_size, true);
                res.unwrap();
                let c = iv.counters;
                assert_eq!(
                    (
                        c.video_frames,
                        c.keyframes,
                        c.stamped_frames,
                        c.missing_frames
                    ),
                    (50, 2, 50, 0)
                );
                assert!(c.audio_frames > 80);
                assert_eq!(c.bytes_received, wire.len() as u64);
                assert_eq!(c.viewers_playing, 1);
                assert_eq!(iv.hist.gop_frames.max(), 25);
            }
        }
    }

    #[test]
    fn unsampled_viewers_only_count_bytes() {
        let mut wire = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        wire.extend_from_slice(&flv_body());
        let (res, iv) = run(&wire, 4096, false);
        res.unwrap();
        assert_eq!(iv.counters.video_frames, 0);
        assert_eq!(iv.counters.bytes_received, wire.len() as u64);
    }

    #[test]
    fn failures_are_classified() {
        let (res, _) = run(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            5,
            true,
        );
        assert_eq!(res, Err(HttpFlvError::Status(404)));
        assert_eq!(
            HttpFlvError::Status(404).classify(),
            (Phase::Request, FailureKind::HttpStatus)
        );
        let (res, _) = run(b"SSH-2.0-OpenSSH\r\n\r\n", 64, true);
        assert!(matches!(
            res,
            Err(HttpFlvError::Http(ClientError::Malformed { .. }))
        ));
        assert_eq!(
            res.unwrap_err().classify(),
            (Phase::Request, FailureKind::Protocol)
        );
        let endless = vec![b'a'; MAX_HEAD_LEN * 2];
        let mut wire = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        wire.extend_from_slice(&endless);
        let (res, _) = run(&wire, 1000, true);
        assert!(
            matches!(
                res,
                Err(HttpFlvError::Http(ClientError::HeadTooLarge {
                    limit: MAX_HEAD_LEN,
                    ..
                }))
            ),
            "{res:?}"
        );
        let (res, _) = run(b"HTTP/1.1 200 OK\r\n\r\nNOTFLV!!!!!!", 3, true);
        assert!(matches!(res, Err(HttpFlvError::Flv(_))));
        let (res, _) = run(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            3,
            true,
        );
        assert_eq!(res, Err(HttpFlvError::Ended));
    }

    #[test]
    fn request_names_path_and_host() {
        let mut out = BytesMut::new();
        write_request(
            &Target::parse("http://127.0.0.1:8080/live/x.flv").unwrap(),
            &mut out,
        );
        assert!(out.starts_with(b"GET /live/x.flv HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        assert!(out.ends_with(b"\r\n\r\n"));
    }
}
