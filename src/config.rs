//! Server configuration: a TOML file whose every field has a working default, so
//! `ringcast serve` runs with no file at all. CLI flags override the file.
//!
//! Durations are written the human way (`"10s"`, `"250ms"`), sizes in bytes.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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

/// `[hls]`: HLS / LL-HLS / LL-DASH packaging and serving. The packaging
/// values are fixed when a stream's packager starts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HlsSection {
    /// Package every stream and serve `.m3u8`, `-ts.m3u8` and `.mpd`.
    pub enabled: bool,
    /// PART-TARGET: no part is longer.
    #[serde(with = "humantime_serde")]
    pub part_target: Duration,
    /// Nominal segment duration (the segment grid).
    #[serde(with = "humantime_serde")]
    pub segment_target: Duration,
    /// Closed segments kept and listed per stream.
    pub window_segments: usize,
    /// Bytes of packaged media kept per stream (half for the window's closed
    /// segments, half for the one being produced).
    pub max_bytes: u64,
    /// Most HLS requests held on one core (blocking reloads, preload hints,
    /// in-progress DASH segments, requests waiting for another core's copy);
    /// past it: 503.
    pub max_waiters_per_core: usize,
    /// Path of the clock the MPD's `UTCTiming` names (served by ringcast).
    pub utc_timing: String,
}

impl Default for HlsSection {
    fn default() -> Self {
        let p = crate::protocol::hls::HlsConfig::default();
        HlsSection {
            enabled: true,
            part_target: Duration::from_millis(u64::from(p.part_target_ms)),
            segment_target: Duration::from_millis(u64::from(p.segment_target_ms)),
            window_segments: p.window_segments,
            max_bytes: p.max_bytes,
            max_waiters_per_core: 10_000,
            utc_timing: "/time".to_owned(),
        }
    }
}

impl HlsSection {
    /// The packager settings these values give (not yet range-checked: see
    /// [`HlsSection::validate`]).
    pub fn packager_config(&self) -> crate::protocol::hls::PackagerConfig {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        crate::protocol::hls::PackagerConfig {
            hls: crate::protocol::hls::HlsConfig {
                part_target_ms: ms(self.part_target),
                segment_target_ms: ms(self.segment_target),
                window_segments: self.window_segments,
                max_bytes: self.max_bytes,
                ..crate::protocol::hls::HlsConfig::default()
            },
            utc_timing_url: self.utc_timing.clone(),
            ..crate::protocol::hls::PackagerConfig::default()
        }
    }

    /// Checks the values with the packager's own rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: String| ConfigError::Invalid { field, reason };
        self.packager_config()
            .timeline_config()
            .validate()
            .map_err(|e| invalid("hls", e.to_string()))?;
        if self.max_bytes < 1 << 20 {
            return Err(invalid("hls.max_bytes", "must be at least 1 MiB".into()));
        }
        if self.max_waiters_per_core == 0 {
            return Err(invalid(
                "hls.max_waiters_per_core",
                "must be at least 1".into(),
            ));
        }
        let path_ok = self.utc_timing.starts_with('/')
            && self.utc_timing.len() <= 256
            && self
                .utc_timing
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#');
        if !path_ok {
            return Err(invalid(
                "hls.utc_timing",
                "must be an absolute path (printable ASCII, no query)".into(),
            ));
        }
        Ok(())
    }
}

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

/// Protocol limits and timeouts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// A connection must finish the RTMP handshake (or send an HTTP head) within this.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// A publisher must send its first media within this after `publish`.
    #[serde(with = "humantime_serde")]
    pub first_media_timeout: Duration,
    /// A publisher silent for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Most requests served on one keep-alive HTTP connection; the last one
    /// is answered with `Connection: close`.
    pub http_max_requests: u32,
    /// Largest RTMP message accepted, bytes.
    pub max_message_size: u32,
    /// Largest RTMP chunk size a peer may set, bytes.
    pub max_chunk_size: u32,
    /// Chunk size ringcast sends with, bytes.
    pub out_chunk_size: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            handshake_timeout: Duration::from_secs(10),
            first_media_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(30),
            http_max_requests: 1000,
            max_message_size: 4 << 20,
            max_chunk_size: 16 << 20,
            out_chunk_size: 4096,
        }
    }
}

/// How viewers' timestamps are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampMode {
    /// Each viewer's output starts at 0 (what players expect).
    #[default]
    ZeroBased,
    /// Keep the (corrected, monotonic) source timeline.
    Source,
}

/// Stream behaviour.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Keep the frames since the last keyframe so new viewers start at once.
    pub gop_cache: bool,
    /// Most frames kept per stream per core (GOP cache and slow-viewer retention).
    pub ring_max_frames: usize,
    /// Most bytes kept per stream per core.
    pub ring_max_bytes: usize,
    /// A second publisher on a taken key replaces the first instead of being refused.
    pub takeover: bool,
    /// After the publisher leaves, keep viewers waiting this long for it to return.
    #[serde(with = "humantime_serde")]
    pub publisher_grace: Duration,
    /// Viewer timestamps start at zero or keep the source's.
    pub timestamps: TimestampMode,
    /// A viewer asking for an unknown stream waits this long for a publisher (0: 404 at once).
    #[serde(with = "humantime_serde")]
    pub wait_for_publisher: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            gop_cache: true,
            ring_max_frames: 4096,
            ring_max_bytes: 32 << 20,
            takeover: false,
            publisher_grace: Duration::ZERO,
            timestamps: TimestampMode::ZeroBased,
            wait_for_publisher: Duration::ZERO,
        }
    }
}

/// Slow-viewer bounds: past soft, skip to the next keyframe; past hard, close.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ViewerConfig {
    /// Lag behind live after which non-keyframe video is skipped.
    #[serde(with = "humantime_serde")]
    pub soft_lag: Duration,
    /// Lag behind live after which the viewer is closed.
    #[serde(with = "humantime_serde")]
    pub hard_lag: Duration,
    /// Bytes queued behind live after which non-keyframe video is skipped.
    pub soft_lag_bytes: usize,
    /// Bytes queued behind live after which the viewer is closed.
    pub hard_lag_bytes: usize,
    /// Kernel send buffer per viewer socket, bytes (0: kernel default).
    pub socket_send_buffer: usize,
    /// `TCP_NOTSENT_LOWAT` per accepted socket, bytes (0: kernel default): the
    /// most unsent bytes the kernel takes before a send waits for room.
    pub socket_notsent_lowat: u32,
}

impl Default for ViewerConfig {
    fn default() -> Self {
        ViewerConfig {
            soft_lag: Duration::from_secs(3),
            hard_lag: Duration::from_secs(10),
            soft_lag_bytes: 4 << 20,
            hard_lag_bytes: 16 << 20,
            socket_send_buffer: 0,
            socket_notsent_lowat: 0,
        }
    }
}

/// io_uring reactor settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Submission queue entries per core.
    pub ring_entries: u32,
    /// Receive buffers in the provided-buffer ring per core (power of two).
    pub recv_buffers: u16,
    /// Size of each receive buffer, bytes.
    pub recv_buffer_size: u32,
    /// Ask for SINGLE_ISSUER + DEFER_TASKRUN (falls back when the kernel refuses).
    pub defer_taskrun: bool,
    /// Most frames one viewer send gathers.
    pub max_frames_per_send: usize,
    /// Most bytes one viewer send gathers.
    pub max_bytes_per_send: usize,
    /// Most connections one loop turn sends to before it collects completions
    /// again: with more ready (a busy core), frames that arrive meanwhile still
    /// reach the viewers not yet sent to, and replies to sessions (handshakes,
    /// requests, joins) go at the next turn instead of after every viewer.
    pub max_sends_per_turn: usize,
    /// Capacity of each cross-core media ring (one per ordered core pair), messages; a power of two.
    pub cross_core_queue: usize,
    /// Capacity of each cross-core control ring, messages; a power of two. Control
    /// messages are never dropped: past the ring they wait in an unbounded queue.
    pub cross_core_control_queue: usize,
    /// Most media messages waiting behind a full media ring, per target core; past
    /// it frames are dropped (counted as `queue_cap`) and the replica resyncs.
    pub cross_core_backlog: usize,
    /// Viewers woken by new frames are sent to once per window, so frames that
    /// arrive within it leave in one gathered send. Adds at most this much latency.
    /// Off by default: measured at 10k viewers of a 600 kb/s stream, 20 ms saved no
    /// CPU (frames already coalesce while sends are in flight); `benches/system/ab.sh`.
    #[serde(with = "humantime_serde")]
    pub send_merge_window: Duration,
    /// A viewer woken by an audio frame alone may wait this long for a video frame
    /// to share its send (video, sequence headers and metadata never wait), so
    /// audio rides with video: fewer, larger sends per viewer. At most one frame
    /// interval of the stream is sensible; 0 sends audio at once.
    #[serde(with = "humantime_serde")]
    pub audio_flush_delay: Duration,
    /// Send with `SENDMSG_ZC` (zero-copy) instead of copying `sendmsg`. Off by
    /// default: on loopback the kernel copies anyway and zero-copy costs more CPU
    /// (see the fan-out benchmark); worth measuring on a real NIC with large frames.
    /// With it on, each core registers a send region (below) with its ring and
    /// sends from it with fixed-buffer `SENDMSG_ZC` when a send's bytes all lie in it.
    pub zero_copy_send: bool,
    /// Zero-copy only: viewers per core whose prefix scratch lives in the registered
    /// region (`max_frames_per_send * 32` bytes each); further viewers send without
    /// fixed buffers. 0 disables the region.
    pub registered_viewers: usize,
    /// Zero-copy only: bytes of the registered region per core holding the copy of
    /// each frame body its viewers send (made once per core, in 1 MiB blocks). The
    /// region (this plus the viewers' scratch) is pinned memory: see README. 0
    /// disables the region.
    pub registered_staging_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            ring_entries: 4096,
            recv_buffers: 1024,
            recv_buffer_size: 16 << 10,
            defer_taskrun: true,
            max_frames_per_send: 64,
            max_bytes_per_send: 128 << 10,
            max_sends_per_turn: 1024,
            cross_core_queue: 8192,
            cross_core_control_queue: 1024,
            cross_core_backlog: 1 << 16,
            send_merge_window: Duration::ZERO,
            audio_flush_delay: Duration::from_millis(30),
            zero_copy_send: false,
            registered_viewers: 8192,
            registered_staging_bytes: 32 << 20,
        }
    }
}

/// HTTP API, status page and metrics: the admin routes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// The admin address: the API, the status page and `/metrics` are served here
    /// (default `127.0.0.1:9090`, loopback, so nothing that lists streams or changes
    /// state is reachable from outside out of the box).
    pub admin_listen: SocketAddr,
    /// Also serve the admin routes on the public HTTP port (`server.http_listen`);
    /// off by default, when the public port answers them with 404.
    pub on_public_port: bool,
    /// When set, the API requires `Authorization: Bearer <token>`. Required when the
    /// admin routes are reachable on a non-loopback address.
    pub token: Option<String>,
}

/// Default admin address: loopback only.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9090);

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            admin_listen: DEFAULT_ADMIN_LISTEN,
            on_public_port: false,
            token: None,
        }
    }
}

impl ApiConfig {
    /// Whether the admin routes are reachable on a non-loopback address: the admin
    /// address itself, or a public HTTP(S) port in `public` (`server.http_listen`,
    /// `server.https_listen`) when `on_public_port`.
    pub fn exposed(&self, public: &[SocketAddr]) -> bool {
        !self.admin_listen.ip().is_loopback()
            || (self.on_public_port && public.iter().any(|a| !a.ip().is_loopback()))
    }
}

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

    /// The public ports that answer HTTP (and the admin routes with
    /// `[api] on_public_port`): `server.http_listen` and `server.https_listen`.
    pub fn public_http(&self) -> Vec<SocketAddr> {
        std::iter::once(self.server.http_listen)
            .chain(self.server.https_listen)
            .collect()
    }

    /// Refuses admin routes reachable off loopback without `[api] token`. Separate
    /// from [`Config::validate`] because command-line flags may move the listeners
    /// after the file is read: `serve` and `check-config` call it on the final config.
    pub fn validate_exposure(&self) -> Result<(), ConfigError> {
        if self.api.exposed(&self.public_http()) && self.api.token.is_none() {
            return Err(ConfigError::Invalid {
                field: "api.token",
                reason: "is required when the admin routes (API, status page, /metrics) are \
                         reachable on a non-loopback address (api.admin_listen, or \
                         server.http_listen or server.https_listen with api.on_public_port): \
                         they list streams \
                         and kick publishers"
                    .into(),
            });
        }
        Ok(())
    }

    /// A TLS listener needs `[tls]` (its `cert` and `key`); the error names the
    /// listener. The files themselves are read by `tls::ServerTls::load` (at
    /// startup, and by `check-config`).
    pub fn validate_tls(&self) -> Result<(), ConfigError> {
        let listeners = [
            ("server.https_listen", self.server.https_listen),
            ("server.rtmps_listen", self.server.rtmps_listen),
        ];
        for (field, addr) in listeners {
            if let (Some(addr), None) = (addr, &self.tls) {
                return Err(ConfigError::Invalid {
                    field,
                    reason: format!(
                        "{addr} is a TLS listener: it needs [tls] cert and key \
                         (or --tls-cert and --tls-key)"
                    ),
                });
            }
        }
        let mut addrs = vec![
            self.server.rtmp_listen,
            self.server.http_listen,
            self.api.admin_listen,
        ];
        for (field, addr) in listeners {
            if let Some(addr) = addr {
                if addr.port() != 0 && addrs.contains(&addr) {
                    return Err(ConfigError::Invalid {
                        field,
                        reason: format!("{addr} is already another listener's address"),
                    });
                }
                addrs.push(addr);
            }
        }
        Ok(())
    }

    /// Checks ranges that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
        let l = &self.limits;
        check(
            l.http_max_requests >= 1,
            "limits.http_max_requests",
            "must be at least 1",
        )?;
        check(
            l.max_chunk_size >= 128 && l.max_chunk_size <= 0x7fff_ffff,
            "limits.max_chunk_size",
            "must be 128..=2147483647",
        )?;
        check(
            (128..=65536).contains(&l.out_chunk_size),
            "limits.out_chunk_size",
            "must be 128..=65536",
        )?;
        check(
            l.max_message_size >= 1024 && l.max_message_size <= 64 << 20,
            "limits.max_message_size",
            "must be 1 KiB..=64 MiB",
        )?;
        check(
            !l.handshake_timeout.is_zero(),
            "limits.handshake_timeout",
            "must be above zero",
        )?;
        check(
            !l.idle_timeout.is_zero(),
            "limits.idle_timeout",
            "must be above zero",
        )?;
        let v = &self.viewer;
        check(
            v.soft_lag <= v.hard_lag,
            "viewer.soft_lag",
            "must not exceed viewer.hard_lag",
        )?;
        check(
            v.soft_lag_bytes <= v.hard_lag_bytes,
            "viewer.soft_lag_bytes",
            "must not exceed viewer.hard_lag_bytes",
        )?;
        let s = &self.stream;
        check(
            s.ring_max_frames >= 16,
            "stream.ring_max_frames",
            "must be at least 16",
        )?;
        check(
            s.ring_max_bytes >= 1 << 20,
            "stream.ring_max_bytes",
            "must be at least 1 MiB",
        )?;
        let r = &self.runtime;
        check(
            r.recv_buffers.is_power_of_two(),
            "runtime.recv_buffers",
            "must be a power of two",
        )?;
        check(
            r.recv_buffer_size >= 1024,
            "runtime.recv_buffer_size",
            "must be at least 1024",
        )?;
        check(
            (1..=512).contains(&r.max_frames_per_send),
            "runtime.max_frames_per_send",
            "must be 1..=512",
        )?;
        check(
            r.max_sends_per_turn >= 1,
            "runtime.max_sends_per_turn",
            "must be at least 1",
        )?;
        check(
            r.cross_core_queue >= 64,
            "runtime.cross_core_queue",
            "must be at least 64",
        )?;
        check(
            r.cross_core_queue.is_power_of_two(),
            "runtime.cross_core_queue",
            "must be a power of two",
        )?;
        check(
            r.cross_core_control_queue.is_power_of_two(),
            "runtime.cross_core_control_queue",
            "must be a power of two",
        )?;
        check(
            r.audio_flush_delay <= Duration::from_millis(100),
            "runtime.audio_flush_delay",
            "must be at most 100ms",
        )?;
        check(
            r.send_merge_window <= Duration::from_millis(500),
            "runtime.send_merge_window",
            "must be at most 500ms",
        )?;
        check(
            self.server.max_connections >= 1,
            "server.max_connections",
            "must be at least 1",
        )?;
        check(
            self.server.max_streams >= 1,
            "server.max_streams",
            "must be at least 1",
        )?;
        check(
            self.server.max_viewers_per_core >= 1,
            "server.max_viewers_per_core",
            "must be at least 1",
        )?;
        self.validate_tls()?;
        for push in &self.relay.push {
            check(
                push.url.starts_with("rtmp://") || push.url.starts_with("rtmps://"),
                "relay.push.url",
                "must start with rtmp:// or rtmps://",
            )?;
        }
        for origin in &self.edge.origins {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_routes_default_to_loopback_and_need_a_token_off_it() {
        let config = Config::default();
        assert_eq!(config.api.admin_listen, "127.0.0.1:9090".parse().unwrap());
        assert!(!config.api.on_public_port);
        assert!(!config.edge.allow_publish);
        assert!(config.validate_exposure().is_ok());
        let open = Config::from_toml("[api]\nadmin_listen = \"0.0.0.0:9090\"\n").unwrap();
        let err = open.validate_exposure().unwrap_err().to_string();
        assert!(err.contains("api.token"), "{err}");
        // The default public port is 0.0.0.0:8080: putting the routes there needs one too.
        let public = Config::from_toml("[api]\non_public_port = true\n").unwrap();
        assert!(public.validate_exposure().is_err());
        let on_loopback = Config::from_toml(
            "[server]\nhttp_listen = \"127.0.0.1:8080\"\n[api]\non_public_port = true\n",
        )
        .unwrap();
        assert!(on_loopback.validate_exposure().is_ok());
        // A public HTTPS port exposes them as much as the HTTP port.
        let over_https = Config::from_toml(
            "[server]\nhttp_listen = \"127.0.0.1:8080\"\nhttps_listen = \"0.0.0.0:8443\"\n\
             [tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n[api]\non_public_port = true\n",
        )
        .unwrap();
        assert!(over_https.validate_exposure().is_err());
        let with_token =
            Config::from_toml("[api]\nadmin_listen = \"0.0.0.0:9090\"\ntoken = \"t\"\n").unwrap();
        assert!(with_token.validate_exposure().is_ok());
    }

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

    #[test]
    fn tls_listeners_are_off_by_default_and_need_a_certificate() {
        let c = Config::default();
        assert_eq!((c.server.https_listen, c.server.rtmps_listen), (None, None));
        assert!(c.tls.is_none());
        for key in ["https_listen", "rtmps_listen"] {
            let err = Config::from_toml(&format!("[server]\n{key} = \"127.0.0.1:8443\"\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("server.{key}")), "{err}");
            assert!(err.contains("[tls]"), "{err}");
        }
        let c = Config::from_toml(
            "[server]\nhttps_listen = \"127.0.0.1:8443\"\nrtmps_listen = \"127.0.0.1:1936\"\n\
             [tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n\
             [[tls.sni]]\nnames = [\"a.example\"]\ncert = \"/a.pem\"\nkey = \"/ak.pem\"\n",
        )
        .unwrap();
        let tls = c.tls.as_ref().unwrap();
        assert_eq!(tls.cert, std::path::Path::new("/c.pem"));
        assert_eq!(tls.sni[0].names, ["a.example"]);
        assert_eq!(
            c.server.https_listen,
            Some("127.0.0.1:8443".parse().unwrap())
        );
        // check-config prints the effective config: it must round-trip.
        let text = toml::to_string_pretty(&c).unwrap();
        assert_eq!(Config::from_toml(&text).unwrap(), c);
        let clash =
            "[server]\nhttp_listen = \"127.0.0.1:8080\"\nhttps_listen = \"127.0.0.1:8080\"\n\
                     [tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n";
        let err = Config::from_toml(clash).unwrap_err().to_string();
        assert!(err.contains("server.https_listen"), "{err}");
    }

    #[test]
    fn hls_section_defaults_map_to_the_packager_and_bad_values_are_refused() {
        let c = Config::from_toml("").unwrap();
        assert!(c.hls.enabled);
        assert_eq!(c.limits.http_max_requests, 1000);
        let p = c.hls.packager_config();
        assert_eq!(p.hls, crate::protocol::hls::HlsConfig::default());
        assert_eq!(p.utc_timing_url, "/time");
        let c = Config::from_toml(
            "[hls]\npart_target = \"200ms\"\nsegment_target = \"1s\"\nwindow_segments = 8\n",
        )
        .unwrap();
        let p = c.hls.packager_config();
        assert_eq!(
            (
                p.hls.part_target_ms,
                p.hls.segment_target_ms,
                p.hls.window_segments
            ),
            (200, 1000, 8)
        );
        for (toml, field) in [
            ("[hls]\npart_target = \"10ms\"\n", "hls"),
            ("[hls]\nsegment_target = \"500ms\"\n", "hls"),
            ("[hls]\nwindow_segments = 1\n", "hls"),
            (
                "[hls]\nmax_waiters_per_core = 0\n",
                "hls.max_waiters_per_core",
            ),
            ("[hls]\nutc_timing = \"time\"\n", "hls.utc_timing"),
            (
                "[limits]\nhttp_max_requests = 0\n",
                "limits.http_max_requests",
            ),
        ] {
            let err = Config::from_toml(toml).unwrap_err().to_string();
            assert!(err.contains(field), "{toml}: {err}");
        }
        assert!(matches!(
            Config::from_toml("[hls]\nnope = 1\n"),
            Err(ConfigError::Parse(_))
        ));
    }
}
