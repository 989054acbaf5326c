//! Core-local metrics, summed at scrape time.
//!
//! Each reactor core owns a [`CoreMetrics`] block of single-writer counters,
//! gauges and a latency histogram; it bumps them with relaxed load+store (no lock,
//! no read-modify-write atomic, no shared cache line). The [`MetricsRegistry`]
//! holds every core's block and, when scraped, sums them into Prometheus metric
//! families and renders the text exposition format with the `prometheus` crate.
//!
//! Also here: [`check_rlimits`], the start-up check that the process may open as
//! many descriptors and lock as much memory as its configuration needs.

mod collector;
mod families;
mod labels;
mod local;
mod per_core;
mod registry;
mod rlimits;

pub use self::collector::GaugeSample;
pub use self::families::exported_family_names;
pub use self::labels::{
    AcceptErrorKind, AuthRefusal, CloseReason, DropReason, FailureSide, HlsKind, HlsStatus,
    HookActionLabel, HookResultLabel, IngestSource, LabelValue, LabeledCounters, LabeledGauges,
    Listener, Protocol, RefuseReason, TlsHandshakeResult, WsCloseLabel,
};
pub use self::local::{
    HistogramTotals, LocalCounter, LocalGauge, LocalHistogram, LocalRatio, ValueHistogram,
    LATENCY_BUCKETS_NS, LATENCY_BUCKET_COUNT, SEND_BYTES_BUCKETS, SEND_FRAMES_BUCKETS,
};
pub use self::per_core::{
    CoreMetrics, HlsMetrics, ReactorMetrics, SendBytesHistogram, SendFramesHistogram,
    REACTOR_WINDOW_NS,
};
pub use self::registry::{
    MetricsError, MetricsRegistry, MAX_CORES, MAX_GAUGE_FNS, MAX_GAUGE_FN_SAMPLES,
    METRICS_CONTENT_TYPE,
};
pub use self::rlimits::{check_rlimits, raise_nofile_limit, RlimitError};
