//! Client session tests: its start and idle deadlines, and media skipping,
//! which changes only how frames are reported (against a real `ServerSession`).

use super::*;
use crate::protocol::rtmp::session::server::{ServerEvent, ServerSession, ServerSessionConfig};
use rand::rngs::SmallRng;
use rand::SeedableRng;

/// A fake clock: every instant is this base plus an offset.
const BASE: u64 = 5_000_000;

fn client(mode: ClientMode) -> ClientSession {
    let mut config = ClientSessionConfig::new("live", "rtmp://h/live", "cam", mode);
    config.timeouts = ClientTimeouts {
        start_ms: Some(5_000),
        idle_ms: Some(10_000),
    };
    ClientSession::new(config, &mut SmallRng::seed_from_u64(7), BASE)
}

/// Runs the client against a server that accepts everything, all at `now`.
fn negotiate(c: &mut ClientSession, now: u64) {
    let mut s = ServerSession::new(
        ServerSessionConfig::default(),
        &mut SmallRng::seed_from_u64(8),
        now,
    );
    let mut to_server = BytesMut::new();
    c.start_at(now, &mut to_server).unwrap();
    for _ in 0..32 {
        let (mut to_client, mut events) = (BytesMut::new(), Vec::new());
        s.handle_input(&to_server, now, &mut to_client, &mut events)
            .unwrap();
        to_server.clear();
        for e in events {
            match e {
                ServerEvent::PlayRequested { stream_id, .. } => {
                    s.accept_play(stream_id, &mut to_client).unwrap()
                }
                ServerEvent::PublishRequested { stream_id, .. } => {
                    s.accept_publish(stream_id, &mut to_client).unwrap()
                }
                _ => {}
            }
        }
        c.handle_input(&to_client, now, &mut to_server, &mut Vec::new())
            .unwrap();
        if to_client.is_empty() && to_server.is_empty() {
            break;
        }
    }
}

#[test]
fn start_deadline_counts_from_start_at_and_idle_from_the_last_input() {
    let mut c = client(ClientMode::Play);
    assert_eq!(
        c.poll_timeout(),
        Some(BASE + 5_000),
        "from creation until started"
    );
    let mut out = BytesMut::new();
    c.start_at(BASE + 3_000, &mut out).unwrap();
    assert_eq!(
        c.poll_timeout(),
        Some(BASE + 8_000),
        "the connect does not count"
    );
    assert_eq!(c.handle_timeout(BASE + 7_999), Ok(()));
    assert_eq!(
        c.handle_timeout(BASE + 8_000),
        Err(SessionError::TimedOut {
            phase: "start",
            limit_ms: 5_000
        })
    );

    let mut c = client(ClientMode::Play);
    negotiate(&mut c, BASE + 1_000);
    assert!(c.is_active());
    assert_eq!(c.poll_timeout(), Some(BASE + 11_000));
    // Any input (here a stray ack) pushes the idle deadline.
    let mut s = ServerSession::new(
        ServerSessionConfig::default(),
        &mut SmallRng::seed_from_u64(9),
        0,
    );
    let mut ack = BytesMut::new();
    s.write_control(&ControlMessage::Acknowledgement(1), &mut ack)
        .unwrap();
    c.handle_input(&ack, BASE + 9_000, &mut out, &mut Vec::new())
        .unwrap();
    assert_eq!(c.poll_timeout(), Some(BASE + 19_000));
    assert_eq!(
        c.handle_timeout(BASE + 19_000),
        Err(SessionError::TimedOut {
            phase: "idle",
            limit_ms: 10_000
        })
    );
}

/// A play client keeping media and one skipping it, fed the same server output
/// in the same pieces: the same replies (acknowledgements, pong) and the same
/// events, audio and video as `MediaSkipped` for the skipping one.
#[test]
fn skipping_media_changes_only_how_frames_are_reported() {
    use rand::Rng;
    let mut full = client(ClientMode::Play);
    let mut skim = {
        let mut config = ClientSessionConfig::new("live", "rtmp://h/live", "cam", ClientMode::Play);
        config.timeouts = full.config.timeouts;
        config.skip_media = true;
        ClientSession::new(config, &mut SmallRng::seed_from_u64(7), BASE)
    };
    let mut s = ServerSession::new(
        ServerSessionConfig::default(),
        &mut SmallRng::seed_from_u64(8),
        BASE,
    );
    // Negotiate, the server answering the full client; both must say the same.
    let (mut to_server, mut skim_out) = (BytesMut::new(), BytesMut::new());
    full.start_at(BASE, &mut to_server).unwrap();
    skim.start_at(BASE, &mut skim_out).unwrap();
    let mut play_stream = None;
    let mut wire = BytesMut::new();
    for _ in 0..32 {
        assert_eq!(to_server, skim_out);
        let (mut to_client, mut events) = (BytesMut::new(), Vec::new());
        s.handle_input(&to_server, BASE, &mut to_client, &mut events)
            .unwrap();
        for e in events {
            if let ServerEvent::PlayRequested { stream_id, .. } = e {
                s.accept_play(stream_id, &mut to_client).unwrap();
                play_stream = Some(stream_id);
            }
        }
        if to_client.is_empty() {
            break;
        }
        wire.extend_from_slice(&to_client);
        to_server.clear();
        skim_out.clear();
        full.handle_input(&to_client, BASE, &mut to_server, &mut Vec::new())
            .unwrap();
        skim.handle_input(&to_client, BASE, &mut skim_out, &mut Vec::new())
            .unwrap();
    }
    assert!(full.is_active() && skim.is_active());
    let sid = play_stream.unwrap();
    // Then a small acknowledgement window, a ping and a few seconds of media.
    let mut media = BytesMut::new();
    s.write_control(&ControlMessage::WindowAckSize(5_000), &mut media)
        .unwrap();
    s.write_control(
        &ControlMessage::UserControl(UserControlEvent::PingRequest(77)),
        &mut media,
    )
    .unwrap();
    let mut rng = SmallRng::seed_from_u64(9);
    for i in 0..120u32 {
        let mut video = vec![if i % 30 == 0 { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        video.extend((0..rng.gen_range(10..9_000)).map(|_| rng.gen::<u8>()));
        let video = Frame::new(FrameKind::Video, i * 33, video.into());
        s.write_frame(sid, &video, &mut media).unwrap();
        let audio = Frame::new(FrameKind::Audio, i * 33 + 5, vec![0xaf, 1, 7, 7].into());
        s.write_frame(sid, &audio, &mut media).unwrap();
    }
    let (mut full_events, mut skim_events) = (Vec::new(), Vec::new());
    let (mut full_out, mut skim_out) = (BytesMut::new(), BytesMut::new());
    let mut rest = &media[..];
    while !rest.is_empty() {
        let (piece, r) = rest.split_at(rng.gen_range(1..=rest.len().min(3_000)));
        rest = r;
        full.handle_input(piece, BASE, &mut full_out, &mut full_events)
            .unwrap();
        skim.handle_input(piece, BASE, &mut skim_out, &mut skim_events)
            .unwrap();
        assert_eq!(full_out, skim_out);
    }
    assert!(
        full_out.len() > 20 * 16,
        "a pong and acknowledgements went out"
    );
    let want: Vec<ClientEvent> = full_events
        .into_iter()
        .map(|e| match e {
            ClientEvent::Media(f) => ClientEvent::MediaSkipped {
                kind: f.kind,
                timestamp: f.timestamp,
                len: f.payload.len() as u32,
            },
            other => other,
        })
        .collect();
    assert_eq!(want.len(), 240);
    assert_eq!(skim_events, want);
}

#[test]
fn a_publishing_client_has_no_idle_deadline() {
    let mut c = client(ClientMode::Publish);
    negotiate(&mut c, BASE);
    assert!(c.is_active());
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.handle_timeout(u64::MAX), Ok(()));
}
