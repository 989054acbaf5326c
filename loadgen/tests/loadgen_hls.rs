//! loadgen's HLS, LL-HLS and LL-DASH viewers against ringcast itself (the
//! `ringcast` binary built beside loadgen) with loadgen's own publisher: every
//! viewer plays with no failure, latency from the stamps is plausible for the
//! protocol, requests are of the kinds a low-latency player makes, and one
//! viewer's frames agree with ffprobe reading the same LL-HLS URL.

mod common;

use std::time::Duration;

use common::*;

fn request_count(report: &serde_json::Value, kind: &str) -> u64 {
    report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == kind)
        .map_or(0, |r| r["ok"].as_u64().unwrap())
}

fn request_errors(report: &serde_json::Value) -> u64 {
    report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["errors"].as_u64().unwrap())
        .sum()
}

/// `viewers` players of `suffix` (`.m3u8`, `-ts.m3u8`, `.mpd`) until `duration`,
/// joining `delay` after loadgen's synthetic publisher starts.
fn run(suffix: &str, viewers: u64, delay: &str, duration: &str) -> serde_json::Value {
    run_on(&Ringcast::start(), suffix, viewers, delay, duration)
}

/// [`run`] against `server`.
fn run_on(
    server: &Ringcast,
    suffix: &str,
    viewers: u64,
    delay: &str,
    duration: &str,
) -> serde_json::Value {
    let dir = TempDir::new("hls-run");
    let name = format!("h{}", free_port());
    loadgen(
        &[
            "run",
            "--publish-url",
            &format!("{}/{name}", server.rtmp_app),
            "--play-url",
            &format!("{}/{name}{suffix}", server.http_app),
            "--viewers",
            &viewers.to_string(),
            "--ramp",
            "0",
            "--play-delay",
            delay,
            "--duration",
            duration,
            "--bitrate",
            "300k",
        ],
        &dir,
    )
}

/// What every mode must show: all viewers up and playing, no failure, every
/// frame stamped and none missing, latency within `latency_ms`, no stalls.
fn assert_healthy(report: &serde_json::Value, viewers: u64, latency_ms: (f64, f64)) {
    assert!(failures(report).is_empty(), "{:?}", failures(report));
    assert_eq!(request_errors(report), 0, "{}", report["requests"]);
    assert_eq!(count(report, "viewers_playing"), viewers);
    // At least 5 s of 25 fps each.
    assert!(
        count(report, "video_frames") >= viewers * 125,
        "{} frames",
        count(report, "video_frames")
    );
    assert_eq!(
        count(report, "stamped_frames"),
        count(report, "video_frames")
    );
    assert_eq!(count(report, "missing_frames"), 0);
    assert_eq!(count(report, "stalls"), 0, "{}", report["stall_ms"]);
    let p50 = report["latency_ms"]["p50"].as_f64().unwrap();
    assert!(
        (latency_ms.0..=latency_ms.1).contains(&p50),
        "latency p50 {p50} ms, expected {latency_ms:?}"
    );
}

#[test]
fn ll_hls_viewers_play_parts_about_one_second_behind_live() {
    let viewers = 10;
    let report = run(".m3u8", viewers, "3s", "9s");
    // PART-HOLD-BACK is 1 s; a loaded machine adds some.
    assert_healthy(&report, viewers, (800.0, 2500.0));
    assert_eq!(request_count(&report, "Multivariant"), viewers);
    assert_eq!(
        request_count(&report, "Init"),
        2 * viewers,
        "video and audio"
    );
    assert!(request_count(&report, "Part") >= viewers * 2 * 10);
    assert!(request_count(&report, "BlockingReload") >= viewers * 10);
    assert!(count(&report, "audio_frames") > 0);
}

#[test]
fn ts_hls_viewers_play_whole_segments() {
    let viewers = 5;
    // Joining after three segments exist, as a classic player needs.
    let report = run("-ts.m3u8", viewers, "7s", "13s");
    assert_healthy(&report, viewers, (2000.0, 12000.0));
    assert_eq!(request_count(&report, "Part"), 0);
    assert!(request_count(&report, "Segment") >= viewers * 3);
    assert!(request_count(&report, "Playlist") >= viewers * 2);
}

#[test]
fn ll_dash_viewers_stream_the_segment_in_progress() {
    let viewers = 5;
    let report = run(".mpd", viewers, "3s", "9s");
    // The MPD's target latency is 1.336 s.
    assert_healthy(&report, viewers, (800.0, 2500.0));
    assert_eq!(request_count(&report, "Init"), viewers);
    assert!(request_count(&report, "Segment") >= viewers * 2);
    assert!(request_count(&report, "Mpd") >= viewers * 2);
}

#[test]
fn an_ll_hls_viewer_sees_the_frames_ffprobe_decodes() {
    let server = Ringcast::start();
    let dir = TempDir::new("hls-count");
    let file = dir.path("src.flv");
    // 8 s in 4 s GOPs (looped to 9 s): loadgen joining in the first 4 s starts at
    // the first part (the only independent one PART-HOLD-BACK back) and plays to
    // the end. ffmpeg 5.1 reads no LL-HLS parts, only whole segments, and the
    // segment open when the publisher leaves is never whole; so ffprobe counts
    // the same stream over HTTP-FLV, joining at the same cached keyframe, to the
    // same end.
    make_flv(&file, 8, 100);
    let name = format!("hc{}", free_port());
    let publish_json = dir.path("publish.json");
    let publish = loadgen_bg(
        &[
            "publish",
            "--url",
            &format!("{}/{name}", server.rtmp_app),
            "--source",
            file.to_str().unwrap(),
            "--duration",
            "9s",
        ],
        &publish_json,
    );
    wait_until(
        "1 s of the stream on the server",
        Duration::from_secs(60),
        || server.uptime_secs(&name).is_some_and(|s| s >= 1),
    );
    let viewers_json = dir.path("viewers.json");
    // The window outlasts the stream: the viewer ends at its end, as ffprobe does.
    let play = loadgen_bg(
        &[
            "play",
            "--url",
            &format!("{}/{name}.m3u8", server.http_app),
            "--viewers",
            "1",
            "--duration",
            "15s",
        ],
        &viewers_json,
    );
    let probe = ffprobe_keyflags(
        &format!("{}/{name}.flv", server.http_app),
        &["-rw_timeout", "1500000"],
    );
    let report = report_of(play, &viewers_json);
    report_of(publish, &publish_json);

    assert!(probe.len() >= 200, "ffprobe decoded {} frames", probe.len());
    assert!(probe[0], "ffprobe starts at a keyframe");
    assert_every_viewer_saw_every_frame(&report, &probe, 1);
    assert_eq!(count(&report, "stalls"), 0);
    for (phase, kind, n) in failures(&report) {
        assert_eq!(
            (phase.as_str(), kind.as_str(), n),
            ("Streaming", "EarlyEof", 1),
            "the stream ended once"
        );
    }
}

#[test]
fn ll_hls_viewers_reconnect_when_ringcast_closes_keep_alive_connections() {
    // ringcast answers the 20th request on a connection with `Connection: close`:
    // at ~11 requests per second each viewer needs a new connection every ~2 s.
    let server = Ringcast::start_with_config(Some("[limits]\nhttp_max_requests = 20\n"));
    let viewers = 5;
    let report = run_on(&server, ".m3u8", viewers, "3s", "9s");
    assert_healthy(&report, viewers, (800.0, 2500.0));
    let reconnects = count(&report, "reconnects");
    assert!(reconnects >= viewers * 2, "{reconnects} reconnects");
}
