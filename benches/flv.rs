//! FLV egress and ingest costs: the per-viewer tag prefix, whole-tag encoding,
//! and demux throughput (whole buffer and MTU-sized pieces).

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ringcast::protocol::flv::demux::{FlvDemuxer, FlvLimits};
use ringcast::protocol::flv::tag::{
    encode_tag, write_file_header, write_tag_prefix, TAG_PREFIX_LEN,
};
use ringcast::protocol::http::response::{write_chunk_size_line, CHUNK_SIZE_LINE_MAX};
use ringcast::protocol::{Frame, FrameKind};

/// ~1 s of a 2.5 Mbit/s stream: 25 video frames of 12 KiB (one keyframe of
/// 60 KiB), 43 AAC frames of 370 bytes.
fn sample_stream() -> (Vec<Frame>, Vec<u8>) {
    let mut frames = Vec::new();
    for i in 0..25u32 {
        let len = if i == 0 { 60 * 1024 } else { 12 * 1024 };
        let mut body = vec![0x27, 1, 0, 0, 0];
        if i == 0 {
            body[0] = 0x17;
        }
        body.resize(len, (i & 0xFF) as u8);
        frames.push(Frame::new(FrameKind::Video, i * 40, Bytes::from(body)));
        for a in 0..2u32 {
            let mut audio = vec![0xAF, 1];
            audio.resize(370, 0x21);
            frames.push(Frame::new(
                FrameKind::Audio,
                i * 40 + a * 23,
                Bytes::from(audio),
            ));
        }
    }
    let mut head = [0u8; 13];
    write_file_header(true, true, &mut head);
    let mut file = BytesMut::from(&head[..]);
    for f in &frames {
        encode_tag(f, &mut file).expect("sample frames fit a tag");
    }
    (frames, file.to_vec())
}

fn bench_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("flv_encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("write_tag_prefix", |b| {
        let mut out = [0u8; TAG_PREFIX_LEN];
        let mut ts = 0u32;
        b.iter(|| {
            ts = ts.wrapping_add(40);
            write_tag_prefix(
                black_box(12_299),
                FrameKind::Video,
                ts,
                black_box(12_288),
                &mut out,
            )
            .ok();
            black_box(&out);
        })
    });
    g.bench_function("chunk_size_line", |b| {
        let mut out = [0u8; CHUNK_SIZE_LINE_MAX];
        b.iter(|| black_box(write_chunk_size_line(black_box(12_303), &mut out)))
    });
    let frame = Frame::new(FrameKind::Video, 40, Bytes::from(vec![0x27u8; 12 * 1024]));
    g.throughput(Throughput::Bytes(frame.payload.len() as u64));
    g.bench_function("encode_tag_12k", |b| {
        let mut out = BytesMut::with_capacity(16 * 1024);
        b.iter(|| {
            out.clear();
            encode_tag(black_box(&frame), &mut out).ok();
            black_box(out.len());
        })
    });
    g.finish();
}

fn bench_demux(c: &mut Criterion) {
    let (frames, file) = sample_stream();
    let mut g = c.benchmark_group("flv_demux");
    g.throughput(Throughput::Bytes(file.len() as u64));
    for piece in [file.len(), 1400] {
        let name = if piece == file.len() {
            "whole".to_owned()
        } else {
            format!("pieces_{piece}")
        };
        g.bench_function(name, |b| {
            let mut out = Vec::with_capacity(frames.len());
            b.iter(|| {
                out.clear();
                let mut d = FlvDemuxer::new(FlvLimits::default());
                for chunk in file.chunks(piece) {
                    d.decode_all(chunk, &mut out).ok();
                }
                assert_eq!(out.len(), frames.len());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_encode, bench_demux);
criterion_main!(benches);
