//! Behaviour of a shard as the server sees it: publish, play, slow viewers,
//! publisher changes and cross-core replication.

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

#[test]
fn new_viewer_gets_metadata_headers_then_gop_keyframe() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    push_headers(&mut shard, id, 0, 0);
    let (ts, now) = push_gops(&mut shard, id, 2, 10, 0, 0);
    let v = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    let (out, status) = drain(&mut shard, v, now);
    assert_eq!(status, BatchStatus::Idle);
    let kinds: Vec<_> = out.iter().take(4).map(describe).collect();
    assert_eq!(
        kinds,
        vec![
            (FrameKind::Script, false, false),
            (FrameKind::Audio, false, true),
            (FrameKind::Video, false, true),
            (FrameKind::Video, true, false),
        ]
    );
    assert_eq!(
        out.len(),
        3 + 20,
        "metadata, 2 headers, last GOP of 10 video + 10 audio"
    );
    assert!(
        out.iter().all(|f| f.timestamp <= 400),
        "zero-based timeline"
    );
    assert_eq!(out[3].timestamp, 0, "keyframe at 0");
    assert_eq!(out[0].timestamp, 0, "headers take the keyframe's time");
    // next frame wakes the parked viewer
    let pushed = shard.push_frame(id, video(ts, false), now).unwrap();
    assert_eq!(pushed.wake, &[v]);
    let (out, _) = drain(&mut shard, v, now);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].timestamp, 400);
    // a viewer that got frames and has not asked again is busy, not parked
    shard.push_frame(id, audio(ts), now).unwrap();
    let mut out = Vec::new();
    assert_eq!(
        shard.next_batch(v, now, 64, BIG, &mut out),
        BatchStatus::Ready
    );
    let pushed = shard.push_frame(id, audio(ts + 10), now).unwrap();
    assert!(pushed.wake.is_empty());
}

#[test]
fn gop_cache_off_waits_for_next_keyframe() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    push_headers(&mut shard, id, 0, 0);
    let (ts, now) = push_gops(&mut shard, id, 1, 10, 0, 0);
    let options = ViewerOptions {
        gop_cache: false,
        ..Default::default()
    };
    let v = shard.add_viewer(id, options).unwrap();
    assert_eq!(drain(&mut shard, v, now).1, BatchStatus::Idle);
    let (ts, now) = push_gops(&mut shard, id, 0, 0, ts, now);
    shard.push_frame(id, video(ts, false), now).unwrap();
    shard.push_frame(id, audio(ts), now).unwrap();
    assert!(
        drain(&mut shard, v, now).0.is_empty(),
        "still waiting for a keyframe"
    );
    push_gops(&mut shard, id, 1, 3, ts + 40, now + 40);
    let (out, _) = drain(&mut shard, v, now + 200);
    let kinds: Vec<_> = out.iter().map(describe).collect();
    assert_eq!(
        kinds[3],
        (FrameKind::Video, true, false),
        "preamble then keyframe"
    );
    assert_eq!(out[3].timestamp, 0);
    assert_eq!(out.len(), 3 + 6);
    assert!(shard.viewer_counters(v).unwrap().skipped_before_start >= 2);
}

#[test]
fn audio_only_stream_starts_live() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    shard.push_frame(id, audio_header(0), 0).unwrap();
    for i in 0..5 {
        shard.push_frame(id, audio(i * 23), 0).unwrap();
    }
    let v = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    let (out, status) = drain(&mut shard, v, 0);
    assert!(out.is_empty());
    assert_eq!(
        status,
        BatchStatus::Idle,
        "starts with the next frame, no keyframe needed"
    );
    assert_eq!(shard.push_frame(id, audio(115), 0).unwrap().wake, &[v]);
    let (out, _) = drain(&mut shard, v, 0);
    assert_eq!(out.len(), 2);
    assert!(out[0].entry.frame().sequence_header, "header first");
    assert_eq!((out[0].timestamp, out[1].timestamp), (0, 0));
    shard.push_frame(id, audio(138), 0).unwrap();
    let (out, _) = drain(&mut shard, v, 0);
    assert_eq!(out[0].timestamp, 23);
}

#[test]
fn soft_bound_skips_only_non_key_video_until_keyframe() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    push_headers(&mut shard, id, 0, 0);
    let (ts, now) = push_gops(&mut shard, id, 1, 10, 0, 0);
    let limits = ViewerLimits {
        soft_lag_ms: 300,
        ..Default::default()
    };
    let v = shard
        .add_viewer(
            id,
            ViewerOptions {
                limits,
                ..Default::default()
            },
        )
        .unwrap();
    drain(&mut shard, v, now);
    // Falls behind: push 5 inter frames then a new GOP without reading.
    let mut ts = ts;
    let mut now = now;
    for _ in 0..5 {
        shard.push_frame(id, video(ts, false), now).unwrap();
        shard.push_frame(id, audio(ts), now).unwrap();
        ts += 40;
        now += 40;
    }
    let (_, now) = push_gops(&mut shard, id, 1, 10, ts, now);
    let (out, _) = drain(&mut shard, v, now + 1000);
    let first_key = out.iter().position(|f| f.entry.frame().keyframe).unwrap();
    assert!(
        out[..first_key]
            .iter()
            .all(|f| f.entry.frame().kind == FrameKind::Audio),
        "only audio before the keyframe"
    );
    assert_eq!(first_key, 5);
    assert_eq!(out.len() - first_key, 20, "whole GOP after the keyframe");
    let counters = shard.viewer_counters(v).unwrap();
    assert_eq!(counters.dropped_slow, 5);
    assert_eq!(shard.counters().dropped_slow, 5);
    let stamps: Vec<u32> = out.iter().map(|f| f.timestamp).collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn hard_bound_closes() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    push_headers(&mut shard, id, 0, 0);
    let (ts, now) = push_gops(&mut shard, id, 1, 10, 0, 0);
    let limits = ViewerLimits {
        soft_lag_ms: 100,
        hard_lag_ms: 1_000,
        ..Default::default()
    };
    let v = shard
        .add_viewer(
            id,
            ViewerOptions {
                limits,
                ..Default::default()
            },
        )
        .unwrap();
    drain(&mut shard, v, now);
    let (_, now) = push_gops(&mut shard, id, 2, 10, ts, now);
    let (out, status) = drain(&mut shard, v, now + 500);
    assert!(out.is_empty());
    assert!(
        matches!(
            status,
            BatchStatus::Close(CloseReason::LagTime {
                limit_ms: 1_000,
                ..
            })
        ),
        "{status:?}"
    );
    assert_eq!(shard.counters().closed_lag_time, 1);
    let removed = shard.remove_viewer(v).unwrap();
    assert_eq!(removed.stream_id, id);
    assert_eq!(
        shard.next_batch(v, now, 1, 1, &mut Vec::new()),
        BatchStatus::Close(CloseReason::Gone)
    );
    assert_eq!(shard.remove_viewer(v), None, "stale id");
}

#[test]
fn ring_eviction_closes_a_stuck_viewer() {
    let config = ShardConfig {
        ring: RingLimits {
            max_frames: 30,
            ..Default::default()
        },
        ..Default::default()
    };
    let (mut shard, id) = owner_shard(config);
    push_headers(&mut shard, id, 0, 0);
    let (ts, now) = push_gops(&mut shard, id, 1, 10, 0, 0);
    let v = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    let mut out = Vec::new();
    assert_eq!(
        shard.next_batch(v, now, 2, BIG, &mut out),
        BatchStatus::Ready
    );
    push_gops(&mut shard, id, 3, 10, ts, now);
    let status = shard.next_batch(v, now, 64, BIG, &mut out);
    assert!(
        matches!(status, BatchStatus::Close(CloseReason::Evicted { .. })),
        "{status:?}"
    );
    assert_eq!(shard.counters().closed_evicted, 1);
}

#[test]
fn never_reading_viewer_does_not_pin_memory() {
    let limits = RingLimits {
        max_frames: 100,
        max_bytes: 10_000,
        max_age_ms: 1_000,
    };
    let (mut shard, id) = owner_shard(ShardConfig {
        ring: limits,
        ..Default::default()
    });
    push_headers(&mut shard, id, 0, 0);
    let first = Rc::downgrade(&shard.push_frame(id, video(0, true), 0).unwrap().entry);
    let v = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    let mut out = Vec::new();
    shard.next_batch(v, 0, 1, BIG, &mut out);
    out.clear();
    push_gops(&mut shard, id, 100, 25, 40, 40);
    let (frames, bytes) = shard.ring_usage(id).unwrap();
    assert!(
        frames <= 100 && bytes <= 10_000,
        "{frames} frames, {bytes} bytes"
    );
    assert!(
        first.upgrade().is_none(),
        "evicted entries are freed although the viewer never read them"
    );
}

#[test]
fn timestamps_are_corrected_and_viewer_timelines_monotonic() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    push_headers(&mut shard, id, u32::MAX - 100, 0);
    shard
        .push_frame(id, video(u32::MAX - 100, true), 0)
        .unwrap();
    let source = ViewerOptions {
        timeline: TimelineMode::Source,
        ..Default::default()
    };
    let vz = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    let vs = shard.add_viewer(id, source).unwrap();
    drain(&mut shard, vz, 0);
    drain(&mut shard, vs, 0);
    // wrap, a restart to 0 (backward jump) and a huge forward jump
    for raw in [
        u32::MAX - 60,
        u32::MAX - 20,
        19,
        59,
        u32::MAX - 5_000,
        u32::MAX - 4_960,
        1_000_000_000,
        1_000_000_040,
    ] {
        shard.push_frame(id, video(raw, false), 0).unwrap();
    }
    let (z, _) = drain(&mut shard, vz, 0);
    let zs: Vec<u32> = z.iter().map(|f| f.timestamp).collect();
    assert_eq!(zs, vec![40, 80, 120, 160, 200, 240, 280, 320]);
    let (s, _) = drain(&mut shard, vs, 0);
    let base = u32::MAX - 100;
    let ss: Vec<u32> = s.iter().map(|f| f.timestamp.wrapping_sub(base)).collect();
    assert_eq!(ss, zs, "source timeline is the corrected stream time");
    let late = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    let (out, _) = drain(&mut shard, late, 0);
    assert_eq!(
        out.iter()
            .find(|f| f.entry.frame().keyframe)
            .map(|f| f.timestamp),
        Some(0)
    );
}

#[test]
fn publisher_grace_resume_keeps_viewers_and_continuity() {
    let dir = Directory::default();
    let first = dir
        .claim(&key("s"), 0, PublishPolicy::default())
        .unwrap()
        .claim;
    let mut shard = Shard::new(0, ShardConfig::default());
    let id = first.stream_id;
    shard
        .open_stream(
            key("s"),
            id,
            Role::Owner {
                generation: first.generation,
            },
            0,
        )
        .unwrap();
    push_headers(&mut shard, id, 0, 0);
    let (_, now) = push_gops(&mut shard, id, 1, 5, 0, 0);
    let v = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    let (before, _) = drain(&mut shard, v, now);
    let last_ts = before.last().unwrap().timestamp;

    assert!(dir.publisher_left(&key("s"), &first));
    assert_eq!(shard.publisher_left(id, first.generation, now, 5_000), None);
    assert!(shard.tick(now + 1_000).is_empty());
    let second = dir.claim(&key("s"), 0, PublishPolicy::default()).unwrap();
    assert_eq!(
        second.claim.stream_id, id,
        "same core resumes the same stream"
    );
    shard.resume(id, second.claim.generation).unwrap();
    // the new encoder starts its clock at 0 again
    push_headers(&mut shard, id, 0, now + 2_000);
    push_gops(&mut shard, id, 1, 3, 0, now + 2_000);
    let (after, status) = drain(&mut shard, v, now + 2_200);
    assert_eq!(status, BatchStatus::Idle);
    let stamps: Vec<u32> = after.iter().map(|f| f.timestamp).collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]) && stamps[0] >= last_ts,
        "{last_ts} then {stamps:?}"
    );
    let first_media = after
        .iter()
        .find(|f| f.entry.frame().kind != FrameKind::Script)
        .unwrap();
    assert_eq!(
        first_media.timestamp,
        last_ts + 5,
        "continues one step after the last frame"
    );
    assert_eq!(
        shard.publisher_left(id, first.generation, now, 0),
        None,
        "the old publisher's late leave is ignored"
    );

    // now leave for good: expiry ends the stream and viewers finish
    assert_eq!(
        shard.publisher_left(id, second.claim.generation, now + 3_000, 1_000),
        None
    );
    let ended = shard.tick(now + 4_000);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].wake, vec![v], "the idle viewer is woken to finish");
    assert!(dir.release(&ended[0].key, &second.claim));
    assert_eq!(drain(&mut shard, v, now + 4_000).1, BatchStatus::Finished);
    assert!(shard.push_frame(id, audio(0), now).is_err());
    shard.remove_viewer(v).unwrap();
    assert_eq!(
        shard.stream_count(),
        0,
        "ended stream dropped with its last viewer"
    );
}

#[test]
fn ended_stream_delivers_the_rest_then_finishes() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    push_headers(&mut shard, id, 0, 0);
    push_gops(&mut shard, id, 1, 5, 0, 0);
    let v = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    let mut out = Vec::new();
    assert_eq!(shard.next_batch(v, 0, 4, BIG, &mut out), BatchStatus::Ready);
    let ended = shard.publisher_left(id, 1, 0, 0).unwrap();
    assert!(ended.wake.is_empty(), "the viewer was busy, not parked");
    let (rest, status) = drain(&mut shard, v, 0);
    assert_eq!(out.len() + rest.len(), 3 + 10);
    assert_eq!(status, BatchStatus::Finished);
    assert!(shard.add_viewer(id, ViewerOptions::default()).is_err());
}

#[test]
fn cross_core_takeover_kicks_the_old_owner() {
    let dir = Directory::default();
    let old = dir
        .claim(&key("s"), 0, PublishPolicy::default())
        .unwrap()
        .claim;
    let mut core0 = Shard::new(0, ShardConfig::default());
    core0
        .open_stream(
            key("s"),
            old.stream_id,
            Role::Owner {
                generation: old.generation,
            },
            0,
        )
        .unwrap();
    let v = core0
        .add_viewer(old.stream_id, ViewerOptions::default())
        .unwrap();
    assert_eq!(drain(&mut core0, v, 0).1, BatchStatus::Idle);
    let new = dir
        .claim(&key("s"), 1, PublishPolicy { takeover: true })
        .unwrap();
    let prev = new.previous.unwrap();
    assert_ne!(new.claim.stream_id, prev.stream_id);
    let kick = CoreMsg::Kick {
        stream_id: prev.stream_id,
        generation: prev.generation,
    };
    match core0.handle(kick, 0) {
        Handled::Kick(ended) => assert_eq!(ended.wake, vec![v]),
        other => panic!("expected a kick, got {other:?}"),
    }
    assert!(!dir.release(&key("s"), &old));
    assert_eq!(dir.lookup(&key("s")), Some((new.claim.stream_id, 1)));
    let stale = CoreMsg::Kick {
        stream_id: prev.stream_id,
        generation: prev.generation,
    };
    assert!(
        matches!(core0.handle(stale, 0), Handled::Nothing),
        "a repeated kick is a no-op"
    );
}

#[test]
fn same_core_takeover_keeps_viewers() {
    let dir = Directory::default();
    let old = dir
        .claim(&key("s"), 0, PublishPolicy::default())
        .unwrap()
        .claim;
    let mut shard = Shard::new(0, ShardConfig::default());
    let id = old.stream_id;
    shard
        .open_stream(
            key("s"),
            id,
            Role::Owner {
                generation: old.generation,
            },
            0,
        )
        .unwrap();
    push_headers(&mut shard, id, 0, 0);
    push_gops(&mut shard, id, 1, 2, 0, 0);
    let v = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    drain(&mut shard, v, 0);
    let new = dir
        .claim(&key("s"), 0, PublishPolicy { takeover: true })
        .unwrap();
    assert_eq!(new.claim.stream_id, id);
    shard.resume(id, new.claim.generation).unwrap();
    assert_eq!(
        shard.publisher_left(id, old.generation, 0, 0),
        None,
        "kicked publisher's leave is ignored"
    );
    shard.push_frame(id, video(999_999, true), 100).unwrap();
    let (out, _) = drain(&mut shard, v, 100);
    assert_eq!(out.len(), 1);
}

/// Routes messages between two shards in one thread, as the runtime's rings would.
fn deliver(to: &mut Shard, msg: CoreMsg, now: u64) -> Option<(usize, CoreMsg)> {
    match to.handle(msg, now) {
        Handled::Reply { to_core, msg } => Some((to_core, msg)),
        _ => None,
    }
}

#[test]
fn replica_viewer_sees_what_an_owner_viewer_sees() {
    let (mut owner, id) = owner_shard(ShardConfig::default());
    let mut replica = Shard::new(1, ShardConfig::default());
    push_headers(&mut owner, id, 1_000, 0);
    let (ts, now) = push_gops(&mut owner, id, 2, 7, 1_000, 0);

    assert_eq!(
        replica.open_stream(key("s"), id, Role::Replica { owner_core: 0 }, now),
        Ok(Opened::New)
    );
    let rv = replica.add_viewer(id, ViewerOptions::default()).unwrap();
    assert_eq!(
        drain(&mut replica, rv, now).1,
        BatchStatus::Idle,
        "no snapshot yet"
    );
    let (to, sub) = replica.subscribe_msg(id).unwrap();
    assert_eq!(to, 0);
    let (to, snapshot) = deliver(&mut owner, sub, now).unwrap();
    assert_eq!(to, 1);
    assert!(deliver(&mut replica, snapshot, now).is_none());
    let ov = owner.add_viewer(id, ViewerOptions::default()).unwrap();
    let (mut o, _) = drain(&mut owner, ov, now);
    let (mut r, _) = drain(&mut replica, rv, now);

    // new frames, forwarded frame by frame (including a timestamp jump)
    let mut forwarded = Vec::new();
    let mut t = ts;
    for i in 0..30u32 {
        if i == 12 {
            t = 5; // encoder restart
        }
        let frame = if i % 2 == 0 {
            video(t, i % 10 == 0)
        } else {
            audio(t)
        };
        let pushed = owner.push_frame(id, frame, now + u64::from(i)).unwrap();
        assert_eq!(pushed.replicate_to.iter().collect::<Vec<_>>(), vec![1]);
        forwarded.push(CoreMsg::frame(id, &pushed.entry));
        t += 20;
    }
    for msg in forwarded {
        deliver(&mut replica, msg, now + 30);
    }
    o.extend(drain(&mut owner, ov, now + 30).0);
    r.extend(drain(&mut replica, rv, now + 30).0);
    let view = |v: &[OutFrame]| -> Vec<(u32, bytes::Bytes)> {
        v.iter()
            .map(|f| (f.timestamp, f.entry.frame().payload.clone()))
            .collect()
    };
    assert_eq!(view(&o), view(&r));
    assert_eq!(o.len(), 3 + 14 + 30);

    // the last replica viewer leaving unsubscribes
    let removed = replica.remove_viewer(rv).unwrap();
    let (to, unsub) = removed.unsubscribe.unwrap();
    assert_eq!(to, 0);
    assert_eq!(replica.stream_count(), 0);
    deliver(&mut owner, unsub, now);
    assert!(owner
        .push_frame(id, audio(0), now)
        .unwrap()
        .replicate_to
        .is_empty());
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

#[test]
fn replica_resyncs_at_the_next_keyframe_after_a_mesh_gap() {
    let (mut owner, id) = owner_shard(ShardConfig::default());
    push_headers(&mut owner, id, 0, 0);
    let (mut ts, now) = push_gops(&mut owner, id, 1, 4, 0, 0);
    let (mut replica, rv) = subscribed_replica(&mut owner, id, now);
    let (start, _) = drain(&mut replica, rv, now);
    assert_eq!(start.len(), 3 + 8, "context and the GOP");

    // Two GOPs of [key, P, audio, P, audio, P] with a new video sequence header
    // inside the first; frames 1..=2 are lost on the way (a full cross-core queue).
    let mut sent = Vec::new();
    for i in 0..13u32 {
        let frame = match i {
            0 | 7 => video(ts, true),
            4 => video_header(ts, 2),
            2 | 5 | 9 | 11 => audio(ts),
            _ => video(ts, false),
        };
        let pushed = owner.push_frame(id, frame, now).unwrap();
        if !(1..=2).contains(&i) {
            sent.push(CoreMsg::frame(id, &pushed.entry));
        }
        ts += 20;
    }
    for msg in sent {
        deliver(&mut replica, msg, now);
    }
    let (out, _) = drain(&mut replica, rv, now);
    let got: Vec<_> = out.iter().map(describe).collect();
    // The P and audio frames after the gap needed the lost ones: skipped, not
    // sent; the sequence header is state, so it still gets through.
    assert_eq!(
        got,
        vec![
            (FrameKind::Video, true, false),
            (FrameKind::Video, false, true),
            (FrameKind::Video, true, false),
            (FrameKind::Video, false, false),
            (FrameKind::Audio, false, false),
            (FrameKind::Video, false, false),
            (FrameKind::Audio, false, false),
            (FrameKind::Video, false, false),
        ]
    );
    assert_eq!(
        out[2].timestamp + 100,
        out.last().unwrap().timestamp,
        "the second GOP, whole"
    );
    // 2 missed + 3 skipped while waiting for the keyframe.
    assert_eq!(replica.counters().mesh_gap, 5);
    assert_eq!(owner.counters().mesh_gap, 0);
}

#[test]
fn a_header_lost_in_a_gap_comes_back_with_the_resync_keyframe() {
    let (mut owner, id) = owner_shard(ShardConfig::default());
    push_headers(&mut owner, id, 0, 0);
    let (ts, now) = push_gops(&mut owner, id, 1, 4, 0, 0);
    let (mut replica, rv) = subscribed_replica(&mut owner, id, now);
    drain(&mut replica, rv, now);
    // The encoder restarts with a new configuration; its header and first
    // frames are lost on the way, the next keyframe arrives.
    let new_header = video_header(ts, 7);
    owner.push_frame(id, new_header.clone(), now).unwrap();
    owner.push_frame(id, video(ts, true), now).unwrap();
    owner.push_frame(id, video(ts + 40, false), now).unwrap();
    let key = CoreMsg::frame(
        id,
        &owner
            .push_frame(id, video(ts + 80, true), now)
            .unwrap()
            .entry,
    );
    deliver(&mut replica, key, now);
    let (out, _) = drain(&mut replica, rv, now);
    let got: Vec<_> = out.iter().map(describe).collect();
    assert_eq!(
        got,
        vec![
            (FrameKind::Video, false, true),
            (FrameKind::Video, true, false)
        ]
    );
    assert_eq!(
        out[0].entry.frame().payload,
        new_header.payload,
        "the owner's current header"
    );
    assert_eq!(replica.counters().mesh_gap, 3);
}

#[test]
fn replica_ignores_frames_already_in_its_snapshot() {
    let (mut owner, id) = owner_shard(ShardConfig::default());
    push_headers(&mut owner, id, 0, 0);
    let (_, now) = push_gops(&mut owner, id, 1, 4, 0, 0);
    let old = CoreMsg::frame(
        id,
        &owner.push_frame(id, video(500, false), now).unwrap().entry,
    );
    let (mut replica, rv) = subscribed_replica(&mut owner, id, now);
    let (start, _) = drain(&mut replica, rv, now);
    deliver(&mut replica, old, now);
    assert_eq!(
        drain(&mut replica, rv, now).1,
        BatchStatus::Idle,
        "no duplicate"
    );
    assert_eq!(start.len(), 3 + 8 + 1);
    assert_eq!(replica.counters().mesh_gap, 0);
}

#[test]
fn replica_frames_keep_the_owners_arrival_time() {
    let (mut owner, id) = owner_shard(ShardConfig::default());
    push_headers(&mut owner, id, 0, 0);
    let (mut replica, rv) = subscribed_replica(&mut owner, id, 0);
    drain(&mut replica, rv, 0);
    let pushed = owner.push_frame_at(id, video(0, true), 5, 5_123).unwrap();
    assert_eq!(pushed.entry.arrived_us(), 5_123);
    let msg = CoreMsg::frame(id, &pushed.entry);
    // Applied 2 ms later on the replica's core: the latency still counts from 5_123 µs.
    deliver(&mut replica, msg, 7);
    let (out, _) = drain(&mut replica, rv, 7);
    let key = out.iter().find(|f| f.entry.frame().keyframe).unwrap();
    assert_eq!(key.entry.arrived_us(), 5_123);
}

#[test]
fn audio_only_replica_does_not_wait_for_a_keyframe_after_a_gap() {
    let (mut owner, id) = owner_shard(ShardConfig::default());
    owner.push_frame(id, audio_header(0), 0).unwrap();
    let (mut replica, rv) = subscribed_replica(&mut owner, id, 0);
    drain(&mut replica, rv, 0);
    owner.push_frame(id, audio(20), 0).unwrap();
    let kept = CoreMsg::frame(id, &owner.push_frame(id, audio(40), 0).unwrap().entry);
    deliver(&mut replica, kept, 0);
    let (out, _) = drain(&mut replica, rv, 0);
    let media: Vec<_> = out
        .iter()
        .filter(|f| !f.entry.frame().sequence_header)
        .collect();
    assert_eq!(media.len(), 1, "the frame after the gap is fed at once");
    assert_eq!(media[0].entry.frame().timestamp, 40);
    assert_eq!(replica.counters().mesh_gap, 1);
}

#[test]
fn replica_ends_with_the_owner() {
    let (mut owner, id) = owner_shard(ShardConfig::default());
    let mut replica = Shard::new(1, ShardConfig::default());
    push_headers(&mut owner, id, 0, 0);
    replica
        .open_stream(key("s"), id, Role::Replica { owner_core: 0 }, 0)
        .unwrap();
    let rv = replica.add_viewer(id, ViewerOptions::default()).unwrap();
    let (_, sub) = replica.subscribe_msg(id).unwrap();
    let (_, snap) = deliver(&mut owner, sub, 0).unwrap();
    deliver(&mut replica, snap, 0);
    assert_eq!(
        drain(&mut replica, rv, 0).1,
        BatchStatus::Idle,
        "waiting for a keyframe"
    );
    let ended = owner.end_stream(id).unwrap();
    assert_eq!(ended.notify.iter().collect::<Vec<_>>(), vec![1]);
    match replica.handle(CoreMsg::StreamEnd { stream_id: id }, 0) {
        Handled::Ended(e) => assert_eq!(e.wake, vec![rv]),
        other => panic!("{other:?}"),
    }
    assert_eq!(drain(&mut replica, rv, 0).1, BatchStatus::Finished);
    assert_eq!(
        replica.remove_viewer(rv).unwrap().unsubscribe,
        None,
        "owner already gone"
    );
    // subscribing to an unknown stream is answered with StreamEnd
    let answer = owner.handle_subscribe(StreamId(99), &key("s"), 1);
    assert_eq!(
        answer,
        CoreMsg::StreamEnd {
            stream_id: StreamId(99)
        }
    );
}

#[test]
fn limits_are_enforced() {
    let config = ShardConfig {
        max_streams: 1,
        max_viewers: 1,
        ..Default::default()
    };
    let (mut shard, id) = owner_shard(config);
    assert_eq!(
        shard.open_stream(key("t"), StreamId(2), Role::Owner { generation: 2 }, 0),
        Err(ShardError::TooManyStreams { limit: 1 })
    );
    assert_eq!(
        shard.open_stream(key("s"), id, Role::Replica { owner_core: 1 }, 0),
        Err(ShardError::AlreadyOpen(id))
    );
    shard.add_viewer(id, ViewerOptions::default()).unwrap();
    assert_eq!(
        shard.add_viewer(id, ViewerOptions::default()),
        Err(ShardError::TooManyViewers { limit: 1 })
    );
    assert_eq!(
        shard.push_frame(StreamId(7), audio(0), 0).err(),
        Some(ShardError::UnknownStream(StreamId(7)))
    );
    let mut full = Shard::new(
        1,
        ShardConfig {
            max_viewers: 0,
            ..Default::default()
        },
    );
    assert_eq!(
        full.open_stream(key("s"), id, Role::Replica { owner_core: 0 }, 0),
        Err(ShardError::TooManyViewers { limit: 0 }),
        "no replica is opened for a viewer that cannot be added"
    );
}

#[test]
fn stats_report_codecs_and_rates() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    push_headers(&mut shard, id, 0, 0);
    push_gops(&mut shard, id, 3, 10, 0, 0);
    shard.set_video_size(id, 1280, 720);
    let stats = shard.stats(id).unwrap();
    assert_eq!(
        stats.video_codec,
        Some(crate::protocol::flv::codec::VideoCodec::Avc)
    );
    assert_eq!(
        stats.audio_codec,
        Some(crate::protocol::flv::codec::AudioCodec::Aac)
    );
    assert_eq!(stats.fps_x100, 2_500);
    assert_eq!(stats.frames_in, 63);
    assert_eq!((stats.width, stats.height), (Some(1280), Some(720)));
    assert!(stats.publishing && stats.owned);
}

#[test]
fn a_stream_without_viewers_holds_only_its_gop() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    push_headers(&mut shard, id, 0, 0);
    push_gops(&mut shard, id, 5, 10, 0, 0);
    assert_eq!(
        shard.ring_usage(id).unwrap().0,
        20,
        "the last GOP: 10 video + 10 audio"
    );
    let v = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    let (out, _) = drain(&mut shard, v, 400);
    assert_eq!(
        out.len(),
        3 + 20,
        "context and GOP are still there for a new viewer"
    );
}

#[test]
fn history_follows_the_slowest_viewer() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    push_headers(&mut shard, id, 0, 0);
    let (mut ts, mut now) = push_gops(&mut shard, id, 1, 10, 0, 0);
    let fast = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    let slow = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    drain(&mut shard, fast, now);
    let mut slow_got = drain(&mut shard, slow, now).0.len();
    let mut closing = Vec::new();
    for _ in 0..4 {
        (ts, now) = push_gops(&mut shard, id, 1, 10, ts, now);
        drain(&mut shard, fast, now);
        shard.sweep_slow(now, &mut closing);
    }
    assert!(closing.is_empty());
    assert!(
        shard.ring_usage(id).unwrap().0 >= 80,
        "the slow viewer's backlog is kept"
    );
    let (out, status) = drain(&mut shard, slow, now);
    assert_eq!(status, BatchStatus::Idle);
    slow_got += out.len();
    assert_eq!(slow_got, 3 + 20 + 80, "nothing it needed was dropped");
    shard.sweep_slow(now, &mut closing);
    push_gops(&mut shard, id, 1, 10, ts, now);
    assert_eq!(
        shard.ring_usage(id).unwrap().0,
        20,
        "all caught up: one GOP left"
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Push { kind: u8, raw_ts: u32, advance: u8 },
        Batch { viewer: usize, max_frames: u8 },
        AddViewer { gop_cache: bool },
        Sweep,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..6, any::<u32>(), any::<u8>()).prop_map(|(kind, raw_ts, advance)| Op::Push { kind, raw_ts, advance }),
            3 => (0usize..4, 1u8..20).prop_map(|(viewer, max_frames)| Op::Batch { viewer, max_frames }),
            1 => any::<bool>().prop_map(|gop_cache| Op::AddViewer { gop_cache }),
            1 => Just(Op::Sweep),
        ]
    }

    proptest! {
        #[test]
        fn viewers_see_monotonic_time_and_start_at_a_keyframe(ops in proptest::collection::vec(op(), 1..300)) {
            let limits = RingLimits { max_frames: 64, max_bytes: 4096, max_age_ms: 2_000 };
            let (mut shard, id) = owner_shard(ShardConfig { ring: limits, ..Default::default() });
            let mut viewers: Vec<(ViewerId, Option<u32>, bool)> = Vec::new(); // id, last ts, saw video
            let mut now = 0u64;
            let mut last_raw = 0u32;
            for op in ops {
                match op {
                    Op::Push { kind, raw_ts, advance } => {
                        now += u64::from(advance);
                        // mostly small steps, sometimes arbitrary jumps
                        let ts = if raw_ts % 8 == 0 { raw_ts } else { last_raw.wrapping_add(raw_ts % 60) };
                        last_raw = ts;
                        let frame = match kind {
                            0 => video(ts, true),
                            1 | 2 => video(ts, false),
                            3 => audio(ts),
                            4 => video_header(ts, (raw_ts % 2) as u8),
                            _ => metadata(ts),
                        };
                        shard.push_frame(id, frame, now).unwrap();
                    }
                    Op::AddViewer { gop_cache } => {
                        let v = shard.add_viewer(id, ViewerOptions { gop_cache, ..Default::default() }).unwrap();
                        viewers.push((v, None, false));
                    }
                    Op::Sweep => {
                        let mut closing = Vec::new();
                        shard.sweep_slow(now, &mut closing);
                        for (v, _) in closing {
                            shard.remove_viewer(v);
                            viewers.retain(|(id, _, _)| *id != v);
                        }
                    }
                    Op::Batch { viewer, max_frames } => {
                        let Some(slot) = viewers.get_mut(viewer) else { continue };
                        let mut out = Vec::new();
                        let status = shard.next_batch(slot.0, now, usize::from(max_frames), 1 << 20, &mut out);
                        for f in &out {
                            if let Some(last) = slot.1 {
                                prop_assert!(crate::protocol::flv::frame::timestamp_delta(f.timestamp, last) >= 0);
                            }
                            slot.1 = Some(f.timestamp);
                            let fr = f.entry.frame();
                            if fr.kind == FrameKind::Video && !slot.2 {
                                prop_assert!(fr.keyframe || fr.sequence_header, "first video frame {fr:?}");
                                slot.2 = fr.keyframe;
                            }
                        }
                        if let BatchStatus::Close(_) = status {
                            shard.remove_viewer(slot.0);
                            viewers.remove(viewer);
                        }
                    }
                }
            }
            let (frames, bytes) = shard.ring_usage(id).unwrap();
            prop_assert!(frames <= 64 && bytes <= 4096);
        }

        #[test]
        fn early_trimming_never_drops_what_a_viewer_needs(ops in proptest::collection::vec(op(), 1..300)) {
            let roomy = RingLimits { max_frames: 1 << 20, max_bytes: 1 << 30, max_age_ms: u64::MAX / 4 };
            let (mut shard, id) = owner_shard(ShardConfig { ring: roomy, ..Default::default() });
            let patient = ViewerLimits { hard_lag_ms: u64::MAX / 4, hard_lag_bytes: u64::MAX / 4, ..Default::default() };
            let mut viewers: Vec<ViewerId> = Vec::new();
            let mut now = 0u64;
            let mut ts = 0u32;
            for op in ops {
                match op {
                    Op::Push { kind, raw_ts, advance } => {
                        now += u64::from(advance);
                        ts = ts.wrapping_add(raw_ts % 50);
                        let frame = match kind {
                            0 => video(ts, true),
                            1 | 2 => video(ts, false),
                            3 => audio(ts),
                            4 => video_header(ts, 1),
                            _ => metadata(ts),
                        };
                        shard.push_frame(id, frame, now).unwrap();
                    }
                    Op::AddViewer { gop_cache } => {
                        let options = ViewerOptions { gop_cache, limits: patient, ..Default::default() };
                        viewers.push(shard.add_viewer(id, options).unwrap());
                    }
                    Op::Sweep => {
                        let mut closing = Vec::new();
                        shard.sweep_slow(now, &mut closing);
                        prop_assert!(closing.is_empty(), "{closing:?}");
                    }
                    Op::Batch { viewer, max_frames } => {
                        let Some(v) = viewers.get(viewer) else { continue };
                        let mut out = Vec::new();
                        let status = shard.next_batch(*v, now, usize::from(max_frames), 1 << 20, &mut out);
                        prop_assert!(!matches!(status, BatchStatus::Close(_)), "{status:?}");
                    }
                }
            }
        }

        #[test]
        fn replica_matches_owner_for_any_stream(
            frames in proptest::collection::vec((0u8..5, 0u32..100, any::<bool>()), 1..120),
            subscribe_at in 0usize..120,
        ) {
            let (mut owner, id) = owner_shard(ShardConfig::default());
            let mut replica = Shard::new(1, ShardConfig::default());
            let mut views: Option<(ViewerId, ViewerId)> = None;
            let mut outs: (Vec<OutFrame>, Vec<OutFrame>) = (Vec::new(), Vec::new());
            let mut ts = 1_000u32;
            let subscribe_at = subscribe_at.min(frames.len() - 1);
            for (i, (kind, step, jump)) in frames.into_iter().enumerate() {
                if i == subscribe_at {
                    replica.open_stream(key("s"), id, Role::Replica { owner_core: 0 }, 0).unwrap();
                    let (_, sub) = replica.subscribe_msg(id).unwrap();
                    let (_, snap) = deliver(&mut owner, sub, 0).unwrap();
                    deliver(&mut replica, snap, 0);
                    let ov = owner.add_viewer(id, ViewerOptions::default()).unwrap();
                    let rv = replica.add_viewer(id, ViewerOptions::default()).unwrap();
                    outs.0.extend(drain(&mut owner, ov, 0).0);
                    outs.1.extend(drain(&mut replica, rv, 0).0);
                    views = Some((ov, rv));
                }
                ts = if jump && step < 5 { step * 7 } else { ts.wrapping_add(step) };
                let frame = match kind {
                    0 => video(ts, true),
                    1 => video(ts, false),
                    2 => audio(ts),
                    3 => video_header(ts, (step % 2) as u8),
                    _ => metadata(ts),
                };
                let pushed = owner.push_frame(id, frame, 0).unwrap();
                let msgs: Vec<CoreMsg> = pushed
                    .replicate_to
                    .iter()
                    .map(|_| CoreMsg::frame(id, &pushed.entry))
                    .collect();
                for msg in msgs {
                    deliver(&mut replica, msg, 0);
                }
                if let Some((ov, rv)) = views {
                    outs.0.extend(drain(&mut owner, ov, 0).0);
                    outs.1.extend(drain(&mut replica, rv, 0).0);
                }
            }
            let view = |v: &[OutFrame]| -> Vec<(u32, bytes::Bytes)> {
                v.iter().map(|f| (f.timestamp, f.entry.frame().payload.clone())).collect()
            };
            prop_assert_eq!(view(&outs.0), view(&outs.1));
        }
    }
}

#[test]
fn sweep_closes_a_viewer_that_stopped_asking() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    push_headers(&mut shard, id, 0, 0);
    let (ts, now) = push_gops(&mut shard, id, 1, 10, 0, 0);
    let limits = ViewerLimits {
        hard_lag_ms: 1_000,
        ..Default::default()
    };
    let options = ViewerOptions {
        limits,
        ..Default::default()
    };
    let stuck = shard.add_viewer(id, options).unwrap();
    let fine = shard.add_viewer(id, options).unwrap();
    let unpositioned = shard.add_viewer(id, options).unwrap();
    drain(&mut shard, stuck, now);
    drain(&mut shard, fine, now);
    let (_, now) = push_gops(&mut shard, id, 2, 10, ts, now);
    drain(&mut shard, fine, now);
    let mut closing = Vec::new();
    shard.sweep_slow(now + 500, &mut closing);
    assert_eq!(closing.len(), 1);
    assert_eq!(closing[0].0, stuck);
    assert!(matches!(closing[0].1, CloseReason::LagTime { .. }));
    assert!(!closing.iter().any(|(v, _)| *v == unpositioned));
    assert_eq!(shard.counters().closed_lag_time, 1);
}

#[test]
fn frames_during_grace_need_a_resume() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    shard.push_frame(id, audio(0), 0).unwrap();
    assert_eq!(shard.publisher_left(id, 1, 0, 1_000), None);
    assert_eq!(
        shard.push_frame(id, audio(20), 10).err(),
        Some(ShardError::NoPublisher(id))
    );
    assert!(shard.tick(999).is_empty(), "not due yet");
    shard.resume(id, 2).unwrap();
    shard.push_frame(id, audio(20), 10).unwrap();
    assert!(
        shard.tick(5_000).is_empty(),
        "resumed streams do not expire"
    );
}

#[test]
fn a_pull_resumed_on_the_same_timeline_drops_the_replayed_gop_and_keeps_the_time() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    push_headers(&mut shard, id, 60_000, 0);
    // GOPs of 4 frames from 60 s: the last keyframe is at 60_320.
    let (ts, now) = push_gops(&mut shard, id, 3, 4, 60_000, 0);
    assert_eq!(shard.publisher_left(id, 1, now, 1_000), None);
    shard.resume_following(id, 2).unwrap();
    // The origin's GOP cache again, from that keyframe: already here.
    push_headers_expect(&mut shard, id, 60_320);
    for (i, t) in (60_320..ts).step_by(40).enumerate() {
        assert_eq!(
            shard.push_frame(id, video(t, i == 0), now).err(),
            Some(ShardError::Replayed(id))
        );
    }
    // Then new frames, on the origin's time.
    let pushed = shard.push_frame(id, video(ts, false), now).unwrap();
    assert_eq!(pushed.entry.stream_ts(), u64::from(ts));
    let later = shard.push_frame(id, video(ts + 40, false), now).unwrap();
    assert_eq!(later.entry.stream_ts(), u64::from(ts) + 40);
}

/// The sequence headers a re-pulled GOP cache starts with: timed at the
/// cache's keyframe, so they are replays too.
fn push_headers_expect(shard: &mut Shard, id: StreamId, ts: u32) {
    shard.push_frame(id, metadata(ts), 0).unwrap();
    for f in [video_header(ts, 1), audio_header(ts)] {
        assert_eq!(
            shard.push_frame(id, f, 0).err(),
            Some(ShardError::Replayed(id))
        );
    }
}

#[test]
fn tiny_batches_keep_the_same_order() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    push_headers(&mut shard, id, 0, 0);
    push_gops(&mut shard, id, 2, 4, 0, 0);
    let big = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    let small = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    let (expected, _) = drain(&mut shard, big, 0);
    let mut got = Vec::new();
    for max_frames in [0, 1, 2, 0, 1, 3].into_iter().cycle() {
        let before = got.len();
        let status = shard.next_batch(small, 0, max_frames, 1, &mut got);
        if status == BatchStatus::Idle {
            break;
        }
        assert_eq!(status, BatchStatus::Ready);
        assert!(got.len() - before <= max_frames.max(1), "frame cap");
        assert_eq!(
            got.len() - before,
            1,
            "byte cap lets exactly one frame through"
        );
    }
    let seqs = |v: &[OutFrame]| {
        v.iter()
            .map(|f| (f.entry.seq(), f.timestamp))
            .collect::<Vec<_>>()
    };
    assert_eq!(seqs(&got), seqs(&expected));
}

#[test]
fn reused_viewer_slots_do_not_confuse_ids() {
    let (mut shard, id) = owner_shard(ShardConfig::default());
    let old = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    assert_eq!(drain(&mut shard, old, 0).1, BatchStatus::Idle, "parked");
    shard.remove_viewer(old).unwrap();
    let new = shard.add_viewer(id, ViewerOptions::default()).unwrap();
    assert_ne!(old, new);
    assert_eq!(
        shard.next_batch(old, 0, 1, 1, &mut Vec::new()),
        BatchStatus::Close(CloseReason::Gone)
    );
    assert!(shard.remove_viewer(old).is_none());
    assert_eq!(shard.viewer_count(), 1);
    let pushed = shard.push_frame(id, audio(0), 0).unwrap();
    assert!(
        pushed.wake.is_empty(),
        "the removed viewer's parked entry does not wake its successor"
    );
}
