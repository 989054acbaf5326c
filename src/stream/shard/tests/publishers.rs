//! Publishers: timestamps corrected onto one monotonic stream timeline, a
//! publisher leaving (grace period, resume, end), takeovers on the same core and
//! across cores, and a pull resumed on its own timeline dropping what it repeats.

use super::*;

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
