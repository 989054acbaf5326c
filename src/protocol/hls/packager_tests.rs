//! The packager on real frames (the committed FLV fixtures, demuxed by
//! ringcast's own FLV demuxer and looped on one timeline).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::Bytes;

use super::packager::{Packager, PackagerConfig, PackagerEvent, PackagerWarning, Start};
use super::serve::{Answer, Cacheability, RequestError};
use super::timeline::TrackKind;
use super::urls::Resource;
use crate::protocol::flv::{FlvDemuxer, FlvLimits};
use crate::protocol::{Frame, FrameKind};

const AVC420: &[u8] = include_bytes!("../../../tests/data/flv/avc420_aac_320x180.flv");
const AVC444: &[u8] = include_bytes!("../../../tests/data/flv/avc444_aac_320x240.flv");

/// (sequence headers, coded frames with DTS in decode order) of a fixture
/// looped `loops` times on one timeline starting at `base`.
fn stream(file: &[u8], loops: u64, base: u64) -> (Vec<Frame>, Vec<(Frame, u64)>) {
    let mut d = FlvDemuxer::new(FlvLimits::default());
    let mut frames = Vec::new();
    d.decode_all(file, &mut frames).unwrap();
    let seq: Vec<Frame> = frames
        .iter()
        .filter(|f| f.sequence_header)
        .cloned()
        .collect();
    let coded: Vec<Frame> = frames
        .iter()
        .filter(|f| f.kind != FrameKind::Script && f.payload.get(1) == Some(&1))
        .cloned()
        .collect();
    let video: Vec<&Frame> = coded
        .iter()
        .filter(|f| f.kind == FrameKind::Video)
        .collect();
    let t0 = video[0].timestamp;
    let span = u64::from(video[video.len() - 1].timestamp - t0) + 40;
    let mut out = Vec::new();
    for i in 0..loops {
        for f in &coded {
            let rel = u64::from(f.timestamp.saturating_sub(t0));
            if rel < span {
                out.push((f.clone(), base + i * span + rel));
            }
        }
    }
    out.sort_by_key(|(f, dts)| (*dts, f.kind == FrameKind::Audio));
    (seq, out)
}

fn feed(p: &mut Packager, frames: &[(Frame, u64)], ev: &mut Vec<PackagerEvent>) {
    for (f, dts) in frames {
        p.push(f, *dts, 1_700_000_000_000 + dts, ev);
    }
}

fn started(file: &[u8], loops: u64, config: PackagerConfig) -> (Packager, Vec<PackagerEvent>) {
    let (seq, coded) = stream(file, loops, 0);
    let mut p = Packager::new("live", "cam", config, Start::Publish).unwrap();
    let mut ev = Vec::new();
    for f in &seq {
        p.push(f, 0, 1_700_000_000_000, &mut ev);
    }
    feed(&mut p, &coded, &mut ev);
    (p, ev)
}

/// The warnings among `ev`, in order.
fn warnings(ev: &[PackagerEvent]) -> Vec<&PackagerWarning> {
    ev.iter()
        .filter_map(|e| match e {
            PackagerEvent::Warning(w) => Some(w),
            _ => None,
        })
        .collect()
}

fn serve(p: &Packager, r: Resource, q: &str) -> (Bytes, &'static str, Cacheability) {
    match p.answer(r, q, 0, 0).unwrap() {
        Answer::Serve(reply) => (reply.body.to_bytes(), reply.content_type, reply.cache),
        other => panic!("{r:?}: {other:?}"),
    }
}

fn text(p: &Packager, r: Resource, q: &str) -> String {
    String::from_utf8(serve(p, r, q).0.to_vec()).unwrap()
}

#[test]
fn every_closed_part_has_a_chunk_per_track_and_segments_are_their_parts() {
    let (p, ev) = started(AVC444, 12, PackagerConfig::default());
    assert!(
        !ev.iter().any(|e| matches!(e, PackagerEvent::Warning(_))),
        "{ev:?}"
    );
    let tl = p.timeline().unwrap();
    assert!(tl.segments().len() >= 4);
    assert!(p.has_ts());
    for s in tl.segments() {
        assert!(!s.gap);
        for track in [TrackKind::Video, TrackKind::Audio] {
            let mut joined = Vec::new();
            for part in &s.parts {
                let (b, ty, cache) = serve(
                    &p,
                    Resource::Part {
                        track,
                        msn: s.msn,
                        part: part.index,
                    },
                    "",
                );
                assert_eq!((ty, cache), ("video/iso.segment", Cacheability::Immutable));
                assert_eq!(&b[4..8], b"moof");
                joined.extend_from_slice(&b);
            }
            let (seg, _, _) = serve(&p, Resource::Segment { track, msn: s.msn }, "");
            assert_eq!(&seg[..], &joined[..], "segment {} = its parts", s.msn);
        }
        let (ts, ty, _) = serve(&p, Resource::TsSegment { msn: s.msn }, "");
        assert_eq!(ty, "video/mp2t");
        assert_eq!(ts.len() % 188, 0);
        assert!(ts.chunks(188).all(|c| c[0] == 0x47));
    }
    // Every event's part is served; a PartReady precedes its SegmentReady.
    let ready = ev
        .iter()
        .filter(|e| matches!(e, PackagerEvent::PartReady { .. }))
        .count();
    assert!(ready > 20);
    let mv = text(&p, Resource::Multivariant, "");
    assert!(mv.contains("CODECS=\"avc1.f4"), "{mv}");
    assert!(mv.contains("mp4a.40.2") && mv.contains("cam/a.m3u8") && mv.contains("cam/v.m3u8"));
    let (_, ty, cache) = serve(&p, Resource::TsPlaylist, "token=x");
    assert_eq!(
        (ty, cache),
        ("application/vnd.apple.mpegurl", Cacheability::ShortLived)
    );
    let (_, ty, _) = serve(&p, Resource::Mpd, "");
    assert_eq!(ty, "application/dash+xml");
}

#[test]
fn playlists_are_rendered_once_per_change_and_shared() {
    let (p, _) = started(AVC444, 6, PackagerConfig::default());
    let a = p
        .answer(Resource::MediaPlaylist(TrackKind::Video), "", 0, 0)
        .unwrap();
    let b = p
        .answer(Resource::MediaPlaylist(TrackKind::Video), "", 0, 0)
        .unwrap();
    let (Answer::Serve(a), Answer::Serve(b)) = (a, b) else {
        panic!()
    };
    assert_eq!(a.body.pieces()[0].as_ptr(), b.body.pieces()[0].as_ptr());
    // One render per batch of timeline events, never per frame: fewer
    // versions than frames fed.
    let parts: usize = p
        .timeline()
        .unwrap()
        .segments()
        .iter()
        .map(|s| s.parts.len())
        .sum();
    assert!(p.rendered_versions() as usize <= parts + 2 * 6 + 4);
}

#[test]
fn blocking_reloads_wait_then_serve_and_bad_ones_are_400_or_503() {
    let (mut p, _) = started(AVC444, 6, PackagerConfig::default());
    let (om, op) = p.timeline().unwrap().open_part().unwrap();
    let q = format!("_HLS_msn={om}&_HLS_part={op}");
    let media = Resource::MediaPlaylist(TrackKind::Audio);
    let Answer::Wait(w) = p.answer(media, &q, 1_000, 1_000).unwrap() else {
        panic!("should wait")
    };
    let limit = p.timeline().unwrap().timing().block_limit_ms();
    assert_eq!(
        (w.msn, w.part, w.deadline_ms),
        (om, Some(op), 1_000 + limit)
    );
    // The preload-hint part is held too.
    let hint = Resource::Part {
        track: TrackKind::Video,
        msn: om,
        part: op,
    };
    assert!(matches!(
        p.answer(hint, "", 1_000, 1_000),
        Ok(Answer::Wait(_))
    ));
    assert_eq!(
        p.answer(hint, "", 1_000, 1_000 + limit)
            .unwrap_err()
            .status(),
        503
    );
    assert_eq!(
        p.answer(media, &q, 1_000, 1_000 + limit).unwrap_err(),
        RequestError::TimedOut
    );
    let far = format!("_HLS_msn={}", om + 3);
    assert_eq!(p.answer(media, &far, 0, 0).unwrap_err().status(), 400);
    assert_eq!(
        p.answer(media, "_HLS_part=1", 0, 0).unwrap_err().status(),
        400
    );
    // Feed on until the part is ready: the same request is then served,
    // cacheable as a blocking-reload answer, listing the part.
    let (_, more) = stream(AVC444, 9, 0);
    let last = p.timeline().unwrap().last_part().map(|_| ()).is_some();
    assert!(last);
    let mut ev = Vec::new();
    let fed_to = 6 * 1000;
    for (f, dts) in more.iter().filter(|(_, d)| *d >= fed_to) {
        ev.clear();
        p.push(f, *dts, 0, &mut ev);
        if ev.contains(&PackagerEvent::PartReady { msn: om, part: op }) {
            break;
        }
    }
    assert!(ev.contains(&PackagerEvent::PartReady { msn: om, part: op }));
    let Answer::Serve(r) = p.answer(media, &q, 1_000, 1_100).unwrap() else {
        panic!("ready now")
    };
    assert_eq!(r.cache, Cacheability::BlockingReload);
    let body = String::from_utf8(r.body.to_bytes().to_vec()).unwrap();
    assert!(body.contains(&format!("a/{om}.{op}.m4s")), "{body}");
    assert!(matches!(
        p.answer(hint, "", 1_000, 1_100),
        Ok(Answer::Serve(_))
    ));
    // Unknown part: 404.
    let gone = Resource::Part {
        track: TrackKind::Video,
        msn: om + 5,
        part: 0,
    };
    assert_eq!(p.answer(gone, "", 0, 0).unwrap_err().status(), 404);
}

#[test]
fn eviction_follows_the_window_and_the_byte_cap() {
    let config = PackagerConfig::default();
    let (p, ev) = started(AVC444, 30, config.clone());
    let tl = p.timeline().unwrap();
    assert_eq!(tl.segments().len(), config.hls.window_segments);
    let first = tl.segments()[0].msn;
    let held: Vec<u64> = p.store().msns().collect();
    // The window's segments plus the open one, nothing older.
    assert_eq!(held.first(), Some(&first));
    assert!(held.len() <= config.hls.window_segments + 1);
    for msn in 0..first {
        assert!(ev.contains(&PackagerEvent::Evicted { msn }));
        assert_eq!(
            p.answer(Resource::TsSegment { msn }, "", 0, 0)
                .unwrap_err()
                .status(),
            404
        );
        assert!(p
            .answer(
                Resource::Segment {
                    track: TrackKind::Video,
                    msn
                },
                "",
                0,
                0
            )
            .is_err());
    }
    assert!(p.store().bytes() <= config.hls.max_bytes);

    // A small byte cap: the store stays under it.
    let mut small = PackagerConfig::default();
    small.hls.max_bytes = 200_000;
    let (p, _) = started(AVC444, 30, small.clone());
    assert!(p.timeline().unwrap().segments().len() < small.hls.window_segments);
    assert!(
        p.store().bytes() <= small.hls.max_bytes,
        "{} > {}",
        p.store().bytes(),
        small.hls.max_bytes
    );
}

fn only(kind: FrameKind, loops: u64) -> (Packager, Vec<PackagerEvent>) {
    let (seq, coded) = stream(AVC420, loops, 0);
    let mut p = Packager::new("live", "one", PackagerConfig::default(), Start::Publish).unwrap();
    let mut ev = Vec::new();
    for f in seq.iter().filter(|f| f.kind == kind) {
        p.push(f, 0, 0, &mut ev);
    }
    let coded: Vec<_> = coded.into_iter().filter(|(f, _)| f.kind == kind).collect();
    feed(&mut p, &coded, &mut ev);
    (p, ev)
}

#[test]
fn audio_only_and_video_only_streams_have_one_rendition() {
    for (kind, track, other) in [
        (FrameKind::Audio, TrackKind::Audio, TrackKind::Video),
        (FrameKind::Video, TrackKind::Video, TrackKind::Audio),
    ] {
        let (p, ev) = only(kind, 30);
        assert!(!ev.iter().any(|e| matches!(e, PackagerEvent::Warning(_))));
        let tl = p.timeline().unwrap();
        assert!(tl.segments().len() >= 3, "{kind:?}");
        let mv = text(&p, Resource::Multivariant, "");
        assert!(!mv.contains("EXT-X-MEDIA"), "{mv}");
        assert!(mv.contains(&format!("one/{}.m3u8", super::urls::track_letter(track))));
        let msn = tl.segments()[0].msn;
        serve(&p, Resource::Segment { track, msn }, "");
        serve(&p, Resource::TsSegment { msn }, "");
        assert_eq!(
            p.answer(Resource::MediaPlaylist(other), "", 0, 0)
                .unwrap_err()
                .status(),
            404
        );
        assert!(!text(&p, Resource::MediaPlaylist(track), "").contains("RENDITION-REPORT"));
    }
}

#[test]
fn a_codec_neither_muxer_carries_is_left_out_with_one_warning() {
    let (seq, coded) = stream(AVC420, 20, 0);
    let mut p = Packager::new("live", "mp3", PackagerConfig::default(), Start::Publish).unwrap();
    let mut ev = Vec::new();
    for f in seq.iter().filter(|f| f.kind == FrameKind::Video) {
        p.push(f, 0, 0, &mut ev);
    }
    // MP3 (sound format 2), 44.1 kHz stereo: no sequence header at all.
    let mp3 = Frame::new(
        FrameKind::Audio,
        0,
        Bytes::from_static(&[0x2F, 0xFF, 0xFB, 0x90, 0x00]),
    );
    for (f, dts) in &coded {
        let f = if f.kind == FrameKind::Audio { &mp3 } else { f };
        p.push(f, *dts, 0, &mut ev);
    }
    let warnings = warnings(&ev);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(matches!(
        warnings[0],
        PackagerWarning::TrackLeftOut {
            track: TrackKind::Audio,
            ..
        }
    ));
    assert!(warnings[0].to_string().contains("MP3") || warnings[0].to_string().contains("Mp3"));
    assert!(p.has_ts());
    let mv = text(&p, Resource::Multivariant, "");
    assert!(!mv.contains("mp4a"));
}

#[test]
fn a_new_publisher_continues_the_numbers_with_a_discontinuity() {
    let (mut p, _) = started(AVC444, 8, PackagerConfig::default());
    let before = p.timeline().unwrap().last_msn().unwrap();
    p.new_publisher();
    // The new publisher's stream starts 3 s after the old one's end (the
    // stream clock keeps DTS monotonic across publishers).
    let (seq, coded) = stream(AVC420, 20, 11_000);
    let mut ev = Vec::new();
    for f in &seq {
        p.push(f, 11_000, 0, &mut ev);
    }
    feed(&mut p, &coded, &mut ev);
    let tl = p.timeline().unwrap();
    let disc: Vec<_> = tl.segments().iter().filter(|s| s.discontinuity).collect();
    assert_eq!(disc.len(), 1);
    assert_eq!(disc[0].msn, before + 1, "numbers continue");
    let v = text(&p, Resource::MediaPlaylist(TrackKind::Video), "");
    assert!(v.contains("#EXT-X-DISCONTINUITY\n"), "{v}");
    // Both publishers' init segments are listed (different encoders).
    assert_eq!(v.matches("#EXT-X-MAP").count(), 2, "{v}");
    for r in p.store().resources() {
        if let Resource::Init { .. } = r {
            serve(&p, r, "");
        }
    }
    let ts = text(&p, Resource::TsPlaylist, "");
    assert!(ts.contains("#EXT-X-DISCONTINUITY\n"));
    let mpd = text(&p, Resource::Mpd, "");
    assert_eq!(mpd.matches("<Period").count(), 2, "{mpd}");
    // The new publisher's TS segment starts a fresh muxer: PAT first, with
    // continuity counter 0.
    let (b, _, _) = serve(&p, Resource::TsSegment { msn: disc[0].msn }, "");
    assert_eq!(&b[..4], &[0x47, 0x40, 0x00, 0x10]);
}

#[test]
fn a_packager_started_from_the_gop_cache_has_a_playable_playlist_at_once_and_the_same_numbers() {
    let (seq, coded) = stream(AVC444, 10, 0);
    let (origin, _) = started(AVC444, 10, PackagerConfig::default());
    // The GOP cache near the end: from a keyframe on, plus the one before,
    // taking the last keyframe that starts a segment (its predecessor lies
    // in an earlier 2 s window; the fixture has keyframes 40 ms apart).
    let keys: Vec<u64> = coded
        .iter()
        .filter(|(f, _)| f.kind == FrameKind::Video && f.keyframe)
        .map(|(_, d)| *d)
        .collect();
    let window = |d: u64| (d + 1000) / 2000;
    let (prev, last) = keys
        .windows(2)
        .map(|w| (w[0], w[1]))
        .rfind(|(a, b)| window(*a) < window(*b))
        .unwrap();
    let cached: Vec<(&Frame, u64)> = seq
        .iter()
        .map(|f| (f, last))
        .chain(
            coded
                .iter()
                .filter(|(_, d)| *d >= last)
                .map(|(f, d)| (f, *d)),
        )
        .collect();
    let mut ev = Vec::new();
    let p = Packager::from_gop_cache(
        "live",
        "cam",
        PackagerConfig::default(),
        Start::GopCache {
            prev_keyframe_dts: Some(prev),
            grid_origin_ms: 0,
        },
        cached,
        1_700_000_000_000,
        &mut ev,
    )
    .unwrap();
    let (m, part) = p.timeline().unwrap().last_part().unwrap();
    // Only the open segment so far: a plain playlist request is held until it
    // closes (hls.js takes parts-only playlists as empty), a blocking reload
    // for a part it holds is answered at once with its parts.
    match p.answer(Resource::MediaPlaylist(TrackKind::Video), "", 0, 0) {
        Ok(Answer::Wait(w)) => assert_eq!((w.msn, w.part), (m, None)),
        other => panic!("{other:?}"),
    }
    let v = text(
        &p,
        Resource::MediaPlaylist(TrackKind::Video),
        &format!("_HLS_msn={m}&_HLS_part={part}"),
    );
    assert!(v.contains("#EXT-X-PART:"), "{v}");
    assert!(v.contains("#EXT-X-PRELOAD-HINT"));
    // The MPD lists that open segment, so dash.js can start too.
    let mpd = text(&p, Resource::Mpd, "");
    assert_eq!(mpd.matches("<S ").count(), 2, "{mpd}");
    assert_eq!(origin.timeline().unwrap().open_part().unwrap().0, m);
    // Same media, same bytes as the origin's part.
    let r = Resource::Part {
        track: TrackKind::Video,
        msn: m,
        part,
    };
    assert_eq!(serve(&p, r, "").0, serve(&origin, r, "").0);
    // Every fMP4 part, segment and init both hold: the same bytes under the
    // same URL (TS segments are not compared: their continuity counters run
    // from where each box's muxer started).
    let mut compared = 0;
    for r in p.store().resources() {
        if matches!(r, Resource::TsSegment { .. }) {
            continue;
        }
        if let Ok(Answer::Serve(o)) = origin.answer(r, "", 0, 0) {
            assert_eq!(serve(&p, r, "").0, o.body.to_bytes(), "{r:?}");
            compared += 1;
        }
    }
    assert!(compared >= 6, "{compared}");
}

#[test]
fn nothing_is_served_before_the_stream_has_media_and_names_are_bounded() {
    let p = Packager::new("live", "x", PackagerConfig::default(), Start::Publish).unwrap();
    assert_eq!(
        p.answer(Resource::Multivariant, "", 0, 0)
            .unwrap_err()
            .status(),
        503
    );
    assert!(Packager::new("", "x", PackagerConfig::default(), Start::Publish).is_err());
    // A joining box whose first keyframe cannot be proven a segment start
    // (no previous keyframe known): tracks known, nothing published, 503.
    let (seq, coded) = stream(AVC444, 1, 0);
    let mut ev = Vec::new();
    let cached = seq
        .iter()
        .map(|f| (f, 0))
        .chain(coded.iter().take(5).map(|(f, d)| (f, *d)));
    let start = Start::GopCache {
        prev_keyframe_dts: None,
        grid_origin_ms: 0,
    };
    let p = Packager::from_gop_cache(
        "live",
        "x",
        PackagerConfig::default(),
        start,
        cached,
        0,
        &mut ev,
    )
    .unwrap();
    assert!(p.tracks().is_some());
    for r in [
        Resource::Multivariant,
        Resource::MediaPlaylist(TrackKind::Video),
    ] {
        assert_eq!(
            p.answer(r, "_HLS_msn=0", 0, 0).unwrap_err(),
            RequestError::NotStarted
        );
    }
    let mut bad = PackagerConfig::default();
    bad.hls.part_target_ms = 5;
    assert!(Packager::new("live", "x", bad, Start::Publish).is_err());
}

#[test]
fn the_segment_being_produced_streams_chunk_by_chunk_into_the_stored_segment() {
    let (seq, coded) = stream(AVC444, 10, 0);
    let mut p = Packager::new("live", "cam", PackagerConfig::default(), Start::Publish).unwrap();
    let mut ev = Vec::new();
    for f in &seq {
        p.push(f, 0, 0, &mut ev);
    }
    // Feed until a segment (not the first) has just opened.
    let mut at = 0;
    for (i, (f, dts)) in coded.iter().enumerate() {
        p.push(f, *dts, 0, &mut ev);
        if matches!(p.timeline().and_then(|t| t.open_part()), Some((m, 0)) if m >= 2) {
            at = i + 1;
            break;
        }
    }
    let tail = &coded[at..];
    let (msn, _) = p.timeline().unwrap().open_part().unwrap();
    let track = TrackKind::Video;
    let r = Resource::Segment { track, msn };
    assert!(matches!(
        p.answer(r, "", 0, 0),
        Ok(Answer::InProgress { msn: m, .. }) if m == msn
    ));
    let mut streamed = Vec::new();
    let mut next = 0;
    let mut rounds = 0;
    for (f, dts) in tail {
        ev.clear();
        p.push(f, *dts, 0, &mut ev);
        if ev
            .iter()
            .any(|e| matches!(e, PackagerEvent::PartReady { msn: m, .. } if *m == msn))
        {
            let c = p.segment_chunks(track, msn, next).unwrap();
            streamed.extend_from_slice(&c.body.to_bytes());
            next = c.next_part;
            rounds += 1;
            if c.complete {
                break;
            }
        }
    }
    let c = p.segment_chunks(track, msn, next).unwrap();
    assert!(c.complete && c.body.is_empty());
    assert!(rounds > 2, "streamed in {rounds} rounds");
    assert_eq!(&streamed[..], &serve(&p, r, "").0[..]);
    assert_eq!(
        p.segment_chunks(track, msn + 50, 0).unwrap_err().status(),
        404
    );
}

/// From `ffmpeg -f lavfi -i testsrc=size=352x200 -c:v libx265 -f hevc`
/// (the same parameter sets as `flv::hevc`'s tests).
const HEVC_VPS: &[u8] = &[
    0x40, 0x01, 0x0C, 0x01, 0xFF, 0xFF, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03,
    0x00, 0x00, 0x03, 0x00, 0x3C, 0x95, 0x98, 0x09,
];
const HEVC_SPS: &[u8] = &[
    0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
    0x00, 0x3C, 0xA0, 0x0B, 0x08, 0x0C, 0x96, 0x59, 0x59, 0xA4, 0x93, 0x2B, 0xC0, 0x5A, 0x02, 0x00,
    0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x32, 0x10,
];
const HEVC_PPS: &[u8] = &[0x44, 0x01, 0xC1, 0x72, 0xB4, 0x62, 0x40];

/// Legacy FLV HEVC (codec id 12) tags: the hvcC sequence header and coded
/// frames (length-prefixed NAL units; fMP4 does not decode them).
fn hevc_tags(count: u64) -> (Frame, Vec<(Frame, u64)>) {
    let mut seq = vec![
        0x1C, 0, 0, 0, 0, 1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 60, 0xF0, 0, 0xFC, 0xFD,
        0xF8, 0xF8, 0, 0, 0x0F, 3,
    ];
    for (t, nal) in [(32u8, HEVC_VPS), (33, HEVC_SPS), (34, HEVC_PPS)] {
        seq.extend_from_slice(&[0x80 | t, 0, 1]);
        seq.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        seq.extend_from_slice(nal);
    }
    let seq = Frame::new(FrameKind::Video, 0, Bytes::from(seq));
    let frames = (0..count)
        .map(|i| {
            let key = i % 25 == 0;
            let nal: &[u8] = if key {
                &[0x26, 0x01, 0xAF]
            } else {
                &[0x02, 0x01, 0xD0]
            };
            let mut body = vec![if key { 0x1C } else { 0x2C }, 1, 0, 0, 0];
            body.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            body.extend_from_slice(nal);
            let dts = i * 40;
            (
                Frame::new(FrameKind::Video, dts as u32, Bytes::from(body)),
                dts,
            )
        })
        .collect();
    (seq, frames)
}

#[test]
fn hevc_goes_out_as_fmp4_only_with_one_warning() {
    let (vseq, video) = hevc_tags(300);
    assert!(vseq.sequence_header && video[0].0.keyframe);
    let (seq, coded) = stream(AVC420, 30, 0);
    let mut frames: Vec<(Frame, u64)> = coded
        .into_iter()
        .filter(|(f, d)| f.kind == FrameKind::Audio && *d < 12_000)
        .chain(video)
        .collect();
    frames.sort_by_key(|(f, d)| (*d, f.kind == FrameKind::Audio));
    let mut p = Packager::new("live", "hevc", PackagerConfig::default(), Start::Publish).unwrap();
    let mut ev = Vec::new();
    p.push(&vseq, 0, 0, &mut ev);
    for f in seq.iter().filter(|f| f.kind == FrameKind::Audio) {
        p.push(f, 0, 0, &mut ev);
    }
    feed(&mut p, &frames, &mut ev);
    let warnings = warnings(&ev);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(matches!(warnings[0], PackagerWarning::NoTsRendition { .. }));
    assert!(!p.has_ts());
    assert_eq!(
        p.answer(Resource::TsPlaylist, "", 0, 0)
            .unwrap_err()
            .status(),
        404
    );
    let mv = text(&p, Resource::Multivariant, "");
    assert!(mv.contains("hvc1.1.2.L60.B0"), "{mv}");
    let msn = p.timeline().unwrap().segments()[0].msn;
    let (seg, _, _) = serve(
        &p,
        Resource::Segment {
            track: TrackKind::Video,
            msn,
        },
        "",
    );
    assert_eq!(&seg[4..8], b"moof");
    assert!(p.answer(Resource::TsSegment { msn }, "", 0, 0).is_err());
    serve(
        &p,
        Resource::Segment {
            track: TrackKind::Audio,
            msn,
        },
        "",
    );
}

#[test]
fn timestamps_that_stop_advancing_cannot_grow_a_part_or_a_ts_segment_without_bound() {
    let mut config = PackagerConfig::default();
    config.chunk.max_samples = 50;
    config.max_ts_segment_bytes = 5_000;
    let (seq, coded) = stream(AVC444, 2, 0);
    let mut p = Packager::new("live", "stuck", config, Start::Publish).unwrap();
    let mut ev = Vec::new();
    for f in &seq {
        p.push(f, 0, 0, &mut ev);
    }
    let video: Vec<&Frame> = coded
        .iter()
        .filter(|(f, _)| f.kind == FrameKind::Video)
        .map(|(f, _)| f)
        .collect();
    // The first keyframe, then 500 frames all at DTS 0.
    for i in 0..500 {
        p.push(video[if i == 0 { 0 } else { 1 + i % 20 }], 0, 0, &mut ev);
    }
    let full = ev
        .iter()
        .filter(|e| {
            matches!(
                e,
                PackagerEvent::Warning(PackagerWarning::PartFull { limit: 50, .. })
            )
        })
        .count();
    assert_eq!(full, 450);
    assert!(ev.iter().any(|e| matches!(
        e,
        PackagerEvent::Warning(PackagerWarning::TsSegmentFull { .. })
    )));
    // The stream resumes: frames that advance time go in, so the part
    // closes at PART-TARGET; over max_samples it is refused (typed, 404) and
    // the next part is whole again.
    for (f, dts) in coded.iter().filter(|(_, d)| *d >= 40) {
        p.push(f, *dts, 0, &mut ev);
    }
    let tl = p.timeline().unwrap();
    let parts = match tl.segment(0) {
        Some(s) => s.parts.as_slice(),
        None => tl.open_segment().unwrap().1,
    };
    assert!(parts[0].video.frames > 50 && parts[0].video.frames < 50 + 334 / 40 + 1);
    assert!(ev.iter().any(|e| matches!(
        e,
        PackagerEvent::Warning(PackagerWarning::Chunk {
            msn: 0,
            part: 0,
            error: crate::protocol::fmp4::Fmp4Error::TooManySamples { .. },
            ..
        })
    )));
    let part = |part| Resource::Part {
        track: TrackKind::Video,
        msn: 0,
        part,
    };
    assert_eq!(p.answer(part(0), "", 0, 0).unwrap_err().status(), 404);
    let (b, _, _) = serve(&p, part(1), "");
    assert_eq!(&b[4..8], b"moof");
}

#[test]
fn the_first_media_playlist_waits_for_the_first_segment_and_the_mpd_for_any() {
    let (seq, coded) = stream(AVC444, 6, 0);
    let mut p = Packager::new("live", "cam", PackagerConfig::default(), Start::Publish).unwrap();
    let mut ev = Vec::new();
    for f in &seq {
        p.push(f, 0, 1_700_000_000_000, &mut ev);
    }
    assert_eq!(
        p.answer(Resource::Mpd, "", 0, 0).unwrap_err(),
        RequestError::NotStarted
    );
    let early: Vec<_> = coded.iter().filter(|(_, d)| *d < 500).cloned().collect();
    feed(&mut p, &early, &mut ev);
    let tl = p.timeline().unwrap();
    assert!(tl.segments().is_empty());
    let (open, _) = tl.open_segment().unwrap();
    let limit = tl.timing().block_limit_ms();
    // The open segment is in the MPD already: dash.js can start.
    let mpd = text(&p, Resource::Mpd, "");
    assert_eq!(mpd.matches("<S ").count(), 2, "{mpd}");
    // A plain media playlist request is held until that segment closes...
    let playlist = Resource::MediaPlaylist(TrackKind::Video);
    match p.answer(playlist, "", 100, 100) {
        Ok(Answer::Wait(w)) => {
            assert_eq!((w.msn, w.part, w.deadline_ms), (open, None, 100 + limit))
        }
        other => panic!("{other:?}"),
    }
    // ... bounded: past the blocking limit it gets what there is.
    assert!(matches!(
        p.answer(playlist, "", 100, 100 + limit),
        Ok(Answer::Serve(_))
    ));
    // Once the first segment has closed, at once, listing it whole.
    let rest: Vec<_> = coded
        .iter()
        .filter(|(_, d)| (500..6000).contains(d))
        .cloned()
        .collect();
    feed(&mut p, &rest, &mut ev);
    assert!(!p.timeline().unwrap().segments().is_empty());
    let v = text(&p, playlist, "");
    assert!(v.contains("#EXTINF:"), "{v}");
}
