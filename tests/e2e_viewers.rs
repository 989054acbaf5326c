//! Viewer behaviour end to end: instant start at a keyframe from the GOP cache,
//! viewers on the core that does not own the stream, and slow viewers.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;
use ringcast::protocol::FrameKind;

/// Reads frames until the first coded video frame; returns it and when it came.
fn first_picture(viewer: &mut FlvViewer) -> (ringcast::protocol::Frame, Duration) {
    let frame = next_picture(viewer);
    (frame, viewer.connected_at.elapsed())
}

/// Reads until the next coded picture (skipping audio and sequence headers).
fn next_picture(viewer: &mut FlvViewer) -> ringcast::protocol::Frame {
    loop {
        let frame = viewer.next_frame().expect("stream ended early");
        if frame.kind == FrameKind::Video && !frame.sequence_header {
            return frame;
        }
    }
}

/// A viewer joining mid-GOP starts at once on the cached keyframe, not on the next
/// one. A watcher viewer connected earlier tells where the live stream is: the
/// joiner connects only after the watcher has read a keyframe and `k` pictures
/// past it, so if the joiner's first picture is that same keyframe (same bytes) it
/// can only have come from the GOP cache. No wall clock involved.
#[test]
fn mid_gop_join_starts_with_the_cached_keyframe() {
    let server = Server::start(1, "");
    let mut publisher = publish(&server.rtmp_url("live", "gop"), 30);
    wait_live(&server, "live", "gop", Duration::from_secs(30));
    let mut watcher = FlvViewer::connect(server.http_port, "/live/gop.flv");
    for k in [8usize, 17, 3] {
        // Position the watcher k pictures past a keyframe (25-frame GOP).
        let keyframe = loop {
            let frame = next_picture(&mut watcher);
            if frame.keyframe {
                break frame;
            }
        };
        for _ in 0..k {
            assert!(!next_picture(&mut watcher).keyframe, "GOP shorter than {k}");
        }
        let mut viewer = FlvViewer::connect(server.http_port, "/live/gop.flv");
        let mut saw_video_sequence_header = false;
        let first = loop {
            let frame = viewer.next_frame().expect("stream ended early");
            if frame.kind == FrameKind::Video {
                if frame.sequence_header {
                    saw_video_sequence_header = true;
                } else {
                    break frame;
                }
            }
        };
        assert!(
            saw_video_sequence_header,
            "AVC sequence header must precede pictures"
        );
        assert!(first.keyframe, "first picture must be a keyframe");
        assert_eq!(first.timestamp, 0, "output timeline starts at 0 per viewer");
        assert!(
            first.payload == keyframe.payload,
            "joined {k} pictures into a GOP: the first picture is not the cached keyframe \
             (the server waited for the next one)"
        );
        // The joiner then gets the cached pictures the watcher already had.
        let second = next_picture(&mut viewer);
        assert!(
            !second.keyframe,
            "the cached GOP continues after its keyframe"
        );
    }
    publisher.kill();
}

#[test]
fn viewers_on_both_cores_receive_every_frame() {
    let server = Server::start(2, "");
    let mut publisher = publish(&server.rtmp_url("live", "xcore"), 30);
    wait_live(&server, "live", "xcore", Duration::from_secs(10));
    let viewers: Vec<_> = (0..16)
        .map(|_| {
            let port = server.http_port;
            std::thread::spawn(move || {
                let mut viewer = FlvViewer::connect(port, "/live/xcore.flv");
                let (first, _) = first_picture(&mut viewer);
                assert!(first.keyframe);
                let mut last_ts = first.timestamp;
                let mut pictures = 1;
                while pictures < 75 {
                    let frame = viewer.next_frame().expect("stream ended early");
                    if frame.kind == FrameKind::Video && !frame.sequence_header {
                        // 25 fps: consecutive pictures are 40 ms apart; a gap means a lost frame.
                        let step = frame.timestamp.wrapping_sub(last_ts);
                        assert!(step <= 80, "gap of {step} ms: a frame went missing");
                        last_ts = frame.timestamp;
                        pictures += 1;
                    }
                }
                viewer
            })
        })
        .collect();
    // Keep every viewer connected until the API has been read.
    let viewers: Vec<FlvViewer> = viewers.into_iter().map(|h| h.join().unwrap()).collect();
    let by_core = viewers_by_core(&server, "live", "xcore");
    assert_eq!(by_core.iter().sum::<u64>(), 16, "{by_core:?}");
    assert!(
        by_core.iter().all(|&n| n > 0),
        "SO_REUSEPORT spread viewers over both cores: {by_core:?}"
    );
    drop(viewers);
    // A real decoder on the second core's replica too.
    let flv = pull_decode(
        &server.flv_url("live", "xcore"),
        50,
        Duration::from_secs(20),
    );
    assert!(
        flv.ok && flv.video_frames >= 50 && flv.errors.trim().is_empty(),
        "{flv:?}"
    );
    publisher.kill();
}

#[test]
fn a_viewer_that_never_reads_is_capped_then_closed() {
    let server = Server::start(
        1,
        "[viewer]\nsoft_lag = \"1s\"\nhard_lag = \"3s\"\nsoft_lag_bytes = 262144\nhard_lag_bytes = 1048576\nsocket_send_buffer = 65536\n",
    );
    let mut publisher = publish(&server.rtmp_url("live", "slow"), 40);
    wait_live(&server, "live", "slow", Duration::from_secs(10));
    let rss_before = server.rss_bytes();
    // Fifty viewers that never read, each with a tiny receive buffer.
    let stuck: Vec<std::net::TcpStream> = (0..50)
        .map(|i| {
            let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .unwrap_or_else(|e| panic!("stuck viewer {i}: socket: {e}"));
            sock.set_recv_buffer_size(4096)
                .unwrap_or_else(|e| panic!("stuck viewer {i}: receive buffer: {e}"));
            sock.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], server.http_port)).into())
                .unwrap_or_else(|e| panic!("stuck viewer {i}: connect: {e}"));
            let mut s: std::net::TcpStream = sock.into();
            std::io::Write::write_all(&mut s, b"GET /live/slow.flv HTTP/1.0\r\n\r\n")
                .unwrap_or_else(|e| panic!("stuck viewer {i}: writing its GET: {e}"));
            s
        })
        .collect();
    // A healthy viewer alongside keeps receiving throughout.
    let healthy = pull_decode(
        &server.flv_url("live", "slow"),
        150,
        Duration::from_secs(20),
    );
    assert!(healthy.ok && healthy.video_frames >= 150, "{healthy:?}");
    let rss_after = server.rss_bytes();
    assert!(
        rss_after < rss_before + 64 * 1024 * 1024,
        "RSS grew from {rss_before} to {rss_after} with 50 stuck viewers"
    );
    // By now (≥ 6 s) every stuck viewer is past the 3 s hard bound: draining its
    // socket must end in EOF, not block.
    for mut s in stuck {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut sink = Vec::new();
        let started = Instant::now();
        let res = s.read_to_end(&mut sink);
        assert!(
            res.is_ok() || started.elapsed() < Duration::from_secs(5),
            "stuck viewer not closed: {res:?}"
        );
        assert!(res.is_ok(), "stuck viewer was never closed: {res:?}");
    }
    let (_, metrics) = server.http_get("/metrics");
    let closes: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("ringcast_slow_viewer_closes_total"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum();
    assert!(closes >= 50.0, "slow-viewer closes counted: {closes}");
    publisher.kill();
}
