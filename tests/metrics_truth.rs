//! Metrics that tell the truth: failures are counted on the side that failed,
//! ordinary ends are not, and refusals carry the limit that caused them. Each
//! test provokes the event with a real peer and reads `/metrics`.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::raw_rtmp::*;
use common::*;

const LIMIT: Duration = Duration::from_secs(30);
/// A chunk of format 3 on a chunk stream never opened: a protocol error.
const GARBAGE: [u8; 64] = [0xf2; 64];

/// Sum of a metric's samples whose labels contain `label` (`""`: all), or
/// `None` when the scrape did not answer (e.g. refused by a connection limit).
fn scrape(server: &Server, name: &str, label: &str) -> Option<f64> {
    let (status, body) = server.http_get("/metrics");
    (status == 200).then(|| {
        body.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter(|l| l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    })
}

/// Waits until `name{label}` reaches `at_least`; returns its value then.
fn wait_metric(server: &Server, name: &str, label: &str, at_least: f64) -> f64 {
    let deadline = Instant::now() + LIMIT;
    loop {
        let v = scrape(server, name, label);
        if let Some(v) = v.filter(|&v| v >= at_least) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{{{label}}} stayed at {v:?}, expected {at_least}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn publisher(server: &Server, name: &str) -> RawClient {
    let mut p = RawClient::publish(server.rtmp_port, "live", name, LIMIT)
        .unwrap_or_else(|e| panic!("publish {name}: {e:?}"));
    p.send(&[metadata_frame(), audio_header_frame(), video_header_frame()])
        .unwrap();
    p
}

#[test]
fn publisher_failures_are_counted_and_clean_ends_are_not() {
    let server = Server::start(1, "");
    // A clean end: unpublish, then hang up.
    publisher(&server, "clean").close_politely();
    // Vanishes while publishing.
    drop(publisher(&server, "vanish"));
    // Breaks the protocol while publishing.
    let mut broken = publisher(&server, "broken");
    broken.send_raw(&GARBAGE).unwrap();
    wait_metric(&server, "ringcast_connections_closed_total", "", 3.0);
    let failed = wait_metric(
        &server,
        "ringcast_failures_total",
        "side=\"publisher\"",
        2.0,
    );
    assert_eq!(failed, 2.0, "the clean end is not a failure");
    assert_eq!(
        scrape(&server, "ringcast_failures_total", "side=\"viewer\""),
        Some(0.0)
    );
}

#[test]
fn viewer_failures_are_counted_and_hang_ups_are_not() {
    let server = Server::start(1, "");
    let _publisher = publisher(&server, "cam");
    // An HTTP-FLV viewer that hangs up.
    let flv = FlvViewer::connect(server.http_port, "/live/cam.flv");
    wait_metric(&server, "ringcast_viewers", "protocol=\"http_flv\"", 1.0);
    drop(flv);
    // An RTMP viewer that breaks the protocol.
    let mut rtmp = RawClient::play(server.rtmp_port, "live", "cam", LIMIT).unwrap();
    wait_metric(&server, "ringcast_viewers", "protocol=\"rtmp\"", 1.0);
    rtmp.send_raw(&GARBAGE).unwrap();
    wait_metric(&server, "ringcast_connections_closed_total", "", 2.0);
    let failed = wait_metric(&server, "ringcast_failures_total", "side=\"viewer\"", 1.0);
    assert_eq!(failed, 1.0, "the hang-up is not a failure");
    assert_eq!(
        scrape(&server, "ringcast_failures_total", "side=\"publisher\""),
        Some(0.0)
    );
}

#[test]
fn a_publish_past_max_streams_is_refused_as_stream_limit() {
    let server = Server::start(2, "[server]\nmax_streams = 1\n");
    let _first = publisher(&server, "one");
    let refused = RawClient::publish(server.rtmp_port, "live", "two", LIMIT);
    assert!(refused.is_err(), "second stream refused");
    let n = wait_metric(
        &server,
        "ringcast_connections_refused_total",
        "reason=\"stream_limit\"",
        1.0,
    );
    assert_eq!(n, 1.0);
    assert_eq!(
        scrape(
            &server,
            "ringcast_connections_refused_total",
            "reason=\"duplicate_publish\""
        ),
        Some(0.0),
        "a full directory is not a duplicate"
    );
}

#[test]
fn a_play_past_max_viewers_is_refused_as_viewer_limit() {
    let server = Server::start(1, "[server]\nmax_viewers_per_core = 1\n");
    let _publisher = publisher(&server, "cam");
    let _first = RawClient::play(server.rtmp_port, "live", "cam", LIMIT).unwrap();
    wait_metric(&server, "ringcast_viewers", "protocol=\"rtmp\"", 1.0);
    let mut second = FlvViewer::connect(server.http_port, "/live/cam.flv");
    while second.next_frame().is_some() {}
    let n = wait_metric(
        &server,
        "ringcast_connections_refused_total",
        "reason=\"viewer_limit\"",
        1.0,
    );
    assert_eq!(n, 1.0);
}

#[test]
fn a_connection_past_max_connections_is_refused_as_connection_limit() {
    let server = Server::start(1, "[server]\nmax_connections = 2\n");
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", server.rtmp_port)).unwrap())
        .collect();
    // Wait until both count as open, so the third is the one past the limit.
    let deadline = Instant::now() + LIMIT;
    let mut third = loop {
        let mut s = TcpStream::connect(("127.0.0.1", server.rtmp_port)).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        // The server closes a refused connection at once (read: EOF or reset).
        let mut byte = [0u8; 1];
        if matches!(s.read(&mut byte), Ok(0) | Err(_)) {
            break s;
        }
        assert!(Instant::now() < deadline, "never refused");
    };
    let _ = third.read(&mut [0u8; 1]);
    drop(held);
    let n = wait_metric(
        &server,
        "ringcast_connections_refused_total",
        "reason=\"connection_limit\"",
        1.0,
    );
    assert!(n >= 1.0);
}

#[test]
fn a_viewer_whose_origin_is_down_is_refused_as_origin_unavailable() {
    // An origin address nothing listens on.
    let dead = format!("rtmp://127.0.0.1:{}/live", free_port());
    let edge = Server::start(
        1,
        &format!("[edge]\norigins = [\"{dead}\"]\nstart_timeout = \"1s\"\n"),
    );
    let mut viewer = FlvViewer::connect(edge.http_port, "/live/cam.flv");
    viewer.stream.set_read_timeout(Some(LIMIT)).unwrap();
    assert!(viewer.next_frame().is_none());
    assert_eq!(viewer.status, 503, "refused as unavailable");
    let n = wait_metric(
        &edge,
        "ringcast_connections_refused_total",
        "reason=\"origin_unavailable\"",
        1.0,
    );
    assert_eq!(n, 1.0);
    assert!(
        wait_metric(&edge, "ringcast_failures_total", "side=\"origin\"", 1.0) >= 1.0,
        "the pull attempts failed on the origin side"
    );
}
