//! hls.js (low-latency mode) and dash.js (low-latency settings) in headless
//! Chromium play ringcast's LL-HLS (`/{app}/{stream}.m3u8`) and LL-DASH
//! (`/{app}/{stream}.mpd`) cross-origin: ffmpeg publishes over RTMP to the real
//! binary, the page (served from the test's own origin) plays for a bounded
//! time and reports frames, stalls and the player's latency behind live.

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::{play, Library, Report};
use common::*;

/// How long each player plays after its first frame.
const PLAY: Duration = Duration::from_secs(12);
/// The whole browser run, launch to final report.
const LIMIT: Duration = Duration::from_secs(45);

/// Publishes a test source to a fresh ringcast and returns both (the
/// publisher outlives any browser run: 60 s).
fn live_stream(name: &str) -> (Server, Proc) {
    let server = Server::start(1, "");
    let publisher = publish(&server.rtmp_url("live", name), 60);
    wait_live(&server, "live", name, Duration::from_secs(30));
    (server, publisher)
}

/// What both players must show: played to the end, no error, no stall, frames
/// decoded, cross-origin media and nothing fetched from anywhere else (no
/// outside time server), and a latency figure from the player itself.
fn assert_smooth_live_playback(report: &Report) {
    let summary = report.summary();
    assert_eq!(report.reason.as_deref(), Some("played"), "{summary}");
    assert!(report.errors.is_empty(), "errors: {summary}");
    assert_ne!(
        report.page_origin,
        report.media_origin(),
        "not cross-origin"
    );
    for origin in &report.resource_origins {
        assert!(
            *origin == report.page_origin || *origin == report.media_origin(),
            "the page fetched from {origin}, outside the page and media origins"
        );
    }
    assert_eq!(report.stalls, 0, "stalls: {summary}");
    assert_eq!(report.waiting_events, 0, "waiting after start: {summary}");
    // 12 s at 25 fps is 300 frames.
    assert!(report.frames_decoded >= 250, "{summary}");
    assert_eq!((report.video_width, report.video_height), (320, 240));
    let first = report.first_frame_ms.expect("a first frame");
    assert!(first <= 5000.0, "first frame after {first} ms: {summary}");
    let latency = report.latency_p50.expect("the player reported its latency");
    assert!(
        latency > 0.0 && latency < 10.0,
        "latency {latency} s: {summary}"
    );
}

#[test]
#[ignore = "needs HLS serving (branch hls-serve)"]
fn hls_js_low_latency_plays_ll_hls_cross_origin() {
    let (server, mut publisher) = live_stream("llhls");
    let url = format!("http://127.0.0.1:{}/live/llhls.m3u8", server.http_port);
    let report = play(Library::Hls, &url, PLAY, LIMIT);
    println!("LL-HLS in Chromium: {}", report.summary());
    assert_smooth_live_playback(&report);
    publisher.kill();
}

#[test]
#[ignore = "needs HLS serving (branch hls-serve)"]
fn dash_js_low_latency_plays_ll_dash_cross_origin() {
    let (server, mut publisher) = live_stream("lldash");
    let url = format!("http://127.0.0.1:{}/live/lldash.mpd", server.http_port);
    let report = play(Library::Dash, &url, PLAY, LIMIT);
    println!("LL-DASH in Chromium: {}", report.summary());
    assert_smooth_live_playback(&report);
    publisher.kill();
}
