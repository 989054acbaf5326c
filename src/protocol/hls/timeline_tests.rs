//! Timeline behaviour: boundaries, numbering, joins, gaps, publishers, window.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proptest::prelude::*;

use super::config::HlsConfig;
use super::testkit::{assert_contiguous, av_frames, big_window, check_invariants, feed};
use super::timeline::{
    FrameMeta, Placement, StartPoint, Timeline, TimelineEvent, TrackKind, Tracks,
};
use super::urls::{self, Resource};

const AV: Tracks = Tracks {
    video: true,
    audio: true,
};

fn timeline(cfg: HlsConfig, start: StartPoint) -> Timeline {
    Timeline::new(cfg, AV, start).unwrap()
}

#[test]
fn two_second_gop_gives_one_independent_segment_per_gop_numbered_by_time() {
    let mut tl = timeline(big_window(), StartPoint::PublishStart);
    let frames = av_frames(30, 1, 60, 30 * 20 + 1, true);
    feed(&mut tl, &frames);
    check_invariants(&tl, true);
    assert_contiguous(&tl);
    let segs = tl.segments();
    assert_eq!(segs.len(), 10);
    for s in segs {
        assert_eq!(s.start_ms, s.msn * 2000, "msn {}", s.msn);
        assert!(s.independent && !s.gap && !s.discontinuity);
        assert_eq!(s.duration_ms, 2000);
        // 2000 ms in parts of <= 334 ms: six parts.
        assert_eq!(s.parts.len(), 6, "{:?}", s.parts);
        // Every part but the last is >= 85 % of PART-TARGET.
        for p in &s.parts[..s.parts.len() - 1] {
            assert!(p.duration_ms * 100 >= 334 * 85, "{p:?}");
        }
        assert!(s
            .parts
            .iter()
            .all(|p| p.audio.frames > 0 && p.video.frames > 0));
    }
}

#[test]
fn one_second_gop_packs_two_gops_per_segment_with_an_independent_middle_part() {
    let mut tl = timeline(big_window(), StartPoint::PublishStart);
    feed(&mut tl, &av_frames(30, 1, 30, 30 * 12 + 1, false));
    check_invariants(&tl, true);
    // Keyframes every 1 s sit at window centres and edges: segment n starts
    // at the keyframe on the edge at 2000n - 1000 (the edge belongs to window n).
    assert_eq!(tl.segment(0).unwrap().duration_ms, 1000);
    for s in tl.segments().iter().skip(1) {
        assert_eq!(s.start_ms, s.msn * 2000 - 1000);
        assert_eq!(s.duration_ms, 2000);
        let independent: Vec<_> = s.parts.iter().filter(|p| p.independent).collect();
        assert_eq!(independent.len(), 2, "{:?}", s.parts);
        assert_eq!(independent[1].start_ms, s.start_ms + 1000);
    }
}

#[test]
fn a_gop_longer_than_the_target_is_cut_without_a_keyframe_and_numbers_stay_on_the_grid() {
    let mut tl = timeline(big_window(), StartPoint::PublishStart);
    // 4 s GOP, 2 s target.
    feed(&mut tl, &av_frames(30, 1, 120, 30 * 24 + 1, false));
    check_invariants(&tl, true);
    let segs: Vec<_> = tl.segments().iter().collect();
    assert!(segs.len() >= 10);
    for s in &segs {
        // Windows with a keyframe start at it; the others at their fallback point.
        if s.msn % 2 == 0 {
            assert!(s.independent, "{}", s.msn);
            assert_eq!(s.start_ms, s.msn * 2000);
        } else {
            assert!(!s.independent, "{}", s.msn);
            assert!(!s.parts[0].independent);
            let fallback = s.msn * 2000 + 1000;
            assert!(
                s.start_ms >= fallback && s.start_ms < fallback + 34,
                "{}",
                s.start_ms
            );
        }
    }
}

#[test]
fn a_drifting_gop_stays_keyframe_aligned() {
    // 29.97 fps with a 60-frame GOP: 2002 ms, drifting 2 ms per segment
    // against the 2000 ms grid; 1500 GOPs drift a whole segment.
    let mut tl = timeline(
        HlsConfig {
            window_segments: 8,
            ..HlsConfig::default()
        },
        StartPoint::PublishStart,
    );
    let frames = av_frames(30_000, 1001, 60, 60 * 1500, false);
    let mut ev = Vec::new();
    let mut non_independent = 0;
    let mut gaps = 0;
    for f in &frames {
        tl.push(*f, 0, &mut ev);
        for e in ev.drain(..) {
            if let TimelineEvent::SegmentClosed { msn } = e {
                let s = tl.segment(msn).unwrap();
                non_independent += usize::from(!s.independent && !s.gap);
                gaps += usize::from(s.gap);
            }
        }
        check_invariants(&tl, true);
    }
    // Only where the keyframes cross a window edge, once in the whole drift,
    // does a window go without one: one short GAP, no cut without a keyframe.
    assert_eq!(non_independent, 0);
    assert!(gaps <= 1, "{gaps}");
    assert!(tl.last_msn().unwrap() >= 1499);
}

#[test]
fn a_stall_longer_than_a_segment_becomes_gap_segments() {
    let mut tl = timeline(big_window(), StartPoint::PublishStart);
    let mut frames = av_frames(30, 1, 60, 30 * 4, false);
    // Nothing from 4 s to 10 s, then the stream resumes with a keyframe.
    frames.extend(
        av_frames(30, 1, 60, 30 * 6 + 1, false)
            .into_iter()
            .map(|mut f| {
                f.dts_ms += 10_000;
                f
            }),
    );
    feed(&mut tl, &frames);
    check_invariants(&tl, true);
    let gaps: Vec<u64> = tl
        .segments()
        .iter()
        .filter(|s| s.gap)
        .map(|s| s.msn)
        .collect();
    assert_eq!(gaps, vec![2, 3, 4]);
    assert_eq!(tl.segment(5).unwrap().start_ms, 10_000);
    // Segment 1's media ends with its last frame (3966 + 33 ms).
    assert_eq!(tl.segment(1).unwrap().duration_ms, 1999);
}

#[test]
fn a_join_without_a_known_previous_keyframe_waits_for_a_provable_start() {
    let frames = av_frames(30, 1, 60, 30 * 10 + 1, true);
    let start = frames
        .iter()
        .position(|f| f.keyframe && f.track == TrackKind::Video && f.dts_ms == 4000)
        .unwrap();
    let mut tl = timeline(
        big_window(),
        StartPoint::Join {
            prev_keyframe_dts: None,
            grid_origin_ms: 0,
        },
    );
    let (pl, _) = feed(&mut tl, &frames[start..]);
    // The 4 s keyframe cannot be proven a segment start; the 6 s one can.
    let first_placed = pl.iter().position(|p| *p != Placement::Dropped).unwrap();
    assert_eq!(frames[start + first_placed].dts_ms, 6000);
    assert_eq!(tl.segments().front().unwrap().msn, 3);

    let mut hinted = timeline(
        big_window(),
        StartPoint::Join {
            prev_keyframe_dts: Some(2000),
            grid_origin_ms: 0,
        },
    );
    feed(&mut hinted, &frames[start..]);
    assert_eq!(hinted.segments().front().unwrap().msn, 2);
}

#[test]
fn a_new_publisher_adds_a_discontinuity_and_numbers_continue() {
    let mut tl = timeline(big_window(), StartPoint::PublishStart);
    let first = av_frames(30, 1, 60, 30 * 5, true);
    feed(&mut tl, &first);
    let last_msn = tl.last_msn().unwrap();
    tl.new_publisher();
    // The stream clock continues the timeline 100 ms later; the new
    // publisher's GOP phase differs (keyframe every 50 frames).
    let base = first.last().unwrap().dts_ms + 100;
    let second: Vec<FrameMeta> = av_frames(30, 1, 50, 30 * 8, true)
        .into_iter()
        .map(|mut f| {
            f.dts_ms += base;
            f
        })
        .collect();
    let (_, ev) = feed(&mut tl, &second);
    check_invariants(&tl, true);
    let disc = tl.segment(last_msn + 1).unwrap();
    assert!(disc.discontinuity && disc.independent);
    assert_eq!(disc.epoch, 1);
    assert_eq!(disc.start_ms, base);
    assert!(ev.contains(&TimelineEvent::SegmentOpened { msn: last_msn + 1 }));
    // The grid is re-anchored at the new publisher's first keyframe.
    assert_eq!(
        tl.grid_origin(),
        i64::try_from(base).unwrap() - i64::try_from((last_msn + 1) * 2000).unwrap()
    );
    assert!(tl.segments().iter().filter(|s| s.discontinuity).count() == 1);
}

#[test]
fn a_publisher_returning_within_grace_continues_without_a_discontinuity() {
    let mut tl = timeline(big_window(), StartPoint::PublishStart);
    let mut frames = av_frames(30, 1, 60, 30 * 4, true);
    // A 1.5 s pause (the timeline continues), then frames again.
    frames.extend(av_frames(30, 1, 60, 30 * 6, true).into_iter().map(|mut f| {
        f.dts_ms += 5_500;
        f
    }));
    feed(&mut tl, &frames);
    check_invariants(&tl, false);
    assert!(tl
        .segments()
        .iter()
        .all(|s| !s.discontinuity && s.epoch == 0));
}

#[test]
fn the_window_is_bounded_by_count_and_by_bytes() {
    let mut tl = timeline(HlsConfig::default(), StartPoint::PublishStart);
    let (_, ev) = feed(&mut tl, &av_frames(30, 1, 60, 30 * 40, true));
    assert_eq!(tl.segments().len(), 6);
    let evicted = ev
        .iter()
        .filter(|e| matches!(e, TimelineEvent::Evicted { .. }))
        .count();
    assert_eq!(evicted, 19 - 6);
    assert_eq!(tl.segment(0), None);

    let mut small = timeline(
        HlsConfig {
            max_bytes: 200_000,
            ..HlsConfig::default()
        },
        StartPoint::PublishStart,
    );
    feed(&mut small, &av_frames(30, 1, 60, 30 * 40, true));
    assert!(small.window_bytes() <= 200_000);
    assert!(small.segments().len() < 6);
    let total: u64 = small.segments().iter().map(|s| s.bytes()).sum();
    assert_eq!(total, small.window_bytes());
}

#[test]
fn audio_only_streams_are_cut_on_the_grid_by_audio() {
    let mut tl = Timeline::new(
        big_window(),
        Tracks {
            video: false,
            audio: true,
        },
        StartPoint::PublishStart,
    )
    .unwrap();
    let frames: Vec<FrameMeta> = av_frames(30, 1, 60, 30 * 10, true)
        .into_iter()
        .filter(|f| f.track == TrackKind::Audio)
        .collect();
    let (pl, _) = feed(&mut tl, &frames);
    assert!(pl.iter().all(|p| *p != Placement::Dropped));
    check_invariants(&tl, true);
    for s in tl.segments() {
        assert!(s.independent);
        // Every audio frame is a random access point: segment n starts with
        // the first frame of window n, at 2000n - 1000.
        assert!(
            s.start_ms.abs_diff((s.msn * 2000).saturating_sub(1000)) < 22,
            "{}",
            s.start_ms
        );
        assert!(s
            .parts
            .iter()
            .all(|p| p.video.frames == 0 && p.audio.frames > 0));
    }
}

#[test]
fn events_announce_parts_and_segments_in_order() {
    let mut tl = timeline(big_window(), StartPoint::PublishStart);
    let (_, ev) = feed(&mut tl, &av_frames(30, 1, 60, 61, false));
    assert_eq!(ev[0], TimelineEvent::SegmentOpened { msn: 0 });
    assert_eq!(ev[1], TimelineEvent::PartOpened { msn: 0, part: 0 });
    assert!(ev.contains(&TimelineEvent::PartClosed { msn: 0, part: 5 }));
    assert!(ev.contains(&TimelineEvent::SegmentClosed { msn: 0 }));
    assert_eq!(tl.open_part(), Some((1, 0)));
    assert_eq!(tl.last_part(), Some((0, 5)));
    let mut more = Vec::new();
    tl.finish(2033, &mut more);
    assert!(tl.is_finished());
    assert!(more.contains(&TimelineEvent::SegmentClosed { msn: 1 }));
    assert_eq!(tl.open_part(), None);
}

/// The URLs of a segment and its parts, as a playlist would write them.
fn urls_of(tl: &Timeline, msn: u64) -> Vec<String> {
    let s = tl.segment(msn).unwrap();
    let mut out = Vec::new();
    let mut u = String::new();
    urls::write_path(
        &mut u,
        "live",
        "s",
        Resource::Segment {
            track: TrackKind::Video,
            msn,
        },
    );
    out.push(format!("{u} {} {}", s.start_ms, s.duration_ms));
    for p in &s.parts {
        let mut u = String::new();
        urls::write_path(
            &mut u,
            "live",
            "s",
            Resource::Part {
                track: TrackKind::Video,
                msn,
                part: p.index,
            },
        );
        out.push(format!(
            "{u} {} {} {}",
            p.start_ms, p.duration_ms, p.independent
        ));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any frame sequence (jumps, stalls, bursts, keyframes anywhere, audio
    /// alone) keeps the numbering and TARGETDURATION rules and never panics.
    #[test]
    fn arbitrary_frames_keep_the_rules(
        steps in prop::collection::vec((0u64..3_000, any::<bool>(), any::<bool>(), 0u32..100_000), 1..600),
        video in any::<bool>(),
    ) {
        let tracks = Tracks { video, audio: true };
        let mut tl = Timeline::new(big_window(), tracks, StartPoint::PublishStart).unwrap();
        let mut ev = Vec::new();
        let mut dts = 0u64;
        for (step, key, is_video, size) in steps {
            // Mostly small steps, sometimes a stall.
            dts += if step > 2_900 { step * 3 } else { step % 80 };
            let track = if is_video { TrackKind::Video } else { TrackKind::Audio };
            tl.push(FrameMeta { track, keyframe: key, dts_ms: dts, size }, dts, &mut ev);
            check_invariants(&tl, false);
        }
        let msns: Vec<u64> = tl.segments().iter().map(|s| s.msn).collect();
        if let (Some(last), Some(open)) = (msns.last(), tl.open_part()) {
            prop_assert_eq!(open.0, last + 1);
        }
    }

    /// Two timelines fed the same frames, one from the publish start and one
    /// joining at an arbitrary frame (with or without the previous keyframe's
    /// DTS), agree on the numbers, boundaries and URLs of every segment both hold.
    #[test]
    fn boxes_joining_at_different_points_agree(
        fps in prop::sample::select(vec![(24u64, 1u64), (25, 1), (30, 1), (30_000, 1001), (50, 1), (60, 1)]),
        gop_s10 in 5u64..60,
        audio in any::<bool>(),
        join_at in 0.0f64..0.7,
        hint in any::<bool>(),
        part_target_ms in prop::sample::select(vec![200u32, 250, 334, 500]),
        seg_target_ms in prop::sample::select(vec![1000u32, 2000, 3000]),
    ) {
        let cfg = HlsConfig {
            part_target_ms,
            segment_target_ms: seg_target_ms.max(part_target_ms * 3),
            window_segments: 64,
            ..HlsConfig::default()
        };
        let gop = (gop_s10 * fps.0 / fps.1 / 10).max(1);
        let count = 60 * fps.0 / fps.1;
        let frames = av_frames(fps.0, fps.1, gop, count, audio);
        let mut a = timeline(cfg, StartPoint::PublishStart);
        feed(&mut a, &frames);
        check_invariants(&a, true);
        assert_contiguous(&a);

        let join = (frames.len() as f64 * join_at) as usize;
        let prev_key = frames[..join]
            .iter()
            .rev()
            .find(|f| f.track == TrackKind::Video && f.keyframe)
            .map(|f| f.dts_ms);
        let mut b = timeline(cfg, StartPoint::Join {
            prev_keyframe_dts: if hint { prev_key } else { None },
            grid_origin_ms: 0,
        });
        feed(&mut b, &frames[join..]);
        check_invariants(&b, true);
        // The joiner published something (a minute of media is plenty).
        prop_assert!(!b.segments().is_empty());
        let mut common = 0;
        for s in b.segments() {
            if a.segment(s.msn).is_some() {
                prop_assert_eq!(urls_of(&a, s.msn), urls_of(&b, s.msn));
                common += 1;
            }
        }
        prop_assert!(common > 0);
        prop_assert_eq!(a.last_part(), b.last_part());
        prop_assert_eq!(a.open_part(), b.open_part());
    }
}

#[test]
fn a_box_joining_after_a_new_publisher_agrees_given_the_grid_origin() {
    let mut a = timeline(big_window(), StartPoint::PublishStart);
    let first = av_frames(30, 1, 60, 30 * 7, true);
    feed(&mut a, &first);
    a.new_publisher();
    let base = first.last().unwrap().dts_ms + 700;
    let second: Vec<FrameMeta> = av_frames(30, 1, 45, 30 * 20, true)
        .into_iter()
        .map(|mut f| {
            f.dts_ms += base;
            f
        })
        .collect();
    // The joiner arrives 5 s into the new publisher, from a keyframe.
    let join = second
        .iter()
        .position(|f| f.track == TrackKind::Video && f.keyframe && f.dts_ms >= base + 5000)
        .unwrap();
    let prev = second[..join]
        .iter()
        .rev()
        .find(|f| f.track == TrackKind::Video && f.keyframe)
        .map(|f| f.dts_ms);
    let mut ev = Vec::new();
    let mut b = None;
    for (i, f) in second.iter().enumerate() {
        a.push(*f, 0, &mut ev);
        if i == join {
            b = Some(timeline(
                big_window(),
                StartPoint::Join {
                    prev_keyframe_dts: prev,
                    grid_origin_ms: a.grid_origin(),
                },
            ));
        }
        if let Some(b) = b.as_mut() {
            b.push(*f, 0, &mut ev);
        }
    }
    let b = b.unwrap();
    check_invariants(&a, true);
    check_invariants(&b, true);
    assert!(b.segments().len() >= 5);
    for s in b.segments() {
        assert_eq!(urls_of(&a, s.msn), urls_of(&b, s.msn));
    }
}

/// The open segment's nominal span (what the MPD announces before it closes)
/// for each segment number: the last one seen before the segment closed.
fn nominal_spans(frames: &[FrameMeta]) -> (Timeline, Vec<(u64, u64, u64)>) {
    let mut tl = timeline(big_window(), StartPoint::PublishStart);
    let mut ev = Vec::new();
    let mut spans: Vec<(u64, u64, u64)> = Vec::new();
    for f in frames {
        tl.push(*f, 0, &mut ev);
        if let Some(o) = tl.open_segment_nominal() {
            assert!(o.duration_ms >= u64::from(tl.timing().part_target_ms));
            match spans.last_mut() {
                Some(last) if last.0 == o.msn => *last = (o.msn, o.start_ms, o.duration_ms),
                _ => spans.push((o.msn, o.start_ms, o.duration_ms)),
            }
        }
    }
    (tl, spans)
}

#[test]
fn the_open_segment_nominal_span_is_the_one_it_closes_with_for_a_steady_gop() {
    // 1 s, 2 s and 4 s GOPs against 2 s segments: whole segments, half-window
    // offsets, and windows without a keyframe (fallback starts).
    for gop in [30, 60, 120] {
        let (tl, spans) = nominal_spans(&av_frames(30, 1, gop, 30 * 30, true));
        let closed = tl.segments();
        assert!(closed.len() >= 12, "gop {gop}");
        let mut checked = 0;
        for s in closed.iter() {
            let Some(&(_, start, d)) = spans.iter().find(|x| x.0 == s.msn) else {
                continue;
            };
            assert_eq!(start, s.start_ms, "gop {gop} msn {}", s.msn);
            // Once the GOP is known (from the second keyframe on), the
            // announced duration is the real one.
            if s.start_ms > gop * 1000 / 30 {
                assert_eq!(d, s.duration_ms, "gop {gop} msn {}", s.msn);
                checked += 1;
            }
        }
        assert!(checked >= 10, "gop {gop}: {checked}");
    }
}

#[test]
fn before_the_gop_is_known_the_open_segment_is_announced_one_target_long() {
    let mut tl = timeline(HlsConfig::default(), StartPoint::PublishStart);
    assert_eq!(tl.open_segment_nominal(), None);
    let mut ev = Vec::new();
    for f in av_frames(30, 1, 30, 10, true) {
        tl.push(f, 0, &mut ev);
    }
    let o = tl.open_segment_nominal().unwrap();
    assert_eq!((o.msn, o.start_ms, o.epoch), (0, 0, 0));
    assert_eq!(o.duration_ms, u64::from(tl.timing().segment_target_ms));
    tl.finish(400, &mut ev);
    assert_eq!(tl.open_segment_nominal(), None);
}
