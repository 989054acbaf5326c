//! Server configuration: a TOML file whose every field has a working default, so
//! `ringcast serve` runs with no file at all. CLI flags override the file.
//!
//! Durations are written the human way (`"10s"`, `"250ms"`), sizes in bytes.

mod api;
mod edge;
mod hls;
mod limits;
mod relay;
mod runtime;
mod server;
mod stream;
mod tls;
mod viewer;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use api::{ApiConfig, DEFAULT_ADMIN_LISTEN};
pub use edge::EdgeConfig;
pub use hls::HlsSection;
pub use limits::LimitsConfig;
pub use relay::{RelayConfig, RelayPush};
pub use runtime::RuntimeConfig;
pub use server::{CoreSelection, ServerConfig};
pub use stream::{StreamConfig, TimestampMode};
pub use viewer::ViewerConfig;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML did not parse or had unknown keys.
    #[error("invalid config: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is out of its allowed range.
    #[error("invalid config value `{field}`: {reason}")]
    Invalid {
        /// The dotted field name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listeners, cores, connection limits.
    pub server: ServerConfig,
    /// Protocol limits and timeouts.
    pub limits: LimitsConfig,
    /// Stream behaviour: GOP cache, takeover, timestamps, publisher grace.
    pub stream: StreamConfig,
    /// Slow-viewer bounds.
    pub viewer: ViewerConfig,
    /// io_uring reactor settings.
    pub runtime: RuntimeConfig,
    /// HTTP API, status page and metrics.
    pub api: ApiConfig,
    /// Edge mode: pulling streams from origins.
    pub edge: EdgeConfig,
    /// Push relay: forwarding streams published here to other servers.
    pub relay: RelayConfig,
    /// Signed-URL access control for publish and play.
    pub auth: crate::auth::AuthConfig,
    /// `[tls]`: certificates for the HTTPS and RTMPS listeners (loaded once at
    /// startup by `tls::ServerTls::load`, reloaded on SIGHUP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::TlsConfig>,
    /// HTTP hooks (SRS `http_hooks` compatible): `on_publish`, `on_play`
    /// gate sessions under a `hook` policy; `on_unpublish`, `on_stop` notify.
    pub hooks: crate::auth::hooks::HooksConfig,
    /// HLS / LL-HLS / LL-DASH packaging and serving.
    pub hls: HlsSection,
}

/// `Ok` when `ok`, else the `Invalid` error naming `field`: the shape of every
/// range check the sections make.
fn check(ok: bool, field: &'static str, reason: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            field,
            reason: reason.into(),
        })
    }
}

impl Config {
    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text)
    }

    /// Checks ranges that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.auth.gate().map_err(|e| ConfigError::Invalid {
            field: "auth",
            reason: e.to_string(),
        })?;
        self.hooks
            .validate(self.auth.publish, self.auth.play)
            .map_err(|e| ConfigError::Invalid {
                field: "hooks",
                reason: e.to_string(),
            })?;
        self.hls.validate()?;
        self.limits.validate()?;
        self.viewer.validate()?;
        self.stream.validate()?;
        self.runtime.validate()?;
        self.server.validate()?;
        self.validate_tls()?;
        self.relay.validate()?;
        self.edge.validate()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn empty_file_gives_working_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.server.rtmp_listen.port(), 1935);
        assert_eq!(c.server.http_listen.port(), 8080);
        assert_eq!(c.limits.handshake_timeout, Duration::from_secs(10));
    }

    #[test]
    fn human_durations_and_core_forms() {
        let c = Config::from_toml(
            "[server]\ncores = 2\n[limits]\nidle_timeout = \"45s\"\n[viewer]\nsoft_lag = \"500ms\"\n",
        )
        .unwrap();
        assert_eq!(c.server.cores, CoreSelection::Count(2));
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(45));
        assert_eq!(c.viewer.soft_lag, Duration::from_millis(500));
        let c = Config::from_toml("[server]\ncores = [0, 1]\n").unwrap();
        assert_eq!(c.server.cores.resolve(&[0, 1]).unwrap(), vec![0, 1]);
        assert!(CoreSelection::Count(3).resolve(&[0, 1]).is_err());
        assert!(CoreSelection::List(vec![5]).resolve(&[0, 1]).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_ranges_are_errors() {
        assert!(matches!(
            Config::from_toml("[server]\nnope = 1\n"),
            Err(ConfigError::Parse(_))
        ));
        let err = Config::from_toml("[limits]\nout_chunk_size = 1\n").unwrap_err();
        assert!(err.to_string().contains("limits.out_chunk_size"), "{err}");
        let err = Config::from_toml("[viewer]\nsoft_lag = \"20s\"\n").unwrap_err();
        assert!(err.to_string().contains("viewer.soft_lag"), "{err}");
        let err = Config::from_toml("[edge]\norigins = [\"ftp://x\"]\n").unwrap_err();
        assert!(err.to_string().contains("edge.origins"), "{err}");
    }

    #[test]
    fn the_audio_flush_delay_is_bounded_and_the_socket_options_parse() {
        assert_eq!(
            Config::default().runtime.audio_flush_delay,
            Duration::from_millis(30)
        );
        let err = Config::from_toml("[runtime]\naudio_flush_delay = \"101ms\"\n").unwrap_err();
        assert!(
            err.to_string().contains("runtime.audio_flush_delay"),
            "{err}"
        );
        let c = Config::from_toml(
            "[runtime]\naudio_flush_delay = \"0ms\"\n[viewer]\nsocket_notsent_lowat = 16384\n",
        )
        .unwrap();
        assert!(c.runtime.audio_flush_delay.is_zero());
        assert_eq!(c.viewer.socket_notsent_lowat, 16384);
    }
}
