//! Stream-layer hot path: a publisher's frame fanned out to every viewer of a
//! core, each taking it with `next_batch` as the server would after a wake-up.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringcast::protocol::{Frame, FrameKind};
use ringcast::stream::{
    BatchStatus, Role, Shard, ShardConfig, StreamId, StreamKey, ViewerId, ViewerOptions,
};

const GOP: u32 = 50;

fn frame(i: u32) -> Frame {
    // 1.2 kB video frames (about 1 Mbit/s at 25 fps), one keyframe per GOP.
    let mut body = vec![0u8; 1200];
    body[0] = if i.is_multiple_of(GOP) { 0x17 } else { 0x27 };
    body[1] = 1;
    Frame::new(FrameKind::Video, i * 40, Bytes::from(body))
}

fn setup(viewers: usize) -> (Shard, StreamId, Vec<ViewerId>, u32) {
    let mut shard = Shard::new(0, ShardConfig::default());
    let id = StreamId(1);
    let key = StreamKey::new("live", "bench").expect("valid key");
    shard
        .open_stream(key, id, Role::Owner { generation: 1 }, 0)
        .expect("open");
    shard
        .push_frame(
            id,
            Frame::new(
                FrameKind::Video,
                0,
                Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]),
            ),
            0,
        )
        .expect("push");
    let mut i = 0;
    while i < GOP {
        shard
            .push_frame(id, frame(i), u64::from(i) * 40)
            .expect("push");
        i += 1;
    }
    let ids: Vec<ViewerId> = (0..viewers)
        .map(|_| {
            shard
                .add_viewer(id, ViewerOptions::default())
                .expect("viewer")
        })
        .collect();
    let mut out = Vec::new();
    for v in &ids {
        while shard.next_batch(*v, u64::from(i) * 40, 64, 1 << 20, &mut out) == BatchStatus::Ready {
            out.clear();
        }
    }
    (shard, id, ids, i)
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("push_and_fan_out");
    for viewers in [0usize, 100, 1_000, 10_000] {
        group.throughput(Throughput::Elements(viewers.max(1) as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(viewers),
            &viewers,
            |b, &viewers| {
                let (mut shard, id, _ids, mut i) = setup(viewers);
                let mut wake = Vec::with_capacity(viewers);
                let mut out = Vec::with_capacity(64);
                b.iter(|| {
                    let now = u64::from(i) * 40;
                    let pushed = shard.push_frame(id, frame(i), now).expect("push");
                    wake.clear();
                    wake.extend_from_slice(pushed.wake);
                    i += 1;
                    for v in &wake {
                        // One batch to take the frame, one to find nothing and park.
                        shard.next_batch(*v, now, 64, 1 << 20, &mut out);
                        shard.next_batch(*v, now, 64, 1 << 20, &mut out);
                        black_box(&out);
                        out.clear();
                    }
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
