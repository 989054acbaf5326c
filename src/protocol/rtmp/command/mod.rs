//! Typed NetConnection / NetStream commands, decoded from AMF0 command messages
//! (type 20, or type 17 with a leading 0 format byte) and encoded back.
//!
//! Unknown commands decode to [`Command::Unknown`]: peers send many optional
//! commands (`_checkbw`, `FCSubscribe`, ...) that a server may ignore, so they are
//! tolerated rather than treated as errors.

mod args;
pub mod connect;
pub mod data;
mod encode;
mod error;
pub mod name;
pub mod status;

pub use connect::Connect;
pub use encode::write_on_status;
pub use error::CommandError;
pub use name::{NameError, NameField, NamePolicy, StreamName};
pub use status::{StatusInfo, StatusLevel};

use args::Args;

use crate::protocol::rtmp::amf0::{Amf0Decoder, Amf0Limits, Amf0Value};
use crate::protocol::rtmp::message::type_id;

/// Limits applied while decoding commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandConfig {
    /// AMF0 limits for the whole command body.
    pub amf0: Amf0Limits,
    /// App / stream naming rules.
    pub names: NamePolicy,
}

/// How a `publish` wants the stream handled (a live edge treats all as live).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishType {
    /// Live only, nothing recorded.
    Live,
    /// Record, replacing an existing recording.
    Record,
    /// Record, appending to an existing recording.
    Append,
}

impl PublishType {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            PublishType::Live => "live",
            PublishType::Record => "record",
            PublishType::Append => "append",
        }
    }
}

/// A `publish` request.
#[derive(Clone, Debug, PartialEq)]
pub struct Publish {
    /// Transaction id (usually 0 for NetStream commands).
    pub transaction_id: f64,
    /// The stream name and query.
    pub name: StreamName,
    /// Live, record or append.
    pub publish_type: PublishType,
}

/// A `play` request.
#[derive(Clone, Debug, PartialEq)]
pub struct Play {
    /// Transaction id.
    pub transaction_id: f64,
    /// The stream name and query.
    pub name: StreamName,
    /// -2: live or recorded, -1: live only, >= 0: recorded from that second.
    pub start: f64,
    /// -1: until the end; otherwise seconds to play.
    pub duration: f64,
    /// Whether to flush a previous playlist.
    pub reset: bool,
}

impl Publish {
    fn decode(a: &Args<'_>, policy: &NamePolicy) -> Result<Self, CommandError> {
        let name = a.stream_name(0, "stream name", policy)?;
        let publish_type = match a.arg(1).and_then(Amf0Value::as_str) {
            Some("record") => PublishType::Record,
            Some("append") => PublishType::Append,
            // Absent, "live" or anything unexpected: a live edge streams it live.
            _ => PublishType::Live,
        };
        Ok(Publish {
            transaction_id: a.transaction_id(),
            name,
            publish_type,
        })
    }
}

impl Play {
    fn decode(a: &Args<'_>, policy: &NamePolicy) -> Result<Self, CommandError> {
        let name = a.stream_name(0, "stream name", policy)?;
        let start = a.number_or(1, "start", -2.0)?;
        let duration = a.number_or(2, "duration", -1.0)?;
        // Some clients send the reset flag as a number.
        let reset = match a.arg(3) {
            Some(Amf0Value::Boolean(b)) => *b,
            Some(Amf0Value::Number(n)) => *n != 0.0,
            _ => true,
        };
        Ok(Play {
            transaction_id: a.transaction_id(),
            name,
            start,
            duration,
            reset,
        })
    }
}

/// A `_result` or `_error` response.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The transaction this answers.
    pub transaction_id: f64,
    /// Properties object (connect) or Null.
    pub command_object: Amf0Value,
    /// Information: a status object (connect) or the new stream id (createStream).
    pub args: Vec<Amf0Value>,
}

impl Response {
    /// The status object in the first argument, if there is one.
    pub fn status(&self) -> Option<StatusInfo> {
        self.args.first().and_then(StatusInfo::from_value)
    }

    /// The first argument as a message stream id (the `createStream` answer).
    pub fn stream_id(&self) -> Option<u32> {
        let n = self.args.first()?.as_number()?;
        (n.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&n)).then_some(n as u32)
    }
}

/// One decoded command.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// NetConnection `connect`.
    Connect(Connect),
    /// `_result`: a successful response.
    Result(Response),
    /// `_error`: a failed response.
    Error(Response),
    /// `onBWDone`: bandwidth check finished (sent by servers, echoed by some clients).
    OnBwDone,
    /// `releaseStream` (FMLE-style publishers, before publish).
    ReleaseStream {
        /// Transaction id.
        transaction_id: f64,
        /// Stream name.
        name: StreamName,
    },
    /// `FCPublish` (FMLE-style publishers, before publish).
    FcPublish {
        /// Transaction id.
        transaction_id: f64,
        /// Stream name.
        name: StreamName,
    },
    /// `FCUnpublish` (FMLE-style publishers, when stopping).
    FcUnpublish {
        /// Transaction id.
        transaction_id: f64,
        /// Stream name.
        name: StreamName,
    },
    /// `createStream`: asks for a new message stream id.
    CreateStream {
        /// Transaction id.
        transaction_id: f64,
    },
    /// `deleteStream`: releases a message stream id.
    DeleteStream {
        /// Transaction id.
        transaction_id: f64,
        /// The message stream id to release.
        stream_id: u32,
    },
    /// `closeStream`: stops publishing/playing on the message stream it arrives on.
    CloseStream {
        /// Transaction id.
        transaction_id: f64,
    },
    /// `getStreamLength` (some players, before play).
    GetStreamLength {
        /// Transaction id.
        transaction_id: f64,
        /// Stream name.
        name: StreamName,
    },
    /// NetStream `publish`.
    Publish(Publish),
    /// NetStream `play`.
    Play(Play),
    /// `onStatus` notification.
    OnStatus(StatusInfo),
    /// Any other command; tolerated.
    Unknown {
        /// The command name.
        name: String,
        /// Transaction id (0 if absent).
        transaction_id: f64,
    },
}

impl Command {
    /// The command's wire name (`"unknown"` for [`Command::Unknown`]).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Connect(_) => "connect",
            Command::Result(_) => "_result",
            Command::Error(_) => "_error",
            Command::OnBwDone => "onBWDone",
            Command::ReleaseStream { .. } => "releaseStream",
            Command::FcPublish { .. } => "FCPublish",
            Command::FcUnpublish { .. } => "FCUnpublish",
            Command::CreateStream { .. } => "createStream",
            Command::DeleteStream { .. } => "deleteStream",
            Command::CloseStream { .. } => "closeStream",
            Command::GetStreamLength { .. } => "getStreamLength",
            Command::Publish(_) => "publish",
            Command::Play(_) => "play",
            Command::OnStatus(_) => "onStatus",
            Command::Unknown { .. } => "unknown",
        }
    }

    /// Decodes a command message payload of RTMP message type `type_id`.
    pub fn decode(
        message_type: u8,
        payload: &[u8],
        config: &CommandConfig,
    ) -> Result<Command, CommandError> {
        if message_type != type_id::COMMAND_AMF0 && message_type != type_id::COMMAND_AMF3 {
            return Err(CommandError::NotACommand {
                type_id: message_type,
            });
        }
        let body = amf0_body(message_type, payload, type_id::COMMAND_AMF3)?;
        let values = Amf0Decoder::new(body, config.amf0).decode_all()?;
        let (name, rest) = values.split_first().ok_or(CommandError::MissingName)?;
        let name = name.as_str().ok_or(CommandError::MissingName)?;
        let policy = &config.names;
        Ok(match name {
            "connect" => Command::Connect(Connect::decode(&Args::new("connect", rest), policy)?),
            "_result" | "_error" => {
                let args = Args::new("_result", rest);
                let response = Response {
                    transaction_id: args.transaction_id(),
                    command_object: args.command_object().clone(),
                    args: args.rest().to_vec(),
                };
                if name == "_result" {
                    Command::Result(response)
                } else {
                    Command::Error(response)
                }
            }
            "onBWDone" => Command::OnBwDone,
            "releaseStream" => {
                let a = Args::new("releaseStream", rest);
                let name = a.stream_name(0, "stream name", policy)?;
                Command::ReleaseStream {
                    transaction_id: a.transaction_id(),
                    name,
                }
            }
            "FCPublish" => {
                let a = Args::new("FCPublish", rest);
                let name = a.stream_name(0, "stream name", policy)?;
                Command::FcPublish {
                    transaction_id: a.transaction_id(),
                    name,
                }
            }
            "FCUnpublish" => {
                let a = Args::new("FCUnpublish", rest);
                let name = a.stream_name(0, "stream name", policy)?;
                Command::FcUnpublish {
                    transaction_id: a.transaction_id(),
                    name,
                }
            }
            "createStream" => Command::CreateStream {
                transaction_id: Args::new("createStream", rest).transaction_id(),
            },
            "deleteStream" => {
                let a = Args::new("deleteStream", rest);
                Command::DeleteStream {
                    transaction_id: a.transaction_id(),
                    stream_id: a.stream_id(0)?,
                }
            }
            "closeStream" => Command::CloseStream {
                transaction_id: Args::new("closeStream", rest).transaction_id(),
            },
            "getStreamLength" => {
                let a = Args::new("getStreamLength", rest);
                let name = a.stream_name(0, "stream name", policy)?;
                Command::GetStreamLength {
                    transaction_id: a.transaction_id(),
                    name,
                }
            }
            "publish" => Command::Publish(Publish::decode(&Args::new("publish", rest), policy)?),
            "play" => Command::Play(Play::decode(&Args::new("play", rest), policy)?),
            "onStatus" => {
                let a = Args::new("onStatus", rest);
                let info = a.arg(0).and_then(StatusInfo::from_value).ok_or(
                    CommandError::InvalidArgument {
                        command: "onStatus",
                        argument: "info object",
                        expected: "an object with a string code",
                    },
                )?;
                Command::OnStatus(info)
            }
            other => Command::Unknown {
                name: other.to_owned(),
                transaction_id: Args::new("unknown", rest).transaction_id(),
            },
        })
    }
}

/// The AMF0 body of a command or data message: AMF3-typed messages (`amf3_type`)
/// carry a format byte that must be 0 (meaning "AMF0 follows").
pub(crate) fn amf0_body(
    message_type: u8,
    payload: &[u8],
    amf3_type: u8,
) -> Result<&[u8], CommandError> {
    if message_type != amf3_type {
        return Ok(payload);
    }
    match payload.split_first() {
        Some((0, rest)) => Ok(rest),
        Some((&byte, _)) => Err(CommandError::Amf3Body { byte }),
        None => Err(CommandError::MissingName),
    }
}

#[cfg(test)]
mod tests;
