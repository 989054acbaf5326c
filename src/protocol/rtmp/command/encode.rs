//! Command encoding: the exact inverse of [`Command::decode`] for AMF0 (type 20)
//! command messages.

use bytes::BytesMut;

use super::{Command, Response, StatusInfo};
use crate::protocol::rtmp::amf0::{encode, Amf0Error, Amf0Value};

/// Writes an `onStatus` command body with `extra` properties in its info object
/// (e.g. `details`, `clientid`).
pub fn write_on_status(
    info: &StatusInfo,
    extra: &[(&str, Amf0Value)],
    out: &mut BytesMut,
) -> Result<(), Amf0Error> {
    encode::write_string(out, "onStatus")?;
    encode::write_number(out, 0.0);
    encode::write_null(out);
    info.encode(extra, out)
}

fn header(out: &mut BytesMut, name: &str, transaction_id: f64) -> Result<(), Amf0Error> {
    encode::write_string(out, name)?;
    encode::write_number(out, transaction_id);
    encode::write_null(out);
    Ok(())
}

fn response(out: &mut BytesMut, name: &str, r: &Response) -> Result<(), Amf0Error> {
    encode::write_string(out, name)?;
    encode::write_number(out, r.transaction_id);
    r.command_object.encode(out)?;
    for arg in &r.args {
        arg.encode(out)?;
    }
    Ok(())
}

impl Command {
    /// Appends the AMF0 command message body (for message type 20) to `out`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), Amf0Error> {
        match self {
            Command::Connect(c) => c.encode(out)?,
            Command::Result(r) => response(out, "_result", r)?,
            Command::Error(r) => response(out, "_error", r)?,
            Command::OnBwDone => header(out, "onBWDone", 0.0)?,
            // The three stream-name announcements share one shape: command name,
            // transaction id, null, stream name.
            Command::ReleaseStream {
                transaction_id,
                name,
            }
            | Command::FcPublish {
                transaction_id,
                name,
            }
            | Command::FcUnpublish {
                transaction_id,
                name,
            } => {
                header(out, self.name(), *transaction_id)?;
                encode::write_string(out, &name.to_wire())?;
            }
            Command::CreateStream { transaction_id } => {
                header(out, "createStream", *transaction_id)?
            }
            Command::DeleteStream {
                transaction_id,
                stream_id,
            } => {
                header(out, "deleteStream", *transaction_id)?;
                encode::write_number(out, f64::from(*stream_id));
            }
            Command::CloseStream { transaction_id } => header(out, "closeStream", *transaction_id)?,
            Command::GetStreamLength {
                transaction_id,
                name,
            } => {
                header(out, "getStreamLength", *transaction_id)?;
                encode::write_string(out, &name.to_wire())?;
            }
            Command::Publish(p) => {
                header(out, "publish", p.transaction_id)?;
                encode::write_string(out, &p.name.to_wire())?;
                encode::write_string(out, p.publish_type.as_str())?;
            }
            Command::Play(p) => {
                header(out, "play", p.transaction_id)?;
                encode::write_string(out, &p.name.to_wire())?;
                encode::write_number(out, p.start);
                encode::write_number(out, p.duration);
                encode::write_bool(out, p.reset);
            }
            Command::OnStatus(info) => write_on_status(info, &[], out)?,
            Command::Unknown {
                name,
                transaction_id,
            } => header(out, name, *transaction_id)?,
        }
        Ok(())
    }
}
