//! Positional access to a command's values with typed errors.
//!
//! A command message is `[name, transaction id, command object, args...]`; peers
//! omit trailing values freely, so missing optional ones fall back to defaults.

use super::name::{NameField, NamePolicy, StreamName};
use super::CommandError;
use crate::protocol::rtmp::amf0::Amf0Value;

/// The values after the command name.
pub(super) struct Args<'a> {
    pub command: &'static str,
    values: &'a [Amf0Value],
}

impl<'a> Args<'a> {
    pub fn new(command: &'static str, values: &'a [Amf0Value]) -> Self {
        Args { command, values }
    }

    /// The transaction id; 0 when absent or not a number, as peers do for notifications.
    pub fn transaction_id(&self) -> f64 {
        self.values
            .first()
            .and_then(Amf0Value::as_number)
            .unwrap_or(0.0)
    }

    /// The command object; Null when absent.
    pub fn command_object(&self) -> &'a Amf0Value {
        self.values.get(1).unwrap_or(&Amf0Value::Null)
    }

    /// The optional arguments after the command object.
    pub fn rest(&self) -> &'a [Amf0Value] {
        self.values.get(2..).unwrap_or_default()
    }

    /// Argument `i` after the command object.
    pub fn arg(&self, i: usize) -> Option<&'a Amf0Value> {
        self.rest().get(i)
    }

    pub fn required_str(&self, i: usize, argument: &'static str) -> Result<&'a str, CommandError> {
        match self.arg(i) {
            None => Err(CommandError::MissingArgument {
                command: self.command,
                argument,
            }),
            Some(v) => v.as_str().ok_or(CommandError::InvalidArgument {
                command: self.command,
                argument,
                expected: "a string",
            }),
        }
    }

    /// A stream name argument, split and validated.
    pub fn stream_name(
        &self,
        i: usize,
        argument: &'static str,
        policy: &NamePolicy,
    ) -> Result<StreamName, CommandError> {
        let raw = self.required_str(i, argument)?;
        StreamName::parse(raw, NameField::Stream, policy).map_err(|source| {
            CommandError::InvalidName {
                field: NameField::Stream,
                source,
            }
        })
    }

    /// A number argument, `default` when absent or null.
    pub fn number_or(
        &self,
        i: usize,
        argument: &'static str,
        default: f64,
    ) -> Result<f64, CommandError> {
        match self.arg(i) {
            None => Ok(default),
            Some(v) if v.is_nullish() => Ok(default),
            Some(v) => v.as_number().ok_or(CommandError::InvalidArgument {
                command: self.command,
                argument,
                expected: "a number",
            }),
        }
    }

    /// A message stream id argument: a whole number in `0..=u32::MAX`.
    pub fn stream_id(&self, i: usize) -> Result<u32, CommandError> {
        let invalid = CommandError::InvalidArgument {
            command: self.command,
            argument: "stream id",
            expected: "a whole number in 0..=4294967295",
        };
        let n = match self.arg(i) {
            None => {
                return Err(CommandError::MissingArgument {
                    command: self.command,
                    argument: "stream id",
                })
            }
            Some(v) => v.as_number().ok_or(invalid.clone())?,
        };
        if n.fract() != 0.0 || !(0.0..=u32::MAX as f64).contains(&n) {
            return Err(invalid);
        }
        Ok(n as u32)
    }
}
