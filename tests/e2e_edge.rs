//! Edge mode end to end: real ringcast processes on loopback (an origin, edges
//! started with origins configured), ffmpeg publishing and decoding.

mod common;
mod edge_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use edge_support::*;
use ringcast::protocol::FrameKind;

/// Starts a ringcast on given ports (so a test can restart it in place).
fn start_on(rtmp_port: u16, http_port: u16, toml: &str) -> Proc {
    let dir =
        std::env::temp_dir().join(format!("ringcast-edge-{}-{rtmp_port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("ringcast.toml");
    std::fs::write(&config, toml).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args(["serve", "--config"])
        .arg(&config)
        .args([
            "--rtmp",
            &format!("127.0.0.1:{rtmp_port}"),
            "--http",
            &format!("127.0.0.1:{http_port}"),
        ])
        .args(["--cores", "1"])
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn ringcast");
    let proc = Proc {
        child,
        name: "ringcast origin".into(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", rtmp_port)).is_err() {
        assert!(Instant::now() < deadline, "origin did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    proc
}

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
        eventually(Duration::from_secs(10), || viewers(&edge, "live", "cam")
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
        eventually(Duration::from_secs(3), || by_core().iter().sum::<u64>()
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
    let (rtmp_port, http_port) = (free_port(), free_port());
    let mut origin = start_on(rtmp_port, http_port, "");
    let url = format!("rtmp://127.0.0.1:{rtmp_port}/live/loss");
    let mut publisher = publish(&url, 60);
    std::thread::sleep(Duration::from_secs(2));
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

    let reader = std::thread::spawn(move || {
        // Arrival of every picture, until 40 came after a gap of over a second.
        let mut seen: Vec<Instant> = Vec::new();
        let mut last_ts = None::<u32>;
        let mut monotonic = true;
        let mut after_gap = None::<usize>;
        while let Some(f) = viewer.next_frame() {
            if f.kind != FrameKind::Video || f.sequence_header {
                continue;
            }
            if let Some(prev) = last_ts {
                monotonic &= f.timestamp >= prev;
            }
            last_ts = Some(f.timestamp);
            let now = Instant::now();
            if after_gap.is_none()
                && seen
                    .last()
                    .is_some_and(|&t| now - t > Duration::from_secs(1))
            {
                after_gap = Some(0);
            }
            seen.push(now);
            if let Some(n) = after_gap.as_mut() {
                *n += 1;
                if *n >= 40 {
                    break;
                }
            }
        }
        (seen, monotonic, after_gap.unwrap_or(0))
    });
    std::thread::sleep(Duration::from_secs(1));
    origin.kill();
    publisher.kill();
    let killed_at = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    origin = start_on(rtmp_port, http_port, "");
    publisher = publish(&url, 60);
    let (seen, monotonic, after_gap) = reader.join().unwrap();
    assert_eq!(
        after_gap, 40,
        "the viewer stayed connected and decoded 40 pictures after the gap"
    );
    let resumed_at = seen
        .iter()
        .copied()
        .find(|t| *t > killed_at + Duration::from_millis(500));
    let resumed_at = resumed_at.expect("viewer never got pictures after the origin came back");
    assert!(
        resumed_at - killed_at < Duration::from_secs(15),
        "resumed {:?} after the kill",
        resumed_at - killed_at
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
    let edge = Server::start(1, &edge_toml(&[rtmp_origin(&origin)], "3s"));

    let mut first = FlvViewer::connect(edge.http_port, "/live/idle.flv");
    assert_eq!(read_pictures(&mut first, 5), 5);
    drop(first);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        viewers(&origin, "live", "idle"),
        Some(1),
        "pull kept inside idle_close"
    );

    let mut second = FlvViewer::connect(edge.http_port, "/live/idle.flv");
    assert_eq!(read_pictures(&mut second, 5), 5);
    assert_eq!(
        metric(&edge, "ringcast_origin_pull_attempts_total"),
        1.0,
        "the viewer reused the pull"
    );
    drop(second);
    let left = Instant::now();
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(
        viewers(&origin, "live", "idle"),
        Some(1),
        "not closed before idle_close"
    );
    assert!(
        eventually(Duration::from_secs(4), || viewers(&origin, "live", "idle")
            == Some(0)),
        "pull closed after idle_close"
    );
    let closed_after = left.elapsed();
    assert!(
        closed_after >= Duration::from_secs(3),
        "closed after {closed_after:?}"
    );
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
    assert!(
        started.elapsed() < Duration::from_secs(3),
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

    fn start() -> Option<NginxRtmp> {
        if !std::path::Path::new(Self::MODULE).exists() {
            eprintln!(
                "SKIPPED: {} missing (apt-get install libnginx-mod-rtmp)",
                Self::MODULE
            );
            return None;
        }
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
            eventually(Duration::from_secs(10), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "nginx-rtmp did not listen"
        );
        Some(nginx)
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
    let Some(nginx) = NginxRtmp::start() else {
        return;
    };
    let mut publisher = publish(&format!("rtmp://127.0.0.1:{}/live/third", nginx.port), 30);
    std::thread::sleep(Duration::from_secs(2));
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
    let (b_rtmp, b_http) = (free_port(), free_port());
    let mut target = start_on(b_rtmp, b_http, "");
    let origin = Server::start(
        1,
        &format!("[[relay.push]]\nurl = \"rtmp://127.0.0.1:{b_rtmp}/live\"\n"),
    );
    let mut publisher = publish(&origin.rtmp_url("live", "relayed"), 40);
    let live_on_target = || http_request(b_http, "GET", "/api/v1/streams/live/relayed").0 == 200;
    assert!(
        eventually(Duration::from_secs(10), live_on_target),
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

    target.kill();
    std::thread::sleep(Duration::from_millis(500));
    target = start_on(b_rtmp, b_http, "");
    assert!(
        eventually(Duration::from_secs(15), live_on_target),
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
    assert!(
        started.elapsed() < Duration::from_secs(11),
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
