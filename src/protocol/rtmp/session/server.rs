//! The server side of one RTMP connection: handshake, `connect`, stream creation,
//! publish/play negotiation, media in.
//!
//! Publish and play need a decision only the caller can make (is the name free, does
//! the stream exist?), so the session reports `PublishRequested` / `PlayRequested` and
//! stops consuming input until [`ServerSession::accept_publish`] (or a sibling) is
//! called. Input arriving meanwhile is buffered (bounded) and processed on the next
//! [`ServerSession::handle_input`] call, which may be made with empty input.

use bytes::BytesMut;
use rand::RngCore;
use tracing::debug;

use super::csid::OutputCsids;
use super::transport::{script_frame, Transport};
use super::SessionError;
use crate::protocol::flv::frame::Frame;
use crate::protocol::rtmp::amf0::Amf0Value;
use crate::protocol::rtmp::chunk::{ChunkEncoder, ChunkLimits};
use crate::protocol::rtmp::command::data;
use crate::protocol::rtmp::command::status::code;
use crate::protocol::rtmp::command::{
    Command, CommandConfig, Connect, Response, StatusInfo, StatusLevel, StreamName,
};
use crate::protocol::rtmp::control::{ControlMessage, LimitType, UserControlEvent};
use crate::protocol::rtmp::handshake::ServerHandshake;
use crate::protocol::rtmp::message::{type_id, RtmpMessage};

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
}

impl ServerSession {
    /// A session waiting for C0/C1; `now_ms` becomes S1's time field.
    pub fn new(config: ServerSessionConfig, rng: &mut impl RngCore, now_ms: u64) -> Self {
        ServerSession {
            config,
            phase: Phase::Handshake(Box::new(ServerHandshake::new(rng, now_ms as u32))),
            transport: Transport::new(config.chunk_limits, config.max_aggregate_frames),
            streams: Vec::new(),
            next_stream_id: 1,
            backlog: BytesMut::new(),
        }
    }

    /// Consumes bytes from the peer, appending replies to `out` and events to `events`.
    ///
    /// `now_ms` is the caller's clock; the session keeps no timers today, but takes it
    /// so that time-based duties need no API change. On error, flush `out` and close.
    pub fn handle_input(
        &mut self,
        input: &[u8],
        _now_ms: u64,
        out: &mut BytesMut,
        events: &mut Vec<ServerEvent>,
    ) -> Result<(), SessionError> {
        if self.awaiting_decision() {
            return self.buffer(input);
        }
        if self.backlog.is_empty() {
            return self.process(input, out, events);
        }
        let mut data = std::mem::take(&mut self.backlog);
        data.extend_from_slice(input);
        self.process(&data, out, events)
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
            let Some(msg) = self.transport.next_message(input, &mut pos)? else {
                break;
            };
            self.on_message(msg, out, events)?;
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

    fn respond(
        &mut self,
        transaction_id: f64,
        result: Amf0Value,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        let response = Command::Result(Response {
            transaction_id,
            command_object: Amf0Value::Null,
            args: vec![result],
        });
        let csid = self.transport.csids.command;
        self.transport.write_command(csid, 0, &response, out)
    }

    fn on_command(
        &mut self,
        cmd: Command,
        msg_stream: u32,
        out: &mut BytesMut,
        events: &mut Vec<ServerEvent>,
    ) -> Result<(), SessionError> {
        let app = match (&self.phase, &cmd) {
            (Phase::AwaitingConnect, Command::Connect(_)) => None,
            (Phase::Connected { app }, Command::Connect(_)) => {
                debug!(app = %app.name, "second connect");
                return Err(SessionError::UnexpectedCommand {
                    command: "connect",
                    state: "connected",
                });
            }
            (Phase::Connected { app }, _) => Some(app.name.clone()),
            (
                _,
                Command::Unknown { .. }
                | Command::OnBwDone
                | Command::Result(_)
                | Command::Error(_)
                | Command::OnStatus(_),
            ) => None,
            (phase, other) => {
                return Err(SessionError::UnexpectedCommand {
                    command: other.name(),
                    state: phase.name(),
                })
            }
        };
        match cmd {
            Command::Connect(connect) => self.on_connect(connect, out, events)?,
            Command::ReleaseStream { transaction_id, .. }
            | Command::FcPublish { transaction_id, .. } => {
                self.respond(transaction_id, Amf0Value::Undefined, out)?
            }
            Command::CreateStream { transaction_id } => {
                if self.streams.len() >= self.config.max_streams {
                    return Err(SessionError::TooManyStreams {
                        limit: self.config.max_streams,
                    });
                }
                let id = self.next_stream_id;
                self.next_stream_id = id.checked_add(1).ok_or(SessionError::TooManyStreams {
                    limit: self.config.max_streams,
                })?;
                self.streams.push((id, StreamState::Idle));
                self.respond(transaction_id, Amf0Value::Number(f64::from(id)), out)?;
            }
            Command::Publish(p) => {
                self.begin_request(
                    msg_stream,
                    "publish",
                    StreamState::PublishPending(p.name.clone()),
                )?;
                events.push(ServerEvent::PublishRequested {
                    stream_id: msg_stream,
                    app: app.unwrap_or_default(),
                    name: p.name.name,
                    query: p.name.query,
                });
            }
            Command::Play(p) => {
                let pending = StreamState::PlayPending {
                    name: p.name.clone(),
                    reset: p.reset,
                };
                self.begin_request(msg_stream, "play", pending)?;
                events.push(ServerEvent::PlayRequested {
                    stream_id: msg_stream,
                    app: app.unwrap_or_default(),
                    name: p.name.name,
                    query: p.name.query,
                    start: p.start,
                });
            }
            Command::FcUnpublish { name, .. } => {
                let publishing = self
                    .streams
                    .iter_mut()
                    .find(|(_, s)| matches!(s, StreamState::Publishing(n) if n.name == name.name));
                if let Some((id, state)) = publishing {
                    *state = StreamState::Idle;
                    events.push(ServerEvent::Unpublished { stream_id: *id });
                }
            }
            Command::CloseStream { .. } => {
                if self.state_of(msg_stream).is_some() {
                    self.stop_stream(msg_stream, out, events)?;
                }
            }
            Command::DeleteStream { stream_id, .. } => {
                if self.state_of(stream_id).is_some() {
                    self.stop_stream(stream_id, out, events)?;
                    self.streams.retain(|(id, _)| *id != stream_id);
                    events.push(ServerEvent::StreamDeleted { stream_id });
                }
            }
            Command::GetStreamLength { transaction_id, .. } => {
                // Live streams have no length.
                self.respond(transaction_id, Amf0Value::Number(0.0), out)?
            }
            other => debug!(command = other.name(), "ignoring rtmp command"),
        }
        Ok(())
    }

    /// Moves an idle stream into a pending state; one request per stream at a time.
    fn begin_request(
        &mut self,
        stream_id: u32,
        command: &'static str,
        pending: StreamState,
    ) -> Result<(), SessionError> {
        let state = self.state_mut(stream_id)?;
        if *state != StreamState::Idle {
            return Err(SessionError::UnexpectedCommand {
                command,
                state: "its stream is busy",
            });
        }
        *state = pending;
        Ok(())
    }

    fn on_connect(
        &mut self,
        connect: Connect,
        out: &mut BytesMut,
        events: &mut Vec<ServerEvent>,
    ) -> Result<(), SessionError> {
        let t = &mut self.transport;
        t.write_control(
            &ControlMessage::WindowAckSize(self.config.window_ack_size),
            out,
        )?;
        t.write_control(
            &ControlMessage::SetPeerBandwidth {
                size: self.config.peer_bandwidth,
                limit: LimitType::Dynamic,
            },
            out,
        )?;
        // The encoder switches to the new size right after writing this message.
        t.write_control(
            &ControlMessage::SetChunkSize(self.config.out_chunk_size),
            out,
        )?;
        let mut properties = vec![
            ("fmsVer".to_owned(), Amf0Value::string("FMS/3,0,1,123")),
            ("capabilities".to_owned(), Amf0Value::Number(31.0)),
        ];
        // Enhanced RTMP: echoing the client's codecs tells it the server forwards them
        // (ringcast relays payloads untouched, so it forwards every codec).
        if !connect.fourcc_list.is_empty() {
            let list = connect
                .fourcc_list
                .iter()
                .cloned()
                .map(Amf0Value::String)
                .collect();
            properties.push(("fourCcList".to_owned(), Amf0Value::StrictArray(list)));
        }
        let properties = Amf0Value::Object(properties);
        let info = StatusInfo::new(
            StatusLevel::Status,
            code::CONNECT_SUCCESS,
            "Connection succeeded.",
        )
        .to_value(&[("objectEncoding", Amf0Value::Number(connect.object_encoding))]);
        let result = Command::Result(Response {
            transaction_id: connect.transaction_id,
            command_object: properties,
            args: vec![info],
        });
        let csid = t.csids.command;
        t.write_command(csid, 0, &result, out)?;
        self.phase = Phase::Connected {
            app: connect.app.clone(),
        };
        events.push(ServerEvent::Connected(Box::new(connect)));
        Ok(())
    }

    /// Ends publishing or playing on `stream_id`, leaving it idle.
    fn stop_stream(
        &mut self,
        stream_id: u32,
        out: &mut BytesMut,
        events: &mut Vec<ServerEvent>,
    ) -> Result<(), SessionError> {
        let state = self.state_mut(stream_id)?;
        match std::mem::replace(state, StreamState::Idle) {
            StreamState::Publishing(name) => {
                events.push(ServerEvent::Unpublished { stream_id });
                let info = StatusInfo::new(
                    StatusLevel::Status,
                    code::UNPUBLISH_SUCCESS,
                    format!("{} is now unpublished.", name.name),
                );
                self.transport.write_status(stream_id, &info, &[], out)?;
            }
            StreamState::Playing(_) => events.push(ServerEvent::PlayStopped { stream_id }),
            _ => {}
        }
        Ok(())
    }

    fn take_pending(
        &mut self,
        stream_id: u32,
        publish: bool,
    ) -> Result<(StreamName, bool), SessionError> {
        let expected = if publish {
            "awaiting a publish decision"
        } else {
            "awaiting a play decision"
        };
        let state = self.state_mut(stream_id)?;
        let taken = match (publish, &*state) {
            (true, StreamState::PublishPending(name)) => (name.clone(), false),
            (false, StreamState::PlayPending { name, reset }) => (name.clone(), *reset),
            _ => {
                return Err(SessionError::WrongStreamState {
                    stream_id,
                    expected,
                })
            }
        };
        *state = StreamState::Idle;
        Ok(taken)
    }

    /// Accepts a requested publish: StreamBegin and `NetStream.Publish.Start`.
    pub fn accept_publish(
        &mut self,
        stream_id: u32,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        let (name, _) = self.take_pending(stream_id, true)?;
        self.transport
            .write_user_control(UserControlEvent::StreamBegin { stream_id }, out)?;
        let info = StatusInfo::new(
            StatusLevel::Status,
            code::PUBLISH_START,
            format!("{} is now published.", name.name),
        );
        self.transport.write_status(
            stream_id,
            &info,
            &[("details", Amf0Value::String(name.name.clone()))],
            out,
        )?;
        *self.state_mut(stream_id)? = StreamState::Publishing(name);
        Ok(())
    }

    /// Refuses a requested publish with an error `onStatus`; the stream becomes idle.
    pub fn reject_publish(
        &mut self,
        stream_id: u32,
        reason: PublishRejection,
        description: &str,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        let status_code = match reason {
            PublishRejection::BadName => code::PUBLISH_BAD_NAME,
            PublishRejection::Denied => code::PUBLISH_DENIED,
        };
        self.refuse(stream_id, true, status_code, description, out)
    }

    /// Accepts a requested play: StreamBegin, `NetStream.Play.Reset` (when asked),
    /// `NetStream.Play.Start` and `|RtmpSampleAccess`. Metadata and media are the
    /// stream layer's to send.
    pub fn accept_play(&mut self, stream_id: u32, out: &mut BytesMut) -> Result<(), SessionError> {
        let (name, reset) = self.take_pending(stream_id, false)?;
        let t = &mut self.transport;
        t.write_user_control(UserControlEvent::StreamBegin { stream_id }, out)?;
        let details = [("details", Amf0Value::String(name.name.clone()))];
        if reset {
            let info = StatusInfo::new(
                StatusLevel::Status,
                code::PLAY_RESET,
                format!("Playing and resetting {}.", name.name),
            );
            t.write_status(stream_id, &info, &details, out)?;
        }
        let info = StatusInfo::new(
            StatusLevel::Status,
            code::PLAY_START,
            format!("Started playing {}.", name.name),
        );
        t.write_status(stream_id, &info, &details, out)?;
        let csid = t.csids.data;
        t.write_amf(
            csid,
            stream_id,
            type_id::DATA_AMF0,
            data::write_sample_access,
            out,
        )?;
        *self.state_mut(stream_id)? = StreamState::Playing(name);
        Ok(())
    }

    /// Refuses a requested play with an error `onStatus`; the stream becomes idle.
    pub fn reject_play(
        &mut self,
        stream_id: u32,
        reason: PlayRejection,
        description: &str,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        let status_code = match reason {
            PlayRejection::StreamNotFound => code::PLAY_STREAM_NOT_FOUND,
            PlayRejection::Failed => code::PLAY_FAILED,
        };
        self.refuse(stream_id, false, status_code, description, out)
    }

    /// Ends a pending publish (or play) request with an error `onStatus` carrying
    /// `status_code`; the stream becomes idle.
    fn refuse(
        &mut self,
        stream_id: u32,
        publish: bool,
        status_code: &str,
        description: &str,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        self.take_pending(stream_id, publish)?;
        let info = StatusInfo::new(StatusLevel::Error, status_code, description);
        self.transport.write_status(stream_id, &info, &[], out)
    }

    /// Tells a player its stream's publisher left: StreamEOF and
    /// `NetStream.Play.UnpublishNotify`. The stream stays in the playing state, so a
    /// new publisher's frames can follow.
    pub fn send_unpublish_notify(
        &mut self,
        stream_id: u32,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        let Some(StreamState::Playing(name)) = self.state_of(stream_id) else {
            return Err(SessionError::WrongStreamState {
                stream_id,
                expected: "playing",
            });
        };
        let info = StatusInfo::new(
            StatusLevel::Status,
            code::PLAY_UNPUBLISH_NOTIFY,
            format!("{} is now unpublished.", name.name),
        );
        self.transport
            .write_user_control(UserControlEvent::StreamEof { stream_id }, out)?;
        self.transport.write_status(stream_id, &info, &[], out)
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

    /// The outgoing chunk size in force (the configured one once `connect` was answered).
    pub fn out_chunk_size(&self) -> u32 {
        self.transport.encoder.chunk_size()
    }

    /// The csids this session sends each kind of message on; egress sends media on
    /// `audio` / `video` / `data`.
    pub fn csids(&self) -> OutputCsids {
        self.transport.csids
    }

    /// Writes a frame to a player with this connection's chunk encoder (the per-viewer
    /// fallback path of DESIGN.md). After writing a csid through
    /// [`SharedChunks`](crate::protocol::rtmp::chunk::SharedChunks), call
    /// `chunk_encoder_mut().forget_chunk_stream(csid)` before using this.
    pub fn write_frame(
        &mut self,
        stream_id: u32,
        frame: &Frame,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        self.transport.write_frame(stream_id, frame, false, out)
    }

    /// Writes any message through the chunk encoder.
    pub fn write_message(
        &mut self,
        msg: &RtmpMessage,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        self.transport.write(msg, out)
    }

    /// Writes a command on message stream `stream_id` (NetStream csid when non-zero).
    pub fn write_command(
        &mut self,
        stream_id: u32,
        cmd: &Command,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        let csid = if stream_id == 0 {
            self.transport.csids.command
        } else {
            self.transport.csids.stream
        };
        self.transport.write_command(csid, stream_id, cmd, out)
    }

    /// Writes a control message.
    pub fn write_control(
        &mut self,
        ctrl: &ControlMessage,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        self.transport.write_control(ctrl, out)
    }

    /// The chunk encoder, for egress that interleaves shared chunks with it.
    pub fn chunk_encoder_mut(&mut self) -> &mut ChunkEncoder {
        &mut self.transport.encoder
    }

    /// Bytes received so far, handshake included.
    pub fn bytes_received(&self) -> u64 {
        self.transport.bytes_received()
    }
}
