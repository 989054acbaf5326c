//! RTMP: handshake, chunk stream, AMF0 and commands, and both sessions.

use bytes::{Bytes, BytesMut};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::protocol::payload::HeapAllocator;
use crate::protocol::rtmp::amf0::{Amf0Decoder, Amf0Limits, Amf0Value};
use crate::protocol::rtmp::chunk::{ChunkDecoder, ChunkLimits};
use crate::protocol::rtmp::command::{data as data_msg, Command, CommandConfig};
use crate::protocol::rtmp::handshake::{ClientHandshake, ServerHandshake, HANDSHAKE_PACKET_LEN};
use crate::protocol::rtmp::message::type_id;
use crate::protocol::rtmp::session::client::{
    ClientEvent, ClientMode, ClientSession, ClientSessionConfig, ClientTimeouts,
};
use crate::protocol::rtmp::session::server::{
    PlayRejection, PublishRejection, ServerEvent, ServerSession, ServerSessionConfig,
    ServerTimeouts,
};
use crate::protocol::rtmp::session::SessionError;
use crate::protocol::{Frame, FrameKind};

/// Server (and client) handshake fed arbitrary bytes at arbitrary split points.
/// Input: `[split seed][bytes...]`. Consumed counts must add up.
pub fn handshake(data: &[u8]) {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let step = usize::from(seed) * 13 + 1;
    let mut rng = SmallRng::seed_from_u64(u64::from(seed));

    let mut server = ServerHandshake::new(&mut rng, 0);
    let mut out = BytesMut::new();
    let mut pos = 0;
    for piece in input.chunks(step) {
        match server.handle(piece, &mut out) {
            Ok(st) => {
                assert!(st.consumed <= piece.len());
                pos += st.consumed;
                if st.done {
                    assert_eq!(out.len(), 1 + 2 * HANDSHAKE_PACKET_LEN);
                    break;
                }
                assert_eq!(
                    st.consumed,
                    piece.len(),
                    "an unfinished handshake takes everything"
                );
            }
            Err(_) => return,
        }
    }
    assert!(pos <= input.len());

    let mut client = ClientHandshake::new(&mut rng, 0);
    let mut out = BytesMut::new();
    for piece in input.chunks(step) {
        match client.handle(piece, &mut out) {
            Ok(st) if st.done => break,
            Ok(st) => assert_eq!(st.consumed, piece.len()),
            Err(_) => return,
        }
    }
}

/// The chunk decoder fed arbitrary bytes, with valid Set Chunk Size messages
/// injected between pieces and limits chosen by the input.
///
/// Input: `[limits byte][split byte][ops...]`, where an op byte below 0xF0 feeds
/// the next (op % 64 + 1) bytes as they are, and 0xF0.. injects a Set Chunk Size
/// on csid 2 whose size comes from the next two bytes.
pub fn chunk_decoder(data: &[u8]) {
    let [limits_byte, split, ops @ ..] = data else {
        return;
    };
    let limits = ChunkLimits {
        max_chunk_size: 1 << (u32::from(limits_byte & 0x0F) + 8),
        max_message_len: 1 << (u32::from(limits_byte >> 4) + 8),
        max_chunk_streams: usize::from(limits_byte % 7) + 1,
        max_assembling_bytes: 1 << 20,
    };
    let mut dec = ChunkDecoder::new(limits);
    let mut fed = 0u64;
    let mut i = 0;
    let mut stream = Vec::new();
    while let Some(&op) = ops.get(i) {
        i += 1;
        if op >= 0xF0 {
            let size = match ops.get(i..i + 2) {
                Some(&[a, b]) => u32::from(u16::from_be_bytes([a, b])),
                _ => 128,
            };
            i += 2;
            stream.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0]);
            stream.extend_from_slice(&size.to_be_bytes());
        } else {
            let end = (i + usize::from(op % 64) + 1).min(ops.len());
            stream.extend_from_slice(ops.get(i..end).unwrap_or_default());
            i = end;
        }
    }
    let step = usize::from(*split) + 1;
    let mut out = Vec::new();
    for piece in stream.chunks(step) {
        match dec.decode_all(piece, &mut HeapAllocator, &mut out) {
            Ok(_) => fed += piece.len() as u64,
            Err(_) => return,
        }
        for m in out.drain(..) {
            assert!(m.payload.len() <= limits.max_message_len as usize);
            assert!((2..=65599).contains(&m.csid));
        }
        assert_eq!(dec.bytes_received(), fed);
        assert!(dec.chunk_size() >= 1 && dec.chunk_size() <= limits.max_chunk_size);
    }
}

fn encode_all(values: &[Amf0Value]) -> BytesMut {
    let mut out = BytesMut::new();
    for v in values {
        v.encode(&mut out).expect("decoded values are encodable");
    }
    out
}

/// AMF0 decoding, and everything built on it: arbitrary bytes as an AMF0 body, a
/// command message and a data message. Whatever decodes must re-encode to bytes
/// that decode to the same encoding.
pub fn amf0_decode(input: &[u8]) {
    let limits = Amf0Limits::default();
    if let Ok(values) = Amf0Decoder::new(input, limits).decode_all() {
        let once = encode_all(&values);
        let again = Amf0Decoder::new(&once, limits)
            .decode_all()
            .expect("re-decodes");
        assert_eq!(encode_all(&again), once, "encoding is stable");
    }
    let config = CommandConfig::default();
    if let Ok(cmd) = Command::decode(type_id::COMMAND_AMF0, input, &config) {
        let mut out = BytesMut::new();
        cmd.encode(&mut out)
            .expect("decoded commands are encodable");
    }
    let _ = Command::decode(type_id::COMMAND_AMF3, input, &config);
    let _ =
        data_msg::parse_data_message(type_id::DATA_AMF0, &Bytes::copy_from_slice(input), limits);
}

/// Milliseconds the clock advances per read, picked by two bits of the input.
fn step_ms(bits: u8) -> u64 {
    [0u64, 250, 1_000, 2_500][usize::from(bits & 3)]
}

/// Checks a session's deadline contract at `now`: before its deadline
/// `handle_timeout` is `Ok`, at or after it a `TimedOut` error. True if it timed out.
fn timed_out(deadline: Option<u64>, now: u64, handle: Result<(), SessionError>) -> bool {
    match deadline {
        Some(d) if now >= d => {
            assert!(
                matches!(handle, Err(SessionError::TimedOut { .. })),
                "{handle:?}"
            );
            true
        }
        _ => {
            assert_eq!(handle, Ok(()));
            false
        }
    }
}

/// Arbitrary bytes into a [`ServerSession`] after a valid (simple) handshake,
/// with the clock advancing between reads and the deadlines checked after each.
///
/// Input: `[policy][chunk stream...]`: bit 7 rejects publishes, bit 6 rejects
/// plays, bits 4-5 pick how far the clock moves per read, bits 0-3 the read size.
pub fn server_session(input: &[u8]) {
    let Some((&policy, stream)) = input.split_first() else {
        return;
    };
    let timeouts = ServerTimeouts {
        handshake_ms: 4_000,
        first_media_ms: 3_000,
        idle_ms: 5_000,
    };
    let config = ServerSessionConfig {
        timeouts,
        ..ServerSessionConfig::default()
    };
    let mut session = ServerSession::new(config, &mut SmallRng::seed_from_u64(0), 0);
    let mut out = BytesMut::new();
    let mut events = Vec::new();
    // C0 (version 3), a C1 without a digest (simple handshake), then C2.
    let mut handshake = vec![3u8];
    handshake.resize(1 + 2 * HANDSHAKE_PACKET_LEN, 0);
    session
        .handle_input(&handshake, 0, &mut out, &mut events)
        .expect("valid handshake");
    let piece = usize::from(policy & 0x0F) * 4 + 1;
    let step = step_ms(policy >> 4);
    let mut now = 0;
    for chunk in stream.chunks(piece) {
        now += step;
        let deadline = session.poll_timeout();
        if timed_out(deadline, now, session.handle_timeout(now)) {
            return;
        }
        if session
            .handle_input(chunk, now, &mut out, &mut events)
            .is_err()
        {
            return;
        }
        for ev in events.drain(..) {
            let result = match ev {
                ServerEvent::PublishRequested { stream_id, .. } if policy & 0x80 == 0 => {
                    session.accept_publish(stream_id, &mut out)
                }
                ServerEvent::PublishRequested { stream_id, .. } => {
                    session.reject_publish(stream_id, PublishRejection::BadName, "fuzz", &mut out)
                }
                ServerEvent::PlayRequested { stream_id, .. } if policy & 0x40 == 0 => session
                    .accept_play(stream_id, &mut out)
                    .and_then(|_| session.send_unpublish_notify(stream_id, &mut out)),
                ServerEvent::PlayRequested { stream_id, .. } => {
                    session.reject_play(stream_id, PlayRejection::StreamNotFound, "fuzz", &mut out)
                }
                _ => Ok(()),
            };
            result.expect("deciding a pending request succeeds");
        }
        if let Some(d) = session.poll_timeout() {
            assert!(d > now || session.handle_timeout(now).is_err());
        }
        out.clear();
    }
    // Then the peer falls silent for a minute: any deadline left passes.
    now += SILENCE_MS;
    timed_out(session.poll_timeout(), now, session.handle_timeout(now));
}

/// How long the session targets let the peer stay silent after the input.
const SILENCE_MS: u64 = 60_000;

/// The RTMP client session (the edge's origin pull, or a relay) fed bytes from an
/// "origin", with the clock advancing between reads and the deadlines checked.
///
/// Input: `[ctl][origin bytes...]`: bit 7 publishes instead of playing; bit 6
/// clear puts a real server's S0+S1+S2 (answering this client's C0+C1) before
/// the origin bytes, so they go straight to the chunk stream; bits 4-5 pick how
/// far the clock moves per read, bits 0-3 the read size.
///
/// A second session with [`ClientSessionConfig::skip_media`] on gets the same
/// input: it must write the same bytes, fail with the same error at the same
/// read, and report the same events but with `MediaSkipped` where the first
/// reports an audio or video `Media` frame.
pub fn client_session(data: &[u8]) {
    let Some((&ctl, origin)) = data.split_first() else {
        return;
    };
    let mode = if ctl & 0x80 == 0 {
        ClientMode::Play
    } else {
        ClientMode::Publish
    };
    let mut config = ClientSessionConfig::new("live", "rtmp://origin/live", "cam", mode);
    config.timeouts = ClientTimeouts {
        start_ms: Some(4_000),
        idle_ms: Some(3_000),
    };
    config.chunk_limits.max_message_len = 1 << 20;
    let max_message = config.chunk_limits.max_message_len as usize;
    let skim_config = ClientSessionConfig {
        skip_media: true,
        ..config.clone()
    };
    // Same seed, so the same C1 (which the server's S2 echoes).
    let mut skim = ClientSession::new(skim_config, &mut SmallRng::seed_from_u64(u64::from(ctl)), 0);
    let mut rng = SmallRng::seed_from_u64(u64::from(ctl));
    let mut client = ClientSession::new(config, &mut rng, 0);
    let mut out = BytesMut::new();
    let mut skim_out = BytesMut::new();
    client.start_at(0, &mut out).expect("C0+C1 are written");
    skim.start_at(0, &mut skim_out).expect("C0+C1 are written");
    assert_eq!(out, skim_out, "the same C0+C1");
    let mut wire = Vec::new();
    if ctl & 0x40 == 0 {
        let mut server = ServerHandshake::new(&mut rng, 0);
        let mut s012 = BytesMut::new();
        server
            .handle(&out, &mut s012)
            .expect("our own C0+C1 are valid");
        wire.extend_from_slice(&s012);
    }
    wire.extend_from_slice(origin);
    let piece = usize::from(ctl & 0x0F) * 16 + 1;
    let step = step_ms(ctl >> 4);
    let mut now = 0;
    let mut events = Vec::new();
    let mut skim_events = Vec::new();
    let frame = Frame::new(FrameKind::Audio, 0, Bytes::from_static(&[0xaf, 1, 0x21]));
    for read in wire.chunks(piece) {
        now += step;
        let deadline = client.poll_timeout();
        assert_eq!(deadline, skim.poll_timeout());
        let skim_timed_out = timed_out(deadline, now, skim.handle_timeout(now));
        if timed_out(deadline, now, client.handle_timeout(now)) {
            assert!(skim_timed_out);
            return;
        }
        out.clear();
        skim_out.clear();
        let result = client.handle_input(read, now, &mut out, &mut events);
        let skim_result = skim.handle_input(read, now, &mut skim_out, &mut skim_events);
        assert_eq!(result, skim_result, "skipping media fails the same way");
        assert_eq!(out, skim_out, "skipping media writes the same replies");
        let skimmed: Vec<ClientEvent> = events.iter().cloned().map(skimmed).collect();
        assert_eq!(
            skimmed, skim_events,
            "skipping media reports the same events"
        );
        skim_events.clear();
        if result.is_err() {
            return;
        }
        for event in events.drain(..) {
            match event {
                ClientEvent::Media(f) => {
                    assert_eq!(mode, ClientMode::Play, "a publisher receives no media");
                    assert!(f.payload.len() <= max_message);
                }
                ClientEvent::PublishStarted => {
                    assert_eq!(mode, ClientMode::Publish);
                    client
                        .send_frame(&frame, &mut out)
                        .expect("a started publisher sends");
                    skim.send_frame(&frame, &mut skim_out)
                        .expect("a started publisher sends");
                    assert_eq!(out, skim_out);
                }
                ClientEvent::PlayStarted => assert_eq!(mode, ClientMode::Play),
                ClientEvent::MediaSkipped { .. } => panic!("skipping is off"),
                ClientEvent::Connected
                | ClientEvent::StatusError { .. }
                | ClientEvent::StreamEof => {}
            }
        }
        if client.is_active() && mode == ClientMode::Publish {
            assert_eq!(
                client.poll_timeout(),
                None,
                "a publishing client waits for nothing"
            );
        }
    }
    // Then the origin falls silent for a minute: any deadline left passes.
    now += SILENCE_MS;
    timed_out(client.poll_timeout(), now, client.handle_timeout(now));
    let _ = client.close(&mut out);
}

/// The event a media-skipping client reports where one keeping media reports
/// `event`: an audio or video frame becomes its kind, timestamp and length.
fn skimmed(event: ClientEvent) -> ClientEvent {
    match event {
        ClientEvent::Media(f) if matches!(f.kind, FrameKind::Audio | FrameKind::Video) => {
            ClientEvent::MediaSkipped {
                kind: f.kind,
                timestamp: f.timestamp,
                len: f.payload.len() as u32,
            }
        }
        other => other,
    }
}
