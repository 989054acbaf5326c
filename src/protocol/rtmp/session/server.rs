//! The server side of one RTMP connection: handshake, `connect`, stream creation,
//! publish/play negotiation, media in.
//!
//! Publish and play need a decision only the caller can make (is the name free, does
//! the stream exist?), so the session reports `PublishRequested` / `PlayRequested` and
//! stops consuming input until [`ServerSession::accept_publish`] (or a sibling) is
//! called. Input arriving meanwhile is buffered (bounded) and processed on the next
//! [`ServerSession::handle_input`] call, which may be made with empty input.

mod commands;
mod egress;
mod timeouts;

use bytes::BytesMut;
use rand::RngCore;
use tracing::debug;

use super::deadline::Wait;
use super::transport::{script_frame, Transport};
use super::SessionError;
use crate::protocol::flv::frame::Frame;
use crate::protocol::payload::{HeapAllocator, PayloadAllocator};
use crate::protocol::rtmp::chunk::{ChunkLimits, Incoming};
use crate::protocol::rtmp::command::data;
use crate::protocol::rtmp::command::{Command, CommandConfig, Connect, StreamName};
use crate::protocol::rtmp::handshake::ServerHandshake;
use crate::protocol::rtmp::message::{type_id, RtmpMessage};

pub use timeouts::ServerTimeouts;

/// Tunables of a server session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerSessionConfig {
    /// Limits on the incoming chunk stream.
    pub chunk_limits: ChunkLimits,
    /// Limits and naming rules for commands.
    pub commands: CommandConfig,
    /// Chunk size announced after `connect` and used for everything sent after it.
    pub out_chunk_size: u32,
    /// Window Acknowledgement Size announced to the peer.
    pub window_ack_size: u32,
    /// Set Peer Bandwidth announced to the peer.
    pub peer_bandwidth: u32,
    /// Most message streams (`createStream`) one connection may hold.
    pub max_streams: usize,
    /// Most input bytes buffered while a publish/play decision is pending.
    pub max_backlog: usize,
    /// Most frames one aggregate message may carry.
    pub max_aggregate_frames: usize,
    /// Handshake, first-media and idle deadlines.
    pub timeouts: ServerTimeouts,
}

impl Default for ServerSessionConfig {
    fn default() -> Self {
        ServerSessionConfig {
            chunk_limits: ChunkLimits::default(),
            commands: CommandConfig::default(),
            out_chunk_size: 4096,
            window_ack_size: 2_500_000,
            peer_bandwidth: 2_500_000,
            max_streams: 8,
            max_backlog: 4 * 1024 * 1024,
            max_aggregate_frames: 1024,
            timeouts: ServerTimeouts::default(),
        }
    }
}

/// What happened on the connection, for the server to act on.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerEvent {
    /// `connect` was accepted (the responses are already in `out`).
    Connected(Box<Connect>),
    /// The peer wants to publish; answer with `accept_publish` or `reject_publish`.
    PublishRequested {
        /// The message stream it will publish on.
        stream_id: u32,
        /// The app from `connect` (query removed).
        app: String,
        /// The stream name (query removed).
        name: String,
        /// The query string after `?`, if any.
        query: Option<String>,
    },
    /// The peer wants to play; answer with `accept_play` or `reject_play`.
    PlayRequested {
        /// The message stream it will play on.
        stream_id: u32,
        /// The app from `connect` (query removed).
        app: String,
        /// The stream name (query removed).
        name: String,
        /// The query string after `?`, if any.
        query: Option<String>,
        /// `start` argument: -2 live or recorded, -1 live only, >= 0 seconds.
        start: f64,
    },
    /// A frame from a publishing stream. `metadata` marks `onMetaData` script frames
    /// (payload starting at `onMetaData`, `@setDataFrame` removed).
    Media {
        /// The publishing message stream.
        stream_id: u32,
        /// The frame.
        frame: Frame,
        /// Whether this is the stream's metadata.
        metadata: bool,
    },
    /// A publishing stream stopped (FCUnpublish, closeStream or deleteStream).
    Unpublished {
        /// The message stream that was publishing.
        stream_id: u32,
    },
    /// A playing stream stopped (closeStream or deleteStream).
    PlayStopped {
        /// The message stream that was playing.
        stream_id: u32,
    },
    /// A message stream was deleted.
    StreamDeleted {
        /// The deleted message stream id.
        stream_id: u32,
    },
}

/// Why a publish is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishRejection {
    /// The name is invalid or already being published (`NetStream.Publish.BadName`).
    BadName,
    /// Not allowed (`NetStream.Publish.Denied`).
    Denied,
    /// No valid credentials (`NetStream.Publish.Unauthorized`).
    Unauthorized,
}

/// Why a play is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlayRejection {
    /// No such stream (`NetStream.Play.StreamNotFound`).
    StreamNotFound,
    /// Any other failure (`NetStream.Play.Failed`).
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum StreamState {
    Idle,
    PublishPending(StreamName),
    Publishing(StreamName),
    PlayPending { name: StreamName, reset: bool },
    Playing(StreamName),
}

impl StreamState {
    fn pending(&self) -> bool {
        matches!(
            self,
            StreamState::PublishPending(_) | StreamState::PlayPending { .. }
        )
    }
}

#[derive(Debug)]
enum Phase {
    Handshake(Box<ServerHandshake>),
    AwaitingConnect,
    Connected { app: StreamName },
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Handshake(_) => "handshaking",
            Phase::AwaitingConnect => "awaiting connect",
            Phase::Connected { .. } => "connected",
        }
    }
}

/// One server-side RTMP connection, sans-IO.
#[derive(Debug)]
pub struct ServerSession {
    config: ServerSessionConfig,
    phase: Phase,
    transport: Transport,
    /// Message streams by id (ids are handed out from 1 upwards).
    streams: Vec<(u32, StreamState)>,
    next_stream_id: u32,
    /// Input received while a decision was pending.
    backlog: BytesMut,
    /// The deadline in force (see [`ServerSession::poll_timeout`]).
    wait: Wait,
}

impl ServerSession {
    /// A session waiting for C0/C1; `now_ms` becomes S1's time field and starts
    /// the handshake deadline.
    pub fn new(config: ServerSessionConfig, rng: &mut impl RngCore, now_ms: u64) -> Self {
        ServerSession {
            config,
            phase: Phase::Handshake(Box::new(ServerHandshake::new(rng, now_ms as u32))),
            transport: Transport::new(config.chunk_limits, config.max_aggregate_frames),
            streams: Vec::new(),
            next_stream_id: 1,
            backlog: BytesMut::new(),
            wait: Wait::new("handshake", now_ms, config.timeouts.handshake_ms),
        }
    }

    /// Consumes bytes from the peer, appending replies to `out` and events to `events`.
    ///
    /// `now_ms` is the caller's clock: events move the session's deadline (see
    /// [`ServerSession::poll_timeout`]). On error, flush `out` and close.
    pub fn handle_input(
        &mut self,
        input: &[u8],
        now_ms: u64,
        out: &mut BytesMut,
        events: &mut Vec<ServerEvent>,
    ) -> Result<(), SessionError> {
        self.handle_input_in(input, now_ms, &mut HeapAllocator, out, events)
    }

    /// [`ServerSession::handle_input`] with every message payload (so every
    /// published frame's payload) assembled in a buffer from `alloc`: the server
    /// passes its per-core aligned arena, so frames are written once into it.
    pub fn handle_input_in(
        &mut self,
        input: &[u8],
        now_ms: u64,
        alloc: &mut impl PayloadAllocator,
        out: &mut BytesMut,
        events: &mut Vec<ServerEvent>,
    ) -> Result<(), SessionError> {
        if self.awaiting_decision() {
            return self.buffer(input);
        }
        let before = events.len();
        let result = if self.backlog.is_empty() {
            self.process(input, alloc, out, events)
        } else {
            let mut data = std::mem::take(&mut self.backlog);
            data.extend_from_slice(input);
            self.process(&data, alloc, out, events)
        };
        self.track(events.get(before..).unwrap_or_default(), now_ms);
        result
    }

    /// True while a publish/play request awaits `accept_*` / `reject_*`.
    pub fn awaiting_decision(&self) -> bool {
        self.streams.iter().any(|(_, s)| s.pending())
    }

    /// True when input is buffered, waiting for a `handle_input` call after a decision.
    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    fn buffer(&mut self, input: &[u8]) -> Result<(), SessionError> {
        let len = self.backlog.len() + input.len();
        if len > self.config.max_backlog {
            return Err(SessionError::BacklogTooLarge {
                len,
                limit: self.config.max_backlog,
            });
        }
        self.backlog.extend_from_slice(input);
        Ok(())
    }

    fn process(
        &mut self,
        input: &[u8],
        alloc: &mut impl PayloadAllocator,
        out: &mut BytesMut,
        events: &mut Vec<ServerEvent>,
    ) -> Result<(), SessionError> {
        let mut pos = 0;
        if let Phase::Handshake(hs) = &mut self.phase {
            let status = hs.handle(input, out)?;
            let Some(chunks_start) = self.transport.handshake_step(status) else {
                return Ok(());
            };
            pos = chunks_start;
            self.phase = Phase::AwaitingConnect;
        }
        loop {
            if self.awaiting_decision() {
                return self.buffer(input.get(pos..).unwrap_or_default());
            }
            match self.transport.next_message_in(input, &mut pos, alloc)? {
                Some(Incoming::Message(msg)) => self.on_message(msg, out, events)?,
                // Never: a server assembles everything (skipping is off).
                Some(Incoming::Skipped(_)) => {}
                None => break,
            }
            self.transport.acknowledge(out)?;
        }
        self.transport.acknowledge(out)
    }

    fn state_of(&self, stream_id: u32) -> Option<&StreamState> {
        self.streams
            .iter()
            .find(|(id, _)| *id == stream_id)
            .map(|(_, s)| s)
    }

    fn state_mut(&mut self, stream_id: u32) -> Result<&mut StreamState, SessionError> {
        self.streams
            .iter_mut()
            .find(|(id, _)| *id == stream_id)
            .map(|(_, s)| s)
            .ok_or(SessionError::UnknownStream { stream_id })
    }

    fn on_message(
        &mut self,
        msg: RtmpMessage,
        out: &mut BytesMut,
        events: &mut Vec<ServerEvent>,
    ) -> Result<(), SessionError> {
        match msg.type_id {
            type_id::SET_CHUNK_SIZE..=type_id::SET_PEER_BANDWIDTH => {
                self.transport.on_control(&msg, out)?;
            }
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                let cmd = Command::decode(msg.type_id, &msg.payload, &self.config.commands)?;
                self.on_command(cmd, msg.stream_id, out, events)?;
            }
            type_id::AUDIO | type_id::VIDEO | type_id::AGGREGATE => {
                self.require_publishing(msg.stream_id, msg.type_id)?;
                let stream_id = msg.stream_id;
                self.transport.media_frames(msg, |frame| {
                    events.push(ServerEvent::Media {
                        stream_id,
                        frame,
                        metadata: false,
                    })
                })?;
            }
            type_id::DATA_AMF0 | type_id::DATA_AMF3 => self.on_data(msg, events)?,
            other => debug!(type_id = other, "ignoring rtmp message type"),
        }
        Ok(())
    }

    fn require_publishing(&self, stream_id: u32, type_id: u8) -> Result<(), SessionError> {
        match self.state_of(stream_id) {
            Some(StreamState::Publishing(_)) => Ok(()),
            _ => Err(SessionError::MediaOnInactiveStream {
                stream_id,
                type_id,
                expected: "publishing",
            }),
        }
    }

    fn on_data(
        &mut self,
        msg: RtmpMessage,
        events: &mut Vec<ServerEvent>,
    ) -> Result<(), SessionError> {
        if !matches!(
            self.state_of(msg.stream_id),
            Some(StreamState::Publishing(_))
        ) {
            // Data messages outside a publishing stream carry nothing a server needs.
            debug!(
                stream_id = msg.stream_id,
                "ignoring data message on a non-publishing stream"
            );
            return Ok(());
        }
        let ignored = [data::RTMP_SAMPLE_ACCESS];
        if let Some((frame, metadata)) = script_frame(&msg, self.config.commands.amf0, &ignored)? {
            events.push(ServerEvent::Media {
                stream_id: msg.stream_id,
                frame,
                metadata,
            });
        }
        Ok(())
    }

    /// Whether `stream_id` is publishing.
    pub fn is_publishing(&self, stream_id: u32) -> bool {
        matches!(self.state_of(stream_id), Some(StreamState::Publishing(_)))
    }

    /// Whether `stream_id` is playing.
    pub fn is_playing(&self, stream_id: u32) -> bool {
        matches!(self.state_of(stream_id), Some(StreamState::Playing(_)))
    }

    /// The app from `connect`, once connected.
    pub fn app(&self) -> Option<&str> {
        match &self.phase {
            Phase::Connected { app } => Some(&app.name),
            _ => None,
        }
    }

    /// Bytes received so far, handshake included.
    pub fn bytes_received(&self) -> u64 {
        self.transport.bytes_received()
    }
}
