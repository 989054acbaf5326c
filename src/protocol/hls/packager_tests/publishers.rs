//! Where a packager starts: a new publisher's discontinuity, and a packager
//! started from the GOP cache.

use super::*;

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
