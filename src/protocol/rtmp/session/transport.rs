//! The part of a session both sides share once the handshake is done: the chunk
//! codec, acknowledgement accounting, ping answers and typed writers.

use bytes::BytesMut;
use tracing::debug;

use super::csid::OutputCsids;
use super::SessionError;
use crate::protocol::flv::frame::{Frame, FrameKind};
use crate::protocol::payload::HeapAllocator;
use crate::protocol::rtmp::amf0::Amf0Value;
use crate::protocol::rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits};
use crate::protocol::rtmp::command::write_on_status;
use crate::protocol::rtmp::command::{data, Command, StatusInfo};
use crate::protocol::rtmp::control::{ControlMessage, UserControlEvent};
use crate::protocol::rtmp::message::{type_id, RtmpMessage};

/// Chunk codec plus the bookkeeping every RTMP peer owes the other.
#[derive(Debug)]
pub(super) struct Transport {
    pub decoder: ChunkDecoder,
    pub encoder: ChunkEncoder,
    pub alloc: HeapAllocator,
    pub csids: OutputCsids,
    /// Handshake bytes, which count towards acknowledgement sequence numbers.
    handshake_bytes: u64,
    /// The peer's Window Acknowledgement Size, once it sent one.
    peer_window: Option<u32>,
    /// `bytes_received()` when the last Acknowledgement was sent.
    last_ack: u64,
}

impl Transport {
    pub fn new(limits: ChunkLimits) -> Self {
        Transport {
            decoder: ChunkDecoder::new(limits),
            encoder: ChunkEncoder::new(),
            alloc: HeapAllocator,
            csids: OutputCsids::default(),
            handshake_bytes: 0,
            peer_window: None,
            last_ack: 0,
        }
    }

    pub fn add_handshake_bytes(&mut self, n: usize) {
        self.handshake_bytes += n as u64;
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

    /// Applies a control message (types 1–6). Set Chunk Size and Abort were already
    /// applied by the decoder; pings are answered.
    pub fn on_control(
        &mut self,
        ctrl: ControlMessage,
        out: &mut BytesMut,
    ) -> Result<(), SessionError> {
        match ctrl {
            ControlMessage::WindowAckSize(size) if size > 0 => self.peer_window = Some(size),
            ControlMessage::UserControl(UserControlEvent::PingRequest(ts)) => {
                let pong = ControlMessage::UserControl(UserControlEvent::PingResponse(ts));
                self.write_control(&pong, out)?;
            }
            other => debug!(?other, "rtmp control message"),
        }
        Ok(())
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
