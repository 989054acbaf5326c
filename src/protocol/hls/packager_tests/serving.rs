//! Answering requests: blocking reloads, what is served before any media,
//! name bounds, and eviction by window and byte cap.

use super::*;

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
