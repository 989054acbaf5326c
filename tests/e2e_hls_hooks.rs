//! HLS viewer sessions through `[auth]`: against the real hook server
//! (`tests/hooks/hook_server.py`), an hls.js-like session of many keep-alive
//! requests (multivariant, media playlists, blocking reloads, init, parts,
//! segments, the multivariant and MPD again) asks `on_play` once, a second
//! connection once more (allow cache off), and `on_stop` is told when the
//! connection starts a session of another stream and when it closes; a denied play is 403 on the playlist and the
//! MPD. Signed URLs: a token from `ringcast sign` (for the stream or for a
//! path prefix) is accepted on the playlist, media playlists, parts and
//! segments; a tampered one is 403 on any of them. `signed+hook`: no valid
//! token is 403 without a hook call, a valid one the hook denies is 403 after
//! one, and an allowed session's later requests ask nothing more.

mod common;

use std::process::Command;
use std::time::Duration;

use common::hls_playlist::preload_hint;
use common::hook_server::HookServer;
use common::http1::Conn;
use common::*;
use serde_json::Value;

/// A keep-alive HTTP/1.1 client of one connection.
struct KeepAlive(Conn);

impl KeepAlive {
    fn connect(port: u16) -> KeepAlive {
        KeepAlive(Conn::connect(port, Duration::from_secs(20)))
    }

    /// `GET path` on this connection: (status, body). Content-Length bodies only.
    fn get(&mut self, path: &str) -> (u16, Vec<u8>) {
        let r = self.0.request("GET", path);
        assert!(
            !r.head.to_ascii_lowercase().contains("transfer-encoding"),
            "{path}: {}",
            r.head
        );
        (r.status, r.body)
    }

    fn text(&mut self, path: &str) -> (u16, String) {
        let (status, body) = self.get(path);
        (status, String::from_utf8_lossy(&body).to_string())
    }
}

/// The last `#EXT-X-PART` URI and the last segment URI of a media playlist.
fn last_part_and_segment(playlist: &str) -> (String, String) {
    let part = playlist
        .lines()
        .rev()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .find_map(|l| l.split("URI=\"").nth(1)?.split('"').next())
        .unwrap_or_else(|| panic!("no part in {playlist}"))
        .to_owned();
    let segment = playlist
        .lines()
        .rfind(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap_or_else(|| panic!("no segment in {playlist}"))
        .to_owned();
    (part, segment)
}

/// One hls.js-like session on one keep-alive connection: the entry URL with
/// `query`, then `rounds` of blocking reloads, parts and segments of both
/// renditions, and the multivariant and MPD again; returns how many requests
/// it made (every one answered 200).
fn hls_session(port: u16, query: &str, rounds: usize) -> (KeepAlive, usize) {
    let mut c = KeepAlive::connect(port);
    let mut n = 0;
    let mut ok = |c: &mut KeepAlive, path: &str| -> String {
        let (status, body) = c.text(path);
        assert_eq!(status, 200, "{path}: {body}");
        n += 1;
        body
    };
    let multivariant = ok(&mut c, &format!("/live/cam.m3u8?{query}"));
    assert!(multivariant.contains("#EXT-X-STREAM-INF"));
    for round in 0..rounds {
        let video = ok(&mut c, "/live/cam/v.m3u8");
        let (msn, part) = preload_hint(&video);
        let reload = ok(
            &mut c,
            &format!("/live/cam/v.m3u8?_HLS_msn={msn}&_HLS_part={part}"),
        );
        let (part_uri, segment_uri) = last_part_and_segment(&reload);
        ok(&mut c, &format!("/live/cam/{part_uri}"));
        ok(&mut c, &format!("/live/cam/{segment_uri}"));
        let audio = ok(&mut c, "/live/cam/a.m3u8");
        let (part_uri, _) = last_part_and_segment(&audio);
        ok(&mut c, &format!("/live/cam/{part_uri}"));
        if round % 4 == 0 {
            // Players re-read these (dash.js reloads the MPD all the time).
            ok(&mut c, &format!("/live/cam.m3u8?{query}"));
            ok(&mut c, &format!("/live/cam.mpd?{query}"));
            ok(&mut c, &format!("/live/cam-ts.m3u8?{query}"));
        }
    }
    (c, n)
}

/// The query string `ringcast sign` (with the server's config, `play`, 1 h,
/// and `extra` options) appends to `url`.
fn sign_query(server: &Server, url: &str, extra: &[&str]) -> String {
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_ringcast"))
            .arg("sign")
            .arg("--config")
            .arg(server.dir.join("ringcast.toml"))
            .args(["--action", "play", "--url", url, "--ttl", "1h"])
            .args(extra),
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    signed.split_once('?').unwrap().1.to_owned()
}

#[test]
fn an_hls_session_asks_on_play_once_and_a_denied_play_is_403() {
    require::command("ffmpeg", "ffmpeg");
    let hooks = HookServer::start();
    let server = Server::start(
        2,
        &format!(
            "[auth]\nplay = \"hook\"\n[hooks]\non_play = \"{}\"\non_stop = \"{}\"\n\
             timeout_play = \"2s\"\ncache_allow_for = \"0s\"\n",
            hooks.url("/play"),
            hooks.url("/stop"),
        ),
    );
    let _publisher = publish(&server.rtmp_url("live", "cam"), 60);
    wait_live(&server, "live", "cam", Duration::from_secs(20));
    wait_until("two closed segments", Duration::from_secs(30), || {
        let (status, body) = http_request(server.http_port, "GET", "/live/cam-ts.m3u8?mode=allow");
        status == 200 && body.matches("#EXTINF").count() >= 2
    });
    let asked_before = hooks.bodies("on_play").len();

    // One session: many requests, one on_play (the allow cache is off, so
    // this is the connection's own memory of its session).
    let (first, requests) = hls_session(server.http_port, "mode=allow&viewer=1", 8);
    assert!(requests >= 50, "{requests} requests");
    let asked: Vec<Value> = hooks.bodies("on_play").split_off(asked_before);
    assert_eq!(
        asked.len(),
        1,
        "{requests} requests of one session asked on_play {} times: {asked:?}",
        asked.len()
    );
    assert_eq!(asked[0]["app"], "live");
    assert_eq!(asked[0]["stream"], "cam");
    assert_eq!(asked[0]["param"], "?mode=allow&viewer=1");

    // A second session (a new connection): one more.
    let (second, requests) = hls_session(server.http_port, "mode=allow&viewer=2", 3);
    let asked = hooks.bodies("on_play").len() - asked_before;
    assert_eq!(asked, 2, "two sessions ({requests} more requests)");

    // on_stop when the connection starts a session of another stream (not
    // live here: allowed, then 404), and when a session's connection closes.
    let stopped = |param: &str, stream: &str| {
        hooks
            .bodies("on_stop")
            .iter()
            .any(|b| b["param"] == param && b["stream"] == stream)
    };
    assert!(!stopped("?mode=allow&viewer=1", "cam"));
    let mut first = first;
    assert_eq!(first.get("/live/other.m3u8?mode=allow&viewer=9").0, 404);
    wait_until(
        "on_stop of the first session",
        Duration::from_secs(10),
        || stopped("?mode=allow&viewer=1", "cam"),
    );
    drop(first);
    wait_until(
        "on_stop of the other stream's session",
        Duration::from_secs(10),
        || stopped("?mode=allow&viewer=9", "other"),
    );
    drop(second);

    // Denied: 403 on every entry URL, counted; the connection keeps serving.
    let denied_before = metric_on(
        server.admin_port,
        "ringcast_auth_refused_total{reason=\"hook_denied\"}",
    );
    let mut c = KeepAlive::connect(server.http_port);
    for path in [
        "/live/cam.m3u8?mode=deny",
        "/live/cam-ts.m3u8?mode=code1",
        "/live/cam.mpd?mode=deny",
    ] {
        assert_eq!(c.get(path).0, 403, "{path}");
    }
    assert_eq!(c.get("/live/cam.m3u8?mode=allow").0, 200);
    let denied = metric_on(
        server.admin_port,
        "ringcast_auth_refused_total{reason=\"hook_denied\"}",
    ) - denied_before;
    assert_eq!(denied, 3.0);
}

#[test]
fn a_signed_token_covers_the_playlists_parts_and_segments() {
    require::command("ffmpeg", "ffmpeg");
    let server = Server::start(
        1,
        "[auth]\nplay = \"signed\"\n[[auth.keys]]\nid = \"k1\"\n\
         secret = \"0123456789abcdef0123456789abcdef\"\n",
    );
    let _publisher = publish(&server.rtmp_url("live", "cam"), 60);
    wait_live(&server, "live", "cam", Duration::from_secs(20));
    let sign = |url: &str, extra: &[&str]| sign_query(&server, url, extra);
    let entry = format!("http://127.0.0.1:{}/live/cam.m3u8", server.http_port);
    let for_stream = sign(&entry, &[]);
    let for_prefix = sign(&entry, &["--prefix", "live/cam"]);
    let for_other = sign(
        &format!("http://127.0.0.1:{}/live/other.m3u8", server.http_port),
        &[],
    );
    wait_until("two closed segments", Duration::from_secs(30), || {
        let path = format!("/live/cam-ts.m3u8?{for_stream}");
        let (status, body) = http_request(server.http_port, "GET", &path);
        status == 200 && body.matches("#EXTINF").count() >= 2
    });

    // No token, or another stream's: 403 on the entry URLs.
    let mut c = KeepAlive::connect(server.http_port);
    assert_eq!(c.get("/live/cam.m3u8").0, 403);
    assert_eq!(c.get(&format!("/live/cam.mpd?{for_other}")).0, 403);
    for token in [&for_stream, &for_prefix] {
        let mut c = KeepAlive::connect(server.http_port);
        for entry in ["cam.m3u8", "cam-ts.m3u8", "cam.mpd"] {
            let (status, body) = c.text(&format!("/live/{entry}?{token}"));
            assert_eq!(status, 200, "{entry}: {body}");
        }
        // A player that appends the token to every URL.
        let (status, video) = c.text(&format!("/live/cam/v.m3u8?{token}"));
        assert_eq!(status, 200);
        let (part, segment) = last_part_and_segment(&video);
        for listed in [&part, &segment] {
            let (status, body) = c.get(&format!("/live/cam/{listed}?{token}"));
            assert_eq!(status, 200, "{listed}");
            assert!(!body.is_empty());
        }
        // A tampered token is refused there too (on a fresh connection, which
        // has no session yet).
        let mut fresh = KeepAlive::connect(server.http_port);
        let flipped = format!("{}0", &token[..token.len() - 1]);
        let flipped = if flipped == **token {
            format!("{}1", &token[..token.len() - 1])
        } else {
            flipped
        };
        assert_eq!(fresh.get(&format!("/live/cam/{part}?{flipped}")).0, 403);
        assert_eq!(fresh.get(&format!("/live/cam.m3u8?{flipped}")).0, 403);
    }
}

#[test]
fn signed_and_hook_an_hls_session_needs_both() {
    require::command("ffmpeg", "ffmpeg");
    let hooks = HookServer::start();
    let server = Server::start(
        1,
        &format!(
            "[auth]\nplay = \"signed+hook\"\n[[auth.keys]]\nid = \"k1\"\n\
             secret = \"0123456789abcdef0123456789abcdef\"\n[hooks]\non_play = \"{}\"\n\
             timeout_play = \"2s\"\ncache_allow_for = \"0s\"\n",
            hooks.url("/play"),
        ),
    );
    let _publisher = publish(&server.rtmp_url("live", "cam"), 60);
    wait_live(&server, "live", "cam", Duration::from_secs(20));
    let sign = |mode: &str| -> String {
        let url = format!(
            "http://127.0.0.1:{}/live/cam.m3u8?mode={mode}",
            server.http_port
        );
        sign_query(&server, &url, &[])
    };
    let (allow, deny) = (sign("allow"), sign("deny"));
    wait_until("the playlist", Duration::from_secs(30), || {
        http_request(server.http_port, "GET", &format!("/live/cam.m3u8?{allow}")).0 == 200
    });
    let asked = hooks.bodies("on_play").len();

    // No valid token: refused before the hook is asked.
    let mut c = KeepAlive::connect(server.http_port);
    assert_eq!(c.get("/live/cam.m3u8?mode=allow").0, 403);
    assert_eq!(
        hooks.bodies("on_play").len(),
        asked,
        "unsigned: no hook call"
    );
    // A valid token the hook denies: 403 after one call.
    assert_eq!(c.get(&format!("/live/cam.m3u8?{deny}")).0, 403);
    assert_eq!(hooks.bodies("on_play").len(), asked + 1);
    // Both: served, and the session's later requests ask nothing more.
    assert_eq!(c.get(&format!("/live/cam.m3u8?{allow}")).0, 200);
    for _ in 0..5 {
        assert_eq!(c.get("/live/cam/v.m3u8").0, 200);
        assert_eq!(c.get(&format!("/live/cam.m3u8?{allow}")).0, 200);
    }
    assert_eq!(hooks.bodies("on_play").len(), asked + 2);
}
