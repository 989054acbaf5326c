//! The `ringcast` binary: `ringcast serve`, `ringcast check-config` and `ringcast sign`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ringcast::config::{Config, CoreSelection};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Live-streaming edge server: RTMP in, HTTP-FLV and RTMP out.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (defaults work without a config file).
    Serve {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// RTMP listen address (default 0.0.0.0:1935).
        #[arg(long)]
        rtmp: Option<SocketAddr>,
        /// HTTP listen address (default 0.0.0.0:8080).
        #[arg(long)]
        http: Option<SocketAddr>,
        /// Admin address: API, status page and /metrics (default 127.0.0.1:9090).
        #[arg(long)]
        admin: Option<SocketAddr>,
        /// HTTPS listen address (off by default; needs a certificate).
        #[arg(long)]
        https: Option<SocketAddr>,
        /// RTMPS listen address (off by default; needs a certificate).
        #[arg(long)]
        rtmps: Option<SocketAddr>,
        /// PEM certificate chain for the TLS listeners (`[tls] cert`).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of `--tls-cert` (`[tls] key`).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Number of cores to run reactors on (default: all).
        #[arg(long)]
        cores: Option<usize>,
        /// Origin to pull streams from (repeatable; enables edge mode).
        #[arg(long = "origin")]
        origins: Vec<String>,
    },
    /// Parse and validate a configuration file, print the effective config.
    CheckConfig {
        /// TOML configuration file.
        file: PathBuf,
    },
    /// Print a URL with a signed token (`exp`, `kid`, `sig`) for `[auth]`.
    Sign {
        /// TOML configuration file holding the `[[auth.keys]]`.
        #[arg(long)]
        config: PathBuf,
        /// What the URL allows.
        #[arg(long, value_enum)]
        action: SignAction,
        /// rtmp://HOST/APP/STREAM or http://HOST/APP/STREAM.flv (a query is kept).
        #[arg(long)]
        url: String,
        /// How long the URL stays valid (`1h`, `30m`, `7d`).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
        /// Bind the token to this client address.
        #[arg(long)]
        ip: Option<std::net::IpAddr>,
        /// Key id to sign with (default: the first `ringcast` key).
        #[arg(long)]
        kid: Option<String>,
        /// Cover every stream path starting with this text instead of the URL's stream.
        #[arg(long)]
        prefix: Option<String>,
    },
}

/// `--action` of `ringcast sign`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum SignAction {
    /// Publishing.
    Publish,
    /// Playing.
    Play,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ringcast: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// What `check-config` prints instead of a secret.
const REDACTED: &str = "<redacted>";

/// Replaces every secret in `config` (auth key secrets, the API token, the
/// query of hook URLs) with [`REDACTED`], so printing the effective
/// configuration shows that one is set but never what it is.
fn redact_secrets(config: &mut Config) {
    let hooks = &mut config.hooks;
    for url in [
        &mut hooks.on_publish,
        &mut hooks.on_unpublish,
        &mut hooks.on_play,
        &mut hooks.on_stop,
    ]
    .into_iter()
    .flatten()
    {
        if let Some((base, _query)) = url.split_once('?') {
            *url = format!("{base}?{REDACTED}");
        }
    }
    for key in &mut config.auth.keys {
        key.secret = REDACTED.to_owned();
    }
    if let Some(token) = config.api.token.as_mut() {
        *token = REDACTED.to_owned();
    }
}

/// The TOML comment `check-config` prints first: where the admin routes are served.
/// The TOML comment `check-config` prints after it when TLS listeners are on.
fn tls_summary(config: &Config) -> Option<String> {
    let server = &config.server;
    let mut listeners = Vec::new();
    if let Some(addr) = server.https_listen {
        listeners.push(format!("https://{addr}"));
    }
    if let Some(addr) = server.rtmps_listen {
        listeners.push(format!("rtmps://{addr}"));
    }
    let tls = config.tls.as_ref().filter(|_| !listeners.is_empty())?;
    Some(format!(
        "# tls: {} (certificate {}, {} more by SNI; files checked)",
        listeners.join(", "),
        tls.cert.display(),
        tls.sni.len()
    ))
}

fn admin_summary(config: &Config) -> String {
    let api = &config.api;
    let public = if api.on_public_port {
        format!(" and on the public port {}", config.server.http_listen)
    } else {
        String::new()
    };
    let token = if api.token.is_some() {
        "bearer token required"
    } else {
        "no token"
    };
    format!(
        "# admin (API, status page, /metrics): http://{}{public} ({token})",
        api.admin_listen
    )
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CheckConfig { file } => {
            let mut config = Config::load(&file)?;
            config.validate_exposure()?;
            // Every certificate and key file is read and checked, as `serve` would.
            if let Some(tls) = &config.tls {
                ringcast::tls::ServerTls::load(tls).context("[tls]")?;
            }
            // The effective configuration goes to a terminal or a log: never a secret.
            redact_secrets(&mut config);
            println!("{}", admin_summary(&config));
            if let Some(tls) = tls_summary(&config) {
                println!("{tls}");
            }
            print!(
                "{}",
                toml::to_string_pretty(&config).context("rendering config")?
            );
            Ok(())
        }
        Command::Sign {
            config,
            action,
            url,
            ttl,
            ip,
            kid,
            prefix,
        } => {
            let config = Config::load(&config)?;
            config.validate()?;
            let key = config
                .auth
                .signing_key(kid.as_deref())
                .with_context(|| match &kid {
                    Some(id) => format!("no [[auth.keys]] with scheme \"ringcast\" and id {id:?}"),
                    None => "no [[auth.keys]] with scheme \"ringcast\" to sign with".to_owned(),
                })?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("system clock before 1970")?;
            let action = match action {
                SignAction::Publish => ringcast::auth::Action::Publish,
                SignAction::Play => ringcast::auth::Action::Play,
            };
            let signed = ringcast::auth::ringcast::sign_url(
                &url,
                key.secret.as_bytes(),
                &key.id,
                action,
                prefix.as_deref(),
                (now + ttl).as_secs(),
                ip,
            )?;
            println!("{signed}");
            Ok(())
        }
        Command::Serve {
            config,
            rtmp,
            http,
            admin,
            https,
            rtmps,
            tls_cert,
            tls_key,
            cores,
            origins,
        } => {
            let mut config = match config {
                Some(path) => Config::load(&path)?,
                None => Config::default(),
            };
            if let Some(addr) = rtmp {
                config.server.rtmp_listen = addr;
            }
            if let Some(addr) = http {
                config.server.http_listen = addr;
            }
            if let Some(addr) = admin {
                config.api.admin_listen = addr;
            }
            if https.is_some() {
                config.server.https_listen = https;
            }
            if rtmps.is_some() {
                config.server.rtmps_listen = rtmps;
            }
            if let (Some(cert), Some(key)) = (tls_cert, tls_key) {
                match config.tls.as_mut() {
                    Some(tls) => (tls.cert, tls.key) = (cert, key),
                    None => {
                        config.tls = Some(ringcast::tls::TlsConfig {
                            cert,
                            key,
                            sni: Vec::new(),
                            ca: None,
                        })
                    }
                }
            }
            if let Some(n) = cores {
                config.server.cores = CoreSelection::Count(n);
            }
            if !origins.is_empty() {
                config.edge.origins = origins;
            }
            config.validate()?;
            config.validate_exposure()?;
            ringcast::server::serve(config).context("server failed")
        }
    }
}
