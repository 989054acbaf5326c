//! An in-test RTMP publisher built on ringcast's own `ClientSession`: a real
//! TCP peer doing the real handshake, for tests that need many publishers or
//! exact control of what each one sends (ffmpeg is one process per stream).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use ringcast::protocol::rtmp::session::client::{
    ClientEvent, ClientMode, ClientSession, ClientSessionConfig,
};
use ringcast::protocol::{Frame, FrameKind};

/// A connected RTMP client (publishing or playing) whose socket stays open
/// until it is dropped.
pub struct RawClient {
    /// The connection to the server.
    pub sock: TcpStream,
    session: ClientSession,
    out: BytesMut,
}

impl RawClient {
    /// Connects to `127.0.0.1:port`, publishes `app/name` and waits (up to
    /// `limit`) for `NetStream.Publish.Start`. `Err` carries the events seen
    /// when the server refused or closed instead.
    pub fn publish(
        port: u16,
        app: &str,
        name: &str,
        limit: Duration,
    ) -> Result<RawClient, Vec<ClientEvent>> {
        Self::connect(port, app, name, ClientMode::Publish, limit)
    }

    /// As [`RawClient::publish`], playing: waits for `NetStream.Play.Start`.
    pub fn play(
        port: u16,
        app: &str,
        name: &str,
        limit: Duration,
    ) -> Result<RawClient, Vec<ClientEvent>> {
        Self::connect(port, app, name, ClientMode::Play, limit)
    }

    fn connect(
        port: u16,
        app: &str,
        name: &str,
        mode: ClientMode,
        limit: Duration,
    ) -> Result<RawClient, Vec<ClientEvent>> {
        let started = match mode {
            ClientMode::Publish => ClientEvent::PublishStarted,
            ClientMode::Play => ClientEvent::PlayStarted,
        };
        let mut sock = TcpStream::connect(("127.0.0.1", port)).map_err(|_| Vec::new())?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let tc_url = format!("rtmp://127.0.0.1:{port}/{app}");
        let config = ClientSessionConfig::new(app, &tc_url, name, mode);
        let mut session = ClientSession::new(config, &mut SmallRng::seed_from_u64(7), 0);
        let mut out = BytesMut::new();
        session.start(&mut out).unwrap();
        let mut events = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        let start = Instant::now();
        loop {
            if sock.write_all(&out).is_err() {
                return Err(events);
            }
            out.clear();
            if events.contains(&started) {
                return Ok(RawClient { sock, session, out });
            }
            if events
                .iter()
                .any(|e| matches!(e, ClientEvent::StatusError { .. }))
                || start.elapsed() > limit
            {
                return Err(events);
            }
            let n = match sock.read(&mut buf) {
                Ok(0) => return Err(events),
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue
                }
                Err(_) => return Err(events),
            };
            let now = start.elapsed().as_millis() as u64;
            if session
                .handle_input(&buf[..n], now, &mut out, &mut events)
                .is_err()
            {
                return Err(events);
            }
        }
    }

    /// Ends the stream politely (`FCUnpublish` / `deleteStream`) and closes.
    pub fn close_politely(mut self) {
        self.session.close(&mut self.out).unwrap();
        let _ = self.sock.write_all(&self.out);
    }

    /// Writes `bytes` as they are, outside the session (to break the protocol).
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sock.write_all(bytes)
    }

    /// Sends `frames` and flushes them to the socket.
    pub fn send(&mut self, frames: &[Frame]) -> std::io::Result<()> {
        for f in frames {
            self.session.send_frame(f, &mut self.out).unwrap();
        }
        let r = self.sock.write_all(&self.out);
        self.out.clear();
        r
    }
}

/// `onMetaData` with an empty ECMA array: what the stream layer keeps as metadata.
pub fn metadata_frame() -> Frame {
    let mut body = vec![0x02, 0x00, 0x0a];
    body.extend_from_slice(b"onMetaData");
    body.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 0, 9]);
    Frame::new(FrameKind::Script, 0, Bytes::from(body))
}

/// An AVC sequence header (a minimal decoder configuration record).
pub fn video_header_frame() -> Frame {
    let payload = vec![
        0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 4, 0x68,
        0xee, 0x3c, 0x80,
    ];
    Frame::new(FrameKind::Video, 0, Bytes::from(payload))
}

/// An AAC sequence header (AudioSpecificConfig: LC, 44.1 kHz, stereo).
pub fn audio_header_frame() -> Frame {
    Frame::new(
        FrameKind::Audio,
        0,
        Bytes::from_static(&[0xaf, 0, 0x12, 0x10]),
    )
}

/// A raw AAC frame of `len` payload bytes at `ts`.
pub fn audio_frame(ts: u32, len: usize) -> Frame {
    let mut payload = vec![0x5a; len + 2];
    payload[0] = 0xaf;
    payload[1] = 1;
    Frame::new(FrameKind::Audio, ts, Bytes::from(payload))
}
