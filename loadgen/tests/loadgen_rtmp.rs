//! loadgen against a real RTMP server (nginx-rtmp by default; set
//! LOADGEN_TEST_RTMP_URL / LOADGEN_TEST_SERVER_PID to aim at ringcast), at small
//! scale: its counts agree with ffprobe on the same stream, and a frozen server
//! shows up as stalls.

mod common;

use std::time::Duration;

use common::*;

/// Viewers and ffprobe join before the publisher, so all of them see the whole stream
/// from its first frame to its last: ffprobe's frame count and keyframe spacing must
/// equal every loadgen viewer's, frame for frame.
#[test]
fn viewer_counts_equal_ffprobe_of_the_same_stream() {
    let server = RtmpServer::start();
    let dir = TempDir::new("rtmp-count");
    let file = dir.path("src.flv");
    make_flv(&file, 2, 25);
    let name = format!("count{}", free_port());
    let url = format!("{}/{name}", server.app_url);
    let viewers = 20u64;

    let viewers_json = dir.path("viewers.json");
    let play = loadgen_bg(
        &[
            "play",
            "--url",
            &url,
            "--viewers",
            &viewers.to_string(),
            "--ramp",
            "0",
            "--duration",
            "6s",
            "--setup-timeout",
            "6s",
        ],
        &viewers_json,
    );
    // ffprobe decodes the live stream and exits once it has been idle for 2.5 s.
    let probe_url = url.clone();
    let probe =
        std::thread::spawn(move || ffprobe_keyflags(&probe_url, &["-rw_timeout", "2500000"]));
    // Every viewer and ffprobe have asked for the stream before it is published.
    wait_until(
        "20 viewers and ffprobe to ask",
        Duration::from_secs(60),
        || server.clients(&name) > viewers as usize,
    );

    let publish = loadgen(
        &[
            "publish",
            "--url",
            &url,
            "--source",
            file.to_str().unwrap(),
            "--duration",
            "3s",
        ],
        &dir,
    );
    let report = report_of(play, &viewers_json);
    let probe = probe.join().unwrap();

    assert!(count(&publish, "published_frames") > 100);
    assert!(probe.len() >= 50, "ffprobe decoded {} frames", probe.len());
    assert_every_viewer_saw_every_frame(&report, &probe, viewers);
    let gops = gop_lengths(&probe);
    assert_eq!(
        report["gop_frames"]["min"].as_f64().unwrap(),
        *gops.iter().min().unwrap() as f64
    );
    assert_eq!(
        report["gop_frames"]["max"].as_f64().unwrap(),
        *gops.iter().max().unwrap() as f64
    );
    assert_eq!(
        report["gop_frames"]["count"].as_u64().unwrap(),
        viewers * gops.len() as u64
    );
    // The publisher left before the viewers' run ended: each saw the stream end once.
    for (phase, kind, n) in failures(&report) {
        assert_eq!(
            (phase.as_str(), kind.as_str(), n),
            ("Streaming", "EarlyEof", viewers)
        );
    }
}

/// SIGSTOP the server for 2 s mid-run: every viewer must report one stall of about
/// 2 s, and no failures.
#[test]
fn a_frozen_server_shows_up_as_stalls() {
    let server = RtmpServer::start();
    let pid = server.media_pid.expect(
        "no server pid to freeze: with LOADGEN_TEST_RTMP_URL set LOADGEN_TEST_SERVER_PID too",
    );
    let dir = TempDir::new("rtmp-stall");
    let name = format!("stall{}", free_port());
    let url = format!("{}/{name}", server.app_url);
    let viewers = 20u64;
    let json = dir.path("run.json");
    let run = loadgen_bg(
        &[
            "run",
            "--publish-url",
            &url,
            "--play-url",
            &url,
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
    // The publisher and every viewer on the stream, and then 60 kB more for each
    // viewer (1.3 s of 300k video + 64k audio, longer than the 1 s GOP): nginx-rtmp
    // starts a player at the next keyframe, so by then every viewer is playing.
    wait_until(
        "publisher and viewers on the stream",
        Duration::from_secs(60),
        || server.clients(&name) > viewers as usize,
    );
    if let Some(before) = server.bytes_out(&name) {
        wait_until(
            "media flowing to the viewers",
            Duration::from_secs(60),
            || {
                server
                    .bytes_out(&name)
                    .is_some_and(|b| b >= before + 60_000 * viewers)
            },
        );
    }
    // SAFETY: signalling a process this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    // The injected fault: the server frozen for 2 s.
    std::thread::sleep(Duration::from_secs(2));
    unsafe { libc::kill(pid, libc::SIGCONT) };
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
    assert!(count(&report, "byte_stalls") >= viewers);
    assert!(
        report["latency_ms"]["max"].as_f64().unwrap() >= 1800.0,
        "frames sent during the freeze arrive late"
    );
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));
}
