//! Listeners and sessions: glue between the reactor, the protocol state machines
//! and the stream layer.
//!
//! [`serve`] binds one `SO_REUSEPORT` listener per port per core, builds the
//! cross-core mesh, and runs one [`worker::Worker`] per pinned core thread. Each
//! worker owns its connections, its stream shard and its reactor; cores talk only
//! through the mesh ([`MeshMsg`]) and the stream directory.

pub mod accepts;
mod access;
pub mod api;
pub mod completions;
pub mod conn;
pub mod connections;
pub mod core_mesh;
pub mod cpu_clock;
pub mod edge;
pub mod egress_flv;
pub mod egress_rtmp;
pub mod failures;
pub mod hls;
pub mod hook_conn;
pub mod hooks;
pub mod http_conn;
pub mod pending;
pub mod report;
pub mod rtmp_conn;
pub mod send_queue;
pub mod shared;
pub mod signals;
pub mod timers;
pub mod tls_conn;
pub mod tls_reload;
pub mod token;
pub mod viewer_send;
pub mod worker;
pub mod ws_conn;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::metrics::{check_rlimits, Listener, MetricsRegistry};
use crate::runtime::cores::{CoreThreads, Cores};
use crate::runtime::mesh::{Lane, Mesh, MeshConfig};
use crate::runtime::socket::reuseport_listener;
use crate::stream::CoreMsg;
use accepts::CoreListener;
use shared::Shared;
use worker::Worker;

/// Exit status of the process when a core thread panicked (Rust's own panic status).
pub const CORE_PANIC_EXIT_CODE: i32 = 101;

/// The text a panic was raised with, when it has one.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)")
}

/// What cores send each other.
#[derive(Debug)]
pub enum MeshMsg {
    /// Stream replication and control (subscribe, snapshot, frames, end, kick).
    Stream(CoreMsg),
    /// Edge mode: viewers asking a key's pull core, and its answers.
    Edge(crate::edge::EdgeMsg),
    /// HLS views of owned streams for the other cores (control lane).
    Hls(hls::HlsMsg),
}

impl MeshMsg {
    /// The mesh lane it takes: frames may be dropped when a core falls hopelessly
    /// behind (the replica sees the sequence gap and resyncs); everything else is
    /// control and never dropped.
    pub fn lane(&self) -> Lane {
        match self {
            MeshMsg::Stream(msg) if msg.is_media() => Lane::Media,
            _ => Lane::Control,
        }
    }
}

/// Why the server could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration does not fit this machine.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Core threads could not start, or one panicked.
    #[error(transparent)]
    Cores(#[from] crate::runtime::cores::CoresError),
    /// Cross-core mesh setup failed.
    #[error(transparent)]
    Mesh(#[from] crate::runtime::mesh::MeshError),
    /// Metrics setup failed.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// A core's reactor failed.
    #[error("core {core} failed")]
    Core {
        /// The core index.
        core: usize,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
    /// A `[tls]` certificate or key could not be used.
    #[error("[tls]: {0}")]
    Tls(#[from] crate::tls::LoadError),
    /// The certificate reload thread could not start.
    #[error("cannot start the TLS reload thread")]
    Reload(#[source] std::io::Error),
}

/// Whether something already accepts connections on `addr`. The admin port has a
/// fixed default, and a second ringcast on the host would otherwise share it through
/// SO_REUSEPORT and answer half of the API's requests; a probe bind cannot tell a
/// live listener from the previous run's TIME_WAIT sockets, a connect can.
fn admin_in_use(addr: SocketAddr) -> bool {
    let mut target = addr;
    if target.ip().is_unspecified() {
        target.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_millis(500)).is_ok()
}

/// Runs the server until SIGTERM/SIGINT, then shuts down gracefully.
pub fn serve(config: Config) -> Result<(), ServeError> {
    signals::install().map_err(ServeError::Signals)?;
    let available: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let cpus = config.server.cores.resolve(&available)?;
    let n = cpus.len();
    let wanted_fds = (config.server.max_connections as u64).saturating_add(64 * n as u64 + 64);
    if let Err(e) = crate::metrics::raise_nofile_limit(wanted_fds) {
        tracing::debug!(error = %e, "could not raise RLIMIT_NOFILE");
    }
    for warning in check_rlimits(wanted_fds, 0) {
        tracing::warn!("{warning}");
    }
    config
        .auth
        .gate()
        .map_err(|e| crate::config::ConfigError::Invalid {
            field: "auth",
            reason: e.to_string(),
        })?;
    config.validate_exposure()?;
    config.validate_tls()?;
    // Certificates are read once, here, off the cores; SIGHUP re-reads them on
    // the reload thread (`tls_reload`), never on a core.
    let tls = config
        .tls
        .as_ref()
        .map(crate::tls::ServerTls::load)
        .transpose()?;
    // Edge pulls and relays over TLS verify their peers against `[tls] ca`, else
    // the system store.
    let tls_origin = config
        .edge
        .origins
        .iter()
        .chain(config.relay.push.iter().map(|p| &p.url))
        .any(|o| o.starts_with("https://") || o.starts_with("rtmps://"));
    let client_tls = if tls_origin {
        let ca = config.tls.as_ref().and_then(|t| t.ca.as_deref());
        Some(crate::tls::ClientTls::load(ca)?)
    } else {
        None
    };
    hooks::HookTargets::resolve(&config.hooks)?;
    let metrics = MetricsRegistry::new(n)?;
    let mesh = MeshConfig {
        media_ring: config.runtime.cross_core_queue,
        control_ring: config.runtime.cross_core_control_queue,
        media_backlog: config.runtime.cross_core_backlog,
    };
    let links = Mesh::new::<MeshMsg>(n, mesh)?;
    let mut per_core = Vec::with_capacity(n);
    let backlog = config.server.backlog as i32;
    let mut ports = vec![
        (config.server.rtmp_listen, Listener::Rtmp),
        (config.server.http_listen, Listener::Http),
    ];
    let admin = config.api.admin_listen;
    // A killed predecessor's listener outlives it briefly (its io_uring is torn down
    // asynchronously): give it a bounded moment to go before calling the port taken.
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while admin_in_use(admin) && std::time::Instant::now() < give_up {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if admin_in_use(admin) {
        return Err(ServeError::Bind {
            addr: admin,
            source: std::io::ErrorKind::AddrInUse.into(),
        });
    }
    ports.push((admin, Listener::Admin));
    if let Some(addr) = config.server.https_listen {
        ports.push((addr, Listener::Https));
    }
    if let Some(addr) = config.server.rtmps_listen {
        ports.push((addr, Listener::Rtmps));
    }
    for link in links {
        let mut listeners = Vec::new();
        for &(addr, kind) in &ports {
            let socket = reuseport_listener(addr, backlog)
                .map_err(|source| ServeError::Bind { addr, source })?;
            listeners.push(CoreListener::new(socket, kind));
        }
        per_core.push((link, listeners));
    }
    tracing::info!(
        rtmp = %config.server.rtmp_listen,
        http = %config.server.http_listen,
        admin = %config.api.admin_listen,
        https = ?config.server.https_listen,
        rtmps = ?config.server.rtmps_listen,
        cores = n,
        "ringcast listening"
    );
    tls_reload::spawn(tls.clone()).map_err(ServeError::Reload)?;
    let shared = Arc::new(Shared::new(config, n, metrics).with_tls(tls, client_tls));
    let failure: Arc<Mutex<Option<ServeError>>> = Arc::new(Mutex::new(None));
    let threads = {
        let (shared, failure) = (shared.clone(), failure.clone());
        CoreThreads::spawn(
            &Cores::List(cpus),
            per_core,
            move |slot, (link, listeners)| {
                let run = || {
                    Worker::new(slot.index, shared.clone(), link, listeners).and_then(Worker::run)
                };
                // A core that panicked leaves keys in the directory that no core serves and
                // cores waiting on its mesh links: nothing sane can go on, so the process
                // ends at once with a failure status and the supervisor restarts it.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|payload| {
                let message = panic_message(payload.as_ref());
                tracing::error!(core = slot.index, cpu = slot.cpu, panic = %message, "core {} panicked; ending the process", slot.index);
                std::process::exit(CORE_PANIC_EXIT_CODE)
            });
                if let Err(source) = result {
                    tracing::error!(core = slot.index, error = %source, "core failed; shutting down");
                    *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(ServeError::Core {
                        core: slot.index,
                        source,
                    });
                    signals::request();
                }
            },
        )?
    };
    threads.join()?;
    let failed = failure.lock().unwrap_or_else(|e| e.into_inner()).take();
    match failed {
        Some(e) => Err(e),
        None => {
            tracing::info!("ringcast stopped");
            Ok(())
        }
    }
}
