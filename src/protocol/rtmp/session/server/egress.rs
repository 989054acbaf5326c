//! What the caller sends through the session: publish/play decisions, stream
//! notifications, and frames or messages written with the session's chunk encoder.

use bytes::BytesMut;

use super::{PlayRejection, PublishRejection, ServerSession, StreamState};
use crate::protocol::flv::frame::Frame;
use crate::protocol::rtmp::amf0::Amf0Value;
use crate::protocol::rtmp::chunk::ChunkEncoder;
use crate::protocol::rtmp::command::data;
use crate::protocol::rtmp::command::status::code;
use crate::protocol::rtmp::command::{Command, StatusInfo, StatusLevel, StreamName};
use crate::protocol::rtmp::control::{ControlMessage, UserControlEvent};
use crate::protocol::rtmp::message::{type_id, RtmpMessage};
use crate::protocol::rtmp::session::csid::OutputCsids;
use crate::protocol::rtmp::session::SessionError;

impl ServerSession {
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
            PublishRejection::Unauthorized => code::PUBLISH_UNAUTHORIZED,
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
}
