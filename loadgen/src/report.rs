//! The end-of-run report: merged totals, a per-second timeline, and their three
//! renderings (human table, JSON, SVG plot).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::stats::{Interval, StatsError};

/// Percentiles of one distribution, in the unit named by the field that holds it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Percentiles {
    /// Summarises `h`, dividing every value by `scale` (e.g. µs → ms).
    pub fn of(h: &Histogram<u64>, scale: f64) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        let q = |p: f64| h.value_at_quantile(p) as f64 / scale;
        Percentiles {
            count: h.len(),
            min: h.min() as f64 / scale,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: h.max() as f64 / scale,
            mean: h.mean() / scale,
        }
    }
}

/// One second of the run, all workers merged.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Second {
    /// Seconds since the run start.
    pub second: u32,
    /// Viewers connected at the end of this second.
    pub viewers_up: u64,
    /// Publishers connected at the end of this second.
    pub publishers_up: u64,
    /// Viewers' received throughput, Mbit/s.
    pub mbps: f64,
    /// Latency percentiles of frames received this second, ms.
    pub latency_ms: Percentiles,
    /// Failures this second.
    pub failures: u64,
    /// Stalls that ended this second.
    pub stalls: u64,
    /// Frames found missing this second.
    pub missing_frames: u64,
    /// HLS/DASH requests answered this second (ok or not).
    pub requests: u64,
    /// TLS handshakes completed this second.
    pub tls_handshakes: u64,
}

impl Second {
    /// Summarises one merged interval.
    pub fn of(second: u32, iv: &Interval) -> Self {
        Second {
            second,
            viewers_up: iv.counters.viewers_up,
            publishers_up: iv.counters.publishers_up,
            mbps: iv.counters.bytes_received as f64 * 8.0 / 1e6,
            latency_ms: Percentiles::of(&iv.hist.latency_us, 1000.0),
            failures: iv.failures.total(),
            stalls: iv.counters.stalls,
            missing_frames: iv.counters.missing_frames,
            requests: iv.requests.total(),
            tls_handshakes: iv.counters.tls_handshakes,
        }
    }
}

/// Merges worker lines into per-second buckets and run totals.
#[derive(Debug, Default)]
pub struct Merger {
    seconds: BTreeMap<u32, Interval>,
    lines_per_second: BTreeMap<u32, usize>,
    total: Interval,
}

impl Merger {
    /// Adds one worker's interval line.
    pub fn add_line(&mut self, line: &str) -> Result<u32, StatsError> {
        let (second, iv) = Interval::from_line(line)?;
        self.seconds.entry(second).or_default().add(&iv)?;
        *self.lines_per_second.entry(second).or_default() += 1;
        self.total.add(&iv)?;
        Ok(second)
    }

    /// The newest second for which all `workers` have reported.
    pub fn latest_complete(&self, workers: usize) -> Option<(u32, &Interval)> {
        let (&s, _) = self
            .lines_per_second
            .iter()
            .rev()
            .find(|(_, &n)| n >= workers)?;
        self.seconds.get(&s).map(|iv| (s, iv))
    }

    /// Everything merged, with the gauges of the last second.
    pub fn total(&self) -> Interval {
        let mut total = self.total.clone();
        let last = self.seconds.values().next_back();
        total.counters.viewers_up = last.map_or(0, |iv| iv.counters.viewers_up);
        total.counters.publishers_up = last.map_or(0, |iv| iv.counters.publishers_up);
        total
    }

    /// The timeline.
    pub fn timeline(&self) -> Vec<Second> {
        self.seconds
            .iter()
            .map(|(&s, iv)| Second::of(s, iv))
            .collect()
    }

    /// The highest viewers-up gauge of any second.
    pub fn peak_viewers(&self) -> u64 {
        self.seconds
            .values()
            .map(|iv| iv.counters.viewers_up)
            .max()
            .unwrap_or(0)
    }
}

/// Failures by phase and kind, for the JSON report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailureEntry {
    /// Phase.
    pub phase: String,
    /// Kind.
    pub kind: String,
    /// Count.
    pub count: u64,
}

/// HLS/DASH requests of one kind, for the JSON report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RequestEntry {
    /// Kind ([`crate::stats::RequestKind`]).
    pub kind: String,
    /// Answered with 200.
    pub ok: u64,
    /// Answered otherwise or not in time.
    pub errors: u64,
    /// Mean rate over the run, requests per second.
    pub per_sec: f64,
}

/// The whole report, as written by `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The command line's settings, as text.
    pub settings: BTreeMap<String, String>,
    /// Seconds the run lasted.
    pub duration_s: f64,
    /// Most viewers connected at once.
    pub peak_viewers: u64,
    /// Summed counters.
    pub counters: crate::stats::Counters,
    /// Failures by phase and kind.
    pub failures: Vec<FailureEntry>,
    /// HLS/DASH requests by kind (empty for HTTP-FLV and RTMP runs).
    pub requests: Vec<RequestEntry>,
    /// Mean received throughput over the run, Mbit/s.
    pub mean_mbps: f64,
    /// End-to-end latency, ms.
    pub latency_ms: Percentiles,
    /// Connect start to first keyframe, ms.
    pub startup_ms: Percentiles,
    /// Connect start to TLS handshake done, ms (`https://`, `rtmps://`; empty otherwise).
    pub tls_handshake_ms: Percentiles,
    /// TLS handshakes completed per second over the run.
    pub tls_handshakes_per_sec: f64,
    /// Stall lengths, ms.
    pub stall_ms: Percentiles,
    /// Video frames per GOP as received.
    pub gop_frames: Percentiles,
    /// loadgen's own loop turns, ms: near the stall threshold means loadgen is the limit.
    pub loadgen_turn_ms: Percentiles,
    /// Per second.
    pub timeline: Vec<Second>,
}

impl Report {
    /// Builds the report from merged results.
    pub fn build(merger: &Merger, settings: BTreeMap<String, String>, duration_s: f64) -> Self {
        let total = merger.total();
        let failures = total
            .failures
            .entries()
            .into_iter()
            .map(|(p, k, n)| FailureEntry {
                phase: p.to_string(),
                kind: k.to_string(),
                count: n,
            })
            .collect();
        let requests = crate::stats::RequestKind::ALL
            .iter()
            .map(|&k| {
                let (ok, errors) = (
                    total.requests.ok[k as usize],
                    total.requests.errors[k as usize],
                );
                RequestEntry {
                    kind: k.to_string(),
                    ok,
                    errors,
                    per_sec: if duration_s > 0.0 {
                        (ok + errors) as f64 / duration_s
                    } else {
                        0.0
                    },
                }
            })
            .filter(|e| e.ok + e.errors > 0)
            .collect();
        Report {
            settings,
            duration_s,
            requests,
            peak_viewers: merger.peak_viewers(),
            counters: total.counters,
            failures,
            mean_mbps: if duration_s > 0.0 {
                total.counters.bytes_received as f64 * 8.0 / 1e6 / duration_s
            } else {
                0.0
            },
            latency_ms: Percentiles::of(&total.hist.latency_us, 1000.0),
            startup_ms: Percentiles::of(&total.hist.startup_ms, 1.0),
            tls_handshake_ms: Percentiles::of(&total.hist.tls_handshake_us, 1000.0),
            tls_handshakes_per_sec: if duration_s > 0.0 {
                total.counters.tls_handshakes as f64 / duration_s
            } else {
                0.0
            },
            stall_ms: Percentiles::of(&total.hist.stall_ms, 1.0),
            gop_frames: Percentiles::of(&total.hist.gop_frames, 1.0),
            loadgen_turn_ms: Percentiles::of(&total.hist.turn_us, 1000.0),
            timeline: merger.timeline(),
        }
    }

    /// The human table printed at the end of a run.
    pub fn table(&self) -> String {
        let c = &self.counters;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "loadgen: {:.1} s, peak {} viewers, {} publishers at end",
            self.duration_s, self.peak_viewers, c.publishers_up
        );
        let _ = writeln!(
            s,
            "  viewers started   {:>12}   playing (got a keyframe) {}",
            c.viewers_started, c.viewers_playing
        );
        let _ = writeln!(
            s,
            "  received          {:>12} B   mean {:.1} Mbit/s",
            c.bytes_received, self.mean_mbps
        );
        let _ = writeln!(
            s,
            "  video frames      {:>12}   keyframes {}   audio frames {}",
            c.video_frames, c.keyframes, c.audio_frames
        );
        let _ = writeln!(
            s,
            "  stamped frames    {:>12}   missing {}   sequence resets {}",
            c.stamped_frames, c.missing_frames, c.sequence_resets
        );
        let _ = writeln!(
            s,
            "  stalls            {:>12}   byte-level stalls {}",
            c.stalls, c.byte_stalls
        );
        if c.reconnects > 0 {
            let _ = writeln!(
                s,
                "  HLS connections closed by the server and reopened {}",
                c.reconnects
            );
        }
        if c.late_reads > 0 {
            let _ = writeln!(
                s,
                "  setup deadlines passed with the answer unread (loadgen lag) {}",
                c.late_reads
            );
        }
        if c.tls_handshakes > 0 {
            let _ = writeln!(
                s,
                "  TLS handshakes    {:>12}   {:.0}/s",
                c.tls_handshakes, self.tls_handshakes_per_sec
            );
        }
        if c.published_frames > 0 {
            let _ = writeln!(
                s,
                "  published         {:>12} frames, {} B",
                c.published_frames, c.published_bytes
            );
        }
        let _ = writeln!(
            s,
            "  {:<18}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>10}",
            "", "p50", "p90", "p99", "p99.9", "max", "mean", "samples"
        );
        let tls = (self.tls_handshake_ms.count > 0)
            .then_some(("TLS handshake ms", &self.tls_handshake_ms));
        for (name, p) in [
            Some(("latency ms", &self.latency_ms)),
            Some(("startup ms", &self.startup_ms)),
            tls,
            Some(("stall ms", &self.stall_ms)),
            Some(("GOP frames", &self.gop_frames)),
            Some(("loadgen turn ms", &self.loadgen_turn_ms)),
        ]
        .into_iter()
        .flatten()
        {
            let _ = writeln!(
                s,
                "  {:<18}{:>9.1}{:>9.1}{:>9.1}{:>9.1}{:>9.1}{:>9.1}{:>10}",
                name, p.p50, p.p90, p.p99, p.p999, p.max, p.mean, p.count
            );
        }
        for r in &self.requests {
            let _ = writeln!(
                s,
                "  requests {:<15}{:>10} ok {:>8} errors {:>10.1}/s",
                r.kind, r.ok, r.errors, r.per_sec
            );
        }
        if self.failures.is_empty() {
            let _ = writeln!(s, "  failures          none");
        } else {
            for f in &self.failures {
                let _ = writeln!(
                    s,
                    "  failure  {:<10} {:<11} {:>10}",
                    f.phase, f.kind, f.count
                );
            }
        }
        s
    }

    /// Renders viewers and latency percentiles over time as an SVG document.
    pub fn svg(&self) -> anyhow::Result<String> {
        use plotters::prelude::*;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (960, 640)).into_drawing_area();
            root.fill(&WHITE)?;
            let (top, bottom) = root.split_vertically(320);
            let last = self.timeline.last().map_or(1, |s| s.second.max(1)) as f64;
            let peak = self
                .timeline
                .iter()
                .map(|s| s.viewers_up)
                .max()
                .unwrap_or(1)
                .max(1) as f64;
            let mut viewers = ChartBuilder::on(&top)
                .caption("viewers connected", ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..last, 0f64..peak * 1.1)?;
            viewers.configure_mesh().x_desc("s").draw()?;
            viewers.draw_series(LineSeries::new(
                self.timeline
                    .iter()
                    .map(|s| (s.second as f64, s.viewers_up as f64)),
                &BLUE,
            ))?;
            let lat_max = self
                .timeline
                .iter()
                .map(|s| s.latency_ms.p99)
                .fold(1.0f64, f64::max);
            let mut latency = ChartBuilder::on(&bottom)
                .caption("latency ms (p50, p90, p99)", ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..last, 0f64..lat_max * 1.1)?;
            latency.configure_mesh().x_desc("s").draw()?;
            let with_samples: Vec<&Second> = self
                .timeline
                .iter()
                .filter(|s| s.latency_ms.count > 0)
                .collect();
            for (pick, color, label) in [(0usize, GREEN, "p50"), (1, BLUE, "p90"), (2, RED, "p99")]
            {
                let series = with_samples.iter().map(|s| {
                    let l = &s.latency_ms;
                    (s.second as f64, [l.p50, l.p90, l.p99][pick])
                });
                latency
                    .draw_series(LineSeries::new(series, &color))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
            latency
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE)
                .draw()?;
            root.present()?;
        }
        Ok(svg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{FailureKind, Phase};

    fn line(second: u32, up: u64, latency_ms: &[u64], fail: bool) -> String {
        let mut iv = Interval::default();
        iv.counters.viewers_up = up;
        iv.counters.bytes_received = 125_000;
        iv.counters.viewers_started = up;
        for l in latency_ms {
            iv.hist.latency_us.record(l * 1000).unwrap();
        }
        if fail {
            iv.failures.record(Phase::Request, FailureKind::HttpStatus);
            iv.requests
                .record(crate::stats::RequestKind::BlockingReload, false);
        }
        iv.requests.record(crate::stats::RequestKind::Part, true);
        iv.to_line(second).unwrap()
    }

    #[test]
    fn merges_workers_per_second_and_overall() {
        let mut m = Merger::default();
        m.add_line(&line(0, 10, &[100, 200], false)).unwrap();
        m.add_line(&line(0, 5, &[300], true)).unwrap();
        m.add_line(&line(1, 10, &[100], false)).unwrap();
        assert_eq!(m.latest_complete(2).map(|(s, _)| s), Some(0));
        assert_eq!(m.latest_complete(1).map(|(s, _)| s), Some(1));
        let tl = m.timeline();
        assert_eq!(tl.len(), 2);
        assert_eq!(tl[0].viewers_up, 15);
        assert!((tl[0].mbps - 2.0).abs() < 1e-9);
        assert_eq!(tl[0].failures, 1);
        assert_eq!(tl[0].latency_ms.count, 3);
        let r = Report::build(&m, BTreeMap::new(), 2.0);
        assert_eq!(r.peak_viewers, 15);
        assert_eq!(r.counters.viewers_up, 10, "gauge from the last second");
        assert_eq!(r.latency_ms.count, 4);
        assert_eq!(
            r.failures,
            vec![FailureEntry {
                phase: "Request".into(),
                kind: "HttpStatus".into(),
                count: 1
            }]
        );
        let table = r.table();
        assert!(
            table.contains("latency ms") && table.contains("HttpStatus"),
            "{table}"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["timeline"][1]["second"], 1);
        assert_eq!(json["timeline"][0]["requests"], 3);
        assert_eq!(json["requests"][0]["kind"], "BlockingReload");
        assert_eq!(json["requests"][0]["errors"], 1);
        assert_eq!(json["requests"][1]["kind"], "Part");
        assert_eq!(json["requests"][1]["ok"], 3);
        assert!(table.contains("requests Part"), "{table}");
    }

    #[test]
    fn svg_plot_has_both_panels() {
        let mut m = Merger::default();
        for s in 0..5 {
            m.add_line(&line(s, 10 * s as u64, &[100 + s as u64, 300], false))
                .unwrap();
        }
        let svg = Report::build(&m, BTreeMap::new(), 5.0).svg().unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("viewers connected") && svg.contains("p99"));
        assert!(
            svg.matches("<polyline").count() >= 4,
            "one viewers line and three latency lines"
        );
    }

    #[test]
    fn empty_run_still_renders() {
        let r = Report::build(&Merger::default(), BTreeMap::new(), 0.0);
        assert!(r.svg().is_ok());
        assert!(r.table().contains("failures          none"));
    }
}
