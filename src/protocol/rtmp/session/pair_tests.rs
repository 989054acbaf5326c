//! A ClientSession and a ServerSession talking to each other in memory.

use bytes::{Bytes, BytesMut};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::client::{ClientEvent, ClientMode, ClientSession, ClientSessionConfig};
use super::server::{
    PlayRejection, PublishRejection, ServerEvent, ServerSession, ServerSessionConfig,
};
use super::SessionError;
use crate::protocol::flv::frame::{Frame, FrameKind};
use crate::protocol::payload::{HeapAllocator, PayloadAllocator};
use crate::protocol::rtmp::amf0::{encode, Amf0Value};
use crate::protocol::rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits};
use crate::protocol::rtmp::command::data;
use crate::protocol::rtmp::control::{ControlMessage, UserControlEvent};
use crate::protocol::rtmp::message::{type_id, RtmpMessage};

/// How the test's "server application" answers requests.
#[derive(Clone, Copy, PartialEq)]
enum Decision {
    Accept,
    Reject,
    /// Refused for want of a valid signed URL.
    Unauthorized,
}

struct Pair {
    client: ClientSession,
    server: ServerSession,
    client_events: Vec<ClientEvent>,
    server_events: Vec<ServerEvent>,
    decision: Decision,
    /// Server-to-client bytes, kept for inspection.
    to_client: Vec<u8>,
}

impl Pair {
    fn new(mode: ClientMode, server_config: ServerSessionConfig) -> Self {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut config = ClientSessionConfig::new("live", "rtmp://127.0.0.1/live", "test", mode);
        config.query = Some("token=abc".into());
        Pair {
            client: ClientSession::new(config, &mut rng, 1000),
            server: ServerSession::new(server_config, &mut rng, 1000),
            client_events: Vec::new(),
            server_events: Vec::new(),
            decision: Decision::Accept,
            to_client: Vec::new(),
        }
    }

    /// Moves bytes both ways until neither side has anything to say.
    fn pump(&mut self, mut to_server: BytesMut) -> Result<(), SessionError> {
        for _ in 0..64 {
            let mut to_client = BytesMut::new();
            let start = self.server_events.len();
            self.server
                .handle_input(&to_server, 0, &mut to_client, &mut self.server_events)?;
            to_server.clear();
            let new: Vec<ServerEvent> = self.server_events[start..].to_vec();
            for ev in new {
                match ev {
                    ServerEvent::PublishRequested { stream_id, .. } => match self.decision {
                        Decision::Accept => {
                            self.server.accept_publish(stream_id, &mut to_client)?
                        }
                        Decision::Reject => self.server.reject_publish(
                            stream_id,
                            PublishRejection::BadName,
                            "taken",
                            &mut to_client,
                        )?,
                        Decision::Unauthorized => self.server.reject_publish(
                            stream_id,
                            PublishRejection::Unauthorized,
                            "unauthorized: no token",
                            &mut to_client,
                        )?,
                    },
                    ServerEvent::PlayRequested { stream_id, .. } => match self.decision {
                        Decision::Accept => self.server.accept_play(stream_id, &mut to_client)?,
                        Decision::Reject => self.server.reject_play(
                            stream_id,
                            PlayRejection::StreamNotFound,
                            "no such stream",
                            &mut to_client,
                        )?,
                        Decision::Unauthorized => self.server.reject_play(
                            stream_id,
                            PlayRejection::Failed,
                            "unauthorized: no token",
                            &mut to_client,
                        )?,
                    },
                    _ => {}
                }
            }
            if self.server.has_backlog() {
                self.server
                    .handle_input(&[], 0, &mut to_client, &mut self.server_events)?;
            }
            if to_client.is_empty() && to_server.is_empty() {
                return Ok(());
            }
            self.to_client.extend_from_slice(&to_client);
            self.client
                .handle_input(&to_client, 0, &mut to_server, &mut self.client_events)?;
            if to_server.is_empty() {
                return Ok(());
            }
        }
        panic!("sessions never went quiet");
    }

    fn start(&mut self) -> Result<(), SessionError> {
        let mut out = BytesMut::new();
        self.client.start(&mut out)?;
        self.pump(out)
    }
}

fn video(ts: u32, first: u8, second: u8) -> Frame {
    Frame::new(
        FrameKind::Video,
        ts,
        Bytes::from(vec![first, second, 0, 0, 0, 1, 2, 3]),
    )
}

fn metadata_frame() -> Frame {
    let mut b = BytesMut::new();
    encode::write_string(&mut b, data::ON_METADATA).unwrap();
    Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(320.0))])
        .encode(&mut b)
        .unwrap();
    Frame::new(FrameKind::Script, 0, b.freeze())
}

fn sample_frames() -> Vec<Frame> {
    let big = Frame::new(FrameKind::Video, 40, Bytes::from(vec![0x27; 20_000]));
    vec![
        metadata_frame(),
        video(0, 0x17, 0), // AVC sequence header
        Frame::new(
            FrameKind::Audio,
            0,
            Bytes::from_static(&[0xAF, 0, 0x12, 0x10]),
        ),
        video(0, 0x17, 1), // keyframe
        Frame::new(
            FrameKind::Audio,
            23,
            Bytes::from_static(&[0xAF, 1, 9, 9, 9]),
        ),
        big,
    ]
}

#[test]
fn client_publishes_and_server_receives_every_frame() {
    let mut pair = Pair::new(ClientMode::Publish, ServerSessionConfig::default());
    pair.start().unwrap();
    assert_eq!(
        pair.client_events,
        vec![ClientEvent::Connected, ClientEvent::PublishStarted]
    );
    assert!(matches!(&pair.server_events[0], ServerEvent::Connected(c) if c.app.name == "live"));
    assert_eq!(
        pair.server_events[1],
        ServerEvent::PublishRequested {
            stream_id: 1,
            app: "live".into(),
            name: "test".into(),
            query: Some("token=abc".into()),
        }
    );
    assert_eq!(pair.server.out_chunk_size(), 4096);
    pair.server_events.clear();
    let mut out = BytesMut::new();
    for f in sample_frames() {
        pair.client.send_frame(&f, &mut out).unwrap();
    }
    pair.pump(out).unwrap();
    let received: Vec<(Frame, bool)> = pair
        .server_events
        .iter()
        .map(|e| match e {
            ServerEvent::Media {
                stream_id: 1,
                frame,
                metadata,
            } => (frame.clone(), *metadata),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let expected: Vec<(Frame, bool)> = sample_frames()
        .into_iter()
        .enumerate()
        .map(|(i, f)| (f, i == 0))
        .collect();
    assert_eq!(received, expected);
    assert!(
        received[1].0.sequence_header && received[3].0.keyframe && received[2].0.sequence_header
    );

    // FCUnpublish + deleteStream end it.
    pair.server_events.clear();
    let mut out = BytesMut::new();
    pair.client.close(&mut out).unwrap();
    pair.pump(out).unwrap();
    assert_eq!(
        pair.server_events,
        vec![
            ServerEvent::Unpublished { stream_id: 1 },
            ServerEvent::StreamDeleted { stream_id: 1 }
        ]
    );
}

#[test]
fn client_plays_what_the_server_writes_and_sees_eof() {
    let mut pair = Pair::new(ClientMode::Play, ServerSessionConfig::default());
    pair.start().unwrap();
    assert_eq!(
        pair.client_events,
        vec![ClientEvent::Connected, ClientEvent::PlayStarted]
    );
    assert!(matches!(
        &pair.server_events[1],
        ServerEvent::PlayRequested { stream_id: 1, name, query: Some(q), start, .. }
            if name == "test" && q == "token=abc" && *start == -2.0
    ));
    assert!(pair.server.is_playing(1));
    pair.client_events.clear();
    let mut out = BytesMut::new();
    for f in sample_frames() {
        pair.server.write_frame(1, &f, &mut out).unwrap();
    }
    pair.server.send_unpublish_notify(1, &mut out).unwrap();
    pair.client
        .handle_input(&out, 0, &mut BytesMut::new(), &mut pair.client_events)
        .unwrap();
    let mut expected: Vec<ClientEvent> = sample_frames()
        .into_iter()
        .map(ClientEvent::Media)
        .collect();
    expected.push(ClientEvent::StreamEof);
    assert_eq!(
        pair.client_events, expected,
        "StreamEOF and UnpublishNotify give one StreamEof"
    );
}

/// Carves every buffer from one block and records the sizes asked for, to show
/// where a session put its payloads.
struct BlockAllocator {
    block: BytesMut,
    requests: Vec<usize>,
}

impl PayloadAllocator for BlockAllocator {
    fn allocate(&mut self, len: usize) -> BytesMut {
        self.requests.push(len);
        let rest = self.block.split_off(len);
        std::mem::replace(&mut self.block, rest)
    }
}

#[test]
fn a_playing_client_assembles_payloads_in_the_callers_allocator() {
    let mut pair = Pair::new(ClientMode::Play, ServerSessionConfig::default());
    pair.start().unwrap();
    pair.client_events.clear();
    let mut out = BytesMut::new();
    for f in sample_frames() {
        pair.server.write_frame(1, &f, &mut out).unwrap();
    }
    let mut alloc = BlockAllocator {
        block: BytesMut::with_capacity(64 * 1024),
        requests: Vec::new(),
    };
    let block = alloc.block.as_ptr() as usize..alloc.block.as_ptr() as usize + 64 * 1024;
    pair.client
        .handle_input_in(
            &out,
            0,
            &mut alloc,
            &mut BytesMut::new(),
            &mut pair.client_events,
        )
        .unwrap();
    let expected: Vec<ClientEvent> = sample_frames()
        .into_iter()
        .map(ClientEvent::Media)
        .collect();
    assert_eq!(pair.client_events, expected);
    let payload_lens: Vec<usize> = sample_frames().iter().map(|f| f.payload.len()).collect();
    assert_eq!(
        alloc.requests, payload_lens,
        "one buffer per message, of its exact size"
    );
    for ev in &pair.client_events {
        let ClientEvent::Media(frame) = ev else {
            unreachable!()
        };
        let at = frame.payload.as_ptr() as usize;
        assert!(
            block.contains(&at),
            "payload at {at:#x} is outside the caller's block"
        );
    }
}

#[test]
fn rejections_reach_the_client_as_status_errors() {
    let mut pair = Pair::new(ClientMode::Publish, ServerSessionConfig::default());
    pair.decision = Decision::Reject;
    pair.start().unwrap();
    assert_eq!(
        pair.client_events.last(),
        Some(&ClientEvent::StatusError {
            code: "NetStream.Publish.BadName".into(),
            description: "taken".into()
        })
    );
    assert!(!pair.server.is_publishing(1));

    let mut pair = Pair::new(ClientMode::Play, ServerSessionConfig::default());
    pair.decision = Decision::Reject;
    pair.start().unwrap();
    assert_eq!(
        pair.client_events.last(),
        Some(&ClientEvent::StatusError {
            code: "NetStream.Play.StreamNotFound".into(),
            description: "no such stream".into()
        })
    );
}

#[test]
fn unauthorized_refusals_carry_the_codes_clients_stop_on() {
    for (mode, code) in [
        (ClientMode::Publish, "NetStream.Publish.Unauthorized"),
        (ClientMode::Play, "NetStream.Play.Failed"),
    ] {
        let mut pair = Pair::new(mode, ServerSessionConfig::default());
        pair.decision = Decision::Unauthorized;
        pair.start().unwrap();
        assert_eq!(
            pair.client_events.last(),
            Some(&ClientEvent::StatusError {
                code: code.into(),
                description: "unauthorized: no token".into()
            })
        );
    }
}

/// A server session past `connect`, plus an encoder for hand-made client messages.
fn connected_server(config: ServerSessionConfig) -> (ServerSession, ChunkEncoder) {
    let mut pair = Pair::new(ClientMode::Publish, config);
    let mut out = BytesMut::new();
    pair.client.start(&mut out).unwrap();
    // Stop after the handshake + connect: the client's later messages are not sent.
    let mut to_client = BytesMut::new();
    let mut events = Vec::new();
    pair.server
        .handle_input(&out, 0, &mut to_client, &mut events)
        .unwrap();
    let mut to_server = BytesMut::new();
    let mut client_events = Vec::new();
    pair.client
        .handle_input(&to_client, 0, &mut to_server, &mut client_events)
        .unwrap();
    // to_server holds C2 + Set Chunk Size + connect.
    pair.server
        .handle_input(&to_server, 0, &mut BytesMut::new(), &mut events)
        .unwrap();
    assert!(pair.server.app().is_some());
    let mut enc = ChunkEncoder::new();
    enc.set_chunk_size(4096).unwrap();
    (pair.server, enc)
}

fn command(enc: &mut ChunkEncoder, stream_id: u32, values: &[Amf0Value]) -> BytesMut {
    let mut payload = BytesMut::new();
    for v in values {
        v.encode(&mut payload).unwrap();
    }
    let mut out = BytesMut::new();
    let msg = RtmpMessage {
        csid: 3,
        timestamp: 0,
        type_id: type_id::COMMAND_AMF0,
        stream_id,
        payload: payload.freeze(),
    };
    enc.encode(&msg, &mut out).unwrap();
    out
}

fn media(enc: &mut ChunkEncoder, stream_id: u32, ts: u32, payload: &'static [u8]) -> BytesMut {
    let mut out = BytesMut::new();
    let msg = RtmpMessage {
        csid: 6,
        timestamp: ts,
        type_id: type_id::VIDEO,
        stream_id,
        payload: Bytes::from_static(payload),
    };
    enc.encode(&msg, &mut out).unwrap();
    out
}

fn create_and_publish(enc: &mut ChunkEncoder) -> BytesMut {
    let mut input = command(
        enc,
        0,
        &[
            Amf0Value::string("createStream"),
            Amf0Value::Number(2.0),
            Amf0Value::Null,
        ],
    );
    input.extend_from_slice(&command(
        enc,
        1,
        &[
            Amf0Value::string("publish"),
            Amf0Value::Number(0.0),
            Amf0Value::Null,
            Amf0Value::string("s"),
        ],
    ));
    input
}

#[test]
fn media_after_publish_waits_for_the_decision() {
    let (mut server, mut enc) = connected_server(ServerSessionConfig::default());
    let mut input = create_and_publish(&mut enc);
    input.extend_from_slice(&media(&mut enc, 1, 0, &[0x17, 1, 0, 0, 0, 5]));
    let mut events = Vec::new();
    let mut out = BytesMut::new();
    server
        .handle_input(&input, 0, &mut out, &mut events)
        .unwrap();
    assert!(matches!(
        events.last(),
        Some(ServerEvent::PublishRequested { stream_id: 1, .. })
    ));
    assert!(server.awaiting_decision() && server.has_backlog());
    server.accept_publish(1, &mut out).unwrap();
    events.clear();
    server.handle_input(&[], 0, &mut out, &mut events).unwrap();
    assert!(
        matches!(&events[..], [ServerEvent::Media { stream_id: 1, frame, metadata: false }] if frame.keyframe)
    );
}

#[test]
fn media_on_a_stream_that_is_not_publishing_is_an_error() {
    let (mut server, mut enc) = connected_server(ServerSessionConfig::default());
    let mut input = command(
        &mut enc,
        0,
        &[
            Amf0Value::string("createStream"),
            Amf0Value::Number(2.0),
            Amf0Value::Null,
        ],
    );
    input.extend_from_slice(&media(&mut enc, 1, 0, &[0x17, 1]));
    let err = server
        .handle_input(&input, 0, &mut BytesMut::new(), &mut Vec::new())
        .unwrap_err();
    assert_eq!(
        err,
        SessionError::MediaOnInactiveStream {
            stream_id: 1,
            type_id: 9,
            expected: "publishing"
        }
    );

    // A rejected publish leaves the stream idle: media is still an error.
    let (mut server, mut enc) = connected_server(ServerSessionConfig::default());
    let mut out = BytesMut::new();
    server
        .handle_input(&create_and_publish(&mut enc), 0, &mut out, &mut Vec::new())
        .unwrap();
    server
        .reject_publish(1, PublishRejection::Denied, "no", &mut out)
        .unwrap();
    let err = server.handle_input(
        &media(&mut enc, 1, 0, &[0x17, 1]),
        0,
        &mut out,
        &mut Vec::new(),
    );
    assert!(matches!(
        err,
        Err(SessionError::MediaOnInactiveStream { .. })
    ));
    assert_eq!(
        server.accept_publish(1, &mut out),
        Err(SessionError::WrongStreamState {
            stream_id: 1,
            expected: "awaiting a publish decision"
        })
    );
}

#[test]
fn commands_in_the_wrong_state_are_typed_errors() {
    let (mut server, mut enc) = connected_server(ServerSessionConfig::default());
    let publish_on_unknown = command(
        &mut enc,
        5,
        &[
            Amf0Value::string("publish"),
            Amf0Value::Number(0.0),
            Amf0Value::Null,
            Amf0Value::string("s"),
        ],
    );
    assert_eq!(
        server.handle_input(
            &publish_on_unknown,
            0,
            &mut BytesMut::new(),
            &mut Vec::new()
        ),
        Err(SessionError::UnknownStream { stream_id: 5 })
    );
    let (mut server, mut enc) = connected_server(ServerSessionConfig {
        max_streams: 2,
        ..Default::default()
    });
    let create = [
        Amf0Value::string("createStream"),
        Amf0Value::Number(2.0),
        Amf0Value::Null,
    ];
    let mut input = BytesMut::new();
    for _ in 0..3 {
        input.extend_from_slice(&command(&mut enc, 0, &create));
    }
    assert_eq!(
        server.handle_input(&input, 0, &mut BytesMut::new(), &mut Vec::new()),
        Err(SessionError::TooManyStreams { limit: 2 })
    );
    let (mut server, mut enc) = connected_server(ServerSessionConfig::default());
    let connect_again = command(
        &mut enc,
        0,
        &[
            Amf0Value::string("connect"),
            Amf0Value::Number(1.0),
            Amf0Value::object([("app", Amf0Value::string("x"))]),
        ],
    );
    assert_eq!(
        server.handle_input(&connect_again, 0, &mut BytesMut::new(), &mut Vec::new()),
        Err(SessionError::UnexpectedCommand {
            command: "connect",
            state: "connected"
        })
    );
}

#[test]
fn pings_are_answered_and_windows_acknowledged() {
    let (mut server, mut enc) = connected_server(ServerSessionConfig::default());
    let mut input = BytesMut::new();
    enc.encode(&ControlMessage::WindowAckSize(100).to_message(), &mut input)
        .unwrap();
    enc.encode(
        &ControlMessage::UserControl(UserControlEvent::PingRequest(77)).to_message(),
        &mut input,
    )
    .unwrap();
    input.extend_from_slice(&command(
        &mut enc,
        0,
        &[
            Amf0Value::string("_checkbw"),
            Amf0Value::Number(9.0),
            Amf0Value::Null,
        ],
    ));
    let mut out = BytesMut::new();
    server
        .handle_input(&input, 0, &mut out, &mut Vec::new())
        .unwrap();
    // The server's own output starts mid-stream (chunk size 4096 already applied).
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let mut setup = BytesMut::new();
    ChunkEncoder::new()
        .encode(&ControlMessage::SetChunkSize(4096).to_message(), &mut setup)
        .unwrap();
    setup.extend_from_slice(&out);
    let mut msgs = Vec::new();
    dec.decode_all(&setup, &mut HeapAllocator, &mut msgs)
        .unwrap();
    let controls: Vec<ControlMessage> = msgs
        .iter()
        .filter_map(|m| ControlMessage::from_message(m).unwrap())
        .collect();
    assert!(controls.contains(&ControlMessage::UserControl(
        UserControlEvent::PingResponse(77)
    )));
    let ack = controls.iter().find_map(|c| match c {
        ControlMessage::Acknowledgement(n) => Some(*n),
        _ => None,
    });
    // Acknowledged as soon as the 100-byte window was announced (everything so far
    // was well past it); the 47 bytes after it are less than a window.
    let ack = u64::from(ack.expect("an acknowledgement"));
    assert_eq!(server.bytes_received() - ack, 47);
}

#[test]
fn metadata_is_forwarded_without_set_data_frame() {
    let (mut server, mut enc) = connected_server(ServerSessionConfig::default());
    let mut out = BytesMut::new();
    server
        .handle_input(&create_and_publish(&mut enc), 0, &mut out, &mut Vec::new())
        .unwrap();
    server.accept_publish(1, &mut out).unwrap();
    let meta = metadata_frame();
    let mut wrapped = BytesMut::new();
    data::write_set_data_frame(&meta.payload, &mut wrapped).unwrap();
    let mut input = BytesMut::new();
    let msg = RtmpMessage {
        csid: 5,
        timestamp: 0,
        type_id: type_id::DATA_AMF0,
        stream_id: 1,
        payload: wrapped.freeze(),
    };
    enc.encode(&msg, &mut input).unwrap();
    let mut events = Vec::new();
    server
        .handle_input(&input, 0, &mut out, &mut events)
        .unwrap();
    assert_eq!(
        events,
        vec![ServerEvent::Media {
            stream_id: 1,
            frame: meta,
            metadata: true
        }]
    );
}

/// A client past the handshake, its `connect` sent, plus an encoder standing in for
/// the server's side of the chunk stream.
fn client_after_handshake(mode: ClientMode) -> (ClientSession, ChunkEncoder) {
    let mut pair = Pair::new(mode, ServerSessionConfig::default());
    let mut c0c1 = BytesMut::new();
    pair.client.start(&mut c0c1).unwrap();
    let mut s0s1s2 = BytesMut::new();
    pair.server
        .handle_input(&c0c1, 0, &mut s0s1s2, &mut Vec::new())
        .unwrap();
    let mut c2_connect = BytesMut::new();
    pair.client
        .handle_input(&s0s1s2, 0, &mut c2_connect, &mut Vec::new())
        .unwrap();
    assert!(c2_connect.len() > 1536, "C2 and connect");
    (pair.client, ChunkEncoder::new())
}

#[test]
fn client_reports_a_refused_connect() {
    let (mut client, mut enc) = client_after_handshake(ClientMode::Play);
    let info = Amf0Value::object([
        ("level", Amf0Value::string("error")),
        ("code", Amf0Value::string("NetConnection.Connect.Rejected")),
        ("description", Amf0Value::string("no such app")),
    ]);
    let input = command(
        &mut enc,
        0,
        &[
            Amf0Value::string("_error"),
            Amf0Value::Number(1.0),
            Amf0Value::Null,
            info,
        ],
    );
    let mut events = Vec::new();
    client
        .handle_input(&input, 0, &mut BytesMut::new(), &mut events)
        .unwrap();
    assert_eq!(
        events,
        vec![ClientEvent::StatusError {
            code: "NetConnection.Connect.Rejected".into(),
            description: "no such app".into()
        }]
    );
    assert!(!client.is_active());
}

#[test]
fn client_refuses_out_of_state_frames_and_media() {
    let (mut client, mut enc) = client_after_handshake(ClientMode::Publish);
    let frame = video(0, 0x17, 1);
    assert_eq!(
        client.send_frame(&frame, &mut BytesMut::new()),
        Err(SessionError::WrongStreamState {
            stream_id: 0,
            expected: "publishing"
        })
    );
    let err = client.handle_input(
        &media(&mut enc, 1, 0, &[0x17, 1, 0, 0, 0]),
        0,
        &mut BytesMut::new(),
        &mut Vec::new(),
    );
    assert_eq!(
        err,
        Err(SessionError::MediaOnInactiveStream {
            stream_id: 1,
            type_id: 9,
            expected: "playing"
        })
    );
}

#[test]
fn a_second_publish_on_a_publishing_stream_is_refused() {
    let (mut server, mut enc) = connected_server(ServerSessionConfig::default());
    let mut input = create_and_publish(&mut enc);
    input.extend_from_slice(&command(
        &mut enc,
        1,
        &[
            Amf0Value::string("publish"),
            Amf0Value::Number(0.0),
            Amf0Value::Null,
            Amf0Value::string("s"),
        ],
    ));
    let mut out = BytesMut::new();
    server
        .handle_input(&input, 0, &mut out, &mut Vec::new())
        .unwrap();
    server.accept_publish(1, &mut out).unwrap();
    assert_eq!(
        server.handle_input(&[], 0, &mut out, &mut Vec::new()),
        Err(SessionError::UnexpectedCommand {
            command: "publish",
            state: "its stream is busy"
        })
    );
}

#[test]
fn enhanced_rtmp_fourcc_list_is_echoed_in_the_connect_result() {
    use crate::protocol::rtmp::command::{Command, CommandConfig};
    let mut pair = Pair::new(ClientMode::Publish, ServerSessionConfig::default());
    let mut c0c1 = BytesMut::new();
    pair.client.start(&mut c0c1).unwrap();
    let mut events = Vec::new();
    let mut to_client = BytesMut::new();
    pair.server
        .handle_input(&c0c1, 0, &mut to_client, &mut events)
        .unwrap();
    let c2 = [0u8; 1536]; // the server does not check C2
    let mut enc = ChunkEncoder::new();
    let connect = command(
        &mut enc,
        0,
        &[
            Amf0Value::string("connect"),
            Amf0Value::Number(1.0),
            Amf0Value::object([
                ("app", Amf0Value::string("live")),
                (
                    "fourCcList",
                    Amf0Value::StrictArray(vec![
                        Amf0Value::string("hvc1"),
                        Amf0Value::string("av01"),
                    ]),
                ),
            ]),
        ],
    );
    let mut out = BytesMut::new();
    pair.server
        .handle_input(&c2, 0, &mut out, &mut events)
        .unwrap();
    pair.server
        .handle_input(&connect, 0, &mut out, &mut events)
        .unwrap();
    let mut msgs = Vec::new();
    ChunkDecoder::new(ChunkLimits::default())
        .decode_all(&out, &mut HeapAllocator, &mut msgs)
        .unwrap();
    let result = msgs
        .iter()
        .find(|m| m.type_id == type_id::COMMAND_AMF0)
        .expect("a _result");
    let Command::Result(r) =
        Command::decode(result.type_id, &result.payload, &CommandConfig::default()).unwrap()
    else {
        panic!("not a _result")
    };
    assert_eq!(
        r.command_object.get("fourCcList"),
        Some(&Amf0Value::StrictArray(vec![
            Amf0Value::string("hvc1"),
            Amf0Value::string("av01")
        ]))
    );
    assert_eq!(
        r.status().map(|s| s.code),
        Some("NetConnection.Connect.Success".to_owned())
    );
}

#[test]
fn input_buffered_during_a_decision_is_bounded() {
    let config = ServerSessionConfig {
        max_backlog: 64,
        ..ServerSessionConfig::default()
    };
    let (mut server, mut enc) = connected_server(config);
    let mut out = BytesMut::new();
    server
        .handle_input(&create_and_publish(&mut enc), 0, &mut out, &mut Vec::new())
        .unwrap();
    assert!(server.awaiting_decision());
    server
        .handle_input(&[0u8; 60], 0, &mut out, &mut Vec::new())
        .unwrap();
    assert_eq!(
        server.handle_input(&[0u8; 10], 0, &mut out, &mut Vec::new()),
        Err(SessionError::BacklogTooLarge { len: 70, limit: 64 })
    );
}
