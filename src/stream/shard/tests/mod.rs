//! Behaviour of a shard as the server sees it: publish, play, slow viewers,
//! publisher changes and cross-core replication. The helpers here drive a
//! shard the way the server does; each file below covers one behaviour.

mod limits_and_stats;
mod play;
mod prop;
mod publishers;
mod replication;
mod slow_viewers;

use std::rc::Rc;

use super::*;
use crate::protocol::FrameKind;
use crate::stream::directory::{Directory, PublishPolicy};
use crate::stream::replication::CoreMsg;
use crate::stream::ring::tests::{audio, audio_header, metadata, video, video_header};
use crate::stream::ring::RingLimits;
use crate::stream::timestamps::TimelineMode;
use crate::stream::viewer::{BatchStatus, CloseReason, OutFrame, ViewerLimits, ViewerOptions};

const BIG: usize = usize::MAX;

fn key(name: &str) -> StreamKey {
    StreamKey::new("live", name).unwrap()
}

fn owner_shard(config: ShardConfig) -> (Shard, StreamId) {
    let mut shard = Shard::new(0, config);
    let id = StreamId(1);
    assert_eq!(
        shard.open_stream(key("s"), id, Role::Owner { generation: 1 }, 0),
        Ok(Opened::New)
    );
    (shard, id)
}

/// Pushes the start of a typical stream: metadata, sequence headers.
fn push_headers(shard: &mut Shard, id: StreamId, ts: u32, now: u64) {
    for f in [metadata(ts), video_header(ts, 1), audio_header(ts)] {
        shard.push_frame(id, f, now).unwrap();
    }
}

/// Pushes `gops` GOPs of `len` video frames (40 ms apart), each followed by an
/// audio frame, starting at `ts`/`now`. Returns the next ts and now.
fn push_gops(
    shard: &mut Shard,
    id: StreamId,
    gops: usize,
    len: usize,
    mut ts: u32,
    mut now: u64,
) -> (u32, u64) {
    for _ in 0..gops {
        for i in 0..len {
            shard.push_frame(id, video(ts, i == 0), now).unwrap();
            shard.push_frame(id, audio(ts + 5), now).unwrap();
            ts += 40;
            now += 40;
        }
    }
    (ts, now)
}

fn drain(shard: &mut Shard, v: ViewerId, now: u64) -> (Vec<OutFrame>, BatchStatus) {
    let mut out = Vec::new();
    loop {
        let before = out.len();
        let status = shard.next_batch(v, now, 64, 1 << 20, &mut out);
        if status != BatchStatus::Ready || out.len() == before {
            return (out, status);
        }
    }
}

fn describe(f: &OutFrame) -> (FrameKind, bool, bool) {
    let fr = f.entry.frame();
    (fr.kind, fr.keyframe, fr.sequence_header)
}

/// Routes messages between two shards in one thread, as the runtime's rings would.
fn deliver(to: &mut Shard, msg: CoreMsg, now: u64) -> Option<(usize, CoreMsg)> {
    match to.handle(msg, now) {
        Handled::Reply { to_core, msg } => Some((to_core, msg)),
        _ => None,
    }
}

/// Subscribes a new replica shard (core 1) with one viewer to the owner's stream.
fn subscribed_replica(owner: &mut Shard, id: StreamId, now: u64) -> (Shard, ViewerId) {
    let mut replica = Shard::new(1, ShardConfig::default());
    replica
        .open_stream(key("s"), id, Role::Replica { owner_core: 0 }, now)
        .unwrap();
    let rv = replica.add_viewer(id, ViewerOptions::default()).unwrap();
    let (_, sub) = replica.subscribe_msg(id).unwrap();
    let (_, snap) = deliver(owner, sub, now).unwrap();
    deliver(&mut replica, snap, now);
    (replica, rv)
}
