//! Real-client vectors: raw bytes that ffmpeg sent to a ringcast ServerSession,
//! recorded once (see `record_captures`, ignored by default) and committed under
//! `tests/data/rtmp/captures/`. The default tests replay them into fresh sessions.

use std::path::PathBuf;

#[path = "common/require.rs"]
mod require;

use bytes::BytesMut;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use ringcast::protocol::flv::frame::{timestamp_delta, Frame, FrameKind};
use ringcast::protocol::payload::HeapAllocator;
use ringcast::protocol::rtmp::chunk::{ChunkDecoder, ChunkLimits};
use ringcast::protocol::rtmp::command::{data, Command, CommandConfig};
use ringcast::protocol::rtmp::handshake::HANDSHAKE_PACKET_LEN;
use ringcast::protocol::rtmp::message::type_id;
use ringcast::protocol::rtmp::session::server::{ServerEvent, ServerSession, ServerSessionConfig};

fn capture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/rtmp/captures")
        .join(name)
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(capture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The commands in a client capture, decoded independently of the session:
/// skip C0+C1+C2, then run the chunk decoder.
fn commands_in(capture: &[u8]) -> Vec<Command> {
    let after_handshake = &capture[1 + 2 * HANDSHAKE_PACKET_LEN..];
    let mut decoder = ChunkDecoder::new(ChunkLimits::default());
    let mut messages = Vec::new();
    decoder
        .decode_all(after_handshake, &mut HeapAllocator, &mut messages)
        .unwrap();
    messages
        .iter()
        .filter(|m| m.type_id == type_id::COMMAND_AMF0 || m.type_id == type_id::COMMAND_AMF3)
        .map(|m| Command::decode(m.type_id, &m.payload, &CommandConfig::default()).unwrap())
        .collect()
}

/// Feeds `capture` to a fresh ServerSession in TCP-segment-sized pieces, accepting
/// every publish and play, and returns the events.
fn replay(capture: &[u8]) -> Vec<ServerEvent> {
    let mut rng = SmallRng::seed_from_u64(1);
    let mut session = ServerSession::new(ServerSessionConfig::default(), &mut rng, 0);
    let mut events = Vec::new();
    let mut out = BytesMut::new();
    let mut handled = 0;
    for (i, piece) in capture.chunks(1460).enumerate() {
        session
            .handle_input(piece, i as u64, &mut out, &mut events)
            .unwrap();
        while handled < events.len() {
            match events[handled] {
                ServerEvent::PublishRequested { stream_id, .. } => {
                    session.accept_publish(stream_id, &mut out).unwrap()
                }
                ServerEvent::PlayRequested { stream_id, .. } => {
                    session.accept_play(stream_id, &mut out).unwrap()
                }
                _ => {}
            }
            handled += 1;
            if session.has_backlog() {
                session
                    .handle_input(&[], i as u64, &mut out, &mut events)
                    .unwrap();
            }
        }
    }
    assert!(!out.is_empty(), "the session answered");
    events
}

#[test]
fn ffmpeg_publish_capture_yields_commands_and_media() {
    let capture = load("ffmpeg_publish.bin");
    let names: Vec<&str> = commands_in(&capture).iter().map(Command::name).collect();
    assert_eq!(
        names,
        [
            "connect",
            "releaseStream",
            "FCPublish",
            "createStream",
            "publish",
            "FCUnpublish",
            "deleteStream"
        ],
        "ffmpeg's publish sequence"
    );
    let commands = commands_in(&capture);
    let Command::Publish(publish) = &commands[4] else {
        panic!("not publish: {:?}", commands[4])
    };
    assert_eq!(publish.name.name, "test");
    let Command::Connect(connect) = &commands[0] else {
        panic!("not connect")
    };
    assert_eq!(connect.app.name, "live");
    assert!(connect
        .tc_url
        .as_deref()
        .is_some_and(|u| u.ends_with("/live")));

    let events = replay(&capture);
    assert!(matches!(&events[0], ServerEvent::Connected(c) if c.app.name == "live"));
    assert!(matches!(
        &events[1],
        ServerEvent::PublishRequested { stream_id: 1, app, name, query: None } if app == "live" && name == "test"
    ));
    let media: Vec<(&Frame, bool)> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Media {
                stream_id: 1,
                frame,
                metadata,
            } => Some((frame, *metadata)),
            _ => None,
        })
        .collect();
    let (meta, is_meta) = media[0];
    assert!(
        is_meta && meta.kind == FrameKind::Script && data::is_metadata(&meta.payload),
        "onMetaData first"
    );
    let video: Vec<&Frame> = media
        .iter()
        .map(|m| m.0)
        .filter(|f| f.kind == FrameKind::Video)
        .collect();
    let audio: Vec<&Frame> = media
        .iter()
        .map(|m| m.0)
        .filter(|f| f.kind == FrameKind::Audio)
        .collect();
    assert!(video[0].sequence_header, "AVC sequence header first");
    assert!(audio[0].sequence_header, "AAC sequence header first");
    assert!(
        video[1].keyframe && !video[1].sequence_header,
        "coded video starts with a keyframe"
    );
    // 1.5 s at 25 fps; 1.5 s of 44.1 kHz AAC is ~65 frames.
    assert!(video.len() >= 35, "video frames: {}", video.len());
    assert!(audio.len() >= 60, "audio frames: {}", audio.len());
    for frames in [&video, &audio] {
        for pair in frames.windows(2) {
            assert!(
                timestamp_delta(pair[1].timestamp, pair[0].timestamp) >= 0,
                "monotonic timestamps"
            );
        }
    }
    assert!(events
        .iter()
        .any(|e| matches!(e, ServerEvent::Unpublished { stream_id: 1 })));
}

#[test]
fn ffmpeg_play_capture_yields_commands_and_a_play_request() {
    let capture = load("ffmpeg_play.bin");
    let commands = commands_in(&capture);
    let names: Vec<&str> = commands.iter().map(Command::name).collect();
    assert_eq!(
        names,
        [
            "connect",
            "createStream",
            "getStreamLength",
            "play",
            "deleteStream"
        ]
    );
    let play = commands.iter().find_map(|c| match c {
        Command::Play(p) => Some(p),
        _ => None,
    });
    assert_eq!(play.map(|p| p.name.name.as_str()), Some("test"));

    let events = replay(&capture);
    assert!(matches!(&events[0], ServerEvent::Connected(c) if c.app.name == "live"));
    assert!(events.iter().any(
        |e| matches!(e, ServerEvent::PlayRequested { stream_id: 1, name, .. } if name == "test")
    ));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ServerEvent::Media { .. })),
        "players send no media"
    );
    assert!(matches!(
        events.last(),
        Some(ServerEvent::StreamDeleted { stream_id: 1 })
    ));
}

/// Re-records the captures with the real ffmpeg:
/// `cargo test --test rtmp_capture -- --ignored record_captures`.
#[test]
#[ignore = "needs ffmpeg; rewrites the committed captures"]
fn record_captures() {
    let publish = recorder::record_publish();
    std::fs::write(capture_path("ffmpeg_publish.bin"), &publish).unwrap();
    let frames = recorder::frames_of(&publish);
    let play = recorder::record_play(&frames);
    std::fs::write(capture_path("ffmpeg_play.bin"), &play).unwrap();
}

/// Records the 10 s, 2 Mbps publish capture the chunk benchmark replays:
/// `cargo test --test rtmp_capture -- --ignored record_bench_capture`.
#[test]
#[ignore = "needs ffmpeg; rewrites the committed benchmark capture"]
fn record_bench_capture() {
    let publish = recorder::record_publish_2mbps();
    std::fs::write(capture_path("ffmpeg_publish_2mbps.bin"), &publish).unwrap();
}

/// nginx with the RTMP module on free loopback ports (`application live`), and
/// its `rtmp_stat` page; killed on drop.
struct NginxRtmp {
    child: std::process::Child,
    rtmp_port: u16,
    stat_port: u16,
    dir: PathBuf,
}

impl NginxRtmp {
    const MODULE: &'static str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

    fn start() -> NginxRtmp {
        require::file(Self::MODULE, "libnginx-mod-rtmp");
        require::command("nginx", "nginx");
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (rtmp_port, stat_port) = (port(), port());
        let dir = std::env::temp_dir().join(format!(
            "ringcast-capture-nginx-{}-{rtmp_port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = format!(
            "load_module {};\ndaemon off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{}}\n\
             rtmp {{ server {{ listen 127.0.0.1:{rtmp_port}; application live {{ live on; }} }} }}\n\
             http {{ access_log off; client_body_temp_path {d}/body; \
             server {{ listen 127.0.0.1:{stat_port}; location /stat {{ rtmp_stat all; }} }} }}\n",
            Self::MODULE,
            d = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = std::process::Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let nginx = NginxRtmp {
            child,
            rtmp_port,
            stat_port,
            dir,
        };
        wait_until("nginx to listen", || {
            [rtmp_port, stat_port]
                .iter()
                .all(|&p| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok())
        });
        nginx
    }

    /// Clients of stream `name` per `rtmp_stat` (0 while it has none).
    fn clients(&self, name: &str) -> usize {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.stat_port)) else {
            return 0;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
        let _ = s.write_all(b"GET /stat HTTP/1.0\r\n\r\n");
        let mut xml = String::new();
        let _ = s.read_to_string(&mut xml);
        xml.split_once(&format!("<name>{name}</name>"))
            .and_then(|(_, rest)| rest.split_once("<nclients>"))
            .and_then(|(_, rest)| rest.split_once('<'))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for NginxRtmp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `condition` every 50 ms for up to 30 s; panics naming `what` after that.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// ClientSession against a real server: publishes the captured frames to
/// nginx-rtmp (started here) while another ClientSession plays them back.
#[test]
fn client_sessions_publish_and_play_through_nginx() {
    use ringcast::protocol::rtmp::session::client::{ClientEvent, ClientMode};
    let nginx = NginxRtmp::start();
    let addr = format!("127.0.0.1:{}", nginx.rtmp_port);
    let frames = recorder::frames_of(&load("ffmpeg_publish.bin"));
    let play_addr = addr.clone();
    let player = std::thread::spawn(move || {
        recorder::run_client(&play_addr, ClientMode::Play, Vec::new(), |events| {
            events
                .iter()
                .filter(|e| matches!(e, ClientEvent::Media(f) if f.kind == FrameKind::Video))
                .count()
                >= 30
        })
    });
    // The player is on the stream before the publisher starts.
    wait_until("the player on nginx", || nginx.clients("interop") >= 1);
    let published = recorder::run_client(&addr, ClientMode::Publish, frames, |_| false);
    assert_eq!(
        &published[..2],
        [ClientEvent::Connected, ClientEvent::PublishStarted]
    );
    let played = player.join().unwrap();
    assert_eq!(
        &played[..2],
        [ClientEvent::Connected, ClientEvent::PlayStarted]
    );
    let media: Vec<&Frame> = played
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Media(f) => Some(f),
            _ => None,
        })
        .collect();
    assert!(media
        .iter()
        .any(|f| f.kind == FrameKind::Script && data::is_metadata(&f.payload)));
    assert!(media
        .iter()
        .any(|f| f.kind == FrameKind::Video && f.sequence_header));
    assert!(media
        .iter()
        .any(|f| f.kind == FrameKind::Audio && f.sequence_header));
    assert!(media.iter().filter(|f| f.kind == FrameKind::Video).count() >= 30);
}

mod recorder {
    //! A tiny recording TCP peer: a real ServerSession on a std TcpListener.

    use std::io::{ErrorKind, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use bytes::BytesMut;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use ringcast::protocol::flv::frame::Frame;
    use ringcast::protocol::rtmp::session::server::{
        ServerEvent, ServerSession, ServerSessionConfig,
    };

    fn ffmpeg(args: &[&str]) -> Child {
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("ffmpeg")
    }

    /// Serves one connection until the peer closes (at most 20 s); returns what it sent.
    fn serve(
        listener: &TcpListener,
        mut on_play: impl FnMut(&mut ServerSession, u32, &mut BytesMut),
    ) -> Vec<u8> {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let start = Instant::now();
        let mut session = ServerSession::new(
            ServerSessionConfig::default(),
            &mut SmallRng::seed_from_u64(3),
            0,
        );
        let mut captured = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut events = Vec::new();
        while start.elapsed() < Duration::from_secs(20) {
            let n = match sock.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue
                }
                Err(_) => break,
            };
            captured.extend_from_slice(&buf[..n]);
            let mut out = BytesMut::new();
            let now = start.elapsed().as_millis() as u64;
            session
                .handle_input(&buf[..n], now, &mut out, &mut events)
                .unwrap();
            for ev in events.drain(..) {
                match ev {
                    ServerEvent::PublishRequested { stream_id, .. } => {
                        session.accept_publish(stream_id, &mut out).unwrap()
                    }
                    ServerEvent::PlayRequested { stream_id, .. } => {
                        session.accept_play(stream_id, &mut out).unwrap();
                        on_play(&mut session, stream_id, &mut out);
                    }
                    _ => {}
                }
            }
            if session.has_backlog() {
                session
                    .handle_input(&[], now, &mut out, &mut events)
                    .unwrap();
            }
            if write_all(&mut sock, &out).is_err() {
                break;
            }
        }
        captured
    }

    fn write_all(sock: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
        sock.write_all(bytes)
    }

    /// Records ffmpeg publishing 1.5 s of a small test pattern (`ffmpeg_publish.bin`).
    pub fn record_publish() -> Vec<u8> {
        record_ffmpeg_publish(&[
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000",
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-c:a",
            "aac",
            "-t",
            "1.5",
        ])
    }

    /// Records ffmpeg publishing 10 s of 720p30 video at 2 Mbps plus AAC
    /// (`ffmpeg_publish_2mbps.bin`), the live-stream shape `benches/chunk.rs` replays.
    pub fn record_publish_2mbps() -> Vec<u8> {
        record_ffmpeg_publish(&[
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine",
            "-c:v",
            "libx264",
            "-b:v",
            "2M",
            "-g",
            "30",
            "-c:a",
            "aac",
            "-t",
            "10",
        ])
    }

    /// Serves one ffmpeg publish whose input and codec options are `source_args`.
    fn record_ffmpeg_publish(source_args: &[&str]) -> Vec<u8> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "rtmp://127.0.0.1:{}/live/test",
            listener.local_addr().unwrap().port()
        );
        let mut args = source_args.to_vec();
        args.extend(["-f", "flv", &url]);
        let mut child = ffmpeg(&args);
        let captured = serve(&listener, |_, _, _| {});
        let _ = child.wait();
        captured
    }

    /// The frames a ServerSession extracts from a publish capture.
    pub fn frames_of(capture: &[u8]) -> Vec<Frame> {
        let mut session = ServerSession::new(
            ServerSessionConfig::default(),
            &mut SmallRng::seed_from_u64(4),
            0,
        );
        let mut events = Vec::new();
        let mut out = BytesMut::new();
        let mut frames = Vec::new();
        session
            .handle_input(capture, 0, &mut out, &mut events)
            .unwrap();
        loop {
            let mut more = false;
            for ev in std::mem::take(&mut events) {
                match ev {
                    ServerEvent::PublishRequested { stream_id, .. } => {
                        session.accept_publish(stream_id, &mut out).unwrap();
                        more = true;
                    }
                    ServerEvent::Media { frame, .. } => frames.push(frame),
                    _ => {}
                }
            }
            if !more {
                return frames;
            }
            session.handle_input(&[], 0, &mut out, &mut events).unwrap();
        }
    }

    pub fn record_play(frames: &[Frame]) -> Vec<u8> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "rtmp://127.0.0.1:{}/live/test",
            listener.local_addr().unwrap().port()
        );
        let mut child = ffmpeg(&["-i", &url, "-f", "null", "-"]);
        let captured = serve(&listener, |session, stream_id, out| {
            for f in frames {
                session.write_frame(stream_id, f, out).unwrap();
            }
            session.send_unpublish_notify(stream_id, out).unwrap();
        });
        let status = child.wait().unwrap();
        assert!(status.success(), "ffmpeg played the stream: {status}");
        captured
    }

    /// Runs a ClientSession over TCP until `done(events)` or the server closes; when
    /// publishing, sends `frames` once publishing started, then closes politely.
    pub fn run_client(
        addr: &str,
        mode: ringcast::protocol::rtmp::session::client::ClientMode,
        frames: Vec<Frame>,
        done: impl Fn(&[ringcast::protocol::rtmp::session::client::ClientEvent]) -> bool,
    ) -> Vec<ringcast::protocol::rtmp::session::client::ClientEvent> {
        use ringcast::protocol::rtmp::session::client::{
            ClientEvent, ClientSession, ClientSessionConfig,
        };
        let mut sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let config =
            ClientSessionConfig::new("live", &format!("rtmp://{addr}/live"), "interop", mode);
        let mut session = ClientSession::new(config, &mut SmallRng::seed_from_u64(5), 0);
        let mut out = BytesMut::new();
        session.start(&mut out).unwrap();
        let mut events = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            sock.write_all(&out).unwrap();
            out.clear();
            if events.contains(&ClientEvent::PublishStarted) {
                for f in &frames {
                    session.send_frame(f, &mut out).unwrap();
                }
                session.close(&mut out).unwrap();
                sock.write_all(&out).unwrap();
                out.clear();
                // Half-close and drain until the server closes too, so nothing
                // unread turns the close into a reset that loses the tail.
                let _ = sock.shutdown(std::net::Shutdown::Write);
                let drain_until = Instant::now() + Duration::from_secs(10);
                sock.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                while Instant::now() < drain_until {
                    match sock.read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(_) => break,
                    }
                }
                break;
            }
            if done(&events) {
                break;
            }
            let n = match sock.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue
                }
                Err(e) => panic!("read: {e}"),
            };
            session
                .handle_input(
                    &buf[..n],
                    start.elapsed().as_millis() as u64,
                    &mut out,
                    &mut events,
                )
                .unwrap();
        }
        events
    }
}
