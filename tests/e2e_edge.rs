//! Edge mode end to end: real ringcast processes on loopback (an origin, edges
//! started with origins configured), ffmpeg publishing and decoding.

mod common;
mod edge_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use edge_support::*;
use ringcast::protocol::FrameKind;

#[test]
fn edge_serves_http_flv_and_rtmp_from_one_upstream_pull() {
    let origin = Server::start(1, "");
    let mut publisher = publish(&origin.rtmp_url("live", "cam"), 40);
    wait_live(&origin, "live", "cam", Duration::from_secs(10));
    let edge = start_edge_cli(2, &[rtmp_origin(&origin)]);

    let flv_url = edge.flv_url("live", "cam");
    let rtmp_url = edge.rtmp_url("live", "cam");
    let flv = std::thread::spawn(move || pull_decode(&flv_url, 100, Duration::from_secs(40)));
    let rtmp = std::thread::spawn(move || pull_decode(&rtmp_url, 100, Duration::from_secs(40)));
    let mut raw = FlvViewer::connect(edge.http_port, "/live/cam.flv");
    assert_eq!(
        read_pictures(&mut raw, 10),
        10,
        "raw HTTP-FLV viewer through the edge"
    );
    assert_eq!(raw.status, 200);

    assert!(
        eventually(Duration::from_secs(30), || viewers(&edge, "live", "cam")
            == Some(3)),
        "edge should show the three clients, has {:?}",
        viewers(&edge, "live", "cam")
    );
    assert_eq!(
        viewers(&origin, "live", "cam"),
        Some(1),
        "the origin sees only the edge's pull"
    );
    let snapshot = stream_json(&edge, "live", "cam");
    assert_eq!(snapshot["origin"], rtmp_origin(&origin), "{snapshot}");
    assert!(snapshot["publisher_addr"].is_null());

    let (flv, rtmp) = (flv.join().unwrap(), rtmp.join().unwrap());
    assert!(
        flv.video_frames >= 100,
        "HTTP-FLV via edge decoded {} frames: {}",
        flv.video_frames,
        flv.errors
    );
    assert!(
        rtmp.video_frames >= 100,
        "RTMP via edge decoded {} frames: {}",
        rtmp.video_frames,
        rtmp.errors
    );
    assert_eq!(metric(&edge, "ringcast_origin_pull_attempts_total"), 1.0);
    assert!(labeled_metric(&edge, "ringcast_received_frames_total", "source=\"origin\"") > 100.0);
    assert!(labeled_metric(&edge, "ringcast_received_bytes_total", "source=\"origin\"") > 10_000.0);
    publisher.kill();
}

#[test]
fn simultaneous_first_viewers_on_different_cores_share_one_pull() {
    let origin = Server::start(1, "");
    let mut publisher = publish(&origin.rtmp_url("live", "race"), 30);
    wait_live(&origin, "live", "race", Duration::from_secs(10));
    let edge = Server::start(2, &edge_toml(&[http_origin(&origin)], "30s"));
    let port = edge.http_port;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(12));
    let viewers_threads: Vec<_> = (0..12)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut v = FlvViewer::connect(port, "/live/race.flv");
                let pictures = read_pictures(&mut v, 5);
                (v, pictures)
            })
        })
        .collect();
    let viewers_done: Vec<(FlvViewer, usize)> = viewers_threads
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert!(
        viewers_done.iter().all(|(_, n)| *n == 5),
        "every viewer got pictures"
    );
    let by_core = || -> Vec<u64> {
        let snapshot = stream_json(&edge, "live", "race");
        snapshot["viewers_by_core"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(30), || by_core().iter().sum::<u64>()
            == 12),
        "all viewers listed: {:?}",
        by_core()
    );
    assert!(
        by_core().iter().all(|&n| n > 0),
        "viewers landed on both edge cores: {:?}",
        by_core()
    );
    let snapshot = stream_json(&edge, "live", "race");
    assert_eq!(
        viewers(&origin, "live", "race"),
        Some(1),
        "one upstream pull for both cores"
    );
    assert_eq!(metric(&edge, "ringcast_origin_pull_attempts_total"), 1.0);
    assert_eq!(snapshot["origin"], http_origin(&origin));
    drop(viewers_done);
    publisher.kill();
}

#[test]
fn killed_origin_keeps_viewers_and_they_resume_with_monotonic_timestamps() {
    let (rtmp_port, http_port, admin_port) = (free_port(), free_port(), free_port());
    let mut origin = start_origin("127.0.0.1", rtmp_port, http_port, admin_port);
    let url = format!("rtmp://127.0.0.1:{rtmp_port}/live/loss");
    let mut publisher = publish(&url, 60);
    wait_live_on(admin_port, "live", "loss", Duration::from_secs(30));
    let edge = Server::start(
        1,
        &edge_toml(&[format!("rtmp://127.0.0.1:{rtmp_port}/live")], "30s"),
    );
    let mut viewer = FlvViewer::connect(edge.http_port, "/live/loss.flv");
    viewer
        .stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(read_pictures(&mut viewer, 25), 25);

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    // The reader counts pictures, and those after `restarted` is set apart.
    let pictures = Arc::new(AtomicUsize::new(0));
    let restarted = Arc::new(AtomicBool::new(false));
    let reader = std::thread::spawn({
        let (pictures, restarted) = (pictures.clone(), restarted.clone());
        move || {
            let mut last_ts = None::<u32>;
            let mut monotonic = true;
            let mut after = 0usize;
            let mut first_after = None::<Instant>;
            while let Some(f) = viewer.next_frame() {
                if f.kind != FrameKind::Video || f.sequence_header {
                    continue;
                }
                if let Some(prev) = last_ts {
                    monotonic &= f.timestamp >= prev;
                }
                last_ts = Some(f.timestamp);
                pictures.fetch_add(1, Ordering::Relaxed);
                if restarted.load(Ordering::Relaxed) {
                    first_after.get_or_insert_with(Instant::now);
                    after += 1;
                    if after >= 40 {
                        break;
                    }
                }
            }
            (monotonic, after, first_after)
        }
    });
    wait_until(
        "the reader's first pictures",
        Duration::from_secs(30),
        || pictures.load(Ordering::Relaxed) >= 5,
    );
    origin.kill();
    publisher.kill();
    // The outage lasts until the edge has seen its pull fail.
    wait_until(
        "the edge to count the lost pull",
        Duration::from_secs(30),
        || metric(&edge, "ringcast_origin_pull_failures_total") >= 1.0,
    );
    origin = start_origin("127.0.0.1", rtmp_port, http_port, admin_port);
    restarted.store(true, Ordering::Relaxed);
    let restarted_at = Instant::now();
    publisher = publish(&url, 60);
    let (monotonic, after, first_after) = reader.join().unwrap();
    assert_eq!(
        after, 40,
        "the viewer stayed connected and decoded 40 pictures after the origin came back"
    );
    let resumed = first_after.expect("no picture after the restart") - restarted_at;
    // Generous: ffmpeg's restart plus the edge's reconnect backoff, on a loaded machine.
    assert!(
        resumed < Duration::from_secs(30),
        "resumed {resumed:?} after the origin restarted"
    );
    assert!(
        monotonic,
        "timestamps stayed monotonic across the upstream loss"
    );
    assert!(metric(&edge, "ringcast_origin_pull_recoveries_total") >= 1.0);
    assert!(metric(&edge, "ringcast_origin_pull_failures_total") >= 1.0);
    assert!(labeled_metric(&edge, "ringcast_failures_total", "side=\"origin\"") >= 1.0);
    assert!(
        metric(&edge, "ringcast_origin_pull_attempts_total") >= 2.0,
        "first pull plus the reconnect"
    );
    publisher.kill();
    origin.kill();
}

#[test]
fn idle_pull_closes_after_idle_close_and_a_viewer_inside_the_window_reuses_it() {
    let origin = Server::start(1, "");
    let mut publisher = publish(&origin.rtmp_url("live", "idle"), 40);
    wait_live(&origin, "live", "idle", Duration::from_secs(10));
    // Long enough that "not closed yet" checks right after a viewer leaves have
    // seconds of margin on a loaded machine.
    const IDLE: Duration = Duration::from_secs(8);
    let edge = Server::start(1, &edge_toml(&[rtmp_origin(&origin)], "8s"));

    let mut first = FlvViewer::connect(edge.http_port, "/live/idle.flv");
    assert_eq!(read_pictures(&mut first, 5), 5);
    drop(first);
    // The edge has seen the viewer go: its pull is idle now, and kept.
    wait_until(
        "the edge to count the viewer gone",
        Duration::from_secs(30),
        || viewers(&edge, "live", "idle") == Some(0),
    );
    // The API shows each core's latest report, so wait for the origin's too.
    wait_until(
        "the origin to show the edge's pull",
        Duration::from_secs(30),
        || viewers(&origin, "live", "idle") == Some(1),
    );

    let mut second = FlvViewer::connect(edge.http_port, "/live/idle.flv");
    assert_eq!(read_pictures(&mut second, 5), 5);
    assert_eq!(
        metric(&edge, "ringcast_origin_pull_attempts_total"),
        1.0,
        "the viewer reused the pull"
    );
    // `left` is taken before the viewer goes, so the idle time the server measures
    // is never longer than `left.elapsed()`.
    let left = Instant::now();
    drop(second);
    wait_until(
        "the edge to count the viewer gone",
        Duration::from_secs(30),
        || viewers(&edge, "live", "idle") == Some(0),
    );
    if left.elapsed() < IDLE / 2 {
        assert_eq!(
            viewers(&origin, "live", "idle"),
            Some(1),
            "not closed before idle_close"
        );
    }
    wait_until("the idle pull to close", Duration::from_secs(60), || {
        viewers(&origin, "live", "idle") == Some(0)
    });
    let closed_after = left.elapsed();
    assert!(closed_after >= IDLE, "closed after {closed_after:?}");
    assert_eq!(
        viewers(&edge, "live", "idle"),
        None,
        "the edge's stream ended"
    );

    let mut third = FlvViewer::connect(edge.http_port, "/live/idle.flv");
    assert_eq!(
        read_pictures(&mut third, 3),
        3,
        "a new viewer gets a new pull"
    );
    assert_eq!(metric(&edge, "ringcast_origin_pull_attempts_total"), 2.0);
    publisher.kill();
}

/// An HTTP-FLV viewer whose GET reaches the edge `delay` after its TCP connect
/// (a slow client): the edge's loop has waited idle meanwhile (up to 50 ms a
/// turn), so its pull starts in a turn that begins after a long wait. Returns
/// the response status and, for a 200, whether body bytes followed.
fn slow_flv_viewer(port: u16, path: &str, delay: Duration) -> (u16, bool) {
    let mut c = common::http1::Conn::connect(port, Duration::from_secs(15));
    std::thread::sleep(delay);
    c.send(&format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"));
    loop {
        let got = c.pending();
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let (status, _) = common::plain::parse_http_response(&got[..end]);
            // The FLV header (13 bytes) and at least one tag's header.
            if status != 200 || got.len() >= end + 4 + 13 + 11 {
                return (status, got.len() >= end + 4 + 13 + 11);
            }
        }
        // A close or a read error ends the viewer; printed so that the
        // caller's assertion on what it returns comes with the reason.
        if let Err(e) = c.try_fill() {
            eprintln!("slow viewer of {path}: {e}");
            let (status, _) = common::plain::parse_http_response(c.pending());
            return (status, false);
        }
    }
}

/// Soak finding: on an HTTP-FLV edge, a new pull started once the previous one
/// had idle-closed sometimes failed within microseconds of starting (before
/// its TCP connect completed) and its viewers were refused. Each round here
/// has a viewer start a fresh pull after the last one idle-closed; none may
/// be refused and no pull attempt may fail (the origin is live throughout).
#[test]
fn fresh_http_flv_pulls_after_idle_close_never_fail_at_start() {
    let origin = Server::start(1, "");
    let mut publisher = publish(&origin.rtmp_url("live", "steady"), 120);
    wait_live(&origin, "live", "steady", Duration::from_secs(10));
    let edge = Server::start(1, &edge_toml(&[http_origin(&origin)], "1s"));
    let started = Instant::now();
    let mut round = 0;
    // Rounds until the edge has run well past the HTTP client's 5 s start
    // limit (the edge's clock starts at 0), and at least 12 of them.
    while round < 12 || started.elapsed() < Duration::from_secs(12) {
        round += 1;
        let (status, body) = slow_flv_viewer(
            edge.http_port,
            "/live/steady.flv",
            Duration::from_millis(120),
        );
        assert_eq!(
            (status, body),
            (200, true),
            "round {round}: viewer refused (edge up {:?})",
            started.elapsed()
        );
        assert_eq!(
            metric(&edge, "ringcast_origin_pull_failures_total"),
            0.0,
            "round {round}: a pull attempt failed against a live origin"
        );
        wait_until(
            "the edge's pull to idle-close",
            Duration::from_secs(30),
            || {
                viewers(&edge, "live", "steady").is_none()
                    && viewers(&origin, "live", "steady") == Some(0)
            },
        );
    }
    assert_eq!(
        metric(&edge, "ringcast_origin_pull_attempts_total"),
        round as f64,
        "one pull per round"
    );
    publisher.kill();
}

#[test]
fn origin_mid_edge_chain_and_failover_to_the_second_origin() {
    let origin = Server::start(1, "");
    let mut publisher = publish(&origin.rtmp_url("live", "chain"), 40);
    wait_live(&origin, "live", "chain", Duration::from_secs(10));
    let dead = format!("rtmp://127.0.0.1:{}/live", free_port());
    let mid = Server::start(1, &edge_toml(&[dead, rtmp_origin(&origin)], "30s"));
    let edge = Server::start(1, &edge_toml(&[http_origin(&mid)], "30s"));

    let decoded = pull_decode(&edge.rtmp_url("live", "chain"), 50, Duration::from_secs(40));
    assert!(
        decoded.video_frames >= 50,
        "chain decoded {} frames: {}",
        decoded.video_frames,
        decoded.errors
    );
    assert!(
        metric(&mid, "ringcast_origin_pull_failures_total") >= 1.0,
        "the dead first origin was tried"
    );
    assert_eq!(
        stream_json(&mid, "live", "chain")["origin"],
        rtmp_origin(&origin),
        "the second origin serves"
    );
    publisher.kill();
}

#[test]
fn unknown_stream_is_a_clean_404_and_is_not_asked_again_at_once() {
    let origin = Server::start(1, "");
    let edge = Server::start(
        2,
        &format!(
            "{}allow_publish = false\n",
            edge_toml(&[rtmp_origin(&origin)], "30s")
        ),
    );
    let started = Instant::now();
    let (status, _) = edge.http_get("/live/nothing.flv");
    assert_eq!(status, 404);
    // Well under the 10 s pull start timeout: the edge did not wait for one.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "answered in {:?}",
        started.elapsed()
    );
    let (status, _) = edge.http_get("/live/nothing.flv");
    assert_eq!(status, 404);
    assert_eq!(
        metric(&edge, "ringcast_origin_pull_attempts_total"),
        1.0,
        "negative cache"
    );
    let rtmp = pull_decode(
        &edge.rtmp_url("live", "nothing"),
        1,
        Duration::from_secs(10),
    );
    assert_eq!(rtmp.video_frames, 0);
    assert!(!rtmp.ok, "RTMP play of an unknown stream fails");

    let mut refused = publish(&edge.rtmp_url("live", "local"), 5);
    let status = refused.wait_for(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| !s.success()),
        "publishing is refused on this edge"
    );
}

/// nginx-rtmp as a third-party RTMP origin, stopped with SIGTERM (its workers go too).
struct NginxRtmp {
    proc: Proc,
    port: u16,
}

impl NginxRtmp {
    const MODULE: &'static str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

    fn start() -> NginxRtmp {
        require::file(Self::MODULE, "libnginx-mod-rtmp");
        require::command("nginx", "nginx");
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("ringcast-nginx-rtmp-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "load_module {};\ndaemon off;\npid {}/nginx.pid;\nerror_log {}/error.log warn;\nevents {{}}\n\
                 rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; }} }} }}\n",
                Self::MODULE,
                dir.display(),
                dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let nginx = NginxRtmp {
            proc: Proc {
                child,
                name: "nginx-rtmp".into(),
            },
            port,
        };
        assert!(
            eventually(Duration::from_secs(30), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "nginx-rtmp did not listen"
        );
        nginx
    }
}

impl Drop for NginxRtmp {
    fn drop(&mut self) {
        unsafe { libc::kill(self.proc.pid() as i32, libc::SIGTERM) };
        self.proc.wait_for(Duration::from_secs(5));
    }
}

#[test]
fn edge_pulls_from_an_nginx_rtmp_origin() {
    let nginx = NginxRtmp::start();
    let source = format!("rtmp://127.0.0.1:{}/live/third", nginx.port);
    let mut publisher = publish(&source, 30);
    // nginx-rtmp has no API: a player that got codecs from it means it is live.
    let (vcodec, ..) = probe(&source);
    assert_eq!(vcodec, "h264", "nginx-rtmp serves the published stream");
    let edge = Server::start(
        1,
        &edge_toml(&[format!("rtmp://127.0.0.1:{}/live", nginx.port)], "30s"),
    );
    let decoded = pull_decode(&edge.flv_url("live", "third"), 50, Duration::from_secs(30));
    assert!(
        decoded.video_frames >= 50,
        "decoded {} frames via nginx-rtmp: {}",
        decoded.video_frames,
        decoded.errors
    );
    assert_eq!(metric(&edge, "ringcast_origin_pull_attempts_total"), 1.0);
    publisher.kill();
}

#[test]
fn push_relay_forwards_published_streams_and_reconnects() {
    let (b_rtmp, b_http, b_admin) = (free_port(), free_port(), free_port());
    let mut target = start_origin("127.0.0.1", b_rtmp, b_http, b_admin);
    let origin = Server::start(
        1,
        &format!("[[relay.push]]\nurl = \"rtmp://127.0.0.1:{b_rtmp}/live\"\n"),
    );
    let mut publisher = publish(&origin.rtmp_url("live", "relayed"), 40);
    let live_on_target = || http_request(b_admin, "GET", "/api/v1/streams/live/relayed").0 == 200;
    assert!(
        eventually(Duration::from_secs(30), live_on_target),
        "relay published to the target"
    );
    let flv = format!("http://127.0.0.1:{b_http}/live/relayed.flv");
    let decoded = pull_decode(&flv, 50, Duration::from_secs(30));
    assert!(
        decoded.video_frames >= 50,
        "decoded {} frames from the target: {}",
        decoded.video_frames,
        decoded.errors
    );

    // Killed and reaped: its sockets are closed, so the relay's connection is gone.
    target.kill();
    target = start_origin("127.0.0.1", b_rtmp, b_http, b_admin);
    assert!(
        eventually(Duration::from_secs(30), live_on_target),
        "relay reconnected to the restarted target"
    );
    let again = pull_decode(&flv, 25, Duration::from_secs(30));
    assert!(
        again.video_frames >= 25,
        "decoded {} frames after the reconnect: {}",
        again.video_frames,
        again.errors
    );
    publisher.kill();
    target.kill();
}

/// A TCP "origin" that answers every connection with `reply` and then junk, then closes.
fn hostile_origin(reply: &'static [u8]) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut s) = stream else { continue };
            use std::io::Write;
            let _ = s.write_all(reply);
            let junk: Vec<u8> = (0..64 * 1024u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            let _ = s.write_all(&junk);
        }
    });
    port
}

#[test]
fn hostile_origins_fail_cleanly_and_the_edge_keeps_serving() {
    let rtmp_junk = hostile_origin(b"\x03");
    // A head that never ends (junk where headers should be).
    let http_junk = hostile_origin(b"HTTP/1.1 200 OK\r\n");
    let origin = Server::start(1, "");
    let mut publisher = publish(&origin.rtmp_url("live", "safe"), 30);
    wait_live(&origin, "live", "safe", Duration::from_secs(10));
    let edge = Server::start(
        1,
        &edge_toml(
            &[
                format!("rtmp://127.0.0.1:{rtmp_junk}/live"),
                format!("http://127.0.0.1:{http_junk}"),
            ],
            "30s",
        ),
    );
    let started = Instant::now();
    let (status, _) = edge.http_get("/live/x.flv");
    assert_eq!(status, 503, "no origin could serve it");
    // One 10 s start timeout plus slack for a loaded machine (not two timeouts).
    assert!(
        started.elapsed() < Duration::from_secs(18),
        "bounded by the start timeout: {:?}",
        started.elapsed()
    );
    assert!(metric(&edge, "ringcast_origin_pull_failures_total") >= 2.0);

    // The same edge still relays a healthy origin.
    let good = Server::start(1, &edge_toml(&[rtmp_origin(&origin)], "30s"));
    let decoded = pull_decode(&good.flv_url("live", "safe"), 25, Duration::from_secs(30));
    assert!(decoded.video_frames >= 25, "{}", decoded.errors);
    let mut edge = edge;
    assert!(edge.alive(), "the edge survived hostile origins");
    assert_eq!(edge.http_get("/api/v1/streams").0, 200);
    publisher.kill();
}
