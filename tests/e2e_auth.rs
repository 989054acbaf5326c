//! `[auth]` signed URLs against real clients: ffmpeg publishes with a URL from
//! `ringcast sign` and is refused without one or with a tampered one; ffprobe
//! and ffmpeg play HTTP-FLV and RTMP with a signed URL, and unsigned requests
//! get 403 / `NetStream.Play.Failed`. Every refusal is counted by reason.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const KEYS: &str = r#"
[[auth.keys]]
id = "old"
secret = "an old secret that is being rotated out"

[[auth.keys]]
id = "k2"
secret = "0123456789abcdef0123456789abcdef"
"#;

/// A server whose `[auth]` has `policies` and the keys above.
fn server_with(policies: &str) -> Server {
    require::command("ffmpeg", "ffmpeg");
    require::command("ffprobe", "ffmpeg");
    Server::start(1, &format!("[auth]\n{policies}\n{KEYS}"))
}

/// `ringcast sign` with the server's own config file.
fn sign(server: &Server, action: &str, url: &str, extra: &[&str]) -> String {
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_ringcast"))
            .arg("sign")
            .arg("--config")
            .arg(server.dir.join("ringcast.toml"))
            .args(["--action", action, "--url", url, "--ttl", "1h"])
            .args(extra),
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "ringcast sign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(url.contains("&kid=") && url.contains("&sig="), "{url}");
    url
}

/// `ringcast_auth_refused_total{reason="…"}`.
fn refused(server: &Server, reason: &str) -> f64 {
    metric_on(
        server.admin_port,
        &format!("ringcast_auth_refused_total{{reason=\"{reason}\"}}"),
    )
}

/// Waits for a publisher ffmpeg to exit; its success. A refused one must have
/// printed the server's refusal.
fn exits(mut p: Proc, what: &str) -> bool {
    let ok = p
        .wait_for(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{what}: ffmpeg did not exit after the refusal"))
        .success();
    if !ok {
        let mut stderr = String::new();
        if let Some(mut e) = p.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        assert!(
            stderr.contains("unauthorized"),
            "{what}: ffmpeg said {stderr}"
        );
    }
    ok
}

/// The `sig` of a signed URL flipped in its last hex digit.
fn tampered(url: &str) -> String {
    let (head, last) = url.split_at(url.len() - 1);
    let flipped = if last == "0" { "1" } else { "0" };
    format!("{head}{flipped}")
}

#[test]
fn publishing_needs_a_url_from_ringcast_sign() {
    let server = server_with("publish = \"signed\"");
    let plain = server.rtmp_url("live", "cam");

    assert!(
        !exits(publish(&plain, 20), "unsigned"),
        "ffmpeg published without a token"
    );
    wait_until(
        "missing-token refusal counted",
        Duration::from_secs(10),
        || refused(&server, "missing") >= 1.0,
    );

    let signed = sign(&server, "publish", &plain, &["--kid", "k2"]);
    assert!(
        !exits(publish(&tampered(&signed), 20), "tampered"),
        "ffmpeg published with a tampered signature"
    );
    wait_until(
        "bad-signature refusal counted",
        Duration::from_secs(10),
        || refused(&server, "bad_signature") >= 1.0,
    );

    // A play URL does not allow publishing.
    let play_url = sign(&server, "play", &plain, &[]);
    assert!(!exits(publish(&play_url, 20), "play token"));
    wait_until(
        "second bad signature counted",
        Duration::from_secs(10),
        || refused(&server, "bad_signature") >= 2.0,
    );

    // A key id the server does not have.
    let unknown = signed.replace("kid=k2", "kid=gone");
    assert!(!exits(publish(&unknown, 20), "unknown kid"));
    wait_until(
        "unknown-key refusal counted",
        Duration::from_secs(10),
        || refused(&server, "unknown_key") >= 1.0,
    );

    // The rotated-out key (the default: the first one) still works while it
    // is configured.
    let mut publisher = publish(&sign(&server, "publish", &plain, &[]), 30);
    wait_live(&server, "live", "cam", Duration::from_secs(30));
    // Play stays open: no token needed.
    let flv = pull_decode(&server.flv_url("live", "cam"), 25, Duration::from_secs(20));
    assert!(flv.ok && flv.video_frames >= 25, "{flv:?}");
    publisher.kill();
    assert_eq!(
        metric_on(server.admin_port, "ringcast_auth_refused_total"),
        4.0
    );
}

#[test]
fn playing_needs_a_signed_url_over_http_flv_and_rtmp() {
    let server = server_with("play = \"signed\"");
    let mut publisher = publish(&server.rtmp_url("live", "show"), 60);
    wait_live(&server, "live", "show", Duration::from_secs(30));

    // HTTP-FLV: unsigned and tampered get 403, signed plays.
    assert_eq!(server.http_get("/live/show.flv").0, 403);
    let flv = sign(&server, "play", &server.flv_url("live", "show"), &[]);
    let path = flv.split_once(&format!(":{}", server.http_port)).unwrap().1;
    assert_eq!(server.http_get(&tampered(path)).0, 403);
    let (vcodec, w, h, acodec) = probe(&flv);
    assert_eq!(
        (vcodec.as_str(), w, h, acodec.as_str()),
        ("h264", 320, 240, "aac")
    );
    // A publish token does not allow playing.
    let publish_token = sign(&server, "publish", &server.flv_url("live", "show"), &[]);
    let path = publish_token
        .split_once(&format!(":{}", server.http_port))
        .unwrap()
        .1;
    assert_eq!(server.http_get(path).0, 403);

    // RTMP: unsigned fails, signed decodes.
    let rtmp_plain = server.rtmp_url("live", "show");
    let denied = pull_decode(&rtmp_plain, 10, Duration::from_secs(20));
    assert!(
        !denied.ok && denied.video_frames == 0,
        "unsigned RTMP play: {denied:?}"
    );
    assert!(
        denied.errors.contains("unauthorized"),
        "ffmpeg did not report the refusal: {denied:?}"
    );
    let rtmp = pull_decode(
        &sign(&server, "play", &rtmp_plain, &[]),
        25,
        Duration::from_secs(20),
    );
    assert!(
        rtmp.ok && rtmp.video_frames >= 25,
        "signed RTMP play: {rtmp:?}"
    );

    // A token bound to another address is refused as such; one bound to the
    // client's address (loopback) plays.
    let elsewhere = sign(
        &server,
        "play",
        &server.flv_url("live", "show"),
        &["--ip", "192.0.2.1"],
    );
    let path = elsewhere
        .split_once(&format!(":{}", server.http_port))
        .unwrap()
        .1;
    assert_eq!(server.http_get(path).0, 403);
    let here = sign(
        &server,
        "play",
        &server.flv_url("live", "show"),
        &["--ip", "127.0.0.1"],
    );
    let bound = pull_decode(&here, 10, Duration::from_secs(20));
    assert!(
        bound.ok && bound.video_frames >= 10,
        "IP-bound play: {bound:?}"
    );

    assert_eq!(refused(&server, "missing"), 2.0);
    assert_eq!(refused(&server, "bad_signature"), 2.0);
    assert_eq!(refused(&server, "ip_mismatch"), 1.0);
    publisher.kill();
}

#[test]
fn hook_policies_need_their_url_and_check_config_hides_its_query() {
    let dir = std::env::temp_dir().join(format!("ringcast-auth-hook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("ringcast.toml");
    let check = |text: &str| check_config(&config, text);
    let out = check("[auth]\nplay = \"hook\"\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("auth.play = \"hook\" needs hooks.on_play"),
        "{stderr}"
    );
    let out = check(
        "[auth]\nplay = \"hook\"\n[hooks]\non_play = \"http://127.0.0.1:9/play?token=hook-secret-xyz\"\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("on_play = \"http://127.0.0.1:9/play?<redacted>\""),
        "{stdout}"
    );
    assert!(!stdout.contains("hook-secret-xyz"), "{stdout}");
    let out = check("[hooks]\non_stop = \"https://127.0.0.1/stop\"\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("hooks.on_stop: must start with http://"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn edges_pass_the_viewers_token_to_the_origin_over_http_flv() {
    let origin = server_with("play = \"signed\"");
    let mut publisher = publish(&origin.rtmp_url("live", "relay"), 60);
    wait_live(&origin, "live", "relay", Duration::from_secs(30));
    let edge_config = format!(
        "[edge]\norigins = [\"http://127.0.0.1:{}\"]\n",
        origin.http_port
    );

    // The edge itself is open; the origin decides on the token the viewer
    // brought, which the edge's HTTP-FLV pull carries upstream.
    let edge = Server::start(1, &edge_config);
    let signed = sign(&origin, "play", &edge.flv_url("live", "relay"), &[]);
    let played = pull_decode(&signed, 25, Duration::from_secs(30));
    assert!(
        played.ok && played.video_frames >= 25,
        "signed play through the edge: {played:?}"
    );

    // Without one, the origin refuses the pull and the viewer gets no stream.
    let other_edge = Server::start(1, &edge_config);
    let (status, _) = other_edge.http_get("/live/relay.flv");
    assert_ne!(status, 200, "unsigned play through an edge was served");
    wait_until(
        "origin counted the unsigned pull",
        Duration::from_secs(10),
        || refused(&origin, "missing") >= 1.0,
    );
    publisher.kill();
}
