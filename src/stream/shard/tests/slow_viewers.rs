//! Viewers that fall behind or stop reading: the soft bound skips non-key video
//! until a keyframe, the hard bounds and ring eviction close them (also from
//! `sweep_slow`), and the ring's history follows the slowest reader, so a
//! stream nobody reads holds only its GOP.

use super::*;

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
