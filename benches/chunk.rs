//! Chunk codec throughput on one second of a synthetic ~2.5 Mbps live stream:
//! 30 fps video (a 64 KB keyframe, then ~8 KB frames) and 43 AAC frames of
//! ~370 B, interleaved by timestamp, at chunk sizes 4096 and 128.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringcast::protocol::payload::HeapAllocator;
use ringcast::protocol::rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits, SharedChunks};
use ringcast::protocol::rtmp::control::ControlMessage;
use ringcast::protocol::rtmp::message::RtmpMessage;

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
                    let mut dec = ChunkDecoder::new(ChunkLimits::default());
                    let mut out = Vec::with_capacity(80);
                    for read in wire.chunks(64 * 1024) {
                        dec.decode_all(read, &mut HeapAllocator, &mut out).unwrap();
                    }
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

criterion_group!(benches, bench);
criterion_main!(benches);
