//! loadgen against ringcast itself (the `ringcast` binary built beside loadgen), at
//! small scale, over HTTP-FLV and RTMP: counts agree with ffprobe on the same
//! stream, and a frozen server shows up as stalls.
//!
//! ringcast refuses to play streams that are not published and starts viewers at
//! the cached GOP's keyframe, so here loadgen and ffprobe join mid-GOP, after the
//! publisher: both then start at the same cached keyframe and must see the same
//! frames up to the stream's end.

mod common;

use std::time::Duration;

use common::*;

fn counts_agree_with_ffprobe(scheme: &str) {
    let server = Ringcast::start();
    let dir = TempDir::new(&format!("ringcast-count-{scheme}"));
    let file = dir.path("src.flv");
    // 4 s GOPs; joining 5 s after the publisher starts lands inside the second GOP
    // with 3 s to spare, so loadgen and a slow-starting ffprobe (a loaded CI box)
    // still join at the same cached keyframe.
    make_flv(&file, 8, 100);
    let name = format!("count{}", free_port());
    let publish_url = format!("{}/{name}", server.rtmp_app);
    let play_url = match scheme {
        "http" => format!("{}/{name}.flv", server.http_app),
        _ => publish_url.clone(),
    };
    let publish_json = dir.path("publish.json");
    let publish = loadgen_bg(
        &[
            "publish",
            "--url",
            &publish_url,
            "--source",
            file.to_str().unwrap(),
            "--duration",
            "9s",
        ],
        &publish_json,
    );
    // Join inside the second GOP: once the server has had the stream for 5 s.
    wait_until(
        "5 s of the stream on the server",
        Duration::from_secs(60),
        || server.uptime_secs(&name).is_some_and(|s| s >= 5),
    );

    let viewers = 20u64;
    let viewers_json = dir.path("viewers.json");
    // The viewers' window outlasts the stream: they end at its end (EarlyEof), as ffprobe does.
    let play = loadgen_bg(
        &[
            "play",
            "--url",
            &play_url,
            "--viewers",
            &viewers.to_string(),
            "--ramp",
            "0",
            "--duration",
            "15s",
        ],
        &viewers_json,
    );
    let probe = ffprobe_keyflags(&play_url, &["-rw_timeout", "1500000"]);
    let report = report_of(play, &viewers_json);
    report_of(publish, &publish_json);

    assert!(probe.len() >= 40, "ffprobe decoded {} frames", probe.len());
    assert!(probe[0], "ffprobe starts at a keyframe");
    assert_every_viewer_saw_every_frame(&report, &probe, viewers);
    let gops = gop_lengths(&probe);
    assert_eq!(
        report["gop_frames"]["count"].as_u64().unwrap(),
        viewers * gops.len() as u64
    );
    if let (Some(min), Some(max)) = (gops.iter().min(), gops.iter().max()) {
        assert_eq!(report["gop_frames"]["min"].as_f64().unwrap(), *min as f64);
        assert_eq!(report["gop_frames"]["max"].as_f64().unwrap(), *max as f64);
    }
    for (phase, kind, n) in failures(&report) {
        assert_eq!(
            (phase.as_str(), kind.as_str(), n),
            ("Streaming", "EarlyEof", viewers),
            "the stream ended once"
        );
    }
}

#[test]
fn http_flv_counts_agree_with_ffprobe() {
    counts_agree_with_ffprobe("http");
}

#[test]
fn rtmp_counts_agree_with_ffprobe() {
    counts_agree_with_ffprobe("rtmp");
}

#[test]
fn a_frozen_ringcast_shows_up_as_stalls() {
    let server = Ringcast::start();
    let dir = TempDir::new("ringcast-stall");
    let name = format!("stall{}", free_port());
    let viewers = 20u64;
    let json = dir.path("run.json");
    let run = loadgen_bg(
        &[
            "run",
            "--publish-url",
            &format!("{}/{name}", server.rtmp_app),
            "--play-url",
            &format!("{}/{name}.flv", server.http_app),
            "--viewers",
            &viewers.to_string(),
            "--ramp",
            "0",
            "--play-delay",
            "1s",
            "--duration",
            "7s",
            "--bitrate",
            "300k",
        ],
        &json,
    );
    wait_until("every viewer to join", Duration::from_secs(60), || {
        server.metric("ringcast_viewers") == viewers as f64
    });
    // ... and to have live frames flowing (ten more each) before the freeze.
    let sent = server.metric("ringcast_sent_frames_total");
    wait_until(
        "frames flowing to the viewers",
        Duration::from_secs(60),
        || server.metric("ringcast_sent_frames_total") >= sent + 10.0 * viewers as f64,
    );
    // SAFETY: signalling a process this test started.
    unsafe { libc::kill(server.pid, libc::SIGSTOP) };
    // The injected fault: the server frozen for 2 s.
    std::thread::sleep(Duration::from_secs(2));
    unsafe { libc::kill(server.pid, libc::SIGCONT) };
    let report = report_of(run, &json);
    assert_eq!(count(&report, "viewers_playing"), viewers);
    // One ~2 s stall per viewer; a loaded test machine may add a few short ones.
    let stalls = count(&report, "stalls");
    assert!(
        (viewers..=2 * viewers).contains(&stalls),
        "{stalls} stalls for {viewers} viewers"
    );
    let stall = &report["stall_ms"];
    let (p50, max) = (
        stall["p50"].as_f64().unwrap(),
        stall["max"].as_f64().unwrap(),
    );
    assert!((1800.0..=2600.0).contains(&p50) && max <= 4000.0, "{stall}");
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));
}

/// Unsampled RTMP viewers (`--sample 0`) skip media payloads but stay RTMP clients:
/// every one connects and plays, receives what the server sent, and sees the stream
/// end (the play status path still works). That they count as streaming once media
/// arrived is `unsampled_viewers_skip_media_yet_stream_and_acknowledge_like_sampled_ones`
/// in `src/rtmp.rs` (a setup deadline here is deferred while bytes are unread).
#[test]
fn unsampled_rtmp_viewers_play_and_see_the_end() {
    let server = Ringcast::start();
    let dir = TempDir::new("ringcast-unsampled-rtmp");
    let file = dir.path("src.flv");
    make_flv(&file, 4, 25);
    let name = format!("skim{}", free_port());
    let url = format!("{}/{name}", server.rtmp_app);
    let publish_json = dir.path("publish.json");
    let publish = loadgen_bg(
        &[
            "publish",
            "--url",
            &url,
            "--source",
            file.to_str().unwrap(),
            "--duration",
            "6s",
        ],
        &publish_json,
    );
    wait_until("the stream on the server", Duration::from_secs(60), || {
        server.uptime_secs(&name).is_some()
    });
    let viewers = 20u64;
    let viewers_json = dir.path("viewers.json");
    // The window outlasts the stream: each viewer ends at its end (EarlyEof).
    let play = loadgen_bg(
        &[
            "play",
            "--url",
            &url,
            "--viewers",
            &viewers.to_string(),
            "--ramp",
            "0",
            "--sample",
            "0",
            "--setup-timeout",
            "3s",
            "--duration",
            "15s",
        ],
        &viewers_json,
    );
    let report = report_of(play, &viewers_json);
    report_of(publish, &publish_json);

    assert_eq!(report["peak_viewers"].as_u64(), Some(viewers));
    assert_eq!(count(&report, "video_frames"), 0, "nothing parsed");
    let received = count(&report, "bytes_received") as f64;
    let sent = server.metric("ringcast_sent_bytes_total");
    // The server's count leaves out its handshakes (~3 kB a viewer); loadgen counts
    // every byte it read.
    assert!(
        (received - sent).abs() <= 0.05 * sent,
        "loadgen received {received} bytes, ringcast sent {sent}"
    );
    assert!(received > viewers as f64 * 100_000.0, "{received} bytes");
    // No failure but the stream's end, once each.
    assert_eq!(
        failures(&report),
        vec![("Streaming".to_owned(), "EarlyEof".to_owned(), viewers)]
    );
}
