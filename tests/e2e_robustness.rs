//! Publishers that die or collide, idle and garbage connections: the server
//! closes what it must and keeps serving everyone else.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn publisher_killed_mid_stream_ends_viewers_and_the_key_is_free_again() {
    let server = Server::start(1, "");
    let mut first = publish(&server.rtmp_url("live", "k"), 60);
    wait_live(&server, "live", "k", Duration::from_secs(10));

    // A second publisher on the same key is refused while the first is live.
    let mut second = publish(&server.rtmp_url("live", "k"), 5);
    let status = second
        .wait_for(Duration::from_secs(15))
        .expect("second publisher should be refused quickly");
    assert!(
        !status.success(),
        "second publisher on a taken key must fail"
    );

    let mut viewer = FlvViewer::connect(server.http_port, "/live/k.flv");
    assert!(viewer.next_frame().is_some());
    // An HTTP/1.1 viewer too: its chunked body must end with the last chunk.
    let mut chunked = TcpStream::connect(("127.0.0.1", server.http_port)).unwrap();
    chunked
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    chunked
        .write_all(b"GET /live/k.flv HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 64];
    let n = chunked.read(&mut head).unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200 "));
    first.kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    while viewer.next_frame().is_some() {
        assert!(
            Instant::now() < deadline,
            "viewer kept receiving after the publisher died"
        );
    }
    let mut body = Vec::new();
    chunked.read_to_end(&mut body).unwrap();
    assert!(
        body.ends_with(b"\r\n0\r\n\r\n"),
        "chunked body ended without its last chunk: …{:02x?}",
        &body[body.len().saturating_sub(16)..]
    );
    // The key is free: a new publisher goes live and decodes.
    let mut third = publish(&server.rtmp_url("live", "k"), 30);
    wait_live(&server, "live", "k", Duration::from_secs(10));
    let flv = pull_decode(&server.flv_url("live", "k"), 50, Duration::from_secs(20));
    assert!(flv.ok && flv.video_frames >= 50, "{flv:?}");
    third.kill();
}

#[test]
fn idle_and_garbage_connections_are_closed_while_others_are_served() {
    let mut server = Server::start(1, "[limits]\nhandshake_timeout = \"2s\"\n");
    let mut publisher = publish(&server.rtmp_url("live", "busy"), 40);
    wait_live(&server, "live", "busy", Duration::from_secs(10));

    // 5,000 connections that never send a byte, half on each port.
    let idle: Vec<TcpStream> = (0..5000)
        .map(|i| {
            let port = if i % 2 == 0 {
                server.rtmp_port
            } else {
                server.http_port
            };
            TcpStream::connect(("127.0.0.1", port)).expect("connect idle")
        })
        .collect();

    // Garbage handshakes: wrong version byte, then random bytes.
    for _ in 0..20 {
        let mut s = TcpStream::connect(("127.0.0.1", server.rtmp_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let junk: Vec<u8> = (0..1537u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut bad = vec![0x42u8];
        bad.extend_from_slice(&junk);
        let _ = s.write_all(&bad);
        let mut sink = Vec::new();
        assert!(
            s.read_to_end(&mut sink).is_ok(),
            "garbage handshake must be closed, not left hanging"
        );
    }

    // The server keeps serving a real viewer throughout.
    let flv = pull_decode(&server.flv_url("live", "busy"), 75, Duration::from_secs(20));
    assert!(flv.ok && flv.video_frames >= 75, "{flv:?}");

    // Every idle connection is closed at the 2 s handshake timeout: the read waits
    // for that close (bounded generously).
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut b = [0u8; 16];
        match s.read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("idle connection not closed at the handshake timeout: {other:?}"),
        }
    }
    assert!(server.alive());
    publisher.kill();
}

/// Publishes `live/{name}` with ringcast's own RTMP client session over a
/// blocking socket; returns once the server answered `NetStream.Publish.Start`.
fn rtmp_publisher(
    port: u16,
    name: &str,
) -> (
    TcpStream,
    ringcast::protocol::rtmp::session::client::ClientSession,
) {
    use rand::SeedableRng;
    use ringcast::protocol::rtmp::session::client::{
        ClientEvent, ClientMode, ClientSession, ClientSessionConfig,
    };
    let tc_url = format!("rtmp://127.0.0.1:{port}/live");
    let config = ClientSessionConfig::new("live", &tc_url, name, ClientMode::Publish);
    let mut session = ClientSession::new(config, &mut rand::rngs::SmallRng::seed_from_u64(1), 0);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut out = bytes::BytesMut::new();
    session.start(&mut out).unwrap();
    let mut buf = [0u8; 16 << 10];
    let mut events = Vec::new();
    loop {
        s.write_all(&out).unwrap();
        out.clear();
        let n = s
            .read(&mut buf)
            .expect("server answers the publish within 15 s");
        assert!(n > 0, "server closed during the publish negotiation");
        session
            .handle_input(buf.get(..n).unwrap(), 0, &mut out, &mut events)
            .unwrap();
        if events.contains(&ClientEvent::PublishStarted) {
            s.write_all(&out).unwrap();
            return (s, session);
        }
    }
}

/// Reads until the server closes the connection; fails after a generous bound.
fn expect_closed(s: &mut TcpStream, what: &str) {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("{what} not closed by the server: {e}"),
        }
    }
}

#[test]
fn silent_publishers_are_closed_at_the_first_media_and_idle_timeouts() {
    let mut server = Server::start(
        1,
        "[limits]\nfirst_media_timeout = \"1s\"\nidle_timeout = \"2s\"\n",
    );
    // Publishes, never sends a frame: the first-media deadline closes it.
    let (mut quiet, _session) = rtmp_publisher(server.rtmp_port, "quiet");
    expect_closed(&mut quiet, "a publisher that never sent media");
    // Sends a keyframe, then nothing: the idle deadline closes it.
    let (mut stalled, mut session) = rtmp_publisher(server.rtmp_port, "stalled");
    let key = ringcast::protocol::Frame::new(
        ringcast::protocol::FrameKind::Video,
        0,
        bytes::Bytes::from_static(&[0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88]),
    );
    let mut out = bytes::BytesMut::new();
    session.send_frame(&key, &mut out).unwrap();
    stalled.write_all(&out).unwrap();
    wait_live(&server, "live", "stalled", Duration::from_secs(10));
    expect_closed(&mut stalled, "a publisher gone silent");
    let (_, metrics) = server.http_get("/metrics");
    let timeouts: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("ringcast_connections_closed_total{") && l.contains("reason=\"timeout\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        timeouts >= 2.0,
        "both closes are counted as timeouts:\n{metrics}"
    );
    assert!(server.alive());
}
