//! Why a command or data message was refused.

use thiserror::Error;

use super::name::{NameError, NameField};
use crate::protocol::rtmp::amf0::Amf0Error;

/// A command (type 20/17) or data (type 18) message that could not be interpreted.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The AMF0 body itself is malformed or over a limit.
    #[error(transparent)]
    Amf0(#[from] Amf0Error),
    /// The message type is not a command or data message.
    #[error("message type {type_id} is not an AMF command or data message")]
    NotACommand {
        /// The RTMP message type id.
        type_id: u8,
    },
    /// An AMF3 command message whose format selector byte is not 0 (AMF0 body).
    #[error("AMF3 command message with format byte {byte:#04x} (only AMF0 bodies are supported)")]
    Amf3Body {
        /// The first payload byte.
        byte: u8,
    },
    /// The first value is missing or not a string.
    #[error("command message does not start with a command name string")]
    MissingName,
    /// A required argument is missing.
    #[error("{command}: missing argument {argument}")]
    MissingArgument {
        /// The command name.
        command: &'static str,
        /// Which argument.
        argument: &'static str,
    },
    /// An argument has the wrong type or an out-of-range value.
    #[error("{command}: argument {argument} must be {expected}")]
    InvalidArgument {
        /// The command name.
        command: &'static str,
        /// Which argument.
        argument: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// An app or stream name breaks the naming policy.
    #[error("invalid {field} name: {source}")]
    InvalidName {
        /// Which name.
        field: NameField,
        /// The rule broken.
        #[source]
        source: NameError,
    },
}
