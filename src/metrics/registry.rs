//! The scrape side: sums every core's block into Prometheus metric families and
//! renders them in the text exposition format.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{Encoder as _, TextEncoder};

use super::labels::{
    AcceptErrorKind, CloseReason, DropReason, FailureSide, IngestSource, LabelValue, Listener,
    Protocol, RefuseReason,
};
use super::local::HistogramTotals;
use super::per_core::CoreMetrics;

/// `Content-Type` of the text exposition format served on `/metrics`.
pub const METRICS_CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Upper bound on the number of cores a registry accepts; a config asking for
/// more is a mistake, not a machine.
pub const MAX_CORES: usize = 1024;

/// Upper bound on the number of callback gauges, so a caller registering one per
/// stream by mistake fails loudly instead of growing the scrape without bound.
pub const MAX_GAUGE_FNS: usize = 256;

/// Upper bound on samples a single callback gauge may return per scrape.
pub const MAX_GAUGE_FN_SAMPLES: usize = 10_000;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The prometheus crate rejected a descriptor or failed to encode.
    #[error("prometheus: {0}")]
    Prometheus(#[from] prometheus::Error),
    /// More cores than [`MAX_CORES`].
    #[error("{cores} cores exceeds the limit of {limit}")]
    TooManyCores {
        /// Cores requested.
        cores: usize,
        /// The limit.
        limit: usize,
    },
    /// More callback gauges than [`MAX_GAUGE_FNS`].
    #[error("{count} callback gauges exceeds the limit of {limit}")]
    TooManyGaugeFns {
        /// Gauges that would be registered.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

/// One metric family this crate exports: its name, help, type and label names.
#[derive(Clone, Copy, Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
}

macro_rules! family {
    ($ident:ident, $name:literal, $kind:ident, [$($label:expr),*], $help:literal) => {
        const $ident: Family = Family {
            name: $name,
            help: $help,
            kind: MetricType::$kind,
            labels: &[$($label),*],
        };
    };
}

family!(
    BUILD_INFO,
    "ringcast_build_info",
    GAUGE,
    ["version"],
    "Always 1; the version label says which ringcast build is running."
);
family!(CORES, "ringcast_cores", GAUGE, [], "Reactor cores running.");
family!(
    PUBLISHERS,
    "ringcast_publishers",
    GAUGE,
    [],
    "Publishers connected."
);
family!(
    STREAMS,
    "ringcast_streams",
    GAUGE,
    [],
    "Live streams (publisher or origin pull), counted on their owning core."
);
family!(
    VIEWERS,
    "ringcast_viewers",
    GAUGE,
    [Protocol::LABEL],
    "Viewers attached, by egress protocol."
);
family!(
    OPEN_CONNECTIONS,
    "ringcast_open_connections",
    GAUGE,
    [Listener::LABEL],
    "Open client connections, by listener."
);
family!(
    ACCEPTED,
    "ringcast_connections_accepted_total",
    COUNTER,
    [Listener::LABEL],
    "Connections accepted, by listener."
);
family!(
    REFUSED,
    "ringcast_connections_refused_total",
    COUNTER,
    [RefuseReason::LABEL],
    "Connections or publish/play requests refused, by reason."
);
family!(
    CLOSED,
    "ringcast_connections_closed_total",
    COUNTER,
    [CloseReason::LABEL],
    "Connections closed, by reason."
);
family!(
    RECEIVED_BYTES,
    "ringcast_received_bytes_total",
    COUNTER,
    [IngestSource::LABEL],
    "Media payload bytes ingested, by source."
);
family!(
    RECEIVED_FRAMES,
    "ringcast_received_frames_total",
    COUNTER,
    [IngestSource::LABEL],
    "Media frames ingested, by source."
);
family!(
    SENT_BYTES,
    "ringcast_sent_bytes_total",
    COUNTER,
    [Protocol::LABEL],
    "Bytes sent to viewers including per-viewer headers, by protocol."
);
family!(
    SENT_FRAMES,
    "ringcast_sent_frames_total",
    COUNTER,
    [Protocol::LABEL],
    "Frames sent to viewers, one per viewer per frame, by protocol."
);
family!(
    DROPPED_FRAMES,
    "ringcast_dropped_frames_total",
    COUNTER,
    [DropReason::LABEL],
    "Frames not delivered to a viewer, by reason."
);
family!(
    SLOW_CLOSES,
    "ringcast_slow_viewer_closes_total",
    COUNTER,
    [],
    "Viewers closed for lagging past the hard bound."
);
family!(
    GOP_BYTES,
    "ringcast_gop_cache_bytes",
    GAUGE,
    [],
    "Bytes held by GOP caches, replicas on other cores included."
);
family!(
    BUSY_RATIO,
    "ringcast_reactor_busy_ratio",
    GAUGE,
    ["core"],
    "Fraction of the last second the reactor spent working rather than waiting."
);
family!(
    SENDS_PER_SUBMIT,
    "ringcast_reactor_sends_per_submit",
    GAUGE,
    ["core"],
    "Mean sends per io_uring submission over the last second."
);
family!(
    BUSY_SECONDS,
    "ringcast_reactor_busy_seconds_total",
    COUNTER,
    ["core"],
    "Time the reactor spent working."
);
family!(
    IDLE_SECONDS,
    "ringcast_reactor_idle_seconds_total",
    COUNTER,
    ["core"],
    "Time the reactor spent waiting for completions."
);
family!(
    SUBMITS,
    "ringcast_reactor_submits_total",
    COUNTER,
    ["core"],
    "io_uring submissions."
);
family!(
    SENDS,
    "ringcast_reactor_sends_total",
    COUNTER,
    ["core"],
    "Send operations submitted."
);
family!(
    FIXED_SENDS,
    "ringcast_reactor_fixed_buffer_sends_total",
    COUNTER,
    ["core"],
    "Zero-copy sends made from the core's registered region (fixed buffer)."
);
family!(
    LATENCY,
    "ringcast_server_latency_seconds",
    HISTOGRAM,
    [],
    "Time from a frame's arrival to the completion of a viewer send carrying it."
);
family!(
    ACCEPT_ERRORS,
    "ringcast_accept_errors_total",
    COUNTER,
    [AcceptErrorKind::LABEL],
    "Failed accepts, by errno class."
);
family!(
    FAILURES,
    "ringcast_failures_total",
    COUNTER,
    [FailureSide::LABEL],
    "Sessions ended by an error, by side."
);
family!(
    PULL_ATTEMPTS,
    "ringcast_origin_pull_attempts_total",
    COUNTER,
    [],
    "Origin pulls started, retries included."
);
family!(
    PULL_FAILURES,
    "ringcast_origin_pull_failures_total",
    COUNTER,
    [],
    "Origin pulls that failed to connect or broke."
);
family!(
    PULL_RECOVERIES,
    "ringcast_origin_pull_recoveries_total",
    COUNTER,
    [],
    "Origin pulls that delivered media again after failing."
);

/// Every family the core collector emits, in output order.
const FAMILIES: &[Family] = &[
    BUILD_INFO,
    CORES,
    PUBLISHERS,
    STREAMS,
    VIEWERS,
    OPEN_CONNECTIONS,
    ACCEPTED,
    REFUSED,
    CLOSED,
    RECEIVED_BYTES,
    RECEIVED_FRAMES,
    SENT_BYTES,
    SENT_FRAMES,
    DROPPED_FRAMES,
    SLOW_CLOSES,
    GOP_BYTES,
    BUSY_RATIO,
    SENDS_PER_SUBMIT,
    BUSY_SECONDS,
    IDLE_SECONDS,
    SUBMITS,
    SENDS,
    FIXED_SENDS,
    LATENCY,
    ACCEPT_ERRORS,
    FAILURES,
    PULL_ATTEMPTS,
    PULL_FAILURES,
    PULL_RECOVERIES,
];

/// Names of every metric family the per-core collector exports (for dashboards
/// and tests that check references against what is really exported).
pub fn exported_family_names() -> impl Iterator<Item = &'static str> {
    FAMILIES.iter().map(|f| f.name)
}

fn desc_for(f: &Family) -> Result<Desc, prometheus::Error> {
    Desc::new(
        f.name.to_owned(),
        f.help.to_owned(),
        f.labels.iter().map(|l| (*l).to_owned()).collect(),
        HashMap::new(),
    )
}

fn label_pairs(pairs: &[(&str, &str)]) -> Vec<proto::LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut lp = proto::LabelPair::default();
            lp.set_name((*k).to_owned());
            lp.set_value((*v).to_owned());
            lp
        })
        .collect()
}

fn sample(kind: MetricType, labels: &[(&str, &str)], value: f64) -> proto::Metric {
    let mut m = proto::Metric::default();
    m.set_label(label_pairs(labels));
    match kind {
        MetricType::COUNTER => {
            let mut c = proto::Counter::default();
            c.set_value(value);
            m.set_counter(c);
        }
        _ => {
            let mut g = proto::Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
    }
    m
}

fn family_of(f: &Family, metrics: Vec<proto::Metric>) -> MetricFamily {
    let mut mf = MetricFamily::default();
    mf.set_name(f.name.to_owned());
    mf.set_help(f.help.to_owned());
    mf.set_field_type(f.kind);
    mf.set_metric(metrics);
    mf
}

const NS_PER_SEC: f64 = 1e9;

/// Sums every core's [`CoreMetrics`] at collect time.
struct CoreSumCollector {
    cores: Vec<Arc<CoreMetrics>>,
    descs: Vec<Desc>,
}

impl CoreSumCollector {
    fn total(&self, f: &Family, get: impl Fn(&CoreMetrics) -> f64) -> MetricFamily {
        let v = self.cores.iter().map(|c| get(c)).sum();
        family_of(f, vec![sample(f.kind, &[], v)])
    }

    fn by_label<L: LabelValue>(
        &self,
        f: &Family,
        get: impl Fn(&CoreMetrics, L) -> f64,
    ) -> MetricFamily {
        let metrics = L::ALL
            .iter()
            .map(|&l| {
                let v = self.cores.iter().map(|c| get(c, l)).sum();
                sample(f.kind, &[(L::LABEL, l.as_str())], v)
            })
            .collect();
        family_of(f, metrics)
    }

    fn per_core(&self, f: &Family, get: impl Fn(&CoreMetrics) -> f64) -> MetricFamily {
        let metrics = self
            .cores
            .iter()
            .map(|c| {
                let core = c.core().to_string();
                sample(f.kind, &[("core", &core)], get(c))
            })
            .collect();
        family_of(f, metrics)
    }

    fn latency(&self) -> MetricFamily {
        let mut totals = HistogramTotals::default();
        for c in &self.cores {
            c.server_latency.accumulate_into(&mut totals);
        }
        let buckets = totals
            .cumulative_seconds()
            .into_iter()
            .map(|(bound, count)| {
                let mut b = proto::Bucket::default();
                b.set_upper_bound(bound);
                b.set_cumulative_count(count);
                b
            })
            .collect();
        let mut h = proto::Histogram::default();
        h.set_sample_count(totals.count());
        h.set_sample_sum(totals.sum_ns as f64 / NS_PER_SEC);
        h.set_bucket(buckets);
        let mut m = proto::Metric::default();
        m.set_histogram(h);
        family_of(&LATENCY, vec![m])
    }
}

impl Collector for CoreSumCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let secs = |ns: u64| ns as f64 / NS_PER_SEC;
        vec![
            family_of(
                &BUILD_INFO,
                vec![sample(
                    MetricType::GAUGE,
                    &[("version", env!("CARGO_PKG_VERSION"))],
                    1.0,
                )],
            ),
            family_of(
                &CORES,
                vec![sample(MetricType::GAUGE, &[], self.cores.len() as f64)],
            ),
            self.total(&PUBLISHERS, |c| c.publishers.get() as f64),
            self.total(&STREAMS, |c| c.streams.get() as f64),
            self.by_label(&VIEWERS, |c, l: Protocol| c.viewers.get(l) as f64),
            self.by_label(&OPEN_CONNECTIONS, |c, l: Listener| {
                c.open_connections.get(l) as f64
            }),
            self.by_label(&ACCEPTED, |c, l: Listener| {
                c.connections_accepted.get(l) as f64
            }),
            self.by_label(&REFUSED, |c, l: RefuseReason| {
                c.connections_refused.get(l) as f64
            }),
            self.by_label(&CLOSED, |c, l: CloseReason| {
                c.connections_closed.get(l) as f64
            }),
            self.by_label(&RECEIVED_BYTES, |c, l: IngestSource| {
                c.bytes_received.get(l) as f64
            }),
            self.by_label(&RECEIVED_FRAMES, |c, l: IngestSource| {
                c.frames_received.get(l) as f64
            }),
            self.by_label(&SENT_BYTES, |c, l: Protocol| c.bytes_sent.get(l) as f64),
            self.by_label(&SENT_FRAMES, |c, l: Protocol| c.frames_sent.get(l) as f64),
            self.by_label(&DROPPED_FRAMES, |c, l: DropReason| {
                c.frames_dropped.get(l) as f64
            }),
            self.total(&SLOW_CLOSES, |c| c.slow_viewer_closes.get() as f64),
            self.total(&GOP_BYTES, |c| c.gop_cache_bytes.get() as f64),
            self.per_core(&BUSY_RATIO, |c| c.reactor.busy_ratio()),
            self.per_core(&SENDS_PER_SUBMIT, |c| c.reactor.sends_per_submit()),
            self.per_core(&BUSY_SECONDS, |c| secs(c.reactor.busy_ns())),
            self.per_core(&IDLE_SECONDS, |c| secs(c.reactor.idle_ns())),
            self.per_core(&SUBMITS, |c| c.reactor.submits() as f64),
            self.per_core(&SENDS, |c| c.reactor.sends() as f64),
            self.per_core(&FIXED_SENDS, |c| c.reactor.fixed_sends() as f64),
            self.latency(),
            self.by_label(&ACCEPT_ERRORS, |c, l: AcceptErrorKind| {
                c.accept_errors.get(l) as f64
            }),
            self.by_label(&FAILURES, |c, l: FailureSide| c.failures.get(l) as f64),
            self.total(&PULL_ATTEMPTS, |c| c.origin_pull_attempts.get() as f64),
            self.total(&PULL_FAILURES, |c| c.origin_pull_failures.get() as f64),
            self.total(&PULL_RECOVERIES, |c| c.origin_pull_recoveries.get() as f64),
        ]
    }
}

/// One sample returned by a callback gauge: label values (in the order of the
/// label names given at registration) and the value.
pub type GaugeSample = (Vec<String>, f64);

type GaugeFn = Box<dyn Fn() -> Vec<GaugeSample> + Send + Sync>;

/// A gauge whose value is read from a callback at scrape time, for state that
/// already lives somewhere else (the stream directory, the config).
struct GaugeFnCollector {
    desc: Desc,
    labels: Vec<String>,
    read: GaugeFn,
}

impl Collector for GaugeFnCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut samples = (self.read)();
        if samples.len() > MAX_GAUGE_FN_SAMPLES {
            tracing::warn!(
                metric = %self.desc.fq_name,
                samples = samples.len(),
                limit = MAX_GAUGE_FN_SAMPLES,
                "callback gauge returned too many samples; truncating"
            );
            samples.truncate(MAX_GAUGE_FN_SAMPLES);
        }
        let metrics = samples
            .into_iter()
            .filter(|(values, _)| values.len() == self.labels.len())
            .map(|(values, v)| {
                let pairs: Vec<(&str, &str)> = self
                    .labels
                    .iter()
                    .map(String::as_str)
                    .zip(values.iter().map(String::as_str))
                    .collect();
                sample(MetricType::GAUGE, &pairs, v)
            })
            .collect();
        let mut mf = MetricFamily::default();
        mf.set_name(self.desc.fq_name.clone());
        mf.set_help(self.desc.help.clone());
        mf.set_field_type(MetricType::GAUGE);
        mf.set_metric(metrics);
        vec![mf]
    }
}

/// Holds every core's [`CoreMetrics`] and renders `/metrics`.
///
/// Built once at start with one block per core; each core takes its
/// `Arc<CoreMetrics>` with [`MetricsRegistry::core`]. Scraping only reads.
pub struct MetricsRegistry {
    cores: Vec<Arc<CoreMetrics>>,
    registry: prometheus::Registry,
    gauge_fns: usize,
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRegistry")
            .field("cores", &self.cores.len())
            .field("gauge_fns", &self.gauge_fns)
            .finish()
    }
}

impl MetricsRegistry {
    /// A registry with a zeroed block for each of `cores` cores (indices `0..cores`).
    pub fn new(cores: usize) -> Result<Self, MetricsError> {
        if cores > MAX_CORES {
            return Err(MetricsError::TooManyCores {
                cores,
                limit: MAX_CORES,
            });
        }
        let cores: Vec<Arc<CoreMetrics>> =
            (0..cores).map(|i| Arc::new(CoreMetrics::new(i))).collect();
        let descs = FAMILIES
            .iter()
            .map(desc_for)
            .collect::<Result<Vec<_>, _>>()?;
        let registry = prometheus::Registry::default();
        registry.register(Box::new(CoreSumCollector {
            cores: cores.clone(),
            descs,
        }))?;
        Ok(Self {
            cores,
            registry,
            gauge_fns: 0,
        })
    }

    /// Core `index`'s block, to be moved to that core's thread.
    pub fn core(&self, index: usize) -> Option<Arc<CoreMetrics>> {
        self.cores.get(index).cloned()
    }

    /// Every core's block, in core order (for summaries such as the API's
    /// connection counts).
    pub fn cores(&self) -> impl Iterator<Item = &CoreMetrics> {
        self.cores.iter().map(|c| &**c)
    }

    /// Number of per-core blocks.
    pub fn core_count(&self) -> usize {
        self.cores.len()
    }

    /// Adds a gauge read from `read` at every scrape. `read` returns one
    /// `(label values, value)` per series; samples whose label count differs from
    /// `label_names` are skipped. `read` runs on the scraping thread, so it must
    /// only read shared state (atomics, snapshots), never block on a core.
    pub fn register_gauge_fn(
        &mut self,
        name: &str,
        help: &str,
        label_names: &[&str],
        read: impl Fn() -> Vec<GaugeSample> + Send + Sync + 'static,
    ) -> Result<(), MetricsError> {
        if self.gauge_fns >= MAX_GAUGE_FNS {
            return Err(MetricsError::TooManyGaugeFns {
                count: self.gauge_fns + 1,
                limit: MAX_GAUGE_FNS,
            });
        }
        let labels: Vec<String> = label_names.iter().map(|l| (*l).to_owned()).collect();
        let desc = Desc::new(
            name.to_owned(),
            help.to_owned(),
            labels.clone(),
            HashMap::new(),
        )?;
        self.registry.register(Box::new(GaugeFnCollector {
            desc,
            labels,
            read: Box::new(read),
        }))?;
        self.gauge_fns += 1;
        Ok(())
    }

    /// The underlying prometheus registry, for registering ordinary
    /// `prometheus` metrics that are not on any hot path.
    pub fn prometheus_registry(&self) -> &prometheus::Registry {
        &self.registry
    }

    /// Every metric family, summed over cores.
    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }

    /// Appends the text exposition of every metric to `out`.
    pub fn render_into(&self, out: &mut String) -> Result<(), MetricsError> {
        let families = self.gather();
        TextEncoder::new().encode_utf8(&families, out)?;
        Ok(())
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Result<String, MetricsError> {
        let mut out = String::with_capacity(16 * 1024);
        self.render_into(&mut out)?;
        Ok(out)
    }

    /// Same as [`MetricsRegistry::render`], as bytes through the generic encoder
    /// interface (for callers writing into a byte buffer).
    pub fn render_bytes(&self, out: &mut Vec<u8>) -> Result<(), MetricsError> {
        TextEncoder::new().encode(&self.gather(), out)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(series) && l.as_bytes().get(series.len()) == Some(&b' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn sums_counters_across_cores() {
        let reg = MetricsRegistry::new(2).unwrap();
        let a = reg.core(0).unwrap();
        let b = reg.core(1).unwrap();
        a.frames_sent.add(Protocol::HttpFlv, 3);
        b.frames_sent.add(Protocol::HttpFlv, 4);
        b.viewers.inc(Protocol::Rtmp);
        a.connections_closed.inc(CloseReason::SlowViewer);
        let text = reg.render().unwrap();
        assert_eq!(
            line_value(&text, "ringcast_sent_frames_total{protocol=\"http_flv\"}"),
            Some(7.0)
        );
        assert_eq!(
            line_value(&text, "ringcast_viewers{protocol=\"rtmp\"}"),
            Some(1.0)
        );
        assert_eq!(
            line_value(
                &text,
                "ringcast_connections_closed_total{reason=\"slow_viewer\"}"
            ),
            Some(1.0)
        );
        assert_eq!(line_value(&text, "ringcast_cores"), Some(2.0));
    }

    #[test]
    fn reactor_series_carry_core_label() {
        let reg = MetricsRegistry::new(2).unwrap();
        let b = reg.core(1).unwrap();
        b.reactor.record_submit(8);
        b.reactor.record_turn(500_000_000, 500_000_000);
        let text = reg.render().unwrap();
        assert_eq!(
            line_value(&text, "ringcast_reactor_busy_ratio{core=\"1\"}"),
            Some(0.5)
        );
        assert_eq!(
            line_value(&text, "ringcast_reactor_busy_ratio{core=\"0\"}"),
            Some(0.0)
        );
        assert_eq!(
            line_value(&text, "ringcast_reactor_sends_per_submit{core=\"1\"}"),
            Some(8.0)
        );
        assert_eq!(
            line_value(&text, "ringcast_reactor_busy_seconds_total{core=\"1\"}"),
            Some(0.5)
        );
    }

    #[test]
    fn latency_histogram_is_cumulative_and_in_seconds() {
        let reg = MetricsRegistry::new(2).unwrap();
        reg.core(0).unwrap().server_latency.observe_ns(80_000);
        reg.core(1).unwrap().server_latency.observe_ns(2_000_000);
        reg.core(1)
            .unwrap()
            .server_latency
            .observe_ns(20_000_000_000);
        let text = reg.render().unwrap();
        assert_eq!(
            line_value(
                &text,
                "ringcast_server_latency_seconds_bucket{le=\"0.0001\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            line_value(
                &text,
                "ringcast_server_latency_seconds_bucket{le=\"0.0025\"}"
            ),
            Some(2.0)
        );
        assert_eq!(
            line_value(&text, "ringcast_server_latency_seconds_bucket{le=\"+Inf\"}"),
            Some(3.0)
        );
        assert_eq!(
            line_value(&text, "ringcast_server_latency_seconds_count"),
            Some(3.0)
        );
        let sum = line_value(&text, "ringcast_server_latency_seconds_sum").unwrap();
        assert!((sum - 20.00208).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn every_family_is_rendered_with_help_and_type() {
        let reg = MetricsRegistry::new(1).unwrap();
        let text = reg.render().unwrap();
        for name in exported_family_names() {
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} missing HELP"
            );
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing TYPE"
            );
        }
        assert!(text.contains("ringcast_build_info{version=\""));
    }

    #[test]
    fn gauge_fn_is_read_at_scrape_and_bad_samples_skipped() {
        let mut reg = MetricsRegistry::new(1).unwrap();
        reg.register_gauge_fn(
            "ringcast_directory_streams",
            "Streams in the directory.",
            &["app"],
            || {
                vec![
                    (vec!["live".to_owned()], 2.0),
                    (vec!["a".to_owned(), "b".to_owned()], 9.0), // wrong label count
                ]
            },
        )
        .unwrap();
        let text = reg.render().unwrap();
        assert_eq!(
            line_value(&text, "ringcast_directory_streams{app=\"live\"}"),
            Some(2.0)
        );
        assert!(
            !text.contains("app=\"a\""),
            "sample with wrong labels must be skipped: {text}"
        );
        assert_eq!(text.matches("ringcast_directory_streams{").count(), 1);
    }

    #[test]
    fn invalid_gauge_name_and_duplicates_are_errors() {
        let mut reg = MetricsRegistry::new(1).unwrap();
        assert!(reg
            .register_gauge_fn("bad name", "x", &[], Vec::new)
            .is_err());
        // Clashes with a family the core collector already exports.
        assert!(reg
            .register_gauge_fn("ringcast_streams", "x", &[], Vec::new)
            .is_err());
    }

    #[test]
    fn concurrent_scrapes_see_monotonic_values_and_exact_final_sums() {
        const PER_CORE: u64 = 200_000;
        let reg = std::sync::Arc::new(MetricsRegistry::new(2).unwrap());
        let writers: Vec<_> = (0..2)
            .map(|i| {
                let m = reg.core(i).unwrap();
                std::thread::spawn(move || {
                    for _ in 0..PER_CORE {
                        m.bytes_sent.add(Protocol::HttpFlv, 3);
                    }
                })
            })
            .collect();
        let series = "ringcast_sent_bytes_total{protocol=\"http_flv\"}";
        let mut last = 0.0;
        for _ in 0..20 {
            let v = line_value(&reg.render().unwrap(), series).unwrap();
            assert!(v >= last, "counter went backwards: {last} -> {v}");
            last = v;
        }
        for w in writers {
            w.join().unwrap();
        }
        let total = line_value(&reg.render().unwrap(), series).unwrap();
        assert_eq!(
            total,
            (2 * 3 * PER_CORE) as f64,
            "single-writer increments must not be lost"
        );
    }

    #[test]
    fn registry_and_blocks_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<MetricsRegistry>();
        shareable::<CoreMetrics>();
    }

    #[test]
    fn core_count_is_bounded() {
        assert!(matches!(
            MetricsRegistry::new(MAX_CORES + 1),
            Err(MetricsError::TooManyCores { cores, limit: MAX_CORES }) if cores == MAX_CORES + 1
        ));
        let reg = MetricsRegistry::new(0).unwrap();
        assert!(reg.core(0).is_none());
        assert!(reg.render().is_ok());
    }
}
