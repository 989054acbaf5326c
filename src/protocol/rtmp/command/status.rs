//! NetConnection / NetStream status info objects (`onStatus`, `_result`, `_error`).

use bytes::BytesMut;

use crate::protocol::rtmp::amf0::{encode, Amf0Error, Amf0Value};

/// Status codes ringcast sends or reacts to.
pub mod code {
    /// `connect` accepted.
    pub const CONNECT_SUCCESS: &str = "NetConnection.Connect.Success";
    /// `connect` refused.
    pub const CONNECT_REJECTED: &str = "NetConnection.Connect.Rejected";
    /// Publishing started.
    pub const PUBLISH_START: &str = "NetStream.Publish.Start";
    /// Publishing refused: name invalid or already in use.
    pub const PUBLISH_BAD_NAME: &str = "NetStream.Publish.BadName";
    /// Publishing refused for another reason.
    pub const PUBLISH_DENIED: &str = "NetStream.Publish.Denied";
    /// Publishing refused: no valid credentials (OBS stops retrying on it).
    pub const PUBLISH_UNAUTHORIZED: &str = "NetStream.Publish.Unauthorized";
    /// Publishing stopped.
    pub const UNPUBLISH_SUCCESS: &str = "NetStream.Unpublish.Success";
    /// Playback (re)started from the beginning of a playlist.
    pub const PLAY_RESET: &str = "NetStream.Play.Reset";
    /// Playback started.
    pub const PLAY_START: &str = "NetStream.Play.Start";
    /// Playback stopped.
    pub const PLAY_STOP: &str = "NetStream.Play.Stop";
    /// The requested stream does not exist.
    pub const PLAY_STREAM_NOT_FOUND: &str = "NetStream.Play.StreamNotFound";
    /// Playback failed for another reason.
    pub const PLAY_FAILED: &str = "NetStream.Play.Failed";
    /// The publisher of the stream being played stopped.
    pub const PLAY_UNPUBLISH_NOTIFY: &str = "NetStream.Play.UnpublishNotify";
    /// The publisher of the stream being played started (again).
    pub const PLAY_PUBLISH_NOTIFY: &str = "NetStream.Play.PublishNotify";
}

/// The `level` field of a status object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusLevel {
    /// Informational ("status").
    Status,
    /// A warning.
    Warning,
    /// A failure ("error").
    Error,
}

impl StatusLevel {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusLevel::Status => "status",
            StatusLevel::Warning => "warning",
            StatusLevel::Error => "error",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "error" => StatusLevel::Error,
            "warning" => StatusLevel::Warning,
            _ => StatusLevel::Status,
        }
    }
}

/// A status info object: `{level, code, description}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusInfo {
    /// Severity.
    pub level: StatusLevel,
    /// Machine-readable code, e.g. `NetStream.Publish.Start`.
    pub code: String,
    /// Human-readable text.
    pub description: String,
}

impl StatusInfo {
    /// Builds a status object.
    pub fn new(level: StatusLevel, code: &str, description: impl Into<String>) -> Self {
        StatusInfo {
            level,
            code: code.to_owned(),
            description: description.into(),
        }
    }

    /// Reads `level`, `code` and `description` from an object; `None` without a `code`.
    pub fn from_value(value: &Amf0Value) -> Option<Self> {
        let code = value.get("code")?.as_str()?.to_owned();
        let level = value
            .get("level")
            .and_then(Amf0Value::as_str)
            .map_or(StatusLevel::Status, StatusLevel::parse);
        let description = value
            .get("description")
            .and_then(Amf0Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Some(StatusInfo {
            level,
            code,
            description,
        })
    }

    /// The status as an AMF0 object, with `extra` properties appended.
    pub fn to_value(&self, extra: &[(&str, Amf0Value)]) -> Amf0Value {
        let fixed = [
            ("level", Amf0Value::string(self.level.as_str())),
            ("code", Amf0Value::String(self.code.clone())),
            ("description", Amf0Value::String(self.description.clone())),
        ];
        Amf0Value::object(fixed.into_iter().chain(extra.iter().cloned()))
    }

    /// Writes the status as an AMF0 object, with `extra` properties appended.
    pub fn encode(&self, extra: &[(&str, Amf0Value)], out: &mut BytesMut) -> Result<(), Amf0Error> {
        let level = Amf0Value::string(self.level.as_str());
        let code = Amf0Value::String(self.code.clone());
        let description = Amf0Value::String(self.description.clone());
        let fixed = [
            ("level", &level),
            ("code", &code),
            ("description", &description),
        ];
        encode::write_object(
            out,
            fixed.into_iter().chain(extra.iter().map(|(k, v)| (*k, v))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rtmp::amf0::{Amf0Decoder, Amf0Limits};

    #[test]
    fn encodes_and_reads_back_with_extra_properties() {
        let info = StatusInfo::new(
            StatusLevel::Error,
            code::PLAY_STREAM_NOT_FOUND,
            "no such stream",
        );
        let mut out = BytesMut::new();
        info.encode(&[("details", Amf0Value::string("x"))], &mut out)
            .unwrap();
        let v = Amf0Decoder::new(&out, Amf0Limits::default())
            .decode()
            .unwrap();
        assert_eq!(v.get("details").and_then(Amf0Value::as_str), Some("x"));
        assert_eq!(StatusInfo::from_value(&v), Some(info.clone()));
        assert_eq!(info.to_value(&[("details", Amf0Value::string("x"))]), v);
    }

    #[test]
    fn missing_code_is_not_a_status() {
        assert_eq!(
            StatusInfo::from_value(&Amf0Value::object([("level", Amf0Value::Null)])),
            None
        );
        assert_eq!(StatusInfo::from_value(&Amf0Value::Null), None);
        let bare = Amf0Value::object([("code", Amf0Value::string("X"))]);
        let info = StatusInfo::from_value(&bare).unwrap();
        assert_eq!(
            (info.level, info.description.as_str()),
            (StatusLevel::Status, "")
        );
    }
}
