//! The `/metrics` output passes `promtool check metrics` (format and naming lint).

use std::io::Write;
use std::process::{Command, Stdio};

#[path = "common/require.rs"]
mod require;

use ringcast::metrics::{
    AcceptErrorKind, CloseReason, DropReason, FailureSide, IngestSource, Listener, MetricsRegistry,
    Protocol, RefuseReason,
};

const PROMTOOL: &str = "/usr/bin/promtool";

/// A registry with some of every kind of value in it, so that every family has
/// non-trivial samples.
fn busy_registry() -> MetricsRegistry {
    let mut reg = MetricsRegistry::new(2).expect("registry");
    for i in 0..2 {
        let m = reg.core(i).expect("core block");
        m.publishers.inc();
        m.streams.inc();
        m.viewers.add(Protocol::HttpFlv, 10);
        m.open_connections.add(Listener::Http, 10);
        m.connections_accepted.add(Listener::Rtmp, 3);
        m.connections_refused.inc(RefuseReason::ViewerLimit);
        m.connections_closed.inc(CloseReason::PeerClosed);
        m.bytes_received.add(IngestSource::Publisher, 1 << 20);
        m.frames_received.add(IngestSource::Publisher, 300);
        m.bytes_sent.add(Protocol::Rtmp, 1 << 24);
        m.frames_sent.add(Protocol::Rtmp, 3000);
        m.frames_dropped.inc(DropReason::QueueCap);
        m.slow_viewer_closes.inc();
        m.gop_cache_bytes.set(2_000_000);
        m.reactor.record_submit(12);
        m.reactor.record_send(4_000, 2);
        m.reactor.record_cpu(400_000_000, 1_000_000_000, 10);
        m.server_latency.observe_ns(300_000);
        m.accept_errors.inc(AcceptErrorKind::Emfile);
        m.failures.inc(FailureSide::Origin);
        m.origin_pull_attempts.inc();
        m.origin_pull_failures.inc();
        m.origin_pull_recoveries.inc();
    }
    reg.register_gauge_fn(
        "ringcast_config_max_connections",
        "Configured connection limit.",
        &[],
        || vec![(Vec::new(), 100_000.0)],
    )
    .expect("gauge fn");
    reg
}

#[test]
fn rendered_metrics_pass_promtool_check() {
    require::file(PROMTOOL, "prometheus");
    let text = busy_registry().render().expect("render");
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write metrics to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool rejected the output:\n{report}\n---\n{text}"
    );
    // promtool prints lint findings (naming, units) even when the format parses.
    assert!(
        report.trim().is_empty(),
        "promtool lint findings:\n{report}"
    );
}
