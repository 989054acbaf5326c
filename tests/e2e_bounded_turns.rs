//! Bounded loop turns end to end (`runtime.max_sends_per_turn`): with a single
//! core allowed one send per turn, an ffmpeg publisher's stream still reaches
//! two dozen curl HTTP-FLV viewers and a few ffmpeg RTMP viewers, every one of
//! them decodable by ffmpeg, and a viewer that joins (HTTP-FLV, RTMP) while
//! they all stream gets its answer and the cached GOP: joins and session
//! replies go ahead of the viewers queued behind the limit. And the key's
//! validation names it when it is 0.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use ringcast::config::{Config, ConfigError};
use ringcast::protocol::FrameKind;

/// curl HTTP-FLV viewers streaming while the joins are made.
const HTTP_VIEWERS: usize = 24;
/// ffmpeg RTMP viewers streaming alongside them.
const RTMP_VIEWERS: usize = 3;
/// Video frames each RTMP viewer decodes: ~16 s at 25 fps, so they are still
/// playing when the late joins are made.
const RTMP_FRAMES: u32 = 400;
/// Video frames ffmpeg must decode from each HTTP-FLV viewer's recording.
const DECODED_FRAMES: u32 = 100;

/// Video tags in the FLV bytes `flv` (header, then tags; a tag cut short at
/// the end is not counted). Hand-parsed so that the wait below does not lean
/// on ringcast's own demuxer; ffmpeg is the judge of what was received.
fn flv_video_tags(flv: &[u8]) -> usize {
    // The 9-byte FLV header and the first PreviousTagSize.
    let mut at = 13;
    let mut video = 0;
    while let Some(head) = flv.get(at..at + 11) {
        let size = u32::from_be_bytes([0, head[1], head[2], head[3]]) as usize;
        let end = at + 11 + size + 4;
        if end > flv.len() {
            break;
        }
        if head[0] == 9 {
            video += 1;
        }
        at = end;
    }
    video
}

/// A curl HTTP-FLV viewer of `url` writing what it receives to `file`.
fn curl_viewer(curl: &Path, url: &str, file: &Path) -> Proc {
    let child = Command::new(curl)
        .args(["-sSN", "-o"])
        .arg(file)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn curl");
    Proc {
        child,
        name: format!("curl {url}"),
    }
}

/// ffmpeg decoding the first `frames` video frames of the FLV file `file`:
/// (frames decoded, ffmpeg's errors).
fn decode_file(file: &Path, frames: u32) -> (u64, String) {
    let out = run_bounded(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error", "-f", "flv", "-i"])
            .arg(file)
            .args(["-map", "0:v:0", "-frames:v", &frames.to_string()])
            .args(["-f", "framemd5", "-"]),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let decoded = stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count() as u64;
    (decoded, String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn one_send_per_turn_still_serves_every_viewer_and_late_joins() {
    require::command("ffmpeg", "ffmpeg");
    let curl = require::command("curl", "curl");
    // One core: every connection shares its turns, one send each.
    let server = Server::start(1, "[runtime]\nmax_sends_per_turn = 1\n");
    let _publisher = publish(&server.rtmp_url("live", "bt"), 120);
    wait_live(&server, "live", "bt", Duration::from_secs(60));

    let dir = server.dir.join("viewers");
    std::fs::create_dir_all(&dir).unwrap();
    let url = server.flv_url("live", "bt");
    let files: Vec<PathBuf> = (0..HTTP_VIEWERS)
        .map(|i| dir.join(format!("v{i}.flv")))
        .collect();
    let mut curls: Vec<Proc> = files.iter().map(|f| curl_viewer(&curl, &url, f)).collect();
    let rtmp = server.rtmp_url("live", "bt");
    let rtmp_viewers: Vec<_> = (0..RTMP_VIEWERS)
        .map(|_| {
            let rtmp = rtmp.clone();
            std::thread::spawn(move || pull_decode(&rtmp, RTMP_FRAMES, Duration::from_secs(120)))
        })
        .collect();

    let admin = server.admin_port;
    let everyone = (HTTP_VIEWERS + RTMP_VIEWERS) as f64;
    wait_until(
        "every viewer counted by the server",
        Duration::from_secs(60),
        || metric_on(admin, "ringcast_viewers") >= everyone,
    );
    let tags = |f: &PathBuf| flv_video_tags(&std::fs::read(f).unwrap_or_default());
    wait_until(
        "every HTTP-FLV viewer receiving video",
        Duration::from_secs(60),
        || files.iter().all(|f| tags(f) >= 50),
    );

    // Joins while they all stream: the HTTP-FLV answer and the cached GOP
    // (sequence headers, then a keyframe) ...
    let mut late = FlvViewer::connect(server.http_port, "/live/bt.flv");
    late.stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let first = late.next_frame();
    assert_eq!(late.status, 200, "the late HTTP-FLV viewer's answer");
    let mut frames: Vec<_> = first.into_iter().collect();
    while frames.len() < 20 {
        match late.next_frame() {
            Some(f) => frames.push(f),
            None => break,
        }
    }
    assert!(
        frames
            .iter()
            .any(|f| f.kind == FrameKind::Video && f.sequence_header),
        "no video sequence header in the late viewer's first {} frames",
        frames.len()
    );
    assert!(
        frames
            .iter()
            .any(|f| f.kind == FrameKind::Video && f.keyframe && !f.sequence_header),
        "no keyframe in the late viewer's first {} frames",
        frames.len()
    );
    // ... and an RTMP play that ffmpeg decodes.
    let joined = pull_decode(&rtmp, 25, Duration::from_secs(60));
    assert!(
        joined.video_frames >= 25 && joined.errors.trim().is_empty(),
        "late RTMP viewer: {joined:?}"
    );
    drop(late);

    // The viewers kept receiving through the joins; then ffmpeg decodes what
    // each one recorded.
    wait_until(
        "every HTTP-FLV viewer past the decoded frames",
        Duration::from_secs(60),
        || files.iter().all(|f| tags(f) as u32 > DECODED_FRAMES + 10),
    );
    for c in &mut curls {
        assert!(
            c.child.try_wait().unwrap().is_none(),
            "{} ended early",
            c.name
        );
        c.kill();
    }
    for f in &files {
        let (decoded, errors) = decode_file(f, DECODED_FRAMES);
        assert!(
            decoded >= u64::from(DECODED_FRAMES) && errors.trim().is_empty(),
            "{}: {decoded} frames decoded: {errors}",
            f.display()
        );
    }
    for v in rtmp_viewers {
        let d = v.join().expect("RTMP viewer thread");
        assert!(
            d.ok && d.video_frames >= u64::from(RTMP_FRAMES) && d.errors.trim().is_empty(),
            "RTMP viewer: {d:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn max_sends_per_turn_zero_is_refused_naming_the_key() {
    // The library's validation ...
    match Config::from_toml("[runtime]\nmax_sends_per_turn = 0\n") {
        Err(e @ ConfigError::Invalid { field, .. }) => {
            assert_eq!(field, "runtime.max_sends_per_turn");
            assert!(e.to_string().contains("runtime.max_sends_per_turn"), "{e}");
        }
        other => panic!("max_sends_per_turn = 0 accepted: {other:?}"),
    }
    let one = Config::from_toml("[runtime]\nmax_sends_per_turn = 1\n").unwrap();
    assert_eq!(one.runtime.max_sends_per_turn, 1);

    // ... and the binary's `check-config`, as an operator runs it.
    let dir = std::env::temp_dir().join(format!(
        "ringcast-bounded-turns-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let check = |value: u32| {
        let out = check_config(
            &dir.join(format!("turns{value}.toml")),
            &format!("[runtime]\nmax_sends_per_turn = {value}\n"),
        );
        (out.status.success(), output_text(&out))
    };
    let (ok, text) = check(0);
    assert!(
        !ok && text.contains("runtime.max_sends_per_turn"),
        "check-config of max_sends_per_turn = 0: {text}"
    );
    let (ok, text) = check(1);
    assert!(
        ok && text.contains("max_sends_per_turn = 1"),
        "check-config of max_sends_per_turn = 1: {text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
