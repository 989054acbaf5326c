//! The collectors run at scrape time: one sums every core's single-writer
//! [`CoreMetrics`] cells into the families of [`super::families`], the other
//! reads a callback gauge.

use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};

use super::families::*;
use super::labels::{
    AcceptErrorKind, AuthRefusal, CloseReason, DropReason, FailureSide, HlsKind, HlsStatus,
    HookActionLabel, HookResultLabel, IngestSource, LabelValue, Listener, Protocol, RefuseReason,
    TlsHandshakeResult, WsCloseLabel,
};
use super::local::{HistogramTotals, LocalHistogram, ValueHistogram};
use super::per_core::CoreMetrics;
use super::registry::MAX_GAUGE_FN_SAMPLES;

const NS_PER_SEC: f64 = 1e9;

/// Sums every core's [`CoreMetrics`] at collect time.
pub(super) struct CoreSumCollector {
    pub(super) cores: Vec<Arc<CoreMetrics>>,
    pub(super) descs: Vec<Desc>,
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

    /// A per-core histogram of counts (bytes, frames per send).
    fn per_core_histogram<const N: usize>(
        &self,
        f: &Family,
        get: impl Fn(&CoreMetrics) -> &ValueHistogram<N>,
    ) -> MetricFamily {
        let metrics = self
            .cores
            .iter()
            .map(|c| {
                let hist = get(c);
                let buckets = hist
                    .cumulative()
                    .into_iter()
                    .map(|(bound, count)| {
                        let mut b = proto::Bucket::default();
                        b.set_upper_bound(bound as f64);
                        b.set_cumulative_count(count);
                        b
                    })
                    .collect();
                let mut h = proto::Histogram::default();
                h.set_sample_count(hist.count());
                h.set_sample_sum(hist.sum() as f64);
                h.set_bucket(buckets);
                let core = c.core().to_string();
                let mut m = proto::Metric::default();
                m.set_label(label_pairs(&[("core", &core)]));
                m.set_histogram(h);
                m
            })
            .collect();
        family_of(f, metrics)
    }

    /// Hook questions by action and result, summed over cores.
    fn hook_requests(&self) -> MetricFamily {
        let mut metrics = Vec::new();
        for &action in HookActionLabel::ALL {
            for &result in HookResultLabel::ALL {
                let v: u64 = self
                    .cores
                    .iter()
                    .filter_map(|c| c.hook_requests.get(action.index()))
                    .map(|by_result| by_result.get(result))
                    .sum();
                metrics.push(sample(
                    MetricType::COUNTER,
                    &[
                        (HookActionLabel::LABEL, action.as_str()),
                        (HookResultLabel::LABEL, result.as_str()),
                    ],
                    v as f64,
                ));
            }
        }
        family_of(&HOOK_REQUESTS, metrics)
    }

    fn latency(&self) -> MetricFamily {
        self.seconds_histogram(&LATENCY, |c| &c.server_latency)
    }

    /// A histogram of [`LocalHistogram`]s (ns observations) summed over cores, in seconds.
    fn seconds_histogram(
        &self,
        f: &Family,
        get: impl Fn(&CoreMetrics) -> &LocalHistogram,
    ) -> MetricFamily {
        let mut totals = HistogramTotals::default();
        for c in &self.cores {
            get(c).accumulate_into(&mut totals);
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
        family_of(f, vec![m])
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
            self.by_label(&AUTH_REFUSED, |c, l: AuthRefusal| {
                c.auth_refused.get(l) as f64
            }),
            self.by_label(&WS_CLOSES, |c, l: WsCloseLabel| c.ws_closes.get(l) as f64),
            self.by_label(&TLS_HANDSHAKES, |c, l: TlsHandshakeResult| {
                c.tls_handshakes.get(l) as f64
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
            self.per_core_histogram(&SEND_BYTES, |c| c.reactor.send_bytes()),
            self.per_core_histogram(&SEND_FRAMES, |c| c.reactor.send_frames()),
            self.per_core(&SENDS_PER_VIEWER, |c| c.reactor.sends_per_viewer_second()),
            self.latency(),
            self.by_label(&ACCEPT_ERRORS, |c, l: AcceptErrorKind| {
                c.accept_errors.get(l) as f64
            }),
            self.by_label(&FAILURES, |c, l: FailureSide| c.failures.get(l) as f64),
            self.total(&PULL_ATTEMPTS, |c| c.origin_pull_attempts.get() as f64),
            self.total(&PULL_FAILURES, |c| c.origin_pull_failures.get() as f64),
            self.total(&PULL_RECOVERIES, |c| c.origin_pull_recoveries.get() as f64),
            self.hook_requests(),
            self.seconds_histogram(&HOOK_LATENCY, |c| &c.hook_latency),
            self.by_label(&HLS_REQUESTS, |c, l: HlsKind| c.hls.requests.get(l) as f64),
            self.by_label(&HLS_BYTES, |c, l: HlsKind| {
                c.hls.response_bytes.get(l) as f64
            }),
            self.by_label(&HLS_ERRORS, |c, l: HlsStatus| c.hls.errors.get(l) as f64),
            self.total(&HLS_WAITERS, |c| c.hls.waiters.get() as f64),
            self.total(&HLS_PACKAGER_SECONDS, |c| secs(c.hls.packager_ns.get())),
            self.per_core(&HLS_COPIES, |c| c.hls.copies.get() as f64),
        ]
    }
}

/// One sample returned by a callback gauge: label values (in the order of the
/// label names given at registration) and the value.
pub type GaugeSample = (Vec<String>, f64);

pub(super) type GaugeFn = Box<dyn Fn() -> Vec<GaugeSample> + Send + Sync>;

/// A gauge whose value is read from a callback at scrape time, for state that
/// already lives somewhere else (the stream directory, the config).
pub(super) struct GaugeFnCollector {
    pub(super) desc: Desc,
    pub(super) labels: Vec<String>,
    pub(super) read: GaugeFn,
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
