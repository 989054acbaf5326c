//! `[edge]`: pulling streams that are not live here from origins, with the
//! defaults and the origin URL check.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{check, ConfigError};

/// Edge mode: pull streams that are not live here from origins.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// Origins tried in order: `rtmp://host:port/app` or `http://host:port`, or
    /// over TLS `rtmps://…` / `https://…` (verified against `[tls] ca`, else the
    /// system store).
    pub origins: Vec<String>,
    /// Keep an upstream this long after its last viewer leaves.
    #[serde(with = "humantime_serde")]
    pub idle_close: Duration,
    /// Viewers wait this long for an upstream to start.
    #[serde(with = "humantime_serde")]
    pub start_timeout: Duration,
    /// Allow local publishing while origins are set (default false: an edge only
    /// relays, and refuses publishers with `NetStream.Publish.Unauthorized`).
    pub allow_publish: bool,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            origins: Vec::new(),
            idle_close: Duration::from_secs(30),
            start_timeout: Duration::from_secs(10),
            allow_publish: false,
        }
    }
}

impl EdgeConfig {
    /// Checks each origin's scheme.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for origin in &self.origins {
            check(
                ["rtmp://", "http://", "rtmps://", "https://"]
                    .iter()
                    .any(|s| origin.starts_with(s)),
                "edge.origins",
                "each origin must start with rtmp://, http://, rtmps:// or https://",
            )?;
        }
        Ok(())
    }
}
