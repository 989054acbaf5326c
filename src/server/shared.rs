//! State shared by every core: configuration, the stream directory, metrics and
//! the API's view of each core. None of it is touched per frame.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use super::api::{self, ApiConfig, ServerSnapshot};
use super::report::{self, CorePublished};
use crate::config::Config;
use crate::metrics::MetricsRegistry;
use crate::stream::Directory;

/// What all cores share.
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// Key → owner core of every live stream.
    pub directory: Directory,
    /// Every core's metrics.
    pub metrics: MetricsRegistry,
    /// How the API authenticates and renders.
    pub api: ApiConfig,
    /// `[auth]`: who may publish and play (checked when a session starts).
    pub gate: crate::auth::Gate,
    /// `[hooks]` with resolved addresses (`None`: no hook URL set).
    pub hooks: Option<super::hooks::HookTargets>,
    /// The server's start: zero of every core's millisecond clock.
    pub epoch: Instant,
    /// `[tls]`, loaded at startup: the HTTPS and RTMPS listeners' configurations
    /// (one reloadable certificate set). `None` without TLS listeners.
    pub tls: Option<crate::tls::ServerTls>,
    /// Bounds of every accepted TLS connection.
    pub tls_limits: crate::tls::TlsLimits,
    /// Edge pulls from `https://` / `rtmps://` origins: the trusted roots
    /// (`[tls] ca`, else the system store). `None` without such an origin.
    pub client_tls: Option<crate::tls::ClientTls>,
    /// Each core's latest report for the API.
    reports: Vec<Mutex<CorePublished>>,
    open_connections: AtomicUsize,
}

impl Shared {
    /// Shared state for `cores` cores.
    pub fn new(config: Config, cores: usize, metrics: MetricsRegistry) -> Shared {
        let api = ApiConfig {
            // Off loopback every admin route needs the token (`validate` made sure one is set).
            public_metrics: !config.api.exposed(&config.public_http()),
            public_status_page: false,
            play_urls: api::PlayUrlConfig::for_listeners(
                config.server.rtmp_listen,
                config.server.http_listen,
            )
            .with_tls(config.server.https_listen, config.server.rtmps_listen),
            ..ApiConfig::with_token(config.api.token.as_deref())
        };
        Shared {
            // `serve` refuses an invalid [auth] before this; fail closed anyway.
            gate: config
                .auth
                .gate()
                .unwrap_or_else(|_| crate::auth::Gate::closed()),
            // `serve` resolved them once already and refuses a failure; a hook
            // policy without targets fails closed.
            hooks: super::hooks::HookTargets::resolve(&config.hooks)
                .ok()
                .flatten(),
            directory: Directory::new(config.server.max_streams.max(1)),
            api,
            metrics,
            epoch: Instant::now(),
            tls: None,
            client_tls: None,
            tls_limits: super::tls_conn::limits(&config),
            reports: (0..cores)
                .map(|_| Mutex::new(CorePublished::default()))
                .collect(),
            open_connections: AtomicUsize::new(0),
            config,
        }
    }

    /// With the TLS listeners' certificates (loaded by `serve`, off the cores).
    pub fn with_tls(
        mut self,
        tls: Option<crate::tls::ServerTls>,
        client_tls: Option<crate::tls::ClientTls>,
    ) -> Shared {
        self.tls = tls;
        self.client_tls = client_tls;
        self
    }

    /// Number of cores.
    pub fn cores(&self) -> usize {
        self.reports.len()
    }

    /// Counts a new connection; false (and nothing counted) past `max_connections`.
    pub fn try_open_connection(&self) -> bool {
        let max = self.config.server.max_connections;
        let before = self.open_connections.fetch_add(1, Ordering::Relaxed);
        if before >= max {
            self.open_connections.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Counts a closed connection.
    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// Replaces core `core`'s report.
    pub fn publish_report(&self, core: usize, published: CorePublished) {
        if let Some(slot) = self.reports.get(core) {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = published;
        }
    }

    /// Everything the API shows, assembled from the directory and every core's report.
    pub fn snapshot(&self) -> ServerSnapshot {
        let reports: Vec<CorePublished> = self
            .reports
            .iter()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect();
        let mut limits = std::collections::BTreeMap::new();
        limits.insert(
            "max_connections".to_owned(),
            self.config.server.max_connections as u64,
        );
        limits.insert(
            "max_streams".to_owned(),
            self.config.server.max_streams as u64,
        );
        limits.insert(
            "max_viewers_per_core".to_owned(),
            self.config.server.max_viewers_per_core as u64,
        );
        limits.insert(
            "max_message_size".to_owned(),
            u64::from(self.config.limits.max_message_size),
        );
        limits.insert(
            "hard_lag_ms".to_owned(),
            self.config.viewer.hard_lag.as_millis() as u64,
        );
        ServerSnapshot {
            server: api::ServerInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                cores: self.cores(),
                uptime_secs: self.epoch.elapsed().as_secs(),
                connections: api::ConnectionCounts::from_metrics(&self.metrics),
                limits,
            },
            streams: report::stream_snapshots(&self.directory.list(), &reports, self.epoch),
        }
    }
}
