//! Commands from the peer: `connect`, stream creation and deletion, and the
//! publish/play requests that wait for the caller's decision.

use bytes::BytesMut;
use tracing::debug;

use super::{Phase, ServerEvent, ServerSession, StreamState};
use crate::protocol::rtmp::amf0::Amf0Value;
use crate::protocol::rtmp::command::status::code;
use crate::protocol::rtmp::command::{Command, Connect, Response, StatusInfo, StatusLevel};
use crate::protocol::rtmp::control::{ControlMessage, LimitType};
use crate::protocol::rtmp::session::SessionError;

impl ServerSession {
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

    pub(super) fn on_command(
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
}
