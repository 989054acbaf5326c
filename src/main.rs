//! The `ringcast` binary: `ringcast serve` and `ringcast check-config`.

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

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CheckConfig { file } => {
            let config = Config::load(&file)?;
            print!(
                "{}",
                toml::to_string_pretty(&config).context("rendering config")?
            );
            Ok(())
        }
        Command::Serve {
            config,
            rtmp,
            http,
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
            if let Some(n) = cores {
                config.server.cores = CoreSelection::Count(n);
            }
            if !origins.is_empty() {
                config.edge.origins = origins;
            }
            config.validate()?;
            ringcast::server::serve(config).context("server failed")
        }
    }
}
