//! Why a session gave up on its connection.

use thiserror::Error;

use crate::protocol::rtmp::amf0::Amf0Error;
use crate::protocol::rtmp::chunk::{ChunkError, EncodeError};
use crate::protocol::rtmp::command::CommandError;
use crate::protocol::rtmp::control::ControlError;
use crate::protocol::rtmp::handshake::HandshakeError;

/// A session failure: the caller flushes `out` and closes the connection.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// The handshake failed.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The chunk stream is malformed or over a limit.
    #[error("chunk stream: {0}")]
    Chunk(#[from] ChunkError),
    /// A control message is malformed.
    #[error("control message: {0}")]
    Control(#[from] ControlError),
    /// A command or data message is malformed or breaks a rule.
    #[error("command: {0}")]
    Command(#[from] CommandError),
    /// An outgoing message could not be encoded (payload or csid out of range).
    #[error("encoding a message: {0}")]
    Encode(#[from] EncodeError),
    /// An outgoing AMF0 body could not be encoded.
    #[error("encoding AMF0: {0}")]
    Amf0Encode(#[from] Amf0Error),
    /// A command that is not allowed in the session's current state.
    #[error("{command} not allowed while {state}")]
    UnexpectedCommand {
        /// The command name.
        command: &'static str,
        /// The state it arrived in.
        state: &'static str,
    },
    /// A message or call for a message stream id that was never created.
    #[error("unknown message stream {stream_id}")]
    UnknownStream {
        /// The message stream id.
        stream_id: u32,
    },
    /// More `createStream` calls than the session allows.
    #[error("more than {limit} message streams on one connection")]
    TooManyStreams {
        /// The configured maximum.
        limit: usize,
    },
    /// Audio/video on a message stream that is not publishing (or not playing, on the
    /// client side).
    #[error("media (type {type_id}) on message stream {stream_id}, which is not {expected}")]
    MediaOnInactiveStream {
        /// The message stream id.
        stream_id: u32,
        /// The message type id.
        type_id: u8,
        /// What the stream should have been doing.
        expected: &'static str,
    },
    /// Input buffered while a publish/play decision is pending exceeds the limit.
    #[error("{len} bytes buffered awaiting a publish/play decision exceeds the limit {limit}")]
    BacklogTooLarge {
        /// Bytes that would be buffered.
        len: usize,
        /// The configured maximum.
        limit: usize,
    },
    /// An aggregate message is malformed or holds too many frames.
    #[error("aggregate message: {reason}")]
    InvalidAggregate {
        /// The rule broken.
        reason: &'static str,
    },
    /// An API call that does not fit the stream's state (a caller bug).
    #[error("message stream {stream_id} is not {expected}")]
    WrongStreamState {
        /// The message stream id.
        stream_id: u32,
        /// The state the call needs.
        expected: &'static str,
    },
    /// A deadline of the session passed: the peer did not get through `phase`
    /// (handshake, first media, idle...) within `limit_ms`.
    #[error("{phase} timeout: nothing within {limit_ms} ms")]
    TimedOut {
        /// What the session was waiting for.
        phase: &'static str,
        /// The limit that passed, in ms.
        limit_ms: u64,
    },
}
