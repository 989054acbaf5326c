//! loadgen's HTTP-FLV viewer against a real HTTP-FLV server (ffmpeg's HTTP listener,
//! which serves one client), cross-checked with ffprobe on the same stream.
//!
//! Point it at another server with LOADGEN_TEST_HTTP_URL (the stream must be the
//! one `make_flv` writes, published by you); ffprobe then reads that URL too.

mod common;

use std::process::{Command, Stdio};

use common::*;

#[test]
fn frame_and_keyframe_counts_agree_with_ffprobe() {
    let dir = TempDir::new("http");
    let file = dir.path("src.flv");
    make_flv(&file, 4, 25);
    let expected = ffprobe_keyflags(file.to_str().unwrap(), &[]);
    assert_eq!(expected.len(), 100, "ffprobe sees 4 s at 25 fps");

    let url = match std::env::var("LOADGEN_TEST_HTTP_URL") {
        Ok(url) => url,
        Err(_) => {
            let port = free_port();
            let url = format!("http://127.0.0.1:{port}/live/x.flv");
            let server = Command::new("ffmpeg")
                .args(["-loglevel", "error", "-i"])
                .arg(&file)
                .args(["-c", "copy", "-f", "flv", "-listen", "1", &url])
                .stdin(Stdio::null())
                .spawn()
                .expect("ffmpeg installed");
            let _guard = Guard(server);
            wait_for_port_or_listener(port);
            let report = loadgen(
                &["play", "--url", &url, "--viewers", "1", "--duration", "3s"],
                &dir,
            );
            check(&report, &expected);
            // ffmpeg closes after the last frame, before the run ends: an early EOF.
            let failures = report["failures"].as_array().unwrap();
            assert_eq!(failures.len(), 1, "{failures:?}");
            assert_eq!(
                (failures[0]["phase"].as_str(), failures[0]["kind"].as_str()),
                (Some("Streaming"), Some("EarlyEof"))
            );
            return;
        }
    };
    let report = loadgen(
        &["play", "--url", &url, "--viewers", "1", "--duration", "5s"],
        &dir,
    );
    check(&report, &expected);
    assert!(
        report["failures"].as_array().unwrap().is_empty(),
        "{}",
        report["failures"]
    );
}

/// ffmpeg's listener accepts exactly one client, so probing it with a connect would
/// use it up: wait for the port to be bound instead.
fn wait_for_port_or_listener(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("ffmpeg did not listen on {port}");
}

fn check(report: &serde_json::Value, expected: &[bool]) {
    assert_eq!(count(report, "viewers_playing"), 1);
    assert_eq!(
        count(report, "video_frames"),
        expected.len() as u64,
        "every frame ffprobe decodes"
    );
    assert_eq!(
        count(report, "keyframes"),
        expected.iter().filter(|&&k| k).count() as u64
    );
    let gops = gop_lengths(expected);
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
        gops.len() as u64
    );
}
