//! The parent process: splits a run into worker processes, merges what they stream
//! back, prints progress each second and builds the final report.
//!
//! Workers are separate processes, not threads, because each process may hold at
//! most RLIMIT_NOFILE sockets (20000 here); each gets a share that stays under its
//! limit with a margin, and they are pinned round-robin to the cores.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::report::{Merger, Report, Second};
use crate::spec::{Role, WorkerSpec};

/// File descriptors a worker keeps for itself (ring, pipes, files) besides sockets.
pub const FD_MARGIN: u64 = 512;
/// Workers get this long past the run's end to report before they are killed, plus
/// [`GRACE_PER_CLIENT`] per client of the largest worker (see [`grace`]).
const GRACE: Duration = Duration::from_secs(15);
/// A worker reports its last second only after hanging up every client, and each
/// hang-up cancels the connection's multishot receive by fd, which the kernel matches
/// against every request still in flight (`io_cancel_req_match`): n clients cost O(n²).
/// Measured: 10k clients in one worker take ~3.5 s to hang up on a quiet core; six
/// workers of 16.7k each on two busy cores took over 80 s. A worker still hanging up
/// when the grace ends is killed, which costs only its last partial second.
const GRACE_PER_CLIENT: Duration = Duration::from_millis(1);
/// Connections from one source address to one server before another 127.0.0.x is
/// added. The kernel picks a connection's ephemeral port by scanning from a cursor
/// kept per (source, destination), ports of one parity first (`__inet_hash_connect`),
/// skipping ports that (source, destination) already uses. Once that half of the range
/// (14k ports of the default 32768–60999) is nearly all taken, every connect scans all
/// of it: measured, one worker of 17k viewers on one address spent 92% of its time
/// there and started 512 clients per 3 s turn from the 14,000th on, starving its
/// receives until responses the server had sent in time were counted as request
/// timeouts. A quarter of the default half keeps each scan short.
pub const CONNECTIONS_PER_SOURCE_IP: u64 = 3_500;
/// Children get this long to start before the run clock begins.
const STARTUP_DELAY: Duration = Duration::from_millis(500);

/// How to split `clients` of one role over processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// Worker processes.
    pub processes: u64,
    /// Clients in the largest one.
    pub per_process: u64,
}

/// Splits `clients` into at least one process per core (when there are enough
/// clients) and enough processes that none exceeds `per_process_cap`.
pub fn split(clients: u64, per_process_cap: u64, cores: u64) -> Split {
    split_over(clients, per_process_cap, cores, 1)
}

/// Like [`split`], with the process count rounded up to a multiple of `targets`, so
/// that interleaved global indices give each process exactly one target (see
/// [`plan_over`]).
pub fn split_over(clients: u64, per_process_cap: u64, cores: u64, targets: u64) -> Split {
    if clients == 0 {
        return Split {
            processes: 0,
            per_process: 0,
        };
    }
    let cap = per_process_cap.max(1);
    let targets = targets.max(1);
    let processes = clients
        .div_ceil(cap)
        .max(cores.min(clients))
        .max(1)
        .next_multiple_of(targets);
    Split {
        processes,
        per_process: clients.div_ceil(processes),
    }
}

/// Builds worker specs for `clients` of `role`, interleaving global indices so every
/// worker ramps at the same pace; `template` supplies the shared fields.
pub fn plan(
    template: &WorkerSpec,
    clients: u64,
    per_process_cap: u64,
    cores: &[usize],
    core_offset: usize,
) -> Vec<WorkerSpec> {
    plan_over(
        template,
        std::slice::from_ref(&template.url),
        clients,
        per_process_cap,
        cores,
        core_offset,
    )
}

/// Like [`plan`], spreading clients round-robin over `urls`: global client `k` uses
/// `urls[k mod n]`. Workers get global indices `w, w + W, w + 2W, ...` and `W` is a
/// multiple of `n`, so each worker has a single URL (`urls[w mod n]`) and the worker
/// itself needs to know nothing about the others. Workers left with no client (fewer
/// clients than URLs) are not started.
pub fn plan_over(
    template: &WorkerSpec,
    urls: &[String],
    clients: u64,
    per_process_cap: u64,
    cores: &[usize],
    core_offset: usize,
) -> Vec<WorkerSpec> {
    let n = urls.len().max(1) as u64;
    let s = split_over(clients, per_process_cap, cores.len() as u64, n);
    (0..s.processes)
        .map(|w| WorkerSpec {
            url: urls.get((w % n) as usize).unwrap_or(&template.url).clone(),
            first: w,
            step: s.processes,
            count: clients.saturating_sub(w).div_ceil(s.processes),
            core: cores
                .get((w as usize + core_offset) % cores.len().max(1))
                .copied(),
            // Each worker talks to one URL; the URL's share of clients is spread
            // over enough addresses that no (source, destination) pair nears the limit.
            source_ips: clients
                .div_ceil(n)
                .div_ceil(CONNECTIONS_PER_SOURCE_IP)
                .clamp(1, 250) as u8,
            ..template.clone()
        })
        .filter(|w| w.count > 0)
        .collect()
}

/// The open-file hard limit: how many sockets one worker may hold, less a margin.
pub fn per_process_cap() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid struct.
    let hard = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_max
    } else {
        1024
    };
    hard.saturating_sub(FD_MARGIN).max(1)
}

/// How long past the run's end workers of at most `largest_worker` clients may take to
/// report before they are killed.
pub fn grace(largest_worker: u64) -> Duration {
    GRACE + GRACE_PER_CLIENT.saturating_mul(u32::try_from(largest_worker).unwrap_or(u32::MAX))
}

/// µs since the UNIX epoch at which a run planned now should start.
pub fn start_time_us() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    now + STARTUP_DELAY.as_micros() as u64
}

fn spawn(spec: &WorkerSpec) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("locating the loadgen binary to re-exec")?;
    Command::new(exe)
        .arg("worker")
        .arg("--spec")
        .arg(serde_json::to_string(spec)?)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting a worker process")
}

fn progress_line(second: u32, iv: &crate::stats::Interval, viewers_total: u64) -> String {
    progress_line_of(&Second::of(second, iv), viewers_total)
}

fn progress_line_of(s: &Second, viewers_total: u64) -> String {
    let p99 = if s.latency_ms.count == 0 {
        "-".to_string()
    } else {
        format!("{:.1}", s.latency_ms.p99)
    };
    let line = format!(
        "[{:>4}s] viewers up {:>7}/{:<7} publishers {:>3}  failures {:>5}  in {:>8.1} Mbit/s  p99 latency {:>7} ms  stalls {:>4}  missing {:>5}",
        s.second, s.viewers_up, viewers_total, s.publishers_up, s.failures, s.mbps, p99, s.stalls, s.missing_frames,
    );
    if s.tls_handshakes == 0 {
        return line;
    }
    format!("{line}  TLS handshakes {:>6}/s", s.tls_handshakes)
}

/// Runs all `workers` to completion and returns the merged report.
pub fn execute(
    workers: &[WorkerSpec],
    mut settings: BTreeMap<String, String>,
    progress: &mut dyn Write,
) -> anyhow::Result<Report> {
    let viewers_total: u64 = workers
        .iter()
        .filter(|w| matches!(w.role, Role::Viewers { .. }))
        .map(|w| w.count)
        .sum();
    let run_end = workers
        .iter()
        .map(|w| w.start_unix_us / 1000 + w.duration_ms)
        .max()
        .unwrap_or(0);
    let grace_ms = grace(workers.iter().map(|w| w.count).max().unwrap_or(0)).as_millis() as u64;
    let (tx, rx) = mpsc::channel::<String>();
    let mut children = Vec::new();
    // Workers killed for overrunning the grace; they had reported every full second.
    let mut killed = vec![false; workers.len()];
    for spec in workers {
        let mut child = spawn(spec)?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        children.push(child);
    }
    drop(tx);
    let started = Instant::now();
    let mut merger = Merger::default();
    let mut last_printed: Option<u32> = None;
    let mut bad_lines = 0u64;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if let Err(e) = merger.add_line(&line) {
                    bad_lines += 1;
                    tracing::warn!(error = %e, "unreadable worker line");
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some((s, iv)) = merger.latest_complete(workers.len()) {
            if last_printed.is_none_or(|p| s > p) {
                let _ = writeln!(progress, "{}", progress_line(s, iv, viewers_total));
                last_printed = Some(s);
            }
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if now_ms > run_end + grace_ms {
            for (c, k) in children.iter_mut().zip(killed.iter_mut()) {
                if !*k && matches!(c.try_wait(), Ok(None)) {
                    tracing::warn!(pid = c.id(), "worker still hanging up its clients after the run; killing it (its last second is lost)");
                    let _ = c.kill();
                    *k = true;
                }
            }
        }
    }
    // Seconds that completed after the last progress tick (the final lines).
    for second in merger.timeline() {
        if last_printed.is_none_or(|p| second.second > p) {
            let _ = writeln!(progress, "{}", progress_line_of(&second, viewers_total));
        }
    }
    let mut failed_workers = 0;
    let mut killed_after_run = 0;
    for (mut c, k) in children.into_iter().zip(killed) {
        let status = c.wait()?;
        if k {
            killed_after_run += 1;
        } else if !status.success() {
            failed_workers += 1;
            tracing::error!(pid = c.id(), %status, "worker exited with an error");
        }
    }
    if failed_workers > 0 || bad_lines > 0 {
        anyhow::bail!("{failed_workers} worker(s) failed, {bad_lines} unreadable report line(s)");
    }
    if killed_after_run > 0 {
        // Their last partial second is missing, so the final viewers-up gauge is short.
        settings.insert(
            "workers_killed_after_run".into(),
            killed_after_run.to_string(),
        );
    }
    let first_start = workers.iter().map(|w| w.start_unix_us).min().unwrap_or(0);
    let duration_s = (run_end as f64 - first_start as f64 / 1000.0).max(0.0) / 1000.0;
    let _ = started;
    Ok(Report::build(&merger, settings, duration_s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_under_the_fd_cap_and_over_cores() {
        assert_eq!(
            split(100_000, 19_488, 2),
            Split {
                processes: 6,
                per_process: 16_667
            }
        );
        assert_eq!(
            split(1000, 19_488, 2),
            Split {
                processes: 2,
                per_process: 500
            }
        );
        assert_eq!(
            split(1, 19_488, 8),
            Split {
                processes: 1,
                per_process: 1
            }
        );
        assert_eq!(split(0, 19_488, 2).processes, 0);
    }

    #[test]
    fn plan_covers_every_client_exactly_once() {
        let template = template();
        let workers = plan(&template, 100_003, 19_488, &[0, 1], 0);
        let mut seen: Vec<u64> = workers
            .iter()
            .flat_map(|w| (0..w.count).map(move |k| w.global_index(k)))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100_003).collect::<Vec<_>>());
        assert!(workers
            .iter()
            .all(|w| w.count <= 19_488 && w.source_ips == 29));
        assert_eq!(
            workers.iter().map(|w| w.core).collect::<Vec<_>>()[..3],
            [Some(0), Some(1), Some(0)]
        );
    }

    #[test]
    fn progress_line_shows_tls_handshakes_only_when_there_are_some() {
        let mut iv = crate::stats::Interval::default();
        iv.counters.viewers_up = 3;
        assert!(!progress_line(2, &iv, 4).contains("TLS"));
        iv.counters.tls_handshakes = 1234;
        let line = progress_line(2, &iv, 4);
        assert!(line.starts_with("[   2s] viewers up       3/4"), "{line}");
        assert!(line.ends_with("TLS handshakes   1234/s"), "{line}");
    }

    #[test]
    fn grace_grows_with_the_largest_worker() {
        assert_eq!(grace(0), Duration::from_secs(15));
        assert_eq!(grace(16_667), Duration::from_millis(15_000 + 16_667));
        assert!(
            grace(u64::MAX) > Duration::from_secs(3600),
            "saturates instead of overflowing"
        );
    }

    #[test]
    fn process_count_rounds_up_to_a_multiple_of_the_urls() {
        assert_eq!(
            split_over(100_000, 19_488, 2, 6),
            Split {
                processes: 6,
                per_process: 16_667
            }
        );
        assert_eq!(
            split_over(10_000, 19_488, 2, 6),
            Split {
                processes: 6,
                per_process: 1667
            }
        );
        assert_eq!(
            split_over(100_000, 19_488, 1, 4),
            Split {
                processes: 8,
                per_process: 12_500
            }
        );
        assert_eq!(
            split_over(3, 19_488, 2, 6),
            Split {
                processes: 6,
                per_process: 1
            }
        );
    }

    fn template() -> WorkerSpec {
        WorkerSpec {
            role: Role::Viewers { sample: 1.0 },
            url: "http://127.0.0.1/x.flv".into(),
            streams: 1,
            first: 0,
            step: 1,
            count: 0,
            ramp_per_sec: 0.0,
            start_unix_us: 0,
            start_delay_ms: 0,
            duration_ms: 1,
            source_ips: 1,
            core: None,
            setup_timeout_ms: 1,
            ca: None,
        }
    }

    #[test]
    fn viewer_k_plays_url_k_mod_n_across_all_workers() {
        let urls: Vec<String> = (0..6)
            .map(|e| format!("http://127.0.0.1:{}/live/x.flv", 8100 + e))
            .collect();
        let workers = plan_over(&template(), &urls, 100_003, 19_488, &[0, 1], 0);
        assert_eq!(workers.len(), 6);
        let mut by_url = vec![0u64; urls.len()];
        let mut seen = Vec::new();
        for w in &workers {
            for k in 0..w.count {
                let g = w.global_index(k);
                assert_eq!(w.url, urls[(g % 6) as usize], "viewer {g}");
                by_url[(g % 6) as usize] += 1;
                seen.push(g);
            }
            assert!(w.count <= 19_488);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..100_003).collect::<Vec<_>>());
        assert_eq!(by_url, [16_668, 16_667, 16_667, 16_667, 16_667, 16_667]);
    }

    #[test]
    fn fewer_viewers_than_urls_starts_only_the_workers_with_viewers() {
        let urls: Vec<String> = (0..4)
            .map(|e| format!("rtmp://127.0.0.1:{}/live/x", 1940 + e))
            .collect();
        let workers = plan_over(&template(), &urls, 2, 19_488, &[0, 1], 0);
        let got: Vec<(u64, u64, &str)> = workers
            .iter()
            .map(|w| (w.first, w.count, w.url.as_str()))
            .collect();
        assert_eq!(got, [(0, 1, urls[0].as_str()), (1, 1, urls[1].as_str())]);
    }
}
