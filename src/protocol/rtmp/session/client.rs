//! The client side of one RTMP connection: publishes or plays one stream (the edge's
//! origin pull, loadgen).
//!
//! Flow: complex handshake, Set Chunk Size, `connect`, then for publishing
//! `releaseStream`, `FCPublish`, `createStream`, `publish`; for playing
//! `createStream`, `play` and Set Buffer Length.

use bytes::BytesMut;
use rand::RngCore;
use tracing::debug;

use super::deadline::Wait;
use super::transport::{script_frame, Transport};
use super::SessionError;
use crate::protocol::flv::frame::{Frame, FrameKind};
use crate::protocol::payload::{HeapAllocator, PayloadAllocator};
use crate::protocol::rtmp::amf0::Amf0Value;
use crate::protocol::rtmp::chunk::{ChunkLimits, Incoming, SkippedMessage};
use crate::protocol::rtmp::command::data;
use crate::protocol::rtmp::command::status::code;
use crate::protocol::rtmp::command::{
    Command, CommandConfig, Connect, Play, Publish, PublishType, Response, StatusInfo, StatusLevel,
    StreamName,
};
use crate::protocol::rtmp::control::{ControlMessage, UserControlEvent};
use crate::protocol::rtmp::handshake::ClientHandshake;
use crate::protocol::rtmp::message::{type_id, RtmpMessage};

/// Whether the client publishes or plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMode {
    /// Receive the stream.
    Play,
    /// Send the stream.
    Publish,
}

/// What to connect to and how.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientSessionConfig {
    /// The application (`live` in `rtmp://host/live/stream`), optionally `app?query`.
    pub app: String,
    /// The URL announced as `tcUrl`.
    pub tc_url: String,
    /// The stream name.
    pub stream: String,
    /// Query string appended to the stream name as `stream?query`.
    pub query: Option<String>,
    /// Play or publish.
    pub mode: ClientMode,
    /// `flashVer` announced in `connect`.
    pub flash_ver: String,
    /// Chunk size announced right after the handshake and used for sending.
    pub out_chunk_size: u32,
    /// Buffer length announced to the server when playing.
    pub buffer_length_ms: u32,
    /// Limits on the incoming chunk stream.
    pub chunk_limits: ChunkLimits,
    /// Limits for decoding the server's commands.
    pub commands: CommandConfig,
    /// Most frames one aggregate message may carry.
    pub max_aggregate_frames: usize,
    /// Start and idle deadlines (none by default).
    pub timeouts: ClientTimeouts,
    /// Play without keeping audio and video: their payloads are stepped over
    /// uncopied and each is reported as [`ClientEvent::MediaSkipped`] instead of
    /// [`ClientEvent::Media`]. Acknowledgements, pings, commands and metadata work
    /// as usual. Off by default (loadgen's unsampled viewers turn it on).
    pub skip_media: bool,
}

/// Deadlines of a client session, in ms; `None` waits forever.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// From [`ClientSession::start_at`] until publishing or playing has started.
    pub start_ms: Option<u64>,
    /// While playing: longest time without any input from the server.
    pub idle_ms: Option<u64>,
}

impl ClientSessionConfig {
    /// A configuration with defaults for everything but the target.
    pub fn new(app: &str, tc_url: &str, stream: &str, mode: ClientMode) -> Self {
        ClientSessionConfig {
            app: app.to_owned(),
            tc_url: tc_url.to_owned(),
            stream: stream.to_owned(),
            query: None,
            mode,
            flash_ver: "FMLE/3.0 (compatible; ringcast)".to_owned(),
            out_chunk_size: 4096,
            buffer_length_ms: 3000,
            chunk_limits: ChunkLimits::default(),
            commands: CommandConfig::default(),
            max_aggregate_frames: 1024,
            timeouts: ClientTimeouts::default(),
            skip_media: false,
        }
    }
}

/// What the server did.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    /// `connect` succeeded.
    Connected,
    /// `NetStream.Play.Start` arrived; media follows.
    PlayStarted,
    /// `NetStream.Publish.Start` arrived; `send_frame` may be used.
    PublishStarted,
    /// A frame of the played stream (metadata arrives as a Script frame starting at
    /// `onMetaData`).
    Media(Frame),
    /// An audio or video frame of the played stream whose payload was skipped
    /// ([`ClientSessionConfig::skip_media`]); where [`ClientEvent::Media`] would be.
    MediaSkipped {
        /// Audio or video.
        kind: FrameKind,
        /// Its timestamp in ms.
        timestamp: u32,
        /// Its payload length in bytes (never 0).
        len: u32,
    },
    /// The server refused something (connect, publish or play); close the connection.
    StatusError {
        /// The status code, e.g. `NetStream.Play.StreamNotFound`.
        code: String,
        /// The server's description.
        description: String,
    },
    /// The played stream ended (its publisher left).
    StreamEof,
}

#[derive(Debug)]
enum Phase {
    Handshake(Box<ClientHandshake>),
    /// `connect` sent with this transaction id.
    Connecting {
        transaction_id: f64,
    },
    /// `createStream` sent with this transaction id.
    CreatingStream {
        transaction_id: f64,
    },
    /// `publish` / `play` sent on this stream, awaiting its Start status.
    Starting {
        stream_id: u32,
    },
    /// Publishing or playing.
    Active {
        stream_id: u32,
    },
    /// Refused by the server, or closed by [`ClientSession::close`].
    Finished,
}

/// One client-side RTMP connection, sans-IO.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientSessionConfig,
    phase: Phase,
    transport: Transport,
    next_transaction: f64,
    eof_reported: bool,
    /// When the start deadline began (creation, or [`ClientSession::start_at`]).
    started_ms: u64,
    /// When the last input arrived (the idle deadline's start).
    last_input_ms: u64,
}

impl ClientSession {
    /// A session that will start its handshake on [`ClientSession::start`].
    pub fn new(config: ClientSessionConfig, rng: &mut impl RngCore, now_ms: u64) -> Self {
        let mut transport = Transport::new(config.chunk_limits, config.max_aggregate_frames);
        transport.decoder.set_skip_media(config.skip_media);
        ClientSession {
            phase: Phase::Handshake(Box::new(ClientHandshake::new(rng, now_ms as u32))),
            config,
            transport,
            next_transaction: 1.0,
            eof_reported: false,
            started_ms: now_ms,
            last_input_ms: now_ms,
        }
    }

    /// [`ClientSession::start`] at `now_ms`, which starts the start deadline
    /// (the time taken to connect does not count against it).
    pub fn start_at(&mut self, now_ms: u64, out: &mut BytesMut) -> Result<(), SessionError> {
        self.started_ms = now_ms;
        self.last_input_ms = now_ms;
        self.start(out)
    }

    /// When the session next needs [`ClientSession::handle_timeout`]: the start
    /// deadline until publishing or playing started, then (playing) the idle one.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.wait().map(|w| w.deadline())
    }

    /// Checks the deadline at `now_ms`: [`SessionError::TimedOut`] once it passed;
    /// then the connection must be closed.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Result<(), SessionError> {
        self.wait().map_or(Ok(()), |w| w.check(now_ms))
    }

    fn wait(&self) -> Option<Wait> {
        let t = self.config.timeouts;
        match self.phase {
            Phase::Finished => None,
            Phase::Active { .. } if self.config.mode == ClientMode::Publish => None,
            Phase::Active { .. } => t.idle_ms.map(|l| Wait::new("idle", self.last_input_ms, l)),
            _ => t.start_ms.map(|l| Wait::new("start", self.started_ms, l)),
        }
    }

    /// Writes C0+C1; call once, right after connecting.
    pub fn start(&mut self, out: &mut BytesMut) -> Result<(), SessionError> {
        if let Phase::Handshake(hs) = &mut self.phase {
            hs.handle(&[], out)?;
        }
        Ok(())
    }

    /// Consumes bytes from the server, appending replies to `out` and events to `events`.
    /// Message payloads are heap-allocated, one buffer each; see
    /// [`ClientSession::handle_input_in`] to supply them from an arena.
    pub fn handle_input(
        &mut self,
        input: &[u8],
        now_ms: u64,
        out: &mut BytesMut,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), SessionError> {
        self.handle_input_in(input, now_ms, &mut HeapAllocator, out, events)
    }

    /// [`ClientSession::handle_input`] with every message payload (and so every
    /// media frame's payload) assembled in a buffer from `alloc`, so a client with
    /// many connections (loadgen's viewers) can carve them from one arena instead of
    /// allocating per message.
    pub fn handle_input_in(
        &mut self,
        input: &[u8],
        now_ms: u64,
        alloc: &mut impl PayloadAllocator,
        out: &mut BytesMut,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), SessionError> {
        if !input.is_empty() {
            self.last_input_ms = now_ms;
        }
        let mut pos = 0;
        if let Phase::Handshake(hs) = &mut self.phase {
            let status = hs.handle(input, out)?;
            let Some(chunks_start) = self.transport.handshake_step(status) else {
                return Ok(());
            };
            pos = chunks_start;
            self.send_connect(out)?;
        }
        while let Some(incoming) = self.transport.next_message_in(input, &mut pos, alloc)? {
            match incoming {
                Incoming::Message(msg) => self.on_message(msg, out, events)?,
                Incoming::Skipped(skipped) => self.on_skipped(skipped, events)?,
            }
            self.transport.acknowledge(out)?;
        }
        self.transport.acknowledge(out)
    }

    fn transaction(&mut self) -> f64 {
        let t = self.next_transaction;
        self.next_transaction += 1.0;
        t
    }

    fn stream_name(&self) -> StreamName {
        StreamName {
            name: self.config.stream.clone(),
            query: self.config.query.clone(),
        }
    }

    fn send_connect(&mut self, out: &mut BytesMut) -> Result<(), SessionError> {
        let t = &mut self.transport;
        t.write_control(
            &ControlMessage::SetChunkSize(self.config.out_chunk_size),
            out,
        )?;
        let app = match self.config.app.split_once('?') {
            Some((name, query)) => StreamName {
                name: name.to_owned(),
                query: Some(query.to_owned()),
            },
            None => StreamName {
                name: self.config.app.clone(),
                query: None,
            },
        };
        let mut connect = Connect::new(app, self.config.tc_url.clone());
        connect.flash_ver = Some(self.config.flash_ver.clone());
        if self.config.mode == ClientMode::Publish {
            connect
                .extra
                .push(("type".to_owned(), Amf0Value::string("nonprivate")));
        }
        let transaction_id = self.transaction();
        connect.transaction_id = transaction_id;
        let csid = self.transport.csids.command;
        self.transport
            .write_command(csid, 0, &Command::Connect(connect), out)?;
        self.phase = Phase::Connecting { transaction_id };
        Ok(())
    }

    fn on_message(
        &mut self,
        msg: RtmpMessage,
        out: &mut BytesMut,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), SessionError> {
        match msg.type_id {
            type_id::SET_CHUNK_SIZE..=type_id::SET_PEER_BANDWIDTH => {
                let ctrl = self.transport.on_control(&msg, out)?;
                if let Some(ControlMessage::UserControl(UserControlEvent::StreamEof {
                    stream_id,
                })) = ctrl
                {
                    if self.playing_stream() == Some(stream_id) {
                        self.report_eof(events);
                    }
                }
            }
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                let cmd = Command::decode(msg.type_id, &msg.payload, &self.config.commands)?;
                self.on_command(cmd, out, events)?;
            }
            type_id::AUDIO | type_id::VIDEO | type_id::AGGREGATE => {
                self.require_playing(msg.stream_id, msg.type_id)?;
                self.transport
                    .media_frames(msg, |frame| events.push(ClientEvent::Media(frame)))?;
            }
            type_id::DATA_AMF0 | type_id::DATA_AMF3 => {
                if self.playing_stream() != Some(msg.stream_id) {
                    debug!(
                        stream_id = msg.stream_id,
                        "ignoring data message outside the played stream"
                    );
                    return Ok(());
                }
                // A player relays metadata and custom script data; sample access and
                // status data are for the player itself.
                let ignored = [data::RTMP_SAMPLE_ACCESS, "onStatus"];
                if let Some((frame, _)) = script_frame(&msg, self.config.commands.amf0, &ignored)? {
                    events.push(ClientEvent::Media(frame));
                }
            }
            other => debug!(type_id = other, "ignoring rtmp message type"),
        }
        Ok(())
    }

    /// An audio or video message the decoder stepped over: checked like an
    /// assembled one, reported without its payload.
    fn on_skipped(
        &mut self,
        skipped: SkippedMessage,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), SessionError> {
        self.require_playing(skipped.stream_id, skipped.type_id)?;
        let kind = if skipped.type_id == type_id::AUDIO {
            FrameKind::Audio
        } else {
            FrameKind::Video
        };
        events.push(ClientEvent::MediaSkipped {
            kind,
            timestamp: skipped.timestamp,
            len: skipped.len,
        });
        Ok(())
    }

    /// The message stream media is expected on, once `play` was sent.
    fn playing_stream(&self) -> Option<u32> {
        match self.phase {
            Phase::Starting { stream_id } | Phase::Active { stream_id }
                if self.config.mode == ClientMode::Play =>
            {
                Some(stream_id)
            }
            _ => None,
        }
    }

    fn require_playing(&self, stream_id: u32, type_id: u8) -> Result<(), SessionError> {
        if self.playing_stream() == Some(stream_id) {
            Ok(())
        } else {
            Err(SessionError::MediaOnInactiveStream {
                stream_id,
                type_id,
                expected: "playing",
            })
        }
    }

    fn report_eof(&mut self, events: &mut Vec<ClientEvent>) {
        if !self.eof_reported {
            self.eof_reported = true;
            events.push(ClientEvent::StreamEof);
        }
    }

    fn fail(&mut self, info: StatusInfo, events: &mut Vec<ClientEvent>) {
        self.phase = Phase::Finished;
        events.push(ClientEvent::StatusError {
            code: info.code,
            description: info.description,
        });
    }

    fn on_command(
        &mut self,
        cmd: Command,
        out: &mut BytesMut,
        events: &mut Vec<ClientEvent>,
    ) -> Result<(), SessionError> {
        match (&self.phase, cmd) {
            (Phase::Connecting { transaction_id }, Command::Result(r))
                if r.transaction_id == *transaction_id =>
            {
                events.push(ClientEvent::Connected);
                self.after_connect(out)?;
            }
            (Phase::Connecting { transaction_id }, Command::Error(r))
                if r.transaction_id == *transaction_id =>
            {
                let info = error_status(&r, code::CONNECT_REJECTED);
                self.fail(info, events);
            }
            (Phase::CreatingStream { transaction_id }, Command::Result(r))
                if r.transaction_id == *transaction_id =>
            {
                let stream_id = r.stream_id().ok_or(SessionError::Command(
                    crate::protocol::rtmp::command::CommandError::InvalidArgument {
                        command: "_result",
                        argument: "stream id",
                        expected: "a whole number",
                    },
                ))?;
                self.start_stream(stream_id, out)?;
            }
            (Phase::CreatingStream { transaction_id }, Command::Error(r))
                if r.transaction_id == *transaction_id =>
            {
                let info = error_status(&r, "NetConnection.Call.Failed");
                self.fail(info, events);
            }
            (_, Command::OnStatus(info)) => self.on_status(info, events),
            (_, Command::OnBwDone) => {}
            (_, other) => debug!(command = other.name(), "ignoring rtmp command"),
        }
        Ok(())
    }

    fn after_connect(&mut self, out: &mut BytesMut) -> Result<(), SessionError> {
        let csid = self.transport.csids.command;
        if self.config.mode == ClientMode::Publish {
            let name = self.stream_name();
            let release = Command::ReleaseStream {
                transaction_id: self.transaction(),
                name: name.clone(),
            };
            self.transport.write_command(csid, 0, &release, out)?;
            let fc = Command::FcPublish {
                transaction_id: self.transaction(),
                name,
            };
            self.transport.write_command(csid, 0, &fc, out)?;
        }
        let transaction_id = self.transaction();
        self.transport
            .write_command(csid, 0, &Command::CreateStream { transaction_id }, out)?;
        self.phase = Phase::CreatingStream { transaction_id };
        Ok(())
    }

    fn start_stream(&mut self, stream_id: u32, out: &mut BytesMut) -> Result<(), SessionError> {
        let csid = self.transport.csids.stream;
        let name = self.stream_name();
        let cmd = match self.config.mode {
            ClientMode::Publish => Command::Publish(Publish {
                transaction_id: self.transaction(),
                name,
                publish_type: PublishType::Live,
            }),
            ClientMode::Play => Command::Play(Play {
                transaction_id: self.transaction(),
                name,
                start: -2.0,
                duration: -1.0,
                reset: true,
            }),
        };
        self.transport.write_command(csid, stream_id, &cmd, out)?;
        if self.config.mode == ClientMode::Play {
            let ms = self.config.buffer_length_ms;
            self.transport
                .write_user_control(UserControlEvent::SetBufferLength { stream_id, ms }, out)?;
        }
        self.phase = Phase::Starting { stream_id };
        Ok(())
    }

    fn on_status(&mut self, info: StatusInfo, events: &mut Vec<ClientEvent>) {
        let started = match self.phase {
            Phase::Starting { stream_id } | Phase::Active { stream_id } => Some(stream_id),
            _ => None,
        };
        match info.code.as_str() {
            code::PUBLISH_START if self.config.mode == ClientMode::Publish => {
                if let Some(stream_id) = started {
                    self.phase = Phase::Active { stream_id };
                    events.push(ClientEvent::PublishStarted);
                }
            }
            code::PLAY_START if self.config.mode == ClientMode::Play => {
                if let Some(stream_id) = started {
                    self.phase = Phase::Active { stream_id };
                    self.eof_reported = false;
                    events.push(ClientEvent::PlayStarted);
                }
            }
            code::PLAY_PUBLISH_NOTIFY => self.eof_reported = false,
            code::PLAY_UNPUBLISH_NOTIFY | code::PLAY_STOP | "NetStream.Play.Complete" => {
                self.report_eof(events)
            }
            _ if info.level == StatusLevel::Error => self.fail(info, events),
            _ => debug!(code = %info.code, "rtmp status"),
        }
    }

    /// Sends a frame of the published stream (metadata gets `@setDataFrame`).
    pub fn send_frame(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), SessionError> {
        match self.phase {
            Phase::Active { stream_id } if self.config.mode == ClientMode::Publish => {
                self.transport.write_frame(stream_id, frame, true, out)
            }
            Phase::Starting { stream_id } | Phase::Active { stream_id } => {
                Err(SessionError::WrongStreamState {
                    stream_id,
                    expected: "publishing",
                })
            }
            _ => Err(SessionError::WrongStreamState {
                stream_id: 0,
                expected: "publishing",
            }),
        }
    }

    /// Ends the stream politely: `FCUnpublish` (when publishing) and `deleteStream`.
    pub fn close(&mut self, out: &mut BytesMut) -> Result<(), SessionError> {
        let (Phase::Starting { stream_id } | Phase::Active { stream_id }) = self.phase else {
            return Ok(());
        };
        let csid = self.transport.csids.command;
        if self.config.mode == ClientMode::Publish {
            let cmd = Command::FcUnpublish {
                transaction_id: self.transaction(),
                name: self.stream_name(),
            };
            self.transport.write_command(csid, 0, &cmd, out)?;
        }
        let cmd = Command::DeleteStream {
            transaction_id: self.transaction(),
            stream_id,
        };
        self.transport.write_command(csid, 0, &cmd, out)?;
        self.phase = Phase::Finished;
        Ok(())
    }

    /// Whether publishing or playing has started.
    pub fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Active { .. })
    }

    /// The chunk size used for sending.
    pub fn out_chunk_size(&self) -> u32 {
        self.transport.encoder.chunk_size()
    }

    /// The message stream being published or played, once started.
    pub fn active_stream_id(&self) -> Option<u32> {
        match self.phase {
            Phase::Active { stream_id } => Some(stream_id),
            _ => None,
        }
    }

    /// The chunk stream ids this session writes media on, so media can be
    /// encoded outside it (a relay sending shared encodings).
    pub fn csids(&self) -> super::csid::OutputCsids {
        self.transport.csids
    }
}

/// The status object of an `_error`, or a generic one with `fallback` as its code.
fn error_status(r: &Response, fallback: &str) -> StatusInfo {
    r.status()
        .unwrap_or_else(|| StatusInfo::new(StatusLevel::Error, fallback, "request failed"))
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
