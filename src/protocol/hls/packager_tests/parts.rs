//! Parts and segments: a chunk per track per part, segments made of their
//! parts, playlists rendered once per change, the open segment streamed chunk
//! by chunk, and when the first playlists appear.

use super::*;

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
