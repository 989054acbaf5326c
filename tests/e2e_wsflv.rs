//! WebSocket-FLV against a WebSocket client that is not ours (`tungstenite`):
//! * a viewer that connects before the publisher waits, gets its `101` when
//!   ffmpeg publishes, and receives the FLV header then one binary message per
//!   FLV tag; the reassembled bytes decode in ffprobe (≥ 100 video frames, AAC);
//!   a ping gets its pong; a client close gets a close (1000 echoed), counted;
//! * an unmasked client frame gets close 1002, an oversize message close 1009,
//!   the stream's end close 1000, each followed by the server closing the socket;
//! * bad upgrades get 400 or 426 (with `Sec-WebSocket-Version: 13`), counted;
//!   `[auth]` applies as on HTTP-FLV: unsigned 403, signed plays, unknown 404;
//! * an edge holds the upgrade while it pulls from its origin, then streams; a
//!   stream no origin has gets 404;
//! * with `zero_copy_send`, WebSocket-FLV sends go out fixed-buffer (counted).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::media::{frames_read, probe_streams, TempDir};
use common::*;
use ringcast::protocol::flv::demux::FlvDemuxer;
use ringcast::protocol::FrameKind;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocket};
use tungstenite::Message;

type Ws = WebSocket<TcpStream>;

/// `ws://127.0.0.1:PORT/app/name.flv`.
fn ws_url(server: &Server, app: &str, name: &str) -> String {
    format!("ws://127.0.0.1:{}/{app}/{name}.flv", server.http_port)
}

/// A tungstenite client connected to `url` (the handshake included), reads bounded.
fn connect(url: &str) -> Result<Ws, tungstenite::Error> {
    let addr = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("not a ws:// URL: {url}"));
    let tcp = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap_or_else(|e| panic!("set a read timeout on {addr}: {e}"));
    match tungstenite::client(url, tcp) {
        Ok((ws, _response)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => {
            panic!("blocking handshake interrupted")
        }
    }
}

/// The HTTP status a refused WebSocket handshake got.
fn refused_status(url: &str) -> u16 {
    match connect(url) {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("{url}: expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("{url}: expected an HTTP refusal, got 101"),
    }
}

/// Reads messages until a close frame; its code. Binary messages before it are
/// skipped; the server must then close the socket.
fn read_until_close(ws: &mut Ws, what: &str) -> Option<CloseCode> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        assert!(
            Instant::now() < deadline,
            "{what}: no close frame within 30 s"
        );
        match ws
            .read()
            .unwrap_or_else(|e| panic!("{what}: a message before the close: {e}"))
        {
            Message::Close(frame) => break frame.map(|f| f.code),
            Message::Binary(_) | Message::Pong(_) | Message::Ping(_) => {}
            other => panic!("unexpected message {other:?}"),
        }
    };
    // After the close handshake the server closes the TCP connection.
    match ws.read() {
        Err(tungstenite::Error::ConnectionClosed) => code,
        Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => code,
        Err(e) => panic!("{what}: after the close: {e}"),
        Ok(m) => panic!("{what}: a message after the close: {m:?}"),
    }
}

/// The next message, which must be a binary one (an FLV piece); `what` names
/// the play in the failure.
fn next_binary(ws: &mut Ws, what: &str) -> tungstenite::Bytes {
    match ws
        .read()
        .unwrap_or_else(|e| panic!("{what}: reading a message: {e}"))
    {
        Message::Binary(message) => message,
        other => panic!("{what}: unexpected message {other:?}"),
    }
}

/// `ringcast_websocket_closes_total{reason="…"}`.
fn ws_closes(server: &Server, reason: &str) -> f64 {
    metric_on(
        server.admin_port,
        &format!("ringcast_websocket_closes_total{{reason=\"{reason}\"}}"),
    )
}

fn ws_viewers(server: &Server) -> f64 {
    metric_on(server.admin_port, "ringcast_viewers{protocol=\"ws_flv\"}")
}

/// Checks one message's FLV framing (the file header, then exactly one tag:
/// PreviousTagSize + tag header + body) and appends it to `flv`.
fn append_message(flv: &mut Vec<u8>, message: &[u8]) {
    if flv.is_empty() {
        assert_eq!(message.len(), 9, "the first message is the FLV header");
        assert_eq!(&message[..3], b"FLV");
    } else {
        assert!(
            message.len() >= 15,
            "a tag message of {} bytes",
            message.len()
        );
        let data_size = u32::from_be_bytes([0, message[5], message[6], message[7]]) as usize;
        assert_eq!(message.len(), 15 + data_size, "one FLV tag per message");
    }
    flv.extend_from_slice(message);
}

/// The FLV bytes received so far, checked message by message and demuxed by
/// ringcast's own demuxer as they come (the first oracle; ffprobe is the second).
struct Reassembled {
    flv: Vec<u8>,
    demux: FlvDemuxer,
    decoded: usize,
    video: usize,
}

impl Reassembled {
    fn new() -> Self {
        Reassembled {
            flv: Vec::new(),
            demux: FlvDemuxer::new(Default::default()),
            decoded: 0,
            video: 0,
        }
    }

    /// Adds one binary message: every message holds whole tags, so each one
    /// demuxes completely.
    fn add(&mut self, message: &[u8]) {
        append_message(&mut self.flv, message);
        let mut input = &self.flv[self.decoded..];
        let before = input.len();
        while let Some(frame) = self.demux.decode(&mut input).expect("valid FLV") {
            if frame.kind == FrameKind::Video {
                self.video += 1;
            }
        }
        self.decoded += before - input.len();
        assert_eq!(self.decoded, self.flv.len(), "a message split a tag");
    }
}

#[test]
fn plays_flv_over_websocket_with_ping_pong_and_close() {
    require::command("ffmpeg", "ffmpeg");
    require::command("ffprobe", "ffmpeg");
    let server = Server::start(2, "[stream]\nwait_for_publisher = \"30s\"\n");
    // The viewer asks before anyone publishes: its handshake waits like an HTTP-FLV play.
    let url = ws_url(&server, "live", "ws");
    let viewer = std::thread::spawn(move || connect(&url).expect("WebSocket handshake"));
    wait_until("the viewer to connect", Duration::from_secs(30), || {
        metric_on(
            server.admin_port,
            "ringcast_open_connections{listener=\"http\"}",
        ) >= 1.0
    });
    let mut publisher = publish(&server.rtmp_url("live", "ws"), 60);
    let mut ws = viewer.join().expect("the viewer thread");
    assert_eq!(ws_viewers(&server), 1.0);

    let mut got = Reassembled::new();
    let (mut messages, mut pong) = (0, false);
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.video < 110 || !pong {
        assert!(
            Instant::now() < deadline,
            "60 s: {} video frames, pong {pong}",
            got.video
        );
        match ws.read().expect("a message") {
            Message::Binary(message) => got.add(&message),
            Message::Pong(payload) => {
                assert_eq!(&payload[..], b"are you there?");
                pong = true;
                continue;
            }
            other => panic!("unexpected message {other:?}"),
        }
        messages += 1;
        if messages == 20 {
            ws.send(Message::Ping(b"are you there?".to_vec().into()))
                .expect("send a ping");
        }
    }

    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .expect("send a close frame");
    assert_eq!(
        read_until_close(&mut ws, "client close"),
        Some(CloseCode::Normal)
    );
    wait_until("the viewer to be gone", Duration::from_secs(10), || {
        ws_viewers(&server) == 0.0
    });
    assert_eq!(ws_closes(&server, "client_close"), 1.0);
    publisher.kill();

    // ffprobe decodes the reassembled stream.
    let dir = TempDir::new("ringcast-wsflv", "play");
    let path = dir.join("ws.flv");
    std::fs::write(&path, &got.flv).unwrap();
    let streams = probe_streams(&path);
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    assert_eq!(video["codec_name"], "h264");
    assert!(frames_read(video) >= 100, "{video}");
    let audio = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
    assert_eq!(audio["codec_name"], "aac");
}

/// Opens a WebSocket by hand (so a frame tungstenite would never send can be
/// written), then hands the socket to tungstenite to read the server's frames.
fn raw_upgrade(server: &Server, path: &str) -> (TcpStream, Ws) {
    let port = server.http_port;
    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap_or_else(|e| panic!("set a read timeout on 127.0.0.1:{port}: {e}"));
    // A failed write is reported only if no answer follows (the server may
    // have answered and closed early).
    let written = write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    // Byte by byte, so that nothing after the head is taken from tungstenite.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if let Err(e) = tcp.read_exact(&mut byte) {
            panic!(
                "upgrade of {path}: reading the response head ({} bytes so far: {:?}): {e}; \
                 writing the request: {written:?}",
                head.len(),
                String::from_utf8_lossy(&head)
            );
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("upgrade response head is UTF-8");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        head.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    let ws = WebSocket::from_raw_socket(
        tcp.try_clone().expect("clone the upgraded socket"),
        Role::Client,
        None,
    );
    (tcp, ws)
}

#[test]
fn bad_client_frames_and_the_streams_end_close_the_connection() {
    require::command("ffmpeg", "ffmpeg");
    let server = Server::start(1, "");
    let mut publisher = publish(&server.rtmp_url("live", "bad"), 60);
    wait_live(&server, "live", "bad", Duration::from_secs(30));

    // An unmasked client frame: close 1002.
    let (mut tcp, mut ws) = raw_upgrade(&server, "/live/bad.flv");
    tcp.write_all(&[0x82, 0x03, 1, 2, 3])
        .expect("write an unmasked frame");
    assert_eq!(
        read_until_close(&mut ws, "unmasked frame"),
        Some(CloseCode::Protocol)
    );

    // A message over the 4 KiB limit: close 1009.
    let mut ws = connect(&ws_url(&server, "live", "bad")).expect("WebSocket connect");
    ws.send(Message::Binary(vec![7u8; 5000].into()))
        .expect("send a 5000-byte message");
    assert_eq!(
        read_until_close(&mut ws, "oversize message"),
        Some(CloseCode::Size)
    );

    // A small message is ignored: the stream goes on.
    let mut ws = connect(&ws_url(&server, "live", "bad")).expect("WebSocket connect");
    ws.send(Message::Binary(vec![7u8; 100].into()))
        .expect("send a 100-byte message");
    ws.send(Message::Text("hello".into()))
        .expect("send a text message");
    for i in 0..30 {
        let message = ws
            .read()
            .unwrap_or_else(|e| panic!("message {i} after the ignored ones: {e}"));
        assert!(matches!(message, Message::Binary(_)), "{message:?}");
    }
    // The stream ends: close 1000.
    publisher.kill();
    assert_eq!(
        read_until_close(&mut ws, "stream end"),
        Some(CloseCode::Normal)
    );

    assert_eq!(ws_closes(&server, "protocol_error"), 1.0);
    assert_eq!(ws_closes(&server, "message_too_big"), 1.0);
    assert_eq!(ws_closes(&server, "stream_ended"), 1.0);
    assert_eq!(ws_viewers(&server), 0.0);
}

/// Sends a raw request head and reads the whole response (the server closes);
/// what went wrong instead when no response came.
fn raw_response(port: u16, head: &str) -> String {
    match http_exchange(port, head.as_bytes(), Duration::from_secs(15)) {
        Ok(raw) => String::from_utf8_lossy(&raw).to_string(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_upgrades_are_refused_and_auth_applies_as_on_http_flv() {
    require::command("ffmpeg", "ffmpeg");
    let server = Server::start(
        1,
        "[auth]\nplay = \"signed\"\n[[auth.keys]]\nid = \"k\"\nsecret = \"0123456789abcdef0123456789abcdef\"\n",
    );
    let good =
        "GET /live/auth.flv HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    for (head, status) in [
        (
            good.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            400,
        ),
        (good.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="), 400),
        (
            good.replace("Connection: Upgrade", "Connection: close"),
            400,
        ),
        (good.replace("Version: 13", "Version: 8"), 426),
    ] {
        let response = raw_response(server.http_port, &head);
        assert_eq!(
            plain::parse_http_response(response.as_bytes()).0,
            status,
            "{head}\n→ {response}"
        );
        if status == 426 {
            assert!(
                response.contains("\r\nSec-WebSocket-Version: 13\r\n"),
                "{response}"
            );
        }
    }
    assert_eq!(
        metric_on(
            server.admin_port,
            "ringcast_connections_refused_total{reason=\"bad_websocket_handshake\"}"
        ),
        4.0
    );

    let mut publisher = publish(&server.rtmp_url("live", "auth"), 60);
    wait_live(&server, "live", "auth", Duration::from_secs(30));
    // Unsigned: 403, as on HTTP-FLV.
    assert_eq!(refused_status(&ws_url(&server, "live", "auth")), 403);
    // Signed (the http:// URL `ringcast sign` prints, as ws://): plays.
    let sign = |name: &str| {
        let out = run_bounded(
            Command::new(env!("CARGO_BIN_EXE_ringcast"))
                .arg("sign")
                .arg("--config")
                .arg(server.dir.join("ringcast.toml"))
                .args(["--action", "play", "--ttl", "1h", "--url"])
                .arg(server.flv_url("live", name)),
            Duration::from_secs(20),
        );
        assert!(out.status.success(), "ringcast sign failed");
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .replacen("http://", "ws://", 1)
    };
    let mut ws = connect(&sign("auth")).expect("a signed WebSocket-FLV play");
    let mut got = Reassembled::new();
    for _ in 0..20 {
        got.add(&next_binary(&mut ws, "a signed play"));
    }
    // Signed, but nobody publishes it: 404.
    assert_eq!(refused_status(&sign("nothing")), 404);
    publisher.kill();
}

#[test]
fn an_edge_serves_websocket_flv_from_its_origin_pull() {
    require::command("ffmpeg", "ffmpeg");
    let origin = Server::start(1, "");
    let edge = Server::start(
        2,
        &format!(
            "[edge]\norigins = [\"rtmp://127.0.0.1:{}/live\"]\n",
            origin.rtmp_port
        ),
    );
    let mut publisher = publish(&origin.rtmp_url("live", "far"), 60);
    wait_live(&origin, "live", "far", Duration::from_secs(30));
    // The edge holds the upgrade while it pulls, then answers 101 and streams.
    let mut ws = connect(&ws_url(&edge, "live", "far")).expect("WebSocket-FLV on the edge");
    let mut got = Reassembled::new();
    while got.video < 25 {
        got.add(&next_binary(&mut ws, "the edge's play"));
    }
    assert_eq!(ws_viewers(&edge), 1.0);
    // A stream no origin has: 404 after the edge asked, as on HTTP-FLV.
    assert_eq!(refused_status(&ws_url(&edge, "live", "nowhere")), 404);
    publisher.kill();
}

#[test]
fn zero_copy_sends_carry_websocket_messages() {
    // With zero_copy_send the frame headers sit in the viewer's region scratch like
    // HTTP-FLV's chunk lines, so the sends stay fixed-buffer.
    require::command("ffmpeg", "ffmpeg");
    let server = Server::start(1, "[runtime]\nzero_copy_send = true\n");
    let mut publisher = publish(&server.rtmp_url("live", "zc"), 60);
    wait_live(&server, "live", "zc", Duration::from_secs(30));
    let fixed = || {
        metric_on(
            server.admin_port,
            "ringcast_reactor_fixed_buffer_sends_total",
        )
    };
    let before = fixed();
    let mut ws = connect(&ws_url(&server, "live", "zc")).expect("WebSocket connect");
    let mut got = Reassembled::new();
    while got.video < 100 {
        got.add(&next_binary(&mut ws, "a zero-copy play"));
    }
    let after = fixed();
    assert!(
        after - before >= 20.0,
        "only {} fixed-buffer sends ({before} -> {after})",
        after - before
    );
    publisher.kill();
}
