//! `[server]`: listeners, cores and connection limits, with their defaults
//! and range checks.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{check, ConfigError};

/// Which cores run reactors: `"all"`, a count, or an explicit list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CoreSelection {
    /// `"all"`: every core the process may run on.
    Named(String),
    /// The first N cores.
    Count(usize),
    /// These core ids.
    List(Vec<usize>),
}

impl Default for CoreSelection {
    fn default() -> Self {
        CoreSelection::Named("all".into())
    }
}

impl CoreSelection {
    /// Resolves to concrete core ids, given the ids available to the process.
    pub fn resolve(&self, available: &[usize]) -> Result<Vec<usize>, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            field: "server.cores",
            reason,
        };
        match self {
            CoreSelection::Named(s) if s == "all" => Ok(available.to_vec()),
            CoreSelection::Named(s) => Err(invalid(format!(
                "expected \"all\", a number or a list, got {s:?}"
            ))),
            CoreSelection::Count(0) => Err(invalid("must be at least 1".into())),
            CoreSelection::Count(n) if *n > available.len() => Err(invalid(format!(
                "{n} cores asked, {} available",
                available.len()
            ))),
            CoreSelection::Count(n) => Ok(available[..*n].to_vec()),
            CoreSelection::List(ids) if ids.is_empty() => Err(invalid("empty list".into())),
            CoreSelection::List(ids) => match ids.iter().find(|id| !available.contains(id)) {
                Some(id) => Err(invalid(format!("core {id} is not available"))),
                None => Ok(ids.clone()),
            },
        }
    }
}

/// Listeners, cores, connection limits.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// RTMP listen address (publish and play).
    pub rtmp_listen: SocketAddr,
    /// HTTP listen address (HTTP-FLV, API, status page, metrics).
    pub http_listen: SocketAddr,
    /// HTTPS listen address: the same routes as `http_listen`, over TLS (`[tls]`
    /// needed). Off by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub https_listen: Option<SocketAddr>,
    /// RTMPS listen address: RTMP publish and play over TLS (`[tls]` needed).
    /// Off by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtmps_listen: Option<SocketAddr>,
    /// Cores running a reactor each.
    pub cores: CoreSelection,
    /// Most connections open at once, all cores together.
    pub max_connections: usize,
    /// Most live streams at once, all cores together; a publish past it is refused.
    pub max_streams: usize,
    /// Most viewers attached on one core; a play past it is refused.
    pub max_viewers_per_core: usize,
    /// Listen backlog.
    pub backlog: u32,
    /// How long a graceful shutdown may take before connections are cut.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            rtmp_listen: "0.0.0.0:1935".parse().expect("valid literal"),
            http_listen: "0.0.0.0:8080".parse().expect("valid literal"),
            https_listen: None,
            rtmps_listen: None,
            cores: CoreSelection::default(),
            max_connections: 100_000,
            max_streams: 100_000,
            max_viewers_per_core: 100_000,
            backlog: 4096,
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

impl ServerConfig {
    /// Checks the connection and stream limits.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check(
            self.max_connections >= 1,
            "server.max_connections",
            "must be at least 1",
        )?;
        check(
            self.max_streams >= 1,
            "server.max_streams",
            "must be at least 1",
        )?;
        check(
            self.max_viewers_per_core >= 1,
            "server.max_viewers_per_core",
            "must be at least 1",
        )?;
        Ok(())
    }
}
