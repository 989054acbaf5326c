//! Property tests over random pushes, batches, new viewers and sweeps: every
//! viewer's time is monotonic and starts at a keyframe, early trimming never
//! drops what a viewer needs, and a replica's viewer sees what the owner's sees.

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
