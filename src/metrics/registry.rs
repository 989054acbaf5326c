//! The registry: holds every core's block and the prometheus registry its
//! collectors are registered with, and renders `/metrics` in the text
//! exposition format.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus::core::Desc;
use prometheus::proto::MetricFamily;
use prometheus::{Encoder as _, TextEncoder};

use super::collector::GaugeSample;
use super::collector::{CoreSumCollector, GaugeFnCollector};
use super::families::{desc_for, FAMILIES};
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
    use crate::metrics::{exported_family_names, CloseReason, Protocol};

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
        b.reactor.record_send(3_000, 2);
        b.reactor.record_cpu(500_000_000, 1_000_000_000, 2);
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
        assert_eq!(
            line_value(
                &text,
                "ringcast_reactor_sends_per_viewer_per_second{core=\"1\"}"
            ),
            Some(4.0)
        );
        assert_eq!(
            line_value(
                &text,
                "ringcast_reactor_send_bytes_bucket{core=\"1\",le=\"4096\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            line_value(&text, "ringcast_reactor_send_frames_sum{core=\"1\"}"),
            Some(2.0)
        );
        assert_eq!(
            line_value(&text, "ringcast_reactor_send_frames_count{core=\"0\"}"),
            Some(0.0)
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
