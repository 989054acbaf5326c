//! AMF0 and command decoding of what a typical publisher sends: ffmpeg's `connect`
//! and `publish`. Run: `cargo bench --bench amf0`.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ringcast::protocol::rtmp::amf0::{encode, Amf0Decoder, Amf0Limits, Amf0Value};
use ringcast::protocol::rtmp::command::{Command, CommandConfig};
use ringcast::protocol::rtmp::message::type_id;

/// `connect` as ffmpeg 5 sends it when publishing.
fn connect_body() -> BytesMut {
    let mut b = BytesMut::new();
    encode::write_string(&mut b, "connect").unwrap();
    encode::write_number(&mut b, 1.0);
    Amf0Value::object([
        ("app", Amf0Value::string("live")),
        ("type", Amf0Value::string("nonprivate")),
        (
            "flashVer",
            Amf0Value::string("FMLE/3.0 (compatible; Lavf59.27.100)"),
        ),
        ("tcUrl", Amf0Value::string("rtmp://127.0.0.1:1935/live")),
    ])
    .encode(&mut b)
    .unwrap();
    b
}

fn publish_body() -> BytesMut {
    let mut b = BytesMut::new();
    encode::write_string(&mut b, "publish").unwrap();
    encode::write_number(&mut b, 5.0);
    encode::write_null(&mut b);
    encode::write_string(&mut b, "test?token=0123456789abcdef").unwrap();
    encode::write_string(&mut b, "live").unwrap();
    b
}

fn bench(c: &mut Criterion) {
    let config = CommandConfig::default();
    let mut group = c.benchmark_group("amf0");
    for (name, body) in [("connect", connect_body()), ("publish", publish_body())] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("values/{name}"), |b| {
            b.iter(|| {
                Amf0Decoder::new(black_box(&body), Amf0Limits::default())
                    .decode_all()
                    .unwrap()
            })
        });
        group.bench_function(format!("command/{name}"), |b| {
            b.iter(|| Command::decode(type_id::COMMAND_AMF0, black_box(&body), &config).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
