//! The part of a session both sides share once the handshake is done: the chunk
//! codec, acknowledgement accounting, ping answers, turning media messages into
//! frames, and typed writers.

use bytes::BytesMut;
use tracing::debug;

use super::aggregate;
use super::csid::OutputCsids;
use super::SessionError;
use crate::protocol::flv::frame::{Frame, FrameKind};
use crate::protocol::payload::PayloadAllocator;
use crate::protocol::rtmp::amf0::{Amf0Limits, Amf0Value};
use crate::protocol::rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits, Incoming};
use crate::protocol::rtmp::command::data::DataMessage;
use crate::protocol::rtmp::command::write_on_status;
use crate::protocol::rtmp::command::{data, Command, StatusInfo};
use crate::protocol::rtmp::control::{ControlMessage, UserControlEvent};
use crate::protocol::rtmp::handshake::HandshakeStatus;
use crate::protocol::rtmp::message::{type_id, RtmpMessage};

/// Chunk codec plus the bookkeeping every RTMP peer owes the other.
#[derive(Debug)]
pub(super) struct Transport {
    pub decoder: ChunkDecoder,
    pub encoder: ChunkEncoder,
    pub csids: OutputCsids,
    /// Handshake bytes, which count towards acknowledgement sequence numbers.
    handshake_bytes: u64,
    /// The peer's Window Acknowledgement Size, once it sent one.
    peer_window: Option<u32>,
    /// `bytes_received()` when the last Acknowledgement was sent.
    last_ack: u64,
    /// Most frames one aggregate message may carry.
    max_aggregate_frames: usize,
    /// Scratch for split aggregate messages, kept to reuse its allocation.
    aggregate_frames: Vec<Frame>,
}

impl Transport {
    pub fn new(limits: ChunkLimits, max_aggregate_frames: usize) -> Self {
        Transport {
            decoder: ChunkDecoder::new(limits),
            encoder: ChunkEncoder::new(),
            csids: OutputCsids::default(),
            handshake_bytes: 0,
            peer_window: None,
            last_ack: 0,
            max_aggregate_frames,
            aggregate_frames: Vec::new(),
        }
    }

    /// Counts the bytes a handshake step consumed (they count towards
    /// acknowledgements); once the handshake is done, returns where the chunk
    /// stream starts in that step's input.
    pub fn handshake_step(&mut self, status: HandshakeStatus) -> Option<usize> {
        self.handshake_bytes += status.consumed as u64;
        status.done.then_some(status.consumed)
    }

    /// Decodes the next message from `input[*pos..]`, advancing `pos` past what
    /// the decoder consumed, with its payload assembled in a buffer from `alloc`
    /// (or skipped, see [`ChunkDecoder::set_skip_media`]); `None` when the rest is
    /// an incomplete message.
    pub fn next_message_in(
        &mut self,
        input: &[u8],
        pos: &mut usize,
        alloc: &mut impl PayloadAllocator,
    ) -> Result<Option<Incoming>, SessionError> {
        let rest = input.get(*pos..).unwrap_or_default();
        let decoded = self.decoder.decode(rest, alloc)?;
        *pos += decoded.consumed;
        Ok(decoded.message)
    }

    pub fn bytes_received(&self) -> u64 {
        self.handshake_bytes + self.decoder.bytes_received()
    }

    /// Sends an Acknowledgement once a window's worth of bytes arrived since the last.
    pub fn acknowledge(&mut self, out: &mut BytesMut) -> Result<(), SessionError> {
        let Some(window) = self.peer_window else {
            return Ok(());
        };
        let received = self.bytes_received();
        if received - self.last_ack >= u64::from(window) {
            self.last_ack = received;
            // Sequence numbers wrap at 2^32 (spec 5.4.3).
            self.write_control(&ControlMessage::Acknowledgement(received as u32), out)?;
        }
        Ok(())
    }

    /// Applies a control message (types 1–6) and returns it, for the session to act on
    /// events only it understands. Set Chunk Size and Abort were already applied by
    /// the decoder; pings are answered.
    pub fn on_control(
        &mut self,
        msg: &RtmpMessage,
        out: &mut BytesMut,
    ) -> Result<Option<ControlMessage>, SessionError> {
        let Some(ctrl) = ControlMessage::from_message(msg)? else {
            return Ok(None);
        };
        match &ctrl {
            ControlMessage::WindowAckSize(size) if *size > 0 => self.peer_window = Some(*size),
            ControlMessage::UserControl(UserControlEvent::PingRequest(ts)) => {
                let pong = ControlMessage::UserControl(UserControlEvent::PingResponse(*ts));
                self.write_control(&pong, out)?;
            }
            other => debug!(?other, "rtmp control message"),
        }
        Ok(Some(ctrl))
    }

    /// Passes the frames of an audio, video or aggregate message to `emit`, in order.
    /// Empty audio/video messages carry no frame. A malformed aggregate still emits
    /// the frames before the fault, then fails.
    pub fn media_frames(
        &mut self,
        msg: RtmpMessage,
        mut emit: impl FnMut(Frame),
    ) -> Result<(), SessionError> {
        if msg.type_id != type_id::AGGREGATE {
            let kind = if msg.type_id == type_id::AUDIO {
                FrameKind::Audio
            } else {
                FrameKind::Video
            };
            if !msg.payload.is_empty() {
                emit(Frame::new(kind, msg.timestamp, msg.payload));
            }
            return Ok(());
        }
        let mut frames = std::mem::take(&mut self.aggregate_frames);
        frames.clear();
        let split = aggregate::split(
            &msg.payload,
            msg.timestamp,
            self.max_aggregate_frames,
            &mut frames,
        );
        frames.drain(..).for_each(&mut emit);
        self.aggregate_frames = frames;
        split
    }

    pub fn write(&mut self, msg: &RtmpMessage, out: &mut BytesMut) -> Result<(), SessionError> {
        Ok(self.encoder.encode(msg, out)?)
    }

    pub fn write_control(
        &mut self,
        ctrl: &ControlMessage,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        let mut msg = ctrl.to_message();
        msg.csid = self.csids.control;
        self.write(&msg, out)
    }

    /// Writes an AMF0 message body built by `body` as message type `type_id`.
    pub fn write_amf(
        &mut self,
        csid: u32,
        stream_id: u32,
        type_id: u8,
        body: impl FnOnce(&mut BytesMut) -> Result<(), crate::protocol::rtmp::amf0::Amf0Error>,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        let mut payload = BytesMut::new();
        body(&mut payload)?;
        let msg = RtmpMessage {
            csid,
            timestamp: 0,
            type_id,
            stream_id,
            payload: payload.freeze(),
        };
        self.write(&msg, out)
    }

    pub fn write_command(
        &mut self,
        csid: u32,
        stream_id: u32,
        cmd: &Command,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        self.write_amf(
            csid,
            stream_id,
            type_id::COMMAND_AMF0,
            |b| cmd.encode(b),
            out,
        )
    }

    pub fn write_status(
        &mut self,
        stream_id: u32,
        info: &StatusInfo,
        extra: &[(&str, Amf0Value)],
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        let csid = self.csids.stream;
        self.write_amf(
            csid,
            stream_id,
            type_id::COMMAND_AMF0,
            |b| write_on_status(info, extra, b),
            out,
        )
    }

    pub fn write_user_control(
        &mut self,
        event: UserControlEvent,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        self.write_control(&ControlMessage::UserControl(event), out)
    }

    /// Writes a frame on its kind's csid with the full (per-connection) encoder.
    /// `wrap_metadata` prefixes metadata with `@setDataFrame`, as publishers do.
    pub fn write_frame(
        &mut self,
        stream_id: u32,
        frame: &Frame,
        wrap_metadata: bool,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        let payload = if wrap_metadata
            && frame.kind == FrameKind::Script
            && data::is_metadata(&frame.payload)
        {
            let mut b = BytesMut::with_capacity(16 + frame.payload.len());
            data::write_set_data_frame(&frame.payload, &mut b)?;
            b.freeze()
        } else {
            frame.payload.clone()
        };
        let msg = RtmpMessage {
            csid: self.csids.for_kind(frame.kind),
            timestamp: frame.timestamp,
            type_id: frame.kind.tag_type(),
            stream_id,
            payload,
        };
        self.write(&msg, out)
    }
}

/// The Script frame a data message (types 15/18) carries and whether it is the
/// stream's metadata (`@setDataFrame` removed). `None` for `@clearDataFrame` and for
/// messages whose handler is in `ignored_handlers` (they carry nothing to relay).
pub(super) fn script_frame(
    msg: &RtmpMessage,
    amf0: Amf0Limits,
    ignored_handlers: &[&str],
) -> Result<Option<(Frame, bool)>, SessionError> {
    let (payload, metadata) = match data::parse_data_message(msg.type_id, &msg.payload, amf0)? {
        DataMessage::Metadata(body) => (body, true),
        DataMessage::Other { handler, body } => {
            if ignored_handlers.contains(&handler.as_str()) {
                return Ok(None);
            }
            (body, false)
        }
        DataMessage::ClearMetadata => {
            debug!(stream_id = msg.stream_id, "@clearDataFrame ignored");
            return Ok(None);
        }
    };
    Ok(Some((
        Frame::new(FrameKind::Script, msg.timestamp, payload),
        metadata,
    )))
}
