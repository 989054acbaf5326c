//! The per-core block of metrics: everything one reactor core counts, written only
//! by that core and read by the scraper.

use super::labels::{
    AcceptErrorKind, AuthRefusal, CloseReason, DropReason, FailureSide, HlsKind, HlsStatus,
    HookActionLabel, HookResultLabel, IngestSource, LabeledCounters, LabeledGauges, Listener,
    Protocol, RefuseReason, TlsHandshakeResult, WsCloseLabel,
};
use super::local::{
    LocalCounter, LocalGauge, LocalHistogram, LocalRatio, ValueHistogram, SEND_BYTES_BUCKETS,
    SEND_FRAMES_BUCKETS,
};

/// Length of the window over which the reactor busy ratio and sends-per-submit
/// gauges are computed. One second smooths single slow turns but still shows a
/// core saturating within a scrape interval.
pub const REACTOR_WINDOW_NS: u64 = 1_000_000_000;

/// Everything one core counts. Aligned to 128 bytes (two cache lines, because
/// adjacent-line prefetch pairs them) so that no other core's data shares its
/// lines: the owner's stores never bounce a line another core writes.
///
/// Fields are public so the owning core bumps them directly
/// (`m.frames_sent.inc(Protocol::Rtmp)`); every mutation is owner-only (see
/// `super::local`). Gauges count what this core owns: a stream replicated onto
/// this core for cross-core viewers is not counted in `streams` here, but its
/// viewers on this core are counted in `viewers`.
#[repr(align(128))]
#[derive(Debug)]
pub struct CoreMetrics {
    core: usize,
    /// Publishers connected to this core.
    pub publishers: LocalGauge,
    /// Streams this core owns (publisher or origin pull landed here).
    pub streams: LocalGauge,
    /// Viewers attached on this core, by egress protocol.
    pub viewers: LabeledGauges<Protocol, { Protocol::COUNT }>,
    /// Open connections on this core, by listener.
    pub open_connections: LabeledGauges<Listener, { Listener::COUNT }>,
    /// Connections accepted, by listener.
    pub connections_accepted: LabeledCounters<Listener, { Listener::COUNT }>,
    /// Connections or publish/play requests refused, by reason.
    pub connections_refused: LabeledCounters<RefuseReason, { RefuseReason::COUNT }>,
    /// Publish/play requests refused by `[auth]`, by reason.
    pub auth_refused: LabeledCounters<AuthRefusal, { AuthRefusal::COUNT }>,
    /// WebSocket-FLV connections closed with a close frame, by reason.
    pub ws_closes: LabeledCounters<WsCloseLabel, { WsCloseLabel::COUNT }>,
    /// TLS handshakes on the HTTPS and RTMPS listeners, by how they ended.
    pub tls_handshakes: LabeledCounters<TlsHandshakeResult, { TlsHandshakeResult::COUNT }>,
    /// Connections closed, by reason.
    pub connections_closed: LabeledCounters<CloseReason, { CloseReason::COUNT }>,
    /// Media payload bytes ingested, by source.
    pub bytes_received: LabeledCounters<IngestSource, { IngestSource::COUNT }>,
    /// Frames ingested, by source.
    pub frames_received: LabeledCounters<IngestSource, { IngestSource::COUNT }>,
    /// Bytes written to viewer sockets (headers included), by protocol.
    pub bytes_sent: LabeledCounters<Protocol, { Protocol::COUNT }>,
    /// Frames sent to viewers (one per viewer per frame), by protocol.
    pub frames_sent: LabeledCounters<Protocol, { Protocol::COUNT }>,
    /// Frames not delivered to a viewer, by reason.
    pub frames_dropped: LabeledCounters<DropReason, { DropReason::COUNT }>,
    /// Viewers closed for lagging past the hard bound or losing frames they needed.
    pub slow_viewer_closes: LocalCounter,
    /// Bytes held by the GOP caches of streams on this core (owned and replicas).
    pub gop_cache_bytes: LocalGauge,
    /// Reactor loop accounting.
    pub reactor: ReactorMetrics,
    /// Time from a frame's arrival on this box to the completion of a send that
    /// carried it, per viewer send.
    pub server_latency: LocalHistogram,
    /// Failed accepts, by errno class.
    pub accept_errors: LabeledCounters<AcceptErrorKind, { AcceptErrorKind::COUNT }>,
    /// Sessions ended by an error, by side.
    pub failures: LabeledCounters<FailureSide, { FailureSide::COUNT }>,
    /// Origin pulls started (first tries and retries).
    pub origin_pull_attempts: LocalCounter,
    /// Origin pulls that failed to connect or broke.
    pub origin_pull_failures: LocalCounter,
    /// Origin pulls that delivered media again after one or more failures.
    pub origin_pull_recoveries: LocalCounter,
    /// HTTP hook questions by action (index: [`HookActionLabel`]) and result.
    pub hook_requests:
        [LabeledCounters<HookResultLabel, { HookResultLabel::COUNT }>; HookActionLabel::COUNT],
    /// Time from a hook request's start to its answer (or error, or timeout).
    pub hook_latency: LocalHistogram,
    /// HLS / LL-HLS / LL-DASH serving and packaging.
    pub hls: HlsMetrics,
}

/// HLS serving and packaging on one core.
#[derive(Debug, Default)]
pub struct HlsMetrics {
    /// Requests, by kind.
    pub requests: LabeledCounters<HlsKind, { HlsKind::COUNT }>,
    /// Response body bytes queued, by kind.
    pub response_bytes: LabeledCounters<HlsKind, { HlsKind::COUNT }>,
    /// Error responses, by status.
    pub errors: LabeledCounters<HlsStatus, { HlsStatus::COUNT }>,
    /// Requests held now (blocking reloads, preload hints, streamed segments).
    pub waiters: LocalGauge,
    /// Time spent in packagers (ns).
    pub packager_ns: LocalCounter,
    /// Streams this core serves from another core's views.
    pub copies: LocalGauge,
}

impl HlsMetrics {
    /// One request of `kind`.
    pub fn request(&self, kind: HlsKind) {
        self.requests.inc(kind);
    }

    /// `n` body bytes of `kind` queued.
    pub fn bytes(&self, kind: HlsKind, n: u64) {
        self.response_bytes.add(kind, n);
    }

    /// One error response with `status`.
    pub fn error(&self, status: u16) {
        self.errors.inc(match status {
            400 => HlsStatus::BadRequest,
            403 => HlsStatus::Forbidden,
            404 => HlsStatus::NotFound,
            405 => HlsStatus::MethodNotAllowed,
            503 => HlsStatus::Unavailable,
            _ => HlsStatus::Other,
        });
    }

    /// Packager time spent.
    pub fn add_packager_time(&self, d: std::time::Duration) {
        self.packager_ns
            .add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }
}

impl CoreMetrics {
    /// A zeroed block for core index `core` (the `core` label value).
    pub fn new(core: usize) -> Self {
        Self {
            core,
            publishers: LocalGauge::new(),
            streams: LocalGauge::new(),
            viewers: LabeledGauges::new(),
            open_connections: LabeledGauges::new(),
            connections_accepted: LabeledCounters::new(),
            connections_refused: LabeledCounters::new(),
            auth_refused: LabeledCounters::new(),
            ws_closes: LabeledCounters::new(),
            tls_handshakes: LabeledCounters::new(),
            connections_closed: LabeledCounters::new(),
            bytes_received: LabeledCounters::new(),
            frames_received: LabeledCounters::new(),
            bytes_sent: LabeledCounters::new(),
            frames_sent: LabeledCounters::new(),
            frames_dropped: LabeledCounters::new(),
            slow_viewer_closes: LocalCounter::new(),
            gop_cache_bytes: LocalGauge::new(),
            reactor: ReactorMetrics::new(),
            server_latency: LocalHistogram::new(),
            accept_errors: LabeledCounters::new(),
            failures: LabeledCounters::new(),
            origin_pull_attempts: LocalCounter::new(),
            origin_pull_failures: LocalCounter::new(),
            origin_pull_recoveries: LocalCounter::new(),
            hook_requests: std::array::from_fn(|_| LabeledCounters::new()),
            hook_latency: LocalHistogram::new(),
            hls: HlsMetrics::default(),
        }
    }

    /// Counts one hook question of `action` answered as `result`.
    pub fn count_hook(&self, action: HookActionLabel, result: HookResultLabel) {
        if let Some(by_result) = self.hook_requests.get(action as usize) {
            by_result.inc(result);
        }
    }

    /// The core index this block belongs to.
    pub fn core(&self) -> usize {
        self.core
    }
}

/// Histogram of bytes per send (slots: one per bound plus `+Inf`).
pub type SendBytesHistogram = ValueHistogram<{ SEND_BYTES_BUCKETS.len() + 1 }>;
/// Histogram of frames per send (slots: one per bound plus `+Inf`).
pub type SendFramesHistogram = ValueHistogram<{ SEND_FRAMES_BUCKETS.len() + 1 }>;

/// Reactor loop accounting for one core: cumulative busy/idle time and
/// sends/submits, the shape of the sends, plus gauges over the last
/// [`REACTOR_WINDOW_NS`] window.
///
/// "Busy" is the core thread's CPU time (user + system, read from its
/// `CLOCK_THREAD_CPUTIME_ID`), so the kernel's work inside `io_uring_enter`
/// (the inline sends of a submit) counts as busy; "idle" is the rest of the wall
/// time (blocked waiting, or runnable but not scheduled). The core samples both
/// clocks and passes deltas in; busy + idle = wall time.
#[derive(Debug)]
pub struct ReactorMetrics {
    busy_ns: LocalCounter,
    idle_ns: LocalCounter,
    submits: LocalCounter,
    sends: LocalCounter,
    fixed_sends: LocalCounter,
    send_bytes: SendBytesHistogram,
    send_frames: SendFramesHistogram,
    busy_ratio: LocalRatio,
    sends_per_submit: LocalRatio,
    sends_per_viewer_second: LocalRatio,
    window_busy_ns: LocalCounter,
    window_total_ns: LocalCounter,
    window_sends: LocalCounter,
    window_submits: LocalCounter,
}

impl Default for ReactorMetrics {
    fn default() -> Self {
        Self {
            busy_ns: LocalCounter::new(),
            idle_ns: LocalCounter::new(),
            submits: LocalCounter::new(),
            sends: LocalCounter::new(),
            fixed_sends: LocalCounter::new(),
            send_bytes: ValueHistogram::new(&SEND_BYTES_BUCKETS),
            send_frames: ValueHistogram::new(&SEND_FRAMES_BUCKETS),
            busy_ratio: LocalRatio::new(),
            sends_per_submit: LocalRatio::new(),
            sends_per_viewer_second: LocalRatio::new(),
            window_busy_ns: LocalCounter::new(),
            window_total_ns: LocalCounter::new(),
            window_sends: LocalCounter::new(),
            window_submits: LocalCounter::new(),
        }
    }
}

impl ReactorMetrics {
    /// Zeroed accounting.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a stretch of `wall_ns` wall time in which the core thread used
    /// `cpu_ns` of CPU (clamped to the wall time: the two clocks are read a few
    /// instructions apart). `viewers` is the number of viewers on the core now,
    /// for the sends-per-viewer gauge. Publishes the windowed gauges once a
    /// window's worth of wall time has passed. Owner core only.
    #[inline]
    pub fn record_cpu(&self, cpu_ns: u64, wall_ns: u64, viewers: u64) {
        let busy_ns = cpu_ns.min(wall_ns);
        self.busy_ns.add(busy_ns);
        self.idle_ns.add(wall_ns - busy_ns);
        self.window_busy_ns.add(busy_ns);
        self.window_total_ns.add(wall_ns);
        let total = self.window_total_ns.get();
        if total >= REACTOR_WINDOW_NS {
            self.busy_ratio
                .set(self.window_busy_ns.get() as f64 / total as f64);
            let sends = self.window_sends.get() as f64;
            let submits = self.window_submits.get();
            let per_submit = if submits == 0 {
                0.0
            } else {
                sends / submits as f64
            };
            self.sends_per_submit.set(per_submit);
            let per_viewer = if viewers == 0 {
                0.0
            } else {
                sends / viewers as f64 / (total as f64 / 1e9)
            };
            self.sends_per_viewer_second.set(per_viewer);
            // Restart the window: owner-only, so a plain reset is race-free.
            self.window_busy_ns.reset();
            self.window_total_ns.reset();
            self.window_sends.reset();
            self.window_submits.reset();
        }
    }

    /// Records one `io_uring_enter` that submitted `sends` send operations (every
    /// send queued since the previous submit). Owner core only.
    #[inline]
    pub fn record_submit(&self, sends: u64) {
        self.record_submits(1, sends);
    }

    /// Records `enters` calls of `io_uring_enter` that together submitted `sends`
    /// send operations. Owner core only.
    #[inline]
    pub fn record_submits(&self, enters: u64, sends: u64) {
        self.submits.add(enters);
        self.sends.add(sends);
        self.window_submits.add(enters);
        self.window_sends.add(sends);
    }

    /// Records the shape of one viewer or control send as first handed to the
    /// kernel: `bytes` gathered and `frames` carried (a resubmitted remainder of a
    /// partial send is not recorded again). Owner core only.
    #[inline]
    pub fn record_send(&self, bytes: u64, frames: u64) {
        self.send_bytes.observe(bytes);
        self.send_frames.observe(frames);
    }

    /// Records `n` sends made from the registered region (fixed-buffer
    /// `SENDMSG_ZC`). Owner core only.
    #[inline]
    pub fn record_fixed_sends(&self, n: u64) {
        self.fixed_sends.add(n);
    }

    /// Cumulative fixed-buffer zero-copy sends.
    pub fn fixed_sends(&self) -> u64 {
        self.fixed_sends.get()
    }

    /// Cumulative CPU nanoseconds of the core thread (user + system).
    pub fn busy_ns(&self) -> u64 {
        self.busy_ns.get()
    }

    /// Cumulative wall nanoseconds the core thread did not use the CPU.
    pub fn idle_ns(&self) -> u64 {
        self.idle_ns.get()
    }

    /// Cumulative `io_uring_enter` submissions.
    pub fn submits(&self) -> u64 {
        self.submits.get()
    }

    /// Cumulative send operations submitted.
    pub fn sends(&self) -> u64 {
        self.sends.get()
    }

    /// Bytes per send, as first handed to the kernel.
    pub fn send_bytes(&self) -> &SendBytesHistogram {
        &self.send_bytes
    }

    /// Frames per send, as first handed to the kernel.
    pub fn send_frames(&self) -> &SendFramesHistogram {
        &self.send_frames
    }

    /// CPU share of the core thread over the last completed window (0..=1).
    pub fn busy_ratio(&self) -> f64 {
        self.busy_ratio.get()
    }

    /// Mean sends per submission over the last completed window.
    pub fn sends_per_submit(&self) -> f64 {
        self.sends_per_submit.get()
    }

    /// Sends per second per viewer on the core over the last completed window.
    pub fn sends_per_viewer_second(&self) -> f64 {
        self.sends_per_viewer_second.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_is_cache_line_isolated() {
        assert_eq!(std::mem::align_of::<CoreMetrics>(), 128);
        assert_eq!(std::mem::size_of::<CoreMetrics>() % 128, 0);
    }

    #[test]
    fn reactor_gauges_publish_after_a_window() {
        let r = ReactorMetrics::new();
        r.record_submit(10);
        r.record_submits(2, 30);
        r.record_cpu(250_000_000, 500_000_000, 4);
        // Half a window: gauges not published yet.
        assert_eq!(r.busy_ratio(), 0.0);
        r.record_cpu(0, 500_000_000, 4);
        assert_eq!(r.busy_ratio(), 0.25);
        assert!((r.sends_per_submit() - 40.0 / 3.0).abs() < 1e-9);
        // 40 sends in one second to 4 viewers.
        assert_eq!(r.sends_per_viewer_second(), 10.0);
        assert_eq!(r.busy_ns(), 250_000_000);
        assert_eq!(r.idle_ns(), 750_000_000);
        assert_eq!(r.sends(), 40);
        assert_eq!(r.submits(), 3);
        // A fresh window with no submits and no viewers reports zeros; CPU read a
        // little past the wall clock is clamped, never above 1.
        r.record_cpu(1_000_000_100, 1_000_000_000, 0);
        assert_eq!(r.busy_ratio(), 1.0);
        assert_eq!(r.sends_per_submit(), 0.0);
        assert_eq!(r.sends_per_viewer_second(), 0.0);
        assert_eq!(r.busy_ns() + r.idle_ns(), 2_000_000_000);
    }

    #[test]
    fn send_shapes_are_histogrammed() {
        let r = ReactorMetrics::new();
        r.record_send(300, 1);
        r.record_send(5_000, 3);
        assert_eq!(r.send_bytes().count(), 2);
        assert_eq!(r.send_bytes().sum(), 5_300);
        assert_eq!(r.send_frames().sum(), 4);
        assert_eq!(r.send_frames().cumulative()[1], (1, 1));
    }

    #[test]
    fn core_block_counts_by_label() {
        let m = CoreMetrics::new(3);
        assert_eq!(m.core(), 3);
        m.frames_sent.inc(Protocol::HttpFlv);
        m.connections_closed.inc(CloseReason::Kicked);
        m.viewers.inc(Protocol::Rtmp);
        assert_eq!(m.frames_sent.get(Protocol::HttpFlv), 1);
        assert_eq!(m.connections_closed.get(CloseReason::Kicked), 1);
        assert_eq!(m.viewers.get(Protocol::Rtmp), 1);
    }
}
