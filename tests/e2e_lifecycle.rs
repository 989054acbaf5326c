//! The server's life: configuration checking, descriptor exhaustion, a publisher
//! returning within the grace period, and graceful shutdown on SIGTERM.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use ringcast::protocol::FrameKind;

#[test]
fn check_config_accepts_good_files_and_names_the_bad_field() {
    let dir = std::env::temp_dir().join(format!("ringcast-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = check_config(
        &dir.join("good.toml"),
        "[server]\ncores = 1\n[viewer]\nhard_lag = \"5s\"\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("hard_lag = \"5s\""));

    // Secrets are set but never printed.
    let out = check_config(
        &dir.join("secret.toml"),
        "[api]\ntoken = \"api-token-xyz\"\n[[auth.keys]]\nid = \"k1\"\nsecret = \"key-secret-xyz\"\n",
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("id = \"k1\"") && printed.contains("<redacted>"),
        "{printed}"
    );
    assert!(
        !printed.contains("api-token-xyz") && !printed.contains("key-secret-xyz"),
        "check-config printed a secret: {printed}"
    );

    let out = check_config(&dir.join("bad.toml"), "[limits]\nout_chunk_size = 3\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("limits.out_chunk_size"));
}

#[test]
fn accepting_pauses_at_the_descriptor_limit_and_resumes() {
    let server = Server::start_limited(1, "", Some(128));
    // Far more connections than the server may open descriptors for.
    let flood: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", server.http_port)).ok())
        .collect();
    // Hold the flood until the server has used up its descriptors: its next accept
    // fails with EMFILE (counted below, once it answers again).
    wait_until(
        "the server to reach its 128-descriptor limit",
        Duration::from_secs(30),
        || open_fds(server.proc.pid()) >= 126,
    );
    drop(flood);
    // Once the flood is gone (and timed out server-side), the server answers again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = server.http_get("/api/v1/server");
        if status == 200 {
            assert!(body.contains("\"cores\":1"), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server never recovered from EMFILE"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, metrics) = server.http_get("/metrics");
    let emfile: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("ringcast_accept_errors_total") && l.contains("emfile"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum();
    assert!(emfile >= 1.0, "EMFILE accept errors counted: {emfile}");
}

#[test]
fn a_publisher_returning_within_the_grace_period_continues_the_stream() {
    let server = Server::start(1, "[stream]\npublisher_grace = \"8s\"\n");
    let mut first = publish(&server.rtmp_url("live", "grace"), 60);
    wait_live(&server, "live", "grace", Duration::from_secs(10));
    let mut viewer = FlvViewer::connect(server.http_port, "/live/grace.flv");
    let mut last_ts = 0u32;
    let mut pictures = 0;
    while pictures < 30 {
        let f = viewer
            .next_frame()
            .expect("frames before the publisher leaves");
        assert!(
            f.timestamp >= last_ts,
            "monotonic: {} after {last_ts}",
            f.timestamp
        );
        last_ts = f.timestamp;
        if f.kind == FrameKind::Video && !f.sequence_header {
            pictures += 1;
        }
    }
    first.kill();
    // The server has seen the publisher go (the stream is in its grace period).
    wait_until("the publisher to be gone", Duration::from_secs(30), || {
        metric_on(server.admin_port, "ringcast_publishers") == 0.0
    });
    let mut second = publish(&server.rtmp_url("live", "grace"), 60);
    // The same viewer connection keeps going: more pictures, timestamps never go back.
    let mut after = 0;
    while after < 50 {
        let f = viewer
            .next_frame()
            .expect("viewer ended instead of waiting for the publisher");
        assert!(
            f.timestamp >= last_ts,
            "monotonic across the publisher change: {} after {last_ts}",
            f.timestamp
        );
        last_ts = f.timestamp;
        if f.kind == FrameKind::Video && !f.sequence_header {
            after += 1;
        }
    }
    second.kill();
}

#[test]
fn sigterm_ends_viewers_cleanly_and_exits() {
    let mut server = Server::start(2, "[server]\nshutdown_timeout = \"3s\"\n");
    let mut publisher = publish(&server.rtmp_url("live", "bye"), 60);
    wait_live(&server, "live", "bye", Duration::from_secs(10));
    let mut viewer = FlvViewer::connect(server.http_port, "/live/bye.flv");
    assert!(viewer.next_frame().is_some());
    unsafe { libc::kill(server.proc.pid() as i32, libc::SIGTERM) };
    let started = Instant::now();
    let status = server
        .proc
        .wait_for(Duration::from_secs(10))
        .expect("server did not exit after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    // The 3 s shutdown deadline plus slack for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "shutdown took {:?}",
        started.elapsed()
    );
    // The viewer's body ended (EOF), it was not left hanging.
    let deadline = Instant::now() + Duration::from_secs(5);
    while viewer.next_frame().is_some() {
        assert!(Instant::now() < deadline);
    }
    publisher.kill();
}

/// A stream whose publisher leaves while a viewer is still attached ends when
/// that viewer goes; the `ringcast_streams` gauge must follow it back to zero
/// (the soak found it stuck at one per such stream).
#[test]
fn streams_gauge_returns_to_zero_after_the_last_viewer_of_an_ended_stream() {
    let server = Server::start(1, "");
    let mut publisher = publish(&server.rtmp_url("live", "gauge"), 60);
    wait_live(&server, "live", "gauge", Duration::from_secs(30));
    let mut viewer = FlvViewer::connect(server.http_port, "/live/gauge.flv");
    let mut pictures = 0;
    while pictures < 5 {
        let f = viewer.next_frame().expect("frames while published");
        if f.kind == FrameKind::Video && !f.sequence_header {
            pictures += 1;
        }
    }
    assert_eq!(metric_on(server.admin_port, "ringcast_streams"), 1.0);
    publisher.kill();
    // The viewer is still attached when the publisher goes; it drains to the end.
    viewer
        .stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    while viewer.next_frame().is_some() {}
    drop(viewer);
    wait_until(
        "the stream to be gone from the API",
        Duration::from_secs(30),
        || server.http_get("/api/v1/streams/live/gauge").0 == 404,
    );
    wait_until(
        "ringcast_streams back to 0",
        Duration::from_secs(30),
        || metric_on(server.admin_port, "ringcast_streams") == 0.0,
    );
}
