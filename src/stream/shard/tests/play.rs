//! A viewer's start and its batches: what a new viewer gets first (metadata,
//! sequence headers, the cached GOP from its keyframe, or the next keyframe with
//! the GOP cache off; audio-only streams start live), batch sizes that do not
//! change the order, and slot reuse that never confuses viewer ids.

use super::*;

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
    // caught up: parked until the next frame wakes it
    assert!(shard.is_parked(v));
    let pushed = shard.push_frame(id, video(ts, false), now).unwrap();
    assert_eq!(pushed.wake, &[v]);
    assert!(!shard.is_parked(v), "woken: its frame is waiting for it");
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
    assert!(!shard.is_parked(v));
    shard.remove_viewer(v);
    assert!(!shard.is_parked(v), "an unknown viewer is not parked");
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
