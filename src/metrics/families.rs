//! The metric families this crate exports (name, help, type, label names) and
//! the helpers that build a family's samples; the collector fills them in at
//! scrape time. A new metric is a `family!` here, an entry in [`FAMILIES`] and a
//! line in the collector.

use std::collections::HashMap;

use prometheus::core::Desc;
use prometheus::proto::{self, MetricFamily, MetricType};

use super::labels::{
    AcceptErrorKind, AuthRefusal, CloseReason, DropReason, FailureSide, HlsKind, HlsStatus,
    HookActionLabel, HookResultLabel, IngestSource, LabelValue, Listener, Protocol, RefuseReason,
    TlsHandshakeResult, WsCloseLabel,
};

/// One metric family this crate exports: its name, help, type and label names.
#[derive(Clone, Copy, Debug)]
pub(super) struct Family {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) kind: MetricType,
    pub(super) labels: &'static [&'static str],
}

macro_rules! family {
    ($ident:ident, $name:literal, $kind:ident, [$($label:expr),*], $help:literal) => {
        pub(super) const $ident: Family = Family {
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
    AUTH_REFUSED,
    "ringcast_auth_refused_total",
    COUNTER,
    [AuthRefusal::LABEL],
    "Publish or play requests refused by [auth] (signed URLs, HTTP hooks), by reason."
);
family!(
    WS_CLOSES,
    "ringcast_websocket_closes_total",
    COUNTER,
    [WsCloseLabel::LABEL],
    "WebSocket-FLV connections closed with a close frame, by reason."
);
family!(
    TLS_HANDSHAKES,
    "ringcast_tls_handshakes_total",
    COUNTER,
    [TlsHandshakeResult::LABEL],
    "TLS handshakes on the HTTPS and RTMPS listeners, by result (ok, failed, plaintext, timeout)."
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
    "CPU share (user + system) of the core thread over the last second of wall time."
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
    "CPU time (user + system) of the core thread."
);
family!(
    IDLE_SECONDS,
    "ringcast_reactor_idle_seconds_total",
    COUNTER,
    ["core"],
    "Wall time the core thread did not use the CPU (waiting, or not scheduled)."
);
family!(
    SUBMITS,
    "ringcast_reactor_submits_total",
    COUNTER,
    ["core"],
    "io_uring_enter calls that submitted work (a turn's, and any made when the queue filled)."
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
    SEND_BYTES,
    "ringcast_reactor_send_bytes",
    HISTOGRAM,
    ["core"],
    "Bytes per send, as first handed to the kernel."
);
family!(
    SEND_FRAMES,
    "ringcast_reactor_send_frames",
    HISTOGRAM,
    ["core"],
    "Media frames per send, as first handed to the kernel."
);
family!(
    SENDS_PER_VIEWER,
    "ringcast_reactor_sends_per_viewer_per_second",
    GAUGE,
    ["core"],
    "Sends per second per viewer of the core over the last second."
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
family!(
    HOOK_REQUESTS,
    "ringcast_hook_requests_total",
    COUNTER,
    [HookActionLabel::LABEL, HookResultLabel::LABEL],
    "HTTP hook questions, by action and result (coalesced and cached ones sent no request)."
);
family!(
    HOOK_LATENCY,
    "ringcast_hook_latency_seconds",
    HISTOGRAM,
    [],
    "Time from an HTTP hook request's start to its answer, error or timeout."
);

family!(
    HLS_REQUESTS,
    "ringcast_hls_requests_total",
    COUNTER,
    [HlsKind::LABEL],
    "HLS/DASH requests, by kind (multivariant, media_playlist, blocking_reload, part, segment, init, mpd, ts_playlist, ts_segment)."
);
family!(
    HLS_BYTES,
    "ringcast_hls_response_bytes_total",
    COUNTER,
    [HlsKind::LABEL],
    "HLS/DASH response body bytes queued, by kind."
);
family!(
    HLS_ERRORS,
    "ringcast_hls_errors_total",
    COUNTER,
    [HlsStatus::LABEL],
    "HLS/DASH error responses, by status."
);
family!(
    HLS_WAITERS,
    "ringcast_hls_waiters",
    GAUGE,
    [],
    "HLS requests held now (blocking reloads, preload hints, streamed DASH segments, waits for another core's view)."
);
family!(
    HLS_PACKAGER_SECONDS,
    "ringcast_hls_packager_seconds_total",
    COUNTER,
    [],
    "Time spent packaging (HLS/DASH packagers, wall time on the owner core)."
);
family!(
    HLS_COPIES,
    "ringcast_hls_copies",
    GAUGE,
    ["core"],
    "Streams a core serves HLS/DASH for from the owner core's views (per core)."
);

/// Every family the core collector emits, in output order.
pub(super) const FAMILIES: &[Family] = &[
    BUILD_INFO,
    CORES,
    PUBLISHERS,
    STREAMS,
    VIEWERS,
    OPEN_CONNECTIONS,
    ACCEPTED,
    REFUSED,
    AUTH_REFUSED,
    WS_CLOSES,
    TLS_HANDSHAKES,
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
    SEND_BYTES,
    SEND_FRAMES,
    SENDS_PER_VIEWER,
    LATENCY,
    ACCEPT_ERRORS,
    FAILURES,
    PULL_ATTEMPTS,
    PULL_FAILURES,
    PULL_RECOVERIES,
    HOOK_REQUESTS,
    HOOK_LATENCY,
    HLS_REQUESTS,
    HLS_BYTES,
    HLS_ERRORS,
    HLS_WAITERS,
    HLS_PACKAGER_SECONDS,
    HLS_COPIES,
];

/// Names of every metric family the per-core collector exports (for dashboards
/// and tests that check references against what is really exported).
pub fn exported_family_names() -> impl Iterator<Item = &'static str> {
    FAMILIES.iter().map(|f| f.name)
}

pub(super) fn desc_for(f: &Family) -> Result<Desc, prometheus::Error> {
    Desc::new(
        f.name.to_owned(),
        f.help.to_owned(),
        f.labels.iter().map(|l| (*l).to_owned()).collect(),
        HashMap::new(),
    )
}

pub(super) fn label_pairs(pairs: &[(&str, &str)]) -> Vec<proto::LabelPair> {
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

pub(super) fn sample(kind: MetricType, labels: &[(&str, &str)], value: f64) -> proto::Metric {
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

pub(super) fn family_of(f: &Family, metrics: Vec<proto::Metric>) -> MetricFamily {
    let mut mf = MetricFamily::default();
    mf.set_name(f.name.to_owned());
    mf.set_help(f.help.to_owned());
    mf.set_field_type(f.kind);
    mf.set_metric(metrics);
    mf
}
