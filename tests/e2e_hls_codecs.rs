//! HLS and LL-DASH of streams other than H.264 + AAC, and HLS over HTTPS, each
//! published by a real ffmpeg and decoded by a real ffmpeg/ffprobe:
//! HEVC published over Enhanced RTMP (the static ffmpeg 9 from the PyPI wheel
//! `imageio-ffmpeg`: Debian's ffmpeg 5.1 cannot put HEVC in FLV) is served as
//! `hvc1` fMP4 and has no MPEG-TS rendition; a video-only and an audio-only
//! stream play through `.m3u8`, `-ts.m3u8` and `.mpd`; the LL-HLS playlist
//! plays over the HTTPS listener, ffprobe verifying it against a test CA.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::pki::Pki;
use common::*;

/// The static ffmpeg 9 that `tests/run.sh` installs into `target/ffmpeg9`
/// (the `imageio-ffmpeg` wheel); panics naming it when missing.
fn ffmpeg9() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ffmpeg9/ffmpeg");
    assert!(
        path.is_file(),
        "required tool {} missing: the static ffmpeg 9 from the PyPI package \
         imageio-ffmpeg==0.8.1 (./tests/run.sh installs it into a venv in target/ffmpeg9 \
         and links its binary there)",
        path.display()
    );
    path
}

/// One GOP a second, like the H.264 publishers.
const X265: &[&str] = &[
    "-c:v",
    "libx265",
    "-preset",
    "ultrafast",
    "-x265-params",
    "keyint=25:min-keyint=25:log-level=error",
    "-pix_fmt",
    "yuv420p",
];

/// `GET path` on the plain HTTP port: (status, body).
fn get(server: &Server, path: &str) -> (u16, String) {
    http_request(server.http_port, "GET", path)
}

/// Waits until `playlist` lists at least three whole segments: ffmpeg's hls
/// and dash demuxers start three segments from the live edge.
fn wait_three_segments(server: &Server, playlist: &str) {
    wait_until(
        &format!("three closed segments in {playlist}"),
        Duration::from_secs(40),
        || {
            let (status, body) = get(server, playlist);
            status == 200 && body.matches("#EXTINF").count() >= 3
        },
    );
}

/// ffmpeg decoding `frames` frames of the stream `map` (`0:v:0`, `0:a:0`) of
/// `url`, with extra input options: (frames decoded, stderr, exit success).
fn decode(input_opts: &[&str], url: &str, map: &str, frames: u32) -> (usize, String, bool) {
    let limit = if map.contains(":v") {
        "-frames:v"
    } else {
        "-frames:a"
    };
    let out = run_bounded(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error"])
            .args(input_opts)
            .args(["-i", url, "-map", map, limit, &frames.to_string()])
            .args(["-f", "framemd5", "-"]),
        Duration::from_secs(60),
    );
    let n = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    (
        n,
        String::from_utf8_lossy(&out.stderr).to_string(),
        out.status.success(),
    )
}

/// Asserts ffmpeg decodes at least 100 frames of `map` from each of `paths`
/// with no error.
fn decodes_100(server: &Server, paths: &[&str], map: &str) {
    for path in paths {
        let url = format!("http://127.0.0.1:{}{path}", server.http_port);
        let (frames, errors, ok) = decode(&[], &url, map, 100);
        assert!(frames >= 100, "{path} ({map}): {frames} frames: {errors}");
        assert!(ok && errors.trim().is_empty(), "{path} ({map}): {errors}");
    }
}

/// ffprobe's `codec_name:codec_type:codec_tag_string` of every stream of `url`.
fn probe_codecs(input_opts: &[&str], url: &str) -> Vec<String> {
    let out = run_bounded(
        Command::new("ffprobe")
            .args(["-v", "error"])
            .args(input_opts)
            .args([
                "-show_entries",
                "stream=codec_type,codec_name,codec_tag_string",
            ])
            .args(["-of", "csv=p=0:s=\\:", url]),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

#[test]
fn hevc_over_enhanced_rtmp_is_served_as_hvc1_fmp4_without_a_ts_rendition() {
    require::command("ffmpeg", "ffmpeg");
    require::command("ffprobe", "ffmpeg");
    let ffmpeg9 = ffmpeg9();
    let server = Server::start(1, "");
    let _publisher = publish_with(&ffmpeg9, &server.rtmp_url("live", "hevc"), 60, X265, true);
    wait_live(&server, "live", "hevc", Duration::from_secs(30));
    wait_three_segments(&server, "/live/hevc/v.m3u8");

    let (status, master) = get(&server, "/live/hevc.m3u8");
    assert_eq!(status, 200, "{master}");
    assert!(
        master.contains("CODECS=\"hvc1.") && master.contains("mp4a.40.2"),
        "{master}"
    );
    // The init segment is an hvc1 sample entry with its hvcC.
    let (_, media) = get(&server, "/live/hevc/v.m3u8");
    let init = media
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|u| u.split('"').next())
        .unwrap_or_else(|| panic!("no EXT-X-MAP in {media}"));
    let init_url = format!("http://127.0.0.1:{}/live/hevc/{init}", server.http_port);
    assert_eq!(
        probe_codecs(&[], &init_url),
        vec!["hevc:video:hvc1".to_owned()],
        "{init_url}"
    );
    let url = format!("http://127.0.0.1:{}/live/hevc.m3u8", server.http_port);
    let codecs = probe_codecs(&[], &url);
    assert!(
        codecs.iter().any(|c| c.starts_with("hevc:video:"))
            && codecs.iter().any(|c| c.starts_with("aac:audio:")),
        "{codecs:?}"
    );
    // ffmpeg decodes the HEVC from LL-HLS and LL-DASH.
    decodes_100(&server, &["/live/hevc.m3u8", "/live/hevc.mpd"], "0:v:0");
    // MPEG-TS here carries H.264 only: an HEVC stream has no TS playlist.
    assert_eq!(get(&server, "/live/hevc-ts.m3u8").0, 404);
}

#[test]
fn a_video_only_stream_plays_through_all_three_urls() {
    require::command("ffmpeg", "ffmpeg");
    require::command("ffprobe", "ffmpeg");
    let server = Server::start(1, "");
    let ffmpeg = require::command("ffmpeg", "ffmpeg");
    let _publisher = publish_with(&ffmpeg, &server.rtmp_url("live", "vid"), 60, X264, false);
    wait_live(&server, "live", "vid", Duration::from_secs(30));
    wait_three_segments(&server, "/live/vid/v.m3u8");

    let (_, master) = get(&server, "/live/vid.m3u8");
    assert!(
        master.contains("CODECS=\"avc1.") && !master.contains("mp4a") && !master.contains("AUDIO"),
        "one variant, no audio group: {master}"
    );
    assert_eq!(get(&server, "/live/vid/a.m3u8").0, 404, "no audio track");
    wait_three_segments(&server, "/live/vid-ts.m3u8");
    decodes_100(
        &server,
        &["/live/vid.m3u8", "/live/vid-ts.m3u8", "/live/vid.mpd"],
        "0:v:0",
    );
    let url = format!("http://127.0.0.1:{}/live/vid-ts.m3u8", server.http_port);
    assert_eq!(probe_codecs(&[], &url), vec!["h264:video:[27][0][0][0]"]);

    // What the kernel took on HLS connections counts as sent bytes of
    // protocol "hls": one more playlist adds at least its body.
    let before = sent_hls(&server);
    assert!(
        before > 100_000.0,
        "{before} HLS bytes sent after the decodes"
    );
    let (status, body) = get(&server, "/live/vid/v.m3u8");
    assert_eq!(status, 200);
    wait_until(
        "the playlist counted as sent",
        Duration::from_secs(10),
        || sent_hls(&server) >= before + body.len() as f64,
    );
}

/// `ringcast_sent_bytes_total{protocol="hls"}`.
fn sent_hls(server: &Server) -> f64 {
    http_request(server.admin_port, "GET", "/metrics")
        .1
        .lines()
        .filter(|l| l.starts_with("ringcast_sent_bytes_total{") && l.contains("protocol=\"hls\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn an_audio_only_stream_plays_through_all_three_urls() {
    require::command("ffmpeg", "ffmpeg");
    require::command("ffprobe", "ffmpeg");
    let server = Server::start(1, "");
    let ffmpeg = require::command("ffmpeg", "ffmpeg");
    let _publisher = publish_with(&ffmpeg, &server.rtmp_url("live", "aud"), 60, &[], true);
    wait_live(&server, "live", "aud", Duration::from_secs(30));
    wait_three_segments(&server, "/live/aud/a.m3u8");

    let (_, master) = get(&server, "/live/aud.m3u8");
    assert!(
        master.contains("CODECS=\"mp4a.40.2\"") && !master.contains("avc1"),
        "{master}"
    );
    assert_eq!(get(&server, "/live/aud/v.m3u8").0, 404, "no video track");
    wait_three_segments(&server, "/live/aud-ts.m3u8");
    // 100 AAC frames of 1024 samples at 44.1 kHz: 2.3 s of audio.
    decodes_100(
        &server,
        &["/live/aud.m3u8", "/live/aud-ts.m3u8", "/live/aud.mpd"],
        "0:a:0",
    );
}

#[test]
fn ll_hls_plays_over_the_https_listener_verified_against_the_ca() {
    require::command("ffmpeg", "ffmpeg");
    require::command("ffprobe", "ffmpeg");
    let pki = Pki::new("hls");
    let (cert, key) = pki.leaf("leaf", "localhost", &["localhost", "127.0.0.1"]);
    let https_port = free_port();
    let server = Server::start(
        1,
        &format!(
            "[server]\nhttps_listen = \"127.0.0.1:{https_port}\"\n\
             [tls]\ncert = {cert:?}\nkey = {key:?}\n"
        ),
    );
    wait_listening(
        "127.0.0.1",
        https_port,
        std::time::Instant::now() + Duration::from_secs(10),
        "ringcast HTTPS listener",
    );
    let _publisher = publish(&server.rtmp_url("live", "sec"), 60);
    wait_live(&server, "live", "sec", Duration::from_secs(30));
    wait_three_segments(&server, "/live/sec/v.m3u8");

    let ca = pki.ca().display().to_string();
    let verify = ["-tls_verify", "1", "-ca_file", ca.as_str()];
    let url = format!("https://127.0.0.1:{https_port}/live/sec.m3u8");
    let codecs = probe_codecs(&verify, &url);
    assert!(
        codecs.iter().any(|c| c.starts_with("h264:video:"))
            && codecs.iter().any(|c| c.starts_with("aac:audio:")),
        "{codecs:?}"
    );
    let (frames, errors, ok) = decode(&verify, &url, "0:v:0", 100);
    assert!(frames >= 100, "{frames} frames over https: {errors}");
    assert!(ok && errors.trim().is_empty(), "over https: {errors}");

    // Verification is real: a CA that did not sign the certificate fails.
    let other = Pki::new("hls-other");
    let other_ca = other.ca().display().to_string();
    let out = run_bounded(
        Command::new("ffprobe")
            .args(["-v", "error", "-tls_verify", "1", "-ca_file", &other_ca])
            .arg(&url),
        Duration::from_secs(30),
    );
    assert!(!out.status.success(), "ffprobe trusted the wrong CA");

    // The requests went through the HTTPS listener and were counted as HLS.
    let metrics = http_request(server.admin_port, "GET", "/metrics").1;
    let https_accepted: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("ringcast_connections_accepted_total") && l.contains("listener=\"https\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(https_accepted >= 3.0, "{metrics}");
    assert!(metric_on(server.admin_port, "ringcast_hls_requests_total") >= 10.0);
}
