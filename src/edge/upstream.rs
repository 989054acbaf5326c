//! One upstream session to an origin, whatever its protocol: RTMP play through
//! the protocol core's [`ClientSession`] (complex handshake, connect,
//! createStream, play) or an HTTP-FLV GET. Sans-IO: bytes in, events and reply
//! bytes out.

use bytes::BytesMut;
use rand::RngCore;

use super::http_flv::{HttpFlvClient, HttpFlvError};
use super::origin::UpstreamRequest;
use crate::protocol::payload::PayloadAllocator;
use crate::protocol::rtmp::chunk::ChunkLimits;
use crate::protocol::rtmp::command::status::code;
use crate::protocol::rtmp::session::client::{
    ClientEvent, ClientMode, ClientSession, ClientSessionConfig, ClientTimeouts,
};
use crate::protocol::rtmp::session::SessionError;
use crate::protocol::Frame;

/// What an upstream reported.
#[derive(Clone, Debug, PartialEq)]
pub enum UpstreamEvent {
    /// The origin accepted the play request; frames follow.
    Started,
    /// A frame of the stream.
    Frame(Frame),
    /// The origin does not have the stream.
    NotFound,
    /// The origin ended the stream (its publisher left).
    Ended,
}

/// Why an upstream session failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The RTMP session broke a rule or limit.
    #[error("rtmp upstream: {0}")]
    Rtmp(#[from] SessionError),
    /// The origin refused with a status other than "stream not found".
    #[error("rtmp upstream refused: {code}: {description}")]
    Refused {
        /// The status code.
        code: String,
        /// The origin's description.
        description: String,
    },
    /// The HTTP-FLV response broke.
    #[error("http-flv upstream: {0}")]
    Http(#[from] HttpFlvError),
}

/// Limits applied to what an origin sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpstreamLimits {
    /// Largest RTMP chunk size accepted.
    pub max_chunk_size: u32,
    /// Largest RTMP message / FLV tag accepted.
    pub max_message_len: u32,
    /// How long the origin may take to start, and to stay silent once started.
    pub timeouts: UpstreamTimeouts,
}

/// Deadlines of an upstream session, in ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpstreamTimeouts {
    /// From [`Upstream::start`] (connected) until the origin accepted the play.
    pub start_ms: u64,
    /// Once started: longest time without any bytes from the origin.
    pub idle_ms: u64,
}

enum Session {
    Rtmp {
        session: Box<ClientSession>,
        events: Vec<ClientEvent>,
    },
    Http(Box<HttpFlvClient>),
}

/// An upstream session.
pub struct Upstream {
    session: Session,
    started: bool,
}

impl Upstream {
    /// A session asking for `request` (see [`super::origin::Origin::request_for`]).
    pub fn new(
        request: &UpstreamRequest,
        limits: UpstreamLimits,
        rng: &mut impl RngCore,
        now_ms: u64,
    ) -> Self {
        let session = match request {
            UpstreamRequest::Rtmp {
                app,
                tc_url,
                stream,
                query,
            } => {
                let mut config = ClientSessionConfig::new(app, tc_url, stream, ClientMode::Play);
                config.query = query.clone();
                config.flash_ver = "LNX 9,0,124,2".to_owned();
                config.chunk_limits = ChunkLimits {
                    max_chunk_size: limits.max_chunk_size,
                    max_message_len: limits.max_message_len,
                    ..ChunkLimits::default()
                };
                config.timeouts = ClientTimeouts {
                    start_ms: Some(limits.timeouts.start_ms),
                    idle_ms: Some(limits.timeouts.idle_ms),
                };
                Session::Rtmp {
                    session: Box::new(ClientSession::new(config, rng, now_ms)),
                    events: Vec::new(),
                }
            }
            UpstreamRequest::Http {
                path_and_query,
                host,
            } => Session::Http(Box::new(HttpFlvClient::new(
                path_and_query,
                host,
                limits.max_message_len,
                limits.timeouts,
            ))),
        };
        Upstream {
            session,
            started: false,
        }
    }

    /// True once the origin accepted the play request.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Writes the opening bytes (RTMP C0+C1, or the HTTP request); call once
    /// connected, at `now_ms`, which starts the start deadline.
    pub fn start(&mut self, now_ms: u64, out: &mut BytesMut) -> Result<(), UpstreamError> {
        match &mut self.session {
            Session::Rtmp { session, .. } => session.start_at(now_ms, out)?,
            Session::Http(client) => client.start(now_ms, out),
        }
        Ok(())
    }

    /// When the session next needs [`Upstream::handle_timeout`]: the start
    /// deadline until the origin accepted, then the idle one.
    pub fn poll_timeout(&self) -> Option<u64> {
        match &self.session {
            Session::Rtmp { session, .. } => session.poll_timeout(),
            Session::Http(client) => client.poll_timeout(),
        }
    }

    /// Checks the deadline at `now_ms`: a timeout error (naming the phase and
    /// its limit) once it passed; then the upstream connection is closed.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Result<(), UpstreamError> {
        match &mut self.session {
            Session::Rtmp { session, .. } => Ok(session.handle_timeout(now_ms)?),
            Session::Http(client) => Ok(client.handle_timeout(now_ms)?),
        }
    }

    /// Consumes bytes from the origin: replies go to `out`, what happened to `events`.
    pub fn handle_input(
        &mut self,
        input: &[u8],
        now_ms: u64,
        alloc: &mut impl PayloadAllocator,
        out: &mut BytesMut,
        events: &mut Vec<UpstreamEvent>,
    ) -> Result<(), UpstreamError> {
        let before = events.len();
        let result = self.handle(input, now_ms, alloc, out, events);
        self.started |= events
            .get(before..)
            .unwrap_or_default()
            .contains(&UpstreamEvent::Started);
        result
    }

    fn handle(
        &mut self,
        input: &[u8],
        now_ms: u64,
        alloc: &mut impl PayloadAllocator,
        out: &mut BytesMut,
        events: &mut Vec<UpstreamEvent>,
    ) -> Result<(), UpstreamError> {
        match &mut self.session {
            Session::Http(client) => Ok(client.handle_input(input, now_ms, events)?),
            Session::Rtmp {
                session,
                events: raw,
            } => {
                raw.clear();
                let result = session.handle_input_in(input, now_ms, alloc, out, raw);
                for event in raw.drain(..) {
                    match event {
                        ClientEvent::PlayStarted => events.push(UpstreamEvent::Started),
                        ClientEvent::Media(frame) => events.push(UpstreamEvent::Frame(frame)),
                        ClientEvent::StreamEof => events.push(UpstreamEvent::Ended),
                        ClientEvent::StatusError { code: status, .. }
                            if status == code::PLAY_STREAM_NOT_FOUND =>
                        {
                            events.push(UpstreamEvent::NotFound)
                        }
                        ClientEvent::StatusError { code, description } => {
                            return Err(UpstreamError::Refused { code, description })
                        }
                        // An edge keeps its media (skip_media stays off), so
                        // MediaSkipped never comes.
                        ClientEvent::Connected
                        | ClientEvent::PublishStarted
                        | ClientEvent::MediaSkipped { .. } => {}
                    }
                }
                Ok(result?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::payload::HeapAllocator;
    use crate::protocol::rtmp::session::server::{
        PlayRejection, ServerEvent, ServerSession, ServerSessionConfig,
    };
    use crate::protocol::FrameKind;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    const LIMITS: UpstreamLimits = UpstreamLimits {
        max_chunk_size: 1 << 20,
        max_message_len: 4 << 20,
        timeouts: UpstreamTimeouts {
            start_ms: 5_000,
            idle_ms: 10_000,
        },
    };

    fn rtmp_request() -> UpstreamRequest {
        UpstreamRequest::Rtmp {
            app: "live".into(),
            tc_url: "rtmp://127.0.0.1:1935/live".into(),
            stream: "cam".into(),
            query: Some("token=abc".into()),
        }
    }

    /// Pumps bytes between the upstream and a real server session until quiet;
    /// the server accepts or rejects play and then sends `frames`.
    fn run(accept: bool, frames: &[Frame]) -> (Vec<UpstreamEvent>, Vec<ServerEvent>) {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut up = Upstream::new(&rtmp_request(), LIMITS, &mut rng, 0);
        let mut server = ServerSession::new(ServerSessionConfig::default(), &mut rng, 0);
        let (mut events, mut server_events) = (Vec::new(), Vec::new());
        let mut to_server = BytesMut::new();
        up.start(0, &mut to_server).unwrap();
        for _ in 0..64 {
            let mut to_client = BytesMut::new();
            let start = server_events.len();
            server
                .handle_input(&to_server, 0, &mut to_client, &mut server_events)
                .unwrap();
            to_server.clear();
            for e in &server_events[start..] {
                if let &ServerEvent::PlayRequested { stream_id, .. } = e {
                    if accept {
                        server.accept_play(stream_id, &mut to_client).unwrap();
                        for f in frames {
                            server.write_frame(stream_id, f, &mut to_client).unwrap();
                        }
                    } else {
                        server
                            .reject_play(
                                stream_id,
                                PlayRejection::StreamNotFound,
                                "nope",
                                &mut to_client,
                            )
                            .unwrap();
                    }
                }
            }
            up.handle_input(
                &to_client,
                0,
                &mut HeapAllocator,
                &mut to_server,
                &mut events,
            )
            .unwrap();
            if to_client.is_empty() && to_server.is_empty() {
                break;
            }
        }
        (events, server_events)
    }

    #[test]
    fn rtmp_play_passes_the_query_and_delivers_frames() {
        let key = Frame::new(
            FrameKind::Video,
            0,
            bytes::Bytes::from_static(&[0x17, 1, 0, 0, 0, 9, 9]),
        );
        let audio = Frame::new(
            FrameKind::Audio,
            23,
            bytes::Bytes::from_static(&[0xaf, 1, 5]),
        );
        let (events, server_events) = run(true, &[key.clone(), audio.clone()]);
        let query = server_events.iter().find_map(|e| match e {
            ServerEvent::PlayRequested { name, query, .. } => Some((name.clone(), query.clone())),
            _ => None,
        });
        assert_eq!(query, Some(("cam".into(), Some("token=abc".into()))));
        assert_eq!(events.first(), Some(&UpstreamEvent::Started));
        let got: Vec<&Frame> = events
            .iter()
            .filter_map(|e| match e {
                UpstreamEvent::Frame(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].payload.clone(), got[0].keyframe),
            (key.payload, true)
        );
        assert_eq!(
            (got[1].timestamp, got[1].payload.clone()),
            (23, audio.payload)
        );
    }

    #[test]
    fn rtmp_stream_not_found_is_an_event_not_an_error() {
        let (events, _) = run(false, &[]);
        assert_eq!(events, vec![UpstreamEvent::NotFound]);
    }

    #[test]
    fn garbage_from_an_rtmp_origin_is_an_error() {
        let mut rng = SmallRng::seed_from_u64(5);
        let mut up = Upstream::new(&rtmp_request(), LIMITS, &mut rng, 0);
        let mut out = BytesMut::new();
        up.start(0, &mut out).unwrap();
        let garbage = vec![0x42u8; 4000];
        let mut events = Vec::new();
        assert!(up
            .handle_input(&garbage, 0, &mut HeapAllocator, &mut out, &mut events)
            .is_err());
    }

    #[test]
    fn rtmp_upstream_deadlines_on_a_fake_clock() {
        const BASE: u64 = 3_000_000;
        let mut rng = SmallRng::seed_from_u64(6);
        let mut up = Upstream::new(&rtmp_request(), LIMITS, &mut rng, BASE);
        let mut out = BytesMut::new();
        up.start(BASE + 2_000, &mut out).unwrap();
        assert_eq!(
            up.poll_timeout(),
            Some(BASE + 7_000),
            "start counts from connected"
        );
        assert!(up.handle_timeout(BASE + 6_999).is_ok());
        let err = up.handle_timeout(BASE + 7_000).unwrap_err();
        assert!(
            matches!(
                err,
                UpstreamError::Rtmp(SessionError::TimedOut {
                    phase: "start",
                    limit_ms: 5_000
                })
            ),
            "{err}"
        );
        let http = UpstreamRequest::Http {
            path_and_query: "/live/cam.flv".into(),
            host: "o".into(),
        };
        let mut up = Upstream::new(&http, LIMITS, &mut rng, BASE);
        up.start(BASE, &mut out).unwrap();
        let mut events = Vec::new();
        up.handle_input(
            b"HTTP/1.1 200 OK\r\n\r\n",
            BASE + 100,
            &mut HeapAllocator,
            &mut out,
            &mut events,
        )
        .unwrap();
        assert!(up.is_started());
        assert_eq!(up.poll_timeout(), Some(BASE + 10_100));
        assert!(matches!(
            up.handle_timeout(BASE + 10_100),
            Err(UpstreamError::Http(HttpFlvError::TimedOut { .. }))
        ));
    }
}
