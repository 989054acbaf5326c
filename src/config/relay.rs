//! `[relay]`: push targets every stream published here is forwarded to, and
//! the target URL check.

use serde::{Deserialize, Serialize};

use super::{check, ConfigError};

/// Push relay: every stream published here is also published to each target.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// Targets (`[[relay.push]]`), e.g. a redundant origin.
    pub push: Vec<RelayPush>,
}

/// One push target.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RelayPush {
    /// `rtmp://host[:port][/app]` (or `rtmps://`, verified like TLS origins);
    /// without an app the stream's own app is used.
    pub url: String,
}

impl RelayConfig {
    /// Checks each push target's scheme.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for push in &self.push {
            check(
                push.url.starts_with("rtmp://") || push.url.starts_with("rtmps://"),
                "relay.push.url",
                "must start with rtmp:// or rtmps://",
            )?;
        }
        Ok(())
    }
}
