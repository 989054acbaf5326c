//! Chunk codec throughput on one second of a synthetic ~2.5 Mbps live stream:
//! 30 fps video (a 64 KB keyframe, then ~8 KB frames) and 43 AAC frames of
//! ~370 B, interleaved by timestamp, at chunk sizes 4096 and 128; and on a real
//! capture: 10 s of ffmpeg publishing 720p30 H.264 at 2 Mbps plus AAC
//! (`tests/data/rtmp/captures/ffmpeg_publish_2mbps.bin`, recorded by
//! `record_bench_capture` in `tests/rtmp_capture.rs`).

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringcast::protocol::payload::HeapAllocator;
use ringcast::protocol::rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits, SharedChunks};
use ringcast::protocol::rtmp::control::ControlMessage;
use ringcast::protocol::rtmp::handshake::HANDSHAKE_PACKET_LEN;
use ringcast::protocol::rtmp::message::RtmpMessage;

/// The chunk stream ffmpeg sent in the 2 Mbps capture: C0+C1 and C2 cut off.
fn captured_chunk_stream() -> Bytes {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/rtmp/captures/ffmpeg_publish_2mbps.bin"
    );
    let capture = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Bytes::from(capture).slice(1 + 2 * HANDSHAKE_PACKET_LEN..)
}

/// Decodes a whole chunk stream in 64 KiB reads, as the server's receive path does.
fn decode_all(wire: &[u8], out: &mut Vec<RtmpMessage>) {
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    for read in wire.chunks(64 * 1024) {
        dec.decode_all(read, &mut HeapAllocator, out).unwrap();
    }
}

fn one_second_of_media() -> Vec<RtmpMessage> {
    let mut msgs = Vec::new();
    for i in 0..30u32 {
        let len = if i == 0 {
            64 * 1024
        } else {
            8 * 1024 + (i as usize * 37) % 512
        };
        let payload = Bytes::from((0..len).map(|b| b as u8).collect::<Vec<u8>>());
        msgs.push(RtmpMessage {
            csid: 6,
            timestamp: i * 1000 / 30,
            type_id: 9,
            stream_id: 1,
            payload,
        });
    }
    for i in 0..43u32 {
        let payload = Bytes::from(vec![0xAF; 360 + (i as usize % 20)]);
        msgs.push(RtmpMessage {
            csid: 4,
            timestamp: i * 1000 / 43,
            type_id: 8,
            stream_id: 1,
            payload,
        });
    }
    msgs.sort_by_key(|m| m.timestamp);
    msgs
}

fn encode_all(msgs: &[RtmpMessage], chunk_size: u32, out: &mut BytesMut) {
    let mut enc = ChunkEncoder::new();
    // Announce the chunk size in-band, as a server does; the encoder applies it after.
    enc.encode(&ControlMessage::SetChunkSize(chunk_size).to_message(), out)
        .unwrap();
    for m in msgs {
        enc.encode(m, out).unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let msgs = one_second_of_media();
    let payload_bytes: usize = msgs.iter().map(|m| m.payload.len()).sum();
    for chunk_size in [4096u32, 128] {
        let mut wire = BytesMut::new();
        encode_all(&msgs, chunk_size, &mut wire);
        let wire = wire.freeze();

        let mut g = c.benchmark_group("chunk");
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_with_input(BenchmarkId::new("encode", chunk_size), &msgs, |b, msgs| {
            let mut out = BytesMut::with_capacity(wire.len());
            b.iter(|| {
                out.clear();
                encode_all(msgs, chunk_size, &mut out);
                out.len()
            })
        });
        g.bench_with_input(
            BenchmarkId::new("decode_64k_reads", chunk_size),
            &wire,
            |b, wire| {
                b.iter(|| {
                    let mut out = Vec::with_capacity(80);
                    decode_all(wire, &mut out);
                    assert_eq!(out.len(), 74);
                    out.len()
                })
            },
        );
        g.throughput(Throughput::Bytes(payload_bytes as u64));
        g.bench_with_input(
            BenchmarkId::new("shared_chunks", chunk_size),
            &msgs,
            |b, msgs| {
                b.iter(|| {
                    msgs.iter()
                        .map(|m| {
                            SharedChunks::encode(&m.payload, chunk_size, m.csid)
                                .unwrap()
                                .body()
                                .len()
                        })
                        .sum::<usize>()
                })
            },
        );
        g.finish();
    }
}

/// Decode of the captured chunk stream, and re-encode of the messages it holds
/// (at ffmpeg's own chunk size, announced in-band like the original), in wire bytes/s.
fn bench_capture(c: &mut Criterion) {
    let wire = captured_chunk_stream();
    let mut msgs = Vec::new();
    decode_all(&wire, &mut msgs);
    // ffmpeg's Set Chunk Size rides in the stream; re-encoding announces it again.
    let chunk_size = msgs
        .iter()
        .find_map(|m| match ControlMessage::from_message(m) {
            Ok(Some(ControlMessage::SetChunkSize(size))) => Some(size),
            _ => None,
        })
        .unwrap_or(128);
    let mut encoded = BytesMut::new();
    encode_all(&msgs, chunk_size, &mut encoded);

    let mut g = c.benchmark_group("chunk_capture_2mbps");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("decode_64k_reads", |b| {
        let mut out = Vec::with_capacity(msgs.len());
        b.iter(|| {
            out.clear();
            decode_all(&wire, &mut out);
            assert_eq!(out.len(), msgs.len());
            out.len()
        })
    });
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    g.bench_function(BenchmarkId::new("encode", chunk_size), |b| {
        let mut out = BytesMut::with_capacity(encoded.len());
        b.iter(|| {
            out.clear();
            encode_all(&msgs, chunk_size, &mut out);
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bench_capture);
criterion_main!(benches);
