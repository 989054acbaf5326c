//! Command line: `play`, `publish`, `run`, and the hidden `worker` the parent
//! re-executes itself as.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::orchestrate::{execute, per_process_cap, plan, start_time_us};
use crate::report::Report;
use crate::spec::{Role, WorkerSpec};
use crate::target::Target;
use crate::units::parse_duration_ms;

/// Simulated viewers and publishers for live-streaming servers on this machine.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Modes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Play a stream with many viewers (HTTP-FLV or RTMP).
    Play(PlayArgs),
    /// Internal: one worker process, driven by the parent.
    #[command(hide = true)]
    Worker {
        /// The worker's spec as JSON.
        #[arg(long)]
        spec: String,
    },
}

/// Options shared by every mode that produces a report.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Run length, e.g. 30s, 5m; every run stops by itself.
    #[arg(long, default_value = "30s", value_parser = parse_duration_ms)]
    pub duration: u64,
    /// Write the full report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a plot of viewers and latency percentiles over time (SVG) here.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Cores to spread workers over (default: all).
    #[arg(long)]
    pub cores: Option<usize>,
    /// Most clients per worker process (default: open-file hard limit less a margin).
    #[arg(long)]
    pub per_process: Option<u64>,
}

/// `loadgen play`.
#[derive(Debug, Args)]
pub struct PlayArgs {
    /// http://127.0.0.1:8080/live/x.flv or rtmp://127.0.0.1/live/x; `{i}` = stream index.
    #[arg(long)]
    pub url: String,
    /// Viewers in total.
    #[arg(long, default_value_t = 100)]
    pub viewers: u64,
    /// Viewers started per second (0 = all at once).
    #[arg(long, default_value_t = 1000.0)]
    pub ramp: f64,
    /// Streams `{i}` in the URL runs over; viewers are spread evenly.
    #[arg(long, default_value_t = 1)]
    pub streams: u32,
    /// Fraction of viewers that fully parse frames (latency, gaps, stalls); all count
    /// bytes and check that bytes keep coming.
    #[arg(long, default_value_t = 1.0)]
    pub sample: f64,
    /// Connect, handshake and first keyframe must happen within this.
    #[arg(long, default_value = "10s", value_parser = parse_duration_ms)]
    pub setup_timeout: u64,
    /// Report options.
    #[command(flatten)]
    pub output: OutputArgs,
}

fn cores(requested: Option<usize>) -> Vec<usize> {
    let all: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().into_iter().map(|c| c.id).collect();
    let n = requested.unwrap_or(all.len()).clamp(1, all.len().max(1));
    if all.is_empty() {
        vec![0]
    } else {
        all.into_iter().take(n).collect()
    }
}

fn settings(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// Plans `play`'s workers.
pub fn plan_play(args: &PlayArgs, start_unix_us: u64, cap: u64, cores: &[usize]) -> anyhow::Result<Vec<WorkerSpec>> {
    let target = Target::parse(&args.url)?;
    if target.scheme == crate::target::Scheme::Rtmp {
        anyhow::bail!("RTMP play is not in this build yet: use an http:// HTTP-FLV URL");
    }
    if !(0.0..=1.0).contains(&args.sample) {
        anyhow::bail!("--sample {} outside 0..=1", args.sample);
    }
    let template = WorkerSpec {
        role: Role::Viewers { sample: args.sample },
        url: args.url.clone(),
        streams: args.streams.max(1),
        first: 0,
        step: 1,
        count: 0,
        ramp_per_sec: args.ramp,
        start_unix_us,
        duration_ms: args.output.duration,
        source_ips: 1,
        core: None,
        setup_timeout_ms: args.setup_timeout,
    };
    Ok(plan(&template, args.viewers, cap, cores, 0))
}

fn finish(report: &Report, output: &OutputArgs) -> anyhow::Result<()> {
    print!("{}", report.table());
    if let Some(path) = &output.json {
        std::fs::write(path, serde_json::to_string_pretty(report)?).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &output.svg {
        std::fs::write(path, report.svg()?).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Runs the parsed command line.
pub fn main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Worker { spec } => {
            let spec: WorkerSpec = serde_json::from_str(&spec).context("worker spec")?;
            crate::net::raise_nofile_limit()?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            crate::worker::run(&spec, &mut out)
        }
        Command::Play(args) => {
            let cap = args.output.per_process.unwrap_or_else(per_process_cap);
            let workers = plan_play(&args, start_time_us(), cap, &cores(args.output.cores))?;
            let report = execute(
                &workers,
                settings(&[
                    ("mode", "play".into()),
                    ("url", args.url.clone()),
                    ("viewers", args.viewers.to_string()),
                    ("ramp", args.ramp.to_string()),
                    ("sample", args.sample.to_string()),
                    ("streams", args.streams.to_string()),
                    ("processes", workers.len().to_string()),
                ]),
                &mut std::io::stderr(),
            )?;
            std::io::stderr().flush()?;
            finish(&report, &args.output)
        }
    }
}
