//! mpegts.js in headless Chromium plays ringcast's HTTP-FLV, WebSocket-FLV and
//! HTTPS-FLV cross-origin: ffmpeg publishes over RTMP to the real binary, the
//! page (served from the test's own origin) plays
//! `http(s)://127.0.0.1:PORT/live/NAME.flv` or `ws://…` and reports what the
//! viewer saw.

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::{one_at_a_time, play, play_with, Library, Options, TestCert};
use common::*;

#[test]
fn mpegts_js_plays_http_flv_cross_origin() {
    let _one = one_at_a_time();
    let server = Server::start(1, "");
    let mut publisher = publish(&server.rtmp_url("live", "browser"), 60);
    wait_live(&server, "live", "browser", Duration::from_secs(30));

    let report = play(
        Library::Mpegts,
        &server.flv_url("live", "browser"),
        Duration::from_secs(8),
        Duration::from_secs(40),
    );
    println!("HTTP-FLV in Chromium: {}", report.summary());
    assert!(
        report.mse_h264 && report.mse_aac,
        "this Chromium ({}) lacks H.264 or AAC in Media Source Extensions",
        report.user_agent
    );
    report.assert_played_cleanly_cross_origin();
    let first = report.first_frame_ms.expect("a first frame");
    // The GOP cache starts a viewer at a keyframe at once; the bound leaves room
    // for a debug build on a loaded machine.
    assert!(first <= 5000.0, "first frame after {first} ms");
    // 8 s at 25 fps is 200 frames.
    assert!(report.frames_decoded >= 150, "{}", report.summary());
    assert_eq!((report.video_width, report.video_height), (320, 240));
    report.assert_smooth();
    assert!(
        report.latency_p50.is_some_and(|b| b < 3.0),
        "buffer ahead of the playhead: {}",
        report.summary()
    );
    publisher.kill();
}

#[test]
fn mpegts_js_plays_websocket_flv_cross_origin() {
    let _one = one_at_a_time();
    // The same URL with `ws://`: mpegts.js opens a WebSocket (Chromium's own
    // handshake, masking and framing) and plays the FLV tags it receives.
    let server = Server::start(1, "");
    let mut publisher = publish(&server.rtmp_url("live", "ws"), 60);
    wait_live(&server, "live", "ws", Duration::from_secs(30));
    let report = play(
        Library::Mpegts,
        &format!("ws://127.0.0.1:{}/live/ws.flv", server.http_port),
        Duration::from_secs(6),
        Duration::from_secs(30),
    );
    println!("WebSocket-FLV in Chromium: {}", report.summary());
    report.assert_played_cleanly_cross_origin();
    report.assert_smooth();
    assert!(report.frames_decoded >= 110, "{}", report.summary());
    assert_eq!((report.video_width, report.video_height), (320, 240));
    // ringcast sent those frames as WebSocket-FLV.
    let (_, metrics) = http_request(server.admin_port, "GET", "/metrics");
    let ws_frames: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("ringcast_sent_frames_total{") && l.contains("\"ws_flv\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(ws_frames >= 110.0, "ws_flv frames sent: {ws_frames}");
    publisher.kill();
}

#[test]
fn mpegts_js_plays_https_flv_from_an_https_page() {
    let _one = one_at_a_time();
    // Page and media both over HTTPS, each with a certificate made here, which
    // Chromium trusts by their public-key pins and nothing else (no
    // --ignore-certificate-errors): ringcast's HTTPS-FLV as a secure site plays it.
    let dir = media::TempDir::new("browser", "https-flv");
    let ringcast_cert = TestCert::new();
    let (cert, key) = ringcast_cert.write_pem(&dir.0);
    let https_port = free_port();
    let server = Server::start(
        1,
        &format!(
            "[server]\nhttps_listen = \"127.0.0.1:{https_port}\"\n\
             [tls]\ncert = {cert:?}\nkey = {key:?}\n"
        ),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    wait_listening("127.0.0.1", https_port, deadline, "ringcast HTTPS listener");
    let mut publisher = publish(&server.rtmp_url("live", "secure"), 60);
    wait_live(&server, "live", "secure", Duration::from_secs(30));
    let page_cert = TestCert::new();
    let options = Options {
        https_page: Some(&page_cert),
        trust: vec![&ringcast_cert],
        ..Options::default()
    };
    let report = play_with(
        Library::Mpegts,
        &format!("https://127.0.0.1:{https_port}/live/secure.flv"),
        Duration::from_secs(6),
        Duration::from_secs(30),
        &options,
    );
    println!("HTTPS-FLV from an HTTPS page: {}", report.summary());
    assert!(report.page_origin.starts_with("https://127.0.0.1:"));
    report.assert_played_cleanly_cross_origin();
    report.assert_smooth();
    assert!(report.frames_decoded >= 110, "{}", report.summary());
    assert_eq!((report.video_width, report.video_height), (320, 240));
    publisher.kill();
}

#[test]
fn mpegts_js_reports_a_stream_that_is_not_live() {
    let _one = one_at_a_time();
    // The harness's error path: a 404 from ringcast reaches the page as a
    // player error, and the run ends with a final report, not a hang.
    let server = Server::start(1, "");
    let report = play(
        Library::Mpegts,
        &server.flv_url("live", "nobody"),
        Duration::from_secs(5),
        Duration::from_secs(30),
    );
    println!("404 in Chromium: {}", report.summary());
    assert_eq!(report.reason.as_deref(), Some("fatal player error"));
    assert!(
        report.errors.iter().any(|e| e.contains("404")),
        "{}",
        report.summary()
    );
    assert_eq!(report.frames_decoded, 0);
}
