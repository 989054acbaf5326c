//! Cross-core replication: a replica's viewer sees what an owner's viewer sees;
//! after a mesh gap the replica resyncs at the next keyframe (headers included),
//! skips frames its snapshot already holds, keeps the owner's arrival times, and
//! ends with the owner.

use super::*;

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
