//! `[hooks]` against a real hook server process (`tests/hooks/hook_server.py`,
//! SRS `http_hooks` style): ffmpeg publishers and RTMP / HTTP-FLV viewers are
//! allowed, denied (403, `{"code":1}`, a garbage body), refused when the hook
//! is too slow or down (publish fails closed, play per its policy);
//! `on_unpublish` / `on_stop` arrive with SRS's fields and a dead `on_stop` is
//! retried a bounded number of times; 2,000 concurrent HTTP-FLV plays of a live
//! stream and 10,000 of a missing one make one hook request per core
//! (coalescing and the allow cache). Every outcome is checked in the metrics
//! too, and the hook-gated play start latency is measured.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::hook_server::HookServer;
use common::http1::Conn;
use common::*;

/// `ringcast_hook_requests_total{action,result}`.
fn hook_count(server: &Server, action: &str, result: &str) -> f64 {
    metric_on(
        server.admin_port,
        &format!("ringcast_hook_requests_total{{action=\"{action}\",result=\"{result}\"}}"),
    )
}

/// `ringcast_auth_refused_total{reason}`.
fn refused(server: &Server, reason: &str) -> f64 {
    metric_on(
        server.admin_port,
        &format!("ringcast_auth_refused_total{{reason=\"{reason}\"}}"),
    )
}

/// Waits for a publisher ffmpeg to exit and says whether it published; a
/// refused one must have printed the server's refusal.
fn publish_refused(url: &str) -> String {
    let mut p = publish(url, 20);
    let status = p
        .wait_for(Duration::from_secs(40))
        .unwrap_or_else(|| panic!("ffmpeg publishing {url} did not exit: not refused"));
    assert!(!status.success(), "ffmpeg published {url}");
    let mut stderr = String::new();
    if let Some(mut e) = p.child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    stderr
}

/// The status of `GET path` on the server's HTTP port (HTTP/1.0, status line only).
fn flv_status(server: &Server, path: &str) -> u16 {
    let mut viewer = FlvViewer::connect(server.http_port, path);
    viewer
        .stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let frame = viewer.next_frame();
    if viewer.status == 200 {
        assert!(frame.is_some(), "{path}: 200 but no frame");
    }
    viewer.status
}

#[test]
fn publish_is_gated_by_on_publish_and_on_unpublish_gets_srs_fields() {
    require::command("ffmpeg", "ffmpeg");
    let hooks = HookServer::start();
    let server = Server::start(
        1,
        &format!(
            "[auth]\npublish = \"hook\"\n[hooks]\non_publish = \"{}\"\non_unpublish = \"{}\"\n\
             timeout_publish = \"1s\"\ncache_allow_for = \"0s\"\nserver_id = \"edge-7\"\n",
            hooks.url("/publish?token=hook-secret"),
            hooks.url("/unpublish"),
        ),
    );
    let url = |name: &str, mode: &str| format!("{}?mode={mode}&k=v", server.rtmp_url("live", name));

    // Allowed: ffmpeg publishes; when it stops, on_unpublish arrives.
    let mut publisher = publish(&url("cam", "allow"), 60);
    wait_live(&server, "live", "cam", Duration::from_secs(30));
    let asked = hooks.bodies("on_publish");
    assert_eq!(asked.len(), 1, "{asked:?}");
    let b = &asked[0];
    assert_eq!(b["server_id"], "edge-7");
    assert!(!b["service_id"].as_str().unwrap().is_empty());
    assert!(b["client_id"].as_str().unwrap().starts_with("0-"));
    assert_eq!(b["ip"], "127.0.0.1");
    assert_eq!(b["vhost"], "__defaultVhost__");
    assert_eq!(
        (b["app"].as_str(), b["stream"].as_str()),
        (Some("live"), Some("cam"))
    );
    assert_eq!(b["param"], "?mode=allow&k=v");
    assert!(
        b["tcUrl"]
            .as_str()
            .unwrap()
            .starts_with("rtmp://127.0.0.1:"),
        "{b}"
    );
    assert_eq!(b["stream_url"], "/live/cam");
    assert_eq!(b["stream_id"], "live/cam");
    assert!(b.get("pageUrl").is_none(), "pageUrl is on_play's only");
    let path = hooks.requests()[0]["path"].clone();
    assert_eq!(path, "/publish?token=hook-secret");
    publisher.kill();
    wait_until("on_unpublish received", Duration::from_secs(20), || {
        !hooks.bodies("on_unpublish").is_empty()
    });
    let u = &hooks.bodies("on_unpublish")[0];
    assert_eq!(
        (u["stream"].as_str(), u["client_id"].as_str()),
        (Some("cam"), b["client_id"].as_str())
    );
    assert_eq!(u["server_id"], "edge-7");
    assert_eq!(hook_count(&server, "on_publish", "allow"), 1.0);
    wait_until("on_unpublish counted", Duration::from_secs(10), || {
        hook_count(&server, "on_unpublish", "allow") == 1.0
    });

    // Denied three ways: 403, {"code":1}, a body that is not an allow.
    for mode in ["deny", "code1", "garbage"] {
        let said = publish_refused(&url("cam", mode));
        assert!(said.contains("unauthorized"), "{mode}: ffmpeg said {said}");
    }
    assert_eq!(refused(&server, "hook_denied"), 3.0);
    assert_eq!(hook_count(&server, "on_publish", "deny"), 3.0);

    // No usable answer: publish fails closed.
    for mode in ["slow", "broken"] {
        let said = publish_refused(&url("cam", mode));
        assert!(said.contains("unauthorized"), "{mode}: ffmpeg said {said}");
    }
    assert_eq!(refused(&server, "hook_error"), 2.0);
    assert_eq!(hook_count(&server, "on_publish", "timeout"), 1.0);
    assert_eq!(hook_count(&server, "on_publish", "error"), 1.0);
    // Nobody was told of an unpublish that never published.
    assert_eq!(hooks.bodies("on_unpublish").len(), 1);
    let latency = metric_on(server.admin_port, "ringcast_hook_latency_seconds_count");
    assert!(latency >= 6.0, "latency histogram count {latency}");
}

#[test]
fn play_is_gated_by_on_play_over_http_flv_and_rtmp() {
    require::command("ffmpeg", "ffmpeg");
    let hooks = HookServer::start();
    let server = Server::start(
        1,
        &format!(
            "[auth]\nplay = \"hook\"\n[hooks]\non_play = \"{}\"\non_stop = \"{}\"\n\
             timeout_play = \"500ms\"\ncache_allow_for = \"0s\"\n",
            hooks.url("/play"),
            hooks.url("/stop"),
        ),
    );
    let mut publisher = publish(&server.rtmp_url("live", "show"), 120);
    wait_live(&server, "live", "show", Duration::from_secs(30));

    assert_eq!(flv_status(&server, "/live/show.flv?mode=allow"), 200);
    assert_eq!(flv_status(&server, "/live/show.flv?mode=json"), 200);
    for mode in ["deny", "code1", "garbage"] {
        assert_eq!(
            flv_status(&server, &format!("/live/show.flv?mode={mode}")),
            403,
            "{mode}"
        );
    }
    assert_eq!(refused(&server, "hook_denied"), 3.0);
    // Too slow, and play fails closed by default.
    let started = Instant::now();
    assert_eq!(flv_status(&server, "/live/show.flv?mode=slow"), 403);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(refused(&server, "hook_error"), 1.0);
    assert_eq!(hook_count(&server, "on_play", "timeout"), 1.0);

    // RTMP play: allowed with ffmpeg, refused with NetStream.Play.Failed.
    let rtmp = |mode: &str| format!("{}?mode={mode}", server.rtmp_url("live", "show"));
    let played = pull_decode(&rtmp("allow"), 10, Duration::from_secs(30));
    assert!(played.ok && played.video_frames >= 10, "{played:?}");
    let denied = pull_decode(&rtmp("deny"), 10, Duration::from_secs(30));
    assert!(!denied.ok && denied.video_frames == 0, "{denied:?}");
    assert_eq!(refused(&server, "hook_denied"), 4.0);

    // on_play carries pageUrl; every allowed viewer's end is told to on_stop.
    let plays = hooks.bodies("on_play");
    assert_eq!(plays.len(), 8, "{plays:?}");
    assert!(plays.iter().all(|b| b.get("pageUrl").is_some()));
    assert!(plays
        .iter()
        .all(|b| b["ip"] == "127.0.0.1" && b["app"] == "live"));
    wait_until(
        "on_stop for the 3 allowed viewers",
        Duration::from_secs(20),
        || hooks.bodies("on_stop").len() >= 3,
    );
    let stops = hooks.bodies("on_stop");
    assert_eq!(stops.len(), 3, "{stops:?}");
    let stop = &stops[0];
    assert_eq!(
        (stop["stream"].as_str(), stop["param"].as_str()),
        (Some("show"), Some("?mode=allow"))
    );
    assert!(stop.get("pageUrl").is_none());
    publisher.kill();
}

#[test]
fn a_dead_hook_server_fails_publish_closed_and_play_per_policy() {
    require::command("ffmpeg", "ffmpeg");
    let dead = format!("http://127.0.0.1:{}/hook", free_port());
    let server = Server::start(
        1,
        &format!(
            "[auth]\npublish = \"hook\"\nplay = \"hook\"\n[hooks]\non_publish = \"{dead}\"\n\
             on_play = \"{dead}\"\non_stop = \"{dead}\"\nfail_open_play = true\nstop_retries = 2\n\
             [stream]\nwait_for_publisher = \"0s\"\n"
        ),
    );
    let said = publish_refused(&server.rtmp_url("live", "cam"));
    assert!(said.contains("unauthorized"), "ffmpeg said {said}");
    assert_eq!(refused(&server, "hook_error"), 1.0);
    assert_eq!(hook_count(&server, "on_publish", "error"), 1.0);
    // Play fails open here: the viewer gets past the hook to "not found".
    let (status, _) = http_request(server.http_port, "GET", "/live/cam.flv");
    assert_eq!(status, 404);
    assert_eq!(hook_count(&server, "on_play", "error"), 1.0);
    assert_eq!(refused(&server, "hook_error"), 1.0);
    // That viewer's end goes to on_stop: tried once, then retried twice, then given up.
    wait_until("on_stop tried three times", Duration::from_secs(20), || {
        hook_count(&server, "on_stop", "error") >= 3.0
    });
    // Proving that nothing more comes needs a wait: a fourth attempt would be
    // due 3 s after the third.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        hook_count(&server, "on_stop", "error"),
        3.0,
        "retries are bounded"
    );
}

/// Sends `GET path` on `n` connections at once and returns their statuses.
fn many_gets(port: u16, path: &str, n: usize) -> Vec<u16> {
    let threads = 8;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let path = path.to_owned();
            std::thread::spawn(move || {
                let count = n / threads + usize::from(t < n % threads);
                let mut conns: Vec<Conn> = (0..count)
                    .map(|_| Conn::get_1_0(port, &path, Duration::from_secs(30)))
                    .collect();
                conns
                    .iter_mut()
                    .map(|c| c.try_status().unwrap_or(0))
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

#[test]
fn two_thousand_concurrent_plays_make_a_bounded_number_of_hook_requests() {
    require::command("ffmpeg", "ffmpeg");
    let hooks = HookServer::start();
    let server = Server::start(
        2,
        &format!(
            "[auth]\nplay = \"hook\"\n[hooks]\non_play = \"{}\"\ncache_allow_for = \"30s\"\n",
            hooks.url("/play")
        ),
    );
    let mut publisher = publish(&server.rtmp_url("live", "crowd"), 120);
    wait_live(&server, "live", "crowd", Duration::from_secs(30));
    // The hook answers after 300 ms, so the first viewers of each core wait on
    // one call; later ones are answered from the cached allow.
    let statuses = many_gets(server.http_port, "/live/crowd.flv?mode=delay300", 2_000);
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    assert_eq!(
        ok,
        2_000,
        "statuses other than 200: {:?}",
        statuses
            .iter()
            .filter(|&&s| s != 200)
            .take(5)
            .collect::<Vec<_>>()
    );
    let asked = hooks.bodies("on_play").len();
    // One call per core (two cores), whatever the number of viewers.
    assert!(
        (1..=2).contains(&asked),
        "{asked} hook requests for 2,000 plays"
    );
    let answered = hook_count(&server, "on_play", "allow")
        + hook_count(&server, "on_play", "coalesced")
        + hook_count(&server, "on_play", "cached");
    assert_eq!(answered, 2_000.0);
    assert_eq!(hook_count(&server, "on_play", "allow"), asked as f64);
    publisher.kill();
}

/// Time from connecting to the status line of `GET path`, and the status.
fn time_to_head(port: u16, path: &str) -> (Duration, u16) {
    let started = Instant::now();
    let status = Conn::get_1_0(port, path, Duration::from_secs(10))
        .try_status()
        .unwrap_or_else(|e| panic!("status of GET {path}: {e}"));
    (started.elapsed(), status)
}

#[test]
fn hook_gated_play_start_latency_is_reported() {
    require::command("ffmpeg", "ffmpeg");
    let hooks = HookServer::start();
    let server = Server::start(
        1,
        &format!(
            "[auth]\nplay = \"hook\"\n[hooks]\non_play = \"{}\"\ncache_allow_for = \"0s\"\n",
            hooks.url("/play")
        ),
    );
    let mut publisher = publish(&server.rtmp_url("live", "lat"), 120);
    wait_live(&server, "live", "lat", Duration::from_secs(30));
    let mut times: Vec<Duration> = (0..200)
        .map(|_| {
            let (t, status) = time_to_head(server.http_port, "/live/lat.flv");
            assert_eq!(status, 200);
            t
        })
        .collect();
    times.sort();
    let (p50, p99) = (times[100], times[198]);
    println!("hook-gated HTTP-FLV play start (connect to status line), 200 plays, cache off: p50 {p50:?}, p99 {p99:?}, max {:?}", times[199]);
    assert_eq!(
        hooks.bodies("on_play").len(),
        200,
        "one hook request per play"
    );
    assert_eq!(hook_count(&server, "on_play", "allow"), 200.0);
    assert!(p99 < Duration::from_secs(2), "p99 {p99:?}");
    publisher.kill();
}

#[test]
fn ten_thousand_concurrent_plays_of_a_missing_stream_make_one_hook_request_per_core() {
    let hooks = HookServer::start();
    let server = Server::start(
        2,
        &format!(
            "[auth]\nplay = \"hook\"\n[hooks]\non_play = \"{}\"\n[stream]\nwait_for_publisher = \"0s\"\n",
            hooks.url("/play")
        ),
    );
    // No publisher, so no media load: each play gets past its hook (404, not
    // 403), which is what is counted. The hook answers after 500 ms, so every
    // play arriving meanwhile joins its core's one call.
    let started = Instant::now();
    let statuses = many_gets(server.http_port, "/live/none.flv?mode=delay500", 10_000);
    let elapsed = started.elapsed();
    let not_found = statuses.iter().filter(|&&s| s == 404).count();
    assert_eq!(
        not_found,
        10_000,
        "{:?}",
        statuses
            .iter()
            .filter(|&&s| s != 404)
            .take(5)
            .collect::<Vec<_>>()
    );
    let asked = hooks.bodies("on_play").len();
    println!("10,000 plays in {elapsed:?}: {asked} hook requests");
    assert!(
        (1..=4).contains(&asked),
        "{asked} hook requests for 10,000 plays"
    );
    let answered = hook_count(&server, "on_play", "allow")
        + hook_count(&server, "on_play", "coalesced")
        + hook_count(&server, "on_play", "cached");
    assert_eq!(answered, 10_000.0);
}
