//! Command line: `play`, `publish`, `run`, and the hidden `worker` the parent
//! re-executes itself as.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::filesource::FileSource;
use crate::orchestrate::{execute, per_process_cap, plan, plan_over, start_time_us};
use crate::report::Report;
use crate::spec::SourceSpec;
use crate::spec::{Role, WorkerSpec};
use crate::synthetic::{SyntheticConfig, SyntheticSource};
use crate::target::Target;
use crate::units::{parse_bitrate, parse_duration_ms};

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
    /// Play a stream with many viewers (HTTP-FLV, RTMP, LL-HLS, TS HLS or LL-DASH).
    Play(PlayArgs),
    /// Publish K streams over RTMP from a synthetic source or a looped FLV file.
    Publish(PublishArgs),
    /// Publish and play together: one-command benchmarks.
    Run(RunArgs),
    /// TLS handshake rate: clients that connect, complete a TLS handshake
    /// (full, no resumption) and close, over and over.
    Handshakes(HandshakeArgs),
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

/// Options of `https://` and `rtmps://` targets.
#[derive(Debug, Args, Clone, Default)]
pub struct TlsArgs {
    /// PEM file of CA certificates the server's certificate is verified against
    /// (default: the system store).
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

impl TlsArgs {
    fn ca(&self) -> anyhow::Result<Option<String>> {
        match &self.ca {
            None => Ok(None),
            Some(path) => {
                // Checked here so a bad file fails the run, not every worker.
                ringcast::tls::ClientTls::load(Some(path))
                    .with_context(|| format!("--ca {}", path.display()))?;
                Ok(Some(path.to_string_lossy().into_owned()))
            }
        }
    }
}

/// Most play URLs one run spreads its viewers over.
pub const MAX_PLAY_URLS: usize = 64;

/// `loadgen play`.
#[derive(Debug, Args)]
pub struct PlayArgs {
    /// http://127.0.0.1:8080/live/x.flv, rtmp://127.0.0.1/live/x (https://…, rtmps://… over
    /// TLS), or an HLS/DASH player:
    /// http://…/live/x.m3u8 (LL-HLS), …/x-ts.m3u8 (TS HLS), …/x.mpd (LL-DASH);
    /// `{i}` = stream index.
    /// Repeat it (or give a comma list) to spread viewers over several servers:
    /// viewer k plays url[k mod n].
    #[arg(long, required = true, value_delimiter = ',')]
    pub url: Vec<String>,
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
    /// TLS options.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Report options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `loadgen publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// rtmp://127.0.0.1/live/x or rtmps://…; `{i}` = stream index (0..streams).
    #[arg(long)]
    pub url: String,
    /// Media options.
    #[command(flatten)]
    pub media: MediaArgs,
    /// TLS options.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Report options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// What publishers send.
#[derive(Debug, Args)]
pub struct MediaArgs {
    /// `synthetic`, or an FLV file to loop.
    #[arg(long, default_value = "synthetic")]
    pub source: String,
    /// Synthetic video bit rate.
    #[arg(long, default_value = "600k", value_parser = parse_bitrate)]
    pub bitrate: u64,
    /// Synthetic audio bit rate (0 = no audio).
    #[arg(long, default_value = "64k", value_parser = parse_bitrate)]
    pub audio_bitrate: u64,
    /// Synthetic frame rate.
    #[arg(long, default_value_t = 25)]
    pub fps: u32,
    /// Synthetic keyframe interval.
    #[arg(long, default_value = "1s", value_parser = parse_duration_ms)]
    pub gop: u64,
    /// Streams to publish, one publisher each.
    #[arg(long, default_value_t = 1)]
    pub streams: u32,
}

impl MediaArgs {
    fn source(&self) -> anyhow::Result<SourceSpec> {
        if self.source == "synthetic" {
            let spec = SourceSpec::Synthetic {
                video_bitrate: self.bitrate,
                audio_bitrate: self.audio_bitrate,
                fps: self.fps,
                gop_ms: u32::try_from(self.gop).context("--gop too long")?,
            };
            if let SourceSpec::Synthetic {
                video_bitrate,
                audio_bitrate,
                fps,
                gop_ms,
            } = spec
            {
                SyntheticSource::new(SyntheticConfig {
                    video_bitrate,
                    audio_bitrate,
                    fps,
                    gop_ms,
                })?;
            }
            Ok(spec)
        } else {
            FileSource::open(&self.source)?;
            Ok(SourceSpec::File {
                path: self.source.clone(),
            })
        }
    }
}

/// `loadgen run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where publishers send: rtmp://127.0.0.1/live/s{i} (or rtmps://…).
    #[arg(long)]
    pub publish_url: String,
    /// Where viewers play: http://127.0.0.1:8080/live/s{i}.flv, rtmp://127.0.0.1/live/s{i},
    /// or http://…/live/s{i}.m3u8, …/s{i}-ts.m3u8, …/s{i}.mpd (HLS/DASH players);
    /// repeat it (or give a comma list) to spread viewers: viewer k plays url[k mod n].
    #[arg(long, required = true, value_delimiter = ',')]
    pub play_url: Vec<String>,
    /// Viewers in total, spread evenly over the streams.
    #[arg(long, default_value_t = 100)]
    pub viewers: u64,
    /// Viewers started per second (0 = all at once).
    #[arg(long, default_value_t = 1000.0)]
    pub ramp: f64,
    /// Fraction of viewers that fully parse frames.
    #[arg(long, default_value_t = 1.0)]
    pub sample: f64,
    /// Viewers start this long after the publishers.
    #[arg(long, default_value = "2s", value_parser = parse_duration_ms)]
    pub play_delay: u64,
    /// Connect, handshake and first keyframe must happen within this.
    #[arg(long, default_value = "10s", value_parser = parse_duration_ms)]
    pub setup_timeout: u64,
    /// Media options.
    #[command(flatten)]
    pub media: MediaArgs,
    /// TLS options (publishers and viewers).
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Report options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `loadgen handshakes`.
#[derive(Debug, Args)]
pub struct HandshakeArgs {
    /// https://127.0.0.1:8443/ or rtmps://127.0.0.1:1443/app/x (only the address,
    /// the server name and the ALPN it implies are used).
    #[arg(long)]
    pub url: String,
    /// Clients cycling at once.
    #[arg(long, default_value_t = 64)]
    pub connections: u64,
    /// One cycle (connect, handshake, close) must end within this.
    #[arg(long, default_value = "10s", value_parser = parse_duration_ms)]
    pub setup_timeout: u64,
    /// TLS options.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Report options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Plans `handshakes`' workers.
pub fn plan_handshakes(
    args: &HandshakeArgs,
    start_unix_us: u64,
    cap: u64,
    cores: &[usize],
) -> anyhow::Result<Vec<WorkerSpec>> {
    let target = Target::parse(&args.url)?;
    if !target.tls {
        anyhow::bail!(
            "handshakes need an https:// or rtmps:// URL, got {}",
            args.url
        );
    }
    let template = WorkerSpec {
        role: Role::Handshakes,
        url: args.url.clone(),
        streams: 1,
        first: 0,
        step: 1,
        count: 0,
        ramp_per_sec: 0.0,
        start_unix_us,
        start_delay_ms: 0,
        duration_ms: args.output.duration,
        source_ips: 1,
        core: None,
        setup_timeout_ms: args.setup_timeout,
        ca: args.tls.ca()?,
    };
    Ok(plan(&template, args.connections.max(1), cap, cores, 0))
}

/// Plans the publishers of `publish`/`run`: one per stream, all in one process.
pub fn plan_publish(
    url: &str,
    media: &MediaArgs,
    tls: &TlsArgs,
    start_unix_us: u64,
    duration_ms: u64,
    cores: &[usize],
) -> anyhow::Result<Vec<WorkerSpec>> {
    let target = Target::parse(url)?;
    if target.scheme != crate::target::Scheme::Rtmp {
        anyhow::bail!("publishing needs an rtmp:// or rtmps:// URL, got {url}");
    }
    let template = WorkerSpec {
        role: Role::Publishers {
            source: media.source()?,
        },
        url: url.to_string(),
        streams: media.streams.max(1),
        first: 0,
        step: 1,
        count: 0,
        ramp_per_sec: 0.0,
        start_unix_us,
        start_delay_ms: 0,
        duration_ms,
        source_ips: 1,
        core: None,
        setup_timeout_ms: 10_000,
        ca: tls.ca()?,
    };
    // Publishers are few and light: one process, on the last core, away from viewers'.
    Ok(plan(
        &template,
        media.streams.max(1) as u64,
        u64::MAX,
        &cores[cores.len().saturating_sub(1)..],
        0,
    ))
}

fn cores(requested: Option<usize>) -> Vec<usize> {
    let all: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let n = requested.unwrap_or(all.len()).clamp(1, all.len().max(1));
    if all.is_empty() {
        vec![0]
    } else {
        all.into_iter().take(n).collect()
    }
}

fn settings(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Plans `play`'s workers: viewers round-robin over the URLs, one URL per worker.
pub fn plan_play(
    args: &PlayArgs,
    start_unix_us: u64,
    cap: u64,
    cores: &[usize],
) -> anyhow::Result<Vec<WorkerSpec>> {
    let first = match args.url.as_slice() {
        [] => anyhow::bail!("no play URL given"),
        urls if urls.len() > MAX_PLAY_URLS => {
            anyhow::bail!("{} play URLs exceed the limit {MAX_PLAY_URLS}", urls.len())
        }
        [first, ..] => first,
    };
    for url in &args.url {
        Target::parse(url).with_context(|| format!("play URL {url}"))?;
    }
    if !(0.0..=1.0).contains(&args.sample) {
        anyhow::bail!("--sample {} outside 0..=1", args.sample);
    }
    let template = WorkerSpec {
        role: Role::Viewers {
            sample: args.sample,
        },
        url: first.clone(),
        streams: args.streams.max(1),
        first: 0,
        step: 1,
        count: 0,
        ramp_per_sec: args.ramp,
        start_unix_us,
        start_delay_ms: 0,
        duration_ms: args.output.duration,
        source_ips: 1,
        core: None,
        setup_timeout_ms: args.setup_timeout,
        ca: args.tls.ca()?,
    };
    Ok(plan_over(&template, &args.url, args.viewers, cap, cores, 0))
}

fn finish(report: &Report, output: &OutputArgs) -> anyhow::Result<()> {
    print!("{}", report.table());
    if let Some(path) = &output.json {
        std::fs::write(path, serde_json::to_string_pretty(report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &output.svg {
        std::fs::write(path, report.svg()?)
            .with_context(|| format!("writing {}", path.display()))?;
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
                    ("url", args.url.join(",")),
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
        Command::Handshakes(args) => {
            let cap = args.output.per_process.unwrap_or_else(per_process_cap);
            let workers = plan_handshakes(&args, start_time_us(), cap, &cores(args.output.cores))?;
            let report = execute(
                &workers,
                settings(&[
                    ("mode", "handshakes".into()),
                    ("url", args.url.clone()),
                    ("connections", args.connections.to_string()),
                    ("processes", workers.len().to_string()),
                ]),
                &mut std::io::stderr(),
            )?;
            finish(&report, &args.output)
        }
        Command::Publish(args) => {
            let cores = cores(args.output.cores);
            let workers = plan_publish(
                &args.url,
                &args.media,
                &args.tls,
                start_time_us(),
                args.output.duration,
                &cores,
            )?;
            let report = execute(
                &workers,
                settings(&[
                    ("mode", "publish".into()),
                    ("url", args.url.clone()),
                    ("source", args.media.source.clone()),
                    ("bitrate", args.media.bitrate.to_string()),
                    ("streams", args.media.streams.to_string()),
                ]),
                &mut std::io::stderr(),
            )?;
            finish(&report, &args.output)
        }
        Command::Run(args) => {
            let cores = cores(args.output.cores);
            let start = start_time_us();
            // Publishers outlive the viewers by a second so no viewer sees the stream end.
            let mut workers = plan_publish(
                &args.publish_url,
                &args.media,
                &args.tls,
                start,
                args.output.duration + 1000,
                &cores,
            )?;
            let play = PlayArgs {
                url: args.play_url.clone(),
                viewers: args.viewers,
                ramp: args.ramp,
                streams: args.media.streams,
                sample: args.sample,
                setup_timeout: args.setup_timeout,
                tls: args.tls.clone(),
                output: OutputArgs {
                    duration: args.output.duration,
                    json: None,
                    svg: None,
                    cores: args.output.cores,
                    per_process: args.output.per_process,
                },
            };
            let cap = args.output.per_process.unwrap_or_else(per_process_cap);
            let mut viewers = plan_play(&play, start, cap, &cores)?;
            for w in &mut viewers {
                w.start_delay_ms = args.play_delay;
            }
            workers.extend(viewers);
            let report = execute(
                &workers,
                settings(&[
                    ("mode", "run".into()),
                    ("publish_url", args.publish_url.clone()),
                    ("play_url", args.play_url.join(",")),
                    ("viewers", args.viewers.to_string()),
                    ("ramp", args.ramp.to_string()),
                    ("sample", args.sample.to_string()),
                    ("source", args.media.source.clone()),
                    ("bitrate", args.media.bitrate.to_string()),
                    ("streams", args.media.streams.to_string()),
                    ("processes", workers.len().to_string()),
                ]),
                &mut std::io::stderr(),
            )?;
            finish(&report, &args.output)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn play_args(argv: &[&str]) -> PlayArgs {
        let mut full = vec!["loadgen", "play"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).map(|c| c.command) {
            Ok(Command::Play(p)) => p,
            other => panic!("expected play args, got {other:?}"),
        }
    }

    #[test]
    fn url_repeats_or_takes_a_comma_list() {
        let a = play_args(&[
            "--url",
            "http://127.0.0.1:8101/live/x.flv",
            "--url",
            "rtmp://127.0.0.1:1936/live/x",
        ]);
        assert_eq!(
            a.url,
            [
                "http://127.0.0.1:8101/live/x.flv",
                "rtmp://127.0.0.1:1936/live/x"
            ]
        );
        let b = play_args(&[
            "--url",
            "http://127.0.0.1:8101/a.flv,http://127.0.0.1:8102/a.flv,http://127.0.0.1:8103/a.flv",
        ]);
        assert_eq!(b.url.len(), 3);
        assert_eq!(b.url[2], "http://127.0.0.1:8103/a.flv");
        assert!(
            Cli::try_parse_from(["loadgen", "play", "--viewers", "3"]).is_err(),
            "--url is required"
        );
    }

    #[test]
    fn plan_play_spreads_viewers_round_robin_over_the_urls() {
        let urls: Vec<String> = (0..3)
            .map(|e| format!("http://127.0.0.1:{}/live/x.flv", 8101 + e))
            .collect();
        let joined = urls.join(",");
        let args = play_args(&["--url", &joined, "--viewers", "10", "--ramp", "0"]);
        let workers = plan_play(&args, 0, 19_488, &[0, 1]).unwrap();
        let mut assigned: Vec<(u64, String)> = workers
            .iter()
            .flat_map(|w| (0..w.count).map(move |k| (w.global_index(k), w.url.clone())))
            .collect();
        assigned.sort();
        let expected: Vec<(u64, String)> = (0..10)
            .map(|g| (g, urls[(g % 3) as usize].clone()))
            .collect();
        assert_eq!(assigned, expected);
    }

    #[test]
    fn plan_play_refuses_bad_or_too_many_urls() {
        let bad = play_args(&["--url", "http://127.0.0.1:8101/x.flv,http://10.0.0.1/x.flv"]);
        let err = plan_play(&bad, 0, 100, &[0]).unwrap_err();
        assert!(format!("{err:#}").contains("10.0.0.1"), "{err:#}");
        let many: Vec<String> = (0..=MAX_PLAY_URLS)
            .map(|e| format!("http://127.0.0.1:{}/x.flv", 9000 + e))
            .collect();
        let too_many = play_args(&["--url", &many.join(",")]);
        let err = plan_play(&too_many, 0, 100, &[0]).unwrap_err();
        assert!(err.to_string().contains("exceed the limit 64"), "{err}");
    }
}
