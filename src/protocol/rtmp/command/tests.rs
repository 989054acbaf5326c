use bytes::BytesMut;

use super::*;
use crate::protocol::rtmp::amf0::{encode, Amf0Error};

fn name(raw: &str) -> StreamName {
    StreamName::parse(raw, NameField::Stream, &NamePolicy::default()).unwrap()
}

fn round_trip(cmd: Command) {
    let mut out = BytesMut::new();
    cmd.encode(&mut out).unwrap();
    let decoded = Command::decode(type_id::COMMAND_AMF0, &out, &CommandConfig::default()).unwrap();
    assert_eq!(decoded, cmd);
}

fn body(values: &[Amf0Value]) -> BytesMut {
    let mut out = BytesMut::new();
    for v in values {
        v.encode(&mut out).unwrap();
    }
    out
}

fn decode(values: &[Amf0Value]) -> Result<Command, CommandError> {
    Command::decode(
        type_id::COMMAND_AMF0,
        &body(values),
        &CommandConfig::default(),
    )
}

#[test]
fn every_command_round_trips() {
    let mut connect = Connect::new(
        StreamName {
            name: "live".into(),
            query: Some("key=1".into()),
        },
        "rtmp://h/live?key=1",
    );
    connect.flash_ver = Some("FMLE/3.0".into());
    connect.fourcc_list = vec!["hvc1".into(), "av01".into()];
    connect.extra = vec![("type".into(), Amf0Value::string("nonprivate"))];
    connect.args = vec![Amf0Value::string("user-arg")];
    let status = StatusInfo::new(StatusLevel::Status, status::code::PUBLISH_START, "started");
    for cmd in [
        Command::Connect(connect),
        Command::Result(Response {
            transaction_id: 4.0,
            command_object: Amf0Value::Null,
            args: vec![Amf0Value::Number(1.0)],
        }),
        Command::Error(Response {
            transaction_id: 1.0,
            command_object: Amf0Value::Null,
            args: vec![Amf0Value::object([("code", Amf0Value::string("X"))])],
        }),
        Command::OnBwDone,
        Command::ReleaseStream {
            transaction_id: 2.0,
            name: name("s"),
        },
        Command::FcPublish {
            transaction_id: 3.0,
            name: name("s?t=1"),
        },
        Command::FcUnpublish {
            transaction_id: 6.0,
            name: name("s"),
        },
        Command::CreateStream {
            transaction_id: 4.0,
        },
        Command::DeleteStream {
            transaction_id: 7.0,
            stream_id: 1,
        },
        Command::CloseStream {
            transaction_id: 0.0,
        },
        Command::GetStreamLength {
            transaction_id: 3.0,
            name: name("s"),
        },
        Command::Publish(Publish {
            transaction_id: 5.0,
            name: name("test"),
            publish_type: PublishType::Append,
        }),
        Command::Play(Play {
            transaction_id: 4.0,
            name: name("test?x=y"),
            start: -2.0,
            duration: -1.0,
            reset: false,
        }),
        Command::OnStatus(status),
        Command::Unknown {
            name: "_checkbw".into(),
            transaction_id: 5.0,
        },
    ] {
        round_trip(cmd);
    }
}

#[test]
fn decodes_an_obs_style_connect() {
    let cmd = decode(&[
        Amf0Value::string("connect"),
        Amf0Value::Number(1.0),
        Amf0Value::object([
            ("app", Amf0Value::string("live")),
            ("type", Amf0Value::string("nonprivate")),
            (
                "flashVer",
                Amf0Value::string("FMLE/3.0 (compatible; FMSc/1.0)"),
            ),
            ("swfUrl", Amf0Value::string("rtmp://127.0.0.1/live")),
            ("tcUrl", Amf0Value::string("rtmp://127.0.0.1/live")),
        ]),
    ])
    .unwrap();
    let Command::Connect(c) = cmd else {
        panic!("not a connect: {cmd:?}")
    };
    assert_eq!(
        c.app,
        StreamName {
            name: "live".into(),
            query: None
        }
    );
    assert_eq!(c.tc_url.as_deref(), Some("rtmp://127.0.0.1/live"));
    assert_eq!(
        c.flash_ver.as_deref(),
        Some("FMLE/3.0 (compatible; FMSc/1.0)")
    );
    assert_eq!(c.object_encoding, 0.0);
    assert_eq!(
        c.extra,
        vec![("type".to_owned(), Amf0Value::string("nonprivate"))]
    );
}

#[test]
fn amf3_command_messages_need_a_zero_format_byte() {
    let mut payload = vec![0u8];
    payload.extend_from_slice(&body(&[
        Amf0Value::string("createStream"),
        Amf0Value::Number(2.0),
        Amf0Value::Null,
    ]));
    let cfg = CommandConfig::default();
    assert_eq!(
        Command::decode(type_id::COMMAND_AMF3, &payload, &cfg),
        Ok(Command::CreateStream {
            transaction_id: 2.0
        })
    );
    payload[0] = 0x11;
    assert_eq!(
        Command::decode(type_id::COMMAND_AMF3, &payload, &cfg),
        Err(CommandError::Amf3Body { byte: 0x11 })
    );
    assert_eq!(
        Command::decode(type_id::AUDIO, &payload, &cfg),
        Err(CommandError::NotACommand {
            type_id: type_id::AUDIO
        })
    );
}

#[test]
fn publish_and_play_defaults_follow_the_spec() {
    let p = decode(&[
        Amf0Value::string("publish"),
        Amf0Value::Number(0.0),
        Amf0Value::Null,
        Amf0Value::string("cam?token=abc"),
    ])
    .unwrap();
    assert_eq!(
        p,
        Command::Publish(Publish {
            transaction_id: 0.0,
            name: StreamName {
                name: "cam".into(),
                query: Some("token=abc".into())
            },
            publish_type: PublishType::Live,
        })
    );
    let play = decode(&[
        Amf0Value::string("play"),
        Amf0Value::Number(4.0),
        Amf0Value::Null,
        Amf0Value::string("cam"),
    ])
    .unwrap();
    assert_eq!(
        play,
        Command::Play(Play {
            transaction_id: 4.0,
            name: name("cam"),
            start: -2.0,
            duration: -1.0,
            reset: true
        })
    );
}

#[test]
fn huge_names_with_nul_and_dotdot_are_invalid_name_errors() {
    let mut raw = "x".repeat(10 * 1024);
    raw.push('\0');
    raw.push_str("/../../etc/passwd");
    for command in [
        "publish",
        "play",
        "releaseStream",
        "FCPublish",
        "getStreamLength",
    ] {
        let err = decode(&[
            Amf0Value::string(command),
            Amf0Value::Number(0.0),
            Amf0Value::Null,
            Amf0Value::String(raw.clone()),
        ])
        .unwrap_err();
        assert!(
            matches!(
                err,
                CommandError::InvalidName {
                    field: NameField::Stream,
                    source: NameError::TooLong { .. }
                }
            ),
            "{command}: {err:?}"
        );
    }
    let lax = CommandConfig {
        names: NamePolicy {
            max_name_len: 1 << 20,
            ..NamePolicy::default()
        },
        ..CommandConfig::default()
    };
    let msg = body(&[
        Amf0Value::string("publish"),
        Amf0Value::Number(0.0),
        Amf0Value::Null,
        Amf0Value::String(raw.clone()),
    ]);
    assert_eq!(
        Command::decode(type_id::COMMAND_AMF0, &msg, &lax),
        Err(CommandError::InvalidName {
            field: NameField::Stream,
            source: NameError::Nul
        })
    );
    let app = decode(&[
        Amf0Value::string("connect"),
        Amf0Value::Number(1.0),
        Amf0Value::object([("app", Amf0Value::string("live/../../x"))]),
    ]);
    assert_eq!(
        app,
        Err(CommandError::InvalidName {
            field: NameField::App,
            source: NameError::DotDotSegment
        })
    );
}

#[test]
fn missing_or_mistyped_arguments_are_typed_errors() {
    assert_eq!(
        decode(&[
            Amf0Value::string("publish"),
            Amf0Value::Number(0.0),
            Amf0Value::Null
        ]),
        Err(CommandError::MissingArgument {
            command: "publish",
            argument: "stream name"
        })
    );
    assert_eq!(
        decode(&[
            Amf0Value::string("play"),
            Amf0Value::Number(0.0),
            Amf0Value::Null,
            Amf0Value::Number(3.0)
        ]),
        Err(CommandError::InvalidArgument {
            command: "play",
            argument: "stream name",
            expected: "a string"
        })
    );
    for bad in [-1.0, 1.5, f64::NAN, 5e9] {
        assert!(matches!(
            decode(&[
                Amf0Value::string("deleteStream"),
                Amf0Value::Number(0.0),
                Amf0Value::Null,
                Amf0Value::Number(bad)
            ]),
            Err(CommandError::InvalidArgument {
                argument: "stream id",
                ..
            })
        ));
    }
    assert!(matches!(
        decode(&[
            Amf0Value::string("connect"),
            Amf0Value::Number(1.0),
            Amf0Value::Null
        ]),
        Err(CommandError::InvalidArgument {
            command: "connect",
            ..
        })
    ));
    assert_eq!(
        decode(&[
            Amf0Value::string("connect"),
            Amf0Value::Number(1.0),
            Amf0Value::object::<&str>([])
        ]),
        Err(CommandError::MissingArgument {
            command: "connect",
            argument: "app"
        })
    );
    assert_eq!(
        decode(&[Amf0Value::Number(1.0)]),
        Err(CommandError::MissingName)
    );
    assert_eq!(decode(&[]), Err(CommandError::MissingName));
    assert!(matches!(
        Command::decode(
            type_id::COMMAND_AMF0,
            &[0x02, 0x00],
            &CommandConfig::default()
        ),
        Err(CommandError::Amf0(Amf0Error::Truncated { .. }))
    ));
}

#[test]
fn unknown_commands_are_tolerated() {
    let mut b = BytesMut::new();
    encode::write_string(&mut b, "FCSubscribe").unwrap();
    assert_eq!(
        Command::decode(type_id::COMMAND_AMF0, &b, &CommandConfig::default()),
        Ok(Command::Unknown {
            name: "FCSubscribe".into(),
            transaction_id: 0.0
        })
    );
}

#[test]
fn responses_expose_status_and_stream_id() {
    let r = Response {
        transaction_id: 1.0,
        command_object: Amf0Value::Null,
        args: vec![Amf0Value::Number(3.0)],
    };
    assert_eq!(r.stream_id(), Some(3));
    assert_eq!(r.status(), None);
    let r = Response {
        args: vec![Amf0Value::Number(-1.0)],
        ..r
    };
    assert_eq!(r.stream_id(), None);
}
