//! The HLS playlists (media, MPEG-TS and multivariant) read back by m3u8-rs
//! and checked against the LL-HLS rules: fixed targets, growing numbers, delta
//! updates, gaps, the end of the stream and datetimes.

use super::*;

#[test]
fn the_media_playlist_parses_and_keeps_the_ll_hls_rules() {
    let tl = running();
    check_invariants(&tl, true);
    for track in [TrackKind::Video, TrackKind::Audio] {
        let text = media(&tl, track, false);
        check_ll_rules(&text, &tl, track);
        let pl = parse_media(&text);
        assert_eq!(pl.segments.len(), 6);
        assert_eq!(pl.media_sequence, tl.segments()[0].msn);
        assert!(pl.segments.iter().all(|s| s.program_date_time.is_some()));
        assert!(
            pl.segments[0].map.is_some(),
            "EXT-X-MAP before the first segment"
        );
        assert!(!pl.end_list);
    }
    let text = media(&tl, TrackKind::Video, false);
    assert!(text.contains("#EXT-X-MAP:URI=\"v/init-0000000000000abc.mp4\""));
    // Parts for the last two closed segments and the open one.
    let parts = part_refs(&text, TrackKind::Video);
    assert_eq!(parts.first().unwrap().0, tl.segments()[4].msn);
    assert_eq!(parts.last().unwrap().0, tl.open_part().unwrap().0);
    assert!(
        parts.iter().filter(|p| p.1 == 0).all(|p| p.3),
        "part 0 of a GOP is INDEPENDENT"
    );
}

#[test]
fn target_duration_and_server_control_never_change_and_numbers_only_grow() {
    let mut tl = Timeline::new(HlsConfig::default(), AV, StartPoint::PublishStart).unwrap();
    let mut frames = av_frames(30, 1, 60, 30 * 15, true);
    // A 4 s GOP stretch, then a new publisher.
    let base = frames.last().unwrap().dts_ms + 33;
    frames.extend(
        av_frames(30, 1, 120, 30 * 12, true)
            .into_iter()
            .map(|mut f| {
                f.dts_ms += base;
                f
            }),
    );
    let split = frames.len();
    let base2 = frames.last().unwrap().dts_ms + 500;
    frames.extend(
        av_frames(25, 1, 50, 25 * 12, true)
            .into_iter()
            .map(|mut f| {
                f.dts_ms += base2;
                f
            }),
    );
    let mut ev = Vec::new();
    let mut fixed: Option<(String, String, String)> = None;
    let (mut last_ms, mut last_ds) = (0u64, 0u64);
    let mut last_part: Option<(u64, u32)> = None;
    for (i, f) in frames.iter().enumerate() {
        if i == split {
            tl.new_publisher();
        }
        tl.push(*f, 1_800_000_000_000 + f.dts_ms, &mut ev);
        if tl.open_part().is_none() || tl.last_part().is_none() || i % 7 != 0 {
            continue;
        }
        let text = media(&tl, TrackKind::Video, false);
        check_ll_rules(&text, &tl, TrackKind::Video);
        let line = |t: &str| text.lines().find(|l| l.starts_with(t)).unwrap().to_string();
        let now = (
            line("#EXT-X-TARGETDURATION:"),
            line("#EXT-X-SERVER-CONTROL:"),
            line("#EXT-X-PART-INF:"),
        );
        match &fixed {
            None => fixed = Some(now),
            Some(f) => assert_eq!(f, &now),
        }
        let pl = parse_media(&text);
        assert!(pl.media_sequence >= last_ms);
        assert!(pl.discontinuity_sequence >= last_ds);
        last_ms = pl.media_sequence;
        last_ds = pl.discontinuity_sequence;
        let lp = tl.last_part();
        assert!(lp >= last_part, "{lp:?} < {last_part:?}");
        last_part = lp;
    }
    let text = media(&tl, TrackKind::Video, false);
    assert!(text.contains("#EXT-X-DISCONTINUITY\n"));
    let pl = parse_media(&text);
    assert!(pl.segments.iter().any(|s| s.discontinuity));
}

#[test]
fn delta_updates_skip_only_whole_segments_older_than_the_skip_boundary() {
    let cfg = HlsConfig {
        window_segments: 20,
        ..HlsConfig::default()
    };
    let mut tl = Timeline::new(cfg, AV, StartPoint::PublishStart).unwrap();
    feed(&mut tl, &av_frames(30, 1, 60, 30 * 50 + 7, true));
    let full = parse_media(&media(&tl, TrackKind::Video, false));
    let text = media(&tl, TrackKind::Video, true);
    let delta = parse_media(&text);
    let skip = attrs(&text, "EXT-X-SKIP").unwrap();
    let n: usize = attr(&skip, "SKIPPED-SEGMENTS").unwrap().parse().unwrap();
    assert!(n > 0);
    assert_eq!(n, skippable_segments(&tl));
    assert_eq!(delta.media_sequence, full.media_sequence);
    assert_eq!(delta.segments.len() + n, full.segments.len());
    assert_eq!(delta.segments[0].uri, full.segments[n].uri);
    // Every skipped segment ends at least CAN-SKIP-UNTIL before the end of
    // the playlist; the first one kept does not.
    let sc = attrs(&text, "EXT-X-SERVER-CONTROL").unwrap();
    let csu = secs(attr(&sc, "CAN-SKIP-UNTIL").unwrap());
    let parts = part_refs(&text, TrackKind::Video);
    let listed: f64 = full
        .segments
        .iter()
        .map(|s| f64::from(s.duration))
        .sum::<f64>()
        + parts
            .iter()
            .filter(|p| p.0 == tl.open_part().unwrap().0)
            .map(|p| p.2)
            .sum::<f64>();
    let mut t = 0.0;
    for (i, s) in full.segments.iter().enumerate() {
        t += f64::from(s.duration);
        if i < n {
            assert!(
                listed - t >= csu - 1e-6,
                "segment {i} skipped inside the boundary"
            );
        } else {
            assert!(listed - t < csu, "segment {i} could have been skipped");
            break;
        }
    }
    // The delta still carries the map, hint and report.
    assert!(delta.segments[0].map.is_some());
    check_ll_rules(&text, &tl, TrackKind::Video);
}

#[test]
fn short_windows_never_skip() {
    let tl = running();
    let text = media(&tl, TrackKind::Video, true);
    assert!(!text.contains("#EXT-X-SKIP"));
}

#[test]
fn gaps_and_the_end_of_the_stream_are_listed() {
    let mut tl = Timeline::new(HlsConfig::default(), AV, StartPoint::PublishStart).unwrap();
    let mut frames = av_frames(30, 1, 60, 30 * 4, true);
    frames.extend(av_frames(30, 1, 60, 30 * 4, true).into_iter().map(|mut f| {
        f.dts_ms += 8_000;
        f
    }));
    feed(&mut tl, &frames);
    let mut ev = Vec::new();
    tl.finish(12_000, &mut ev);
    let text = media(&tl, TrackKind::Video, false);
    let pl = parse_media(&text);
    assert!(pl.end_list);
    assert!(!text.contains("PRELOAD-HINT"), "no hint with ENDLIST");
    let gaps: Vec<_> = pl
        .segments
        .iter()
        .filter(|s| s.unknown_tags.iter().any(|t| t.tag == "X-GAP"))
        .map(|s| s.uri.clone())
        .collect();
    assert_eq!(gaps, vec!["v/2.m4s", "v/3.m4s"]);
}

#[test]
fn the_ts_playlist_lists_whole_segments_only() {
    let tl = running();
    let mut text = String::new();
    render_ts(&mut text, &tl, "cam");
    let pl = parse_media(&text);
    assert_eq!(pl.version, Some(3));
    assert_eq!(pl.target_duration, u64::from(tl.timing().target_duration_s));
    assert!(!text.contains("EXT-X-PART"));
    for (i, s) in pl.segments.iter().enumerate() {
        let msn = pl.media_sequence + i as u64;
        assert_eq!(s.uri, format!("cam/{msn}.ts"));
        let path = format!("/live/{}", s.uri);
        let p = urls::parse(&path).unwrap();
        assert_eq!(p.resource, Resource::TsSegment { msn });
        assert!((f64::from(s.duration) - 2.0).abs() < 1e-6);
    }
}

#[test]
fn the_multivariant_playlist_groups_audio_or_lists_a_single_track() {
    let mut text = String::new();
    let v = Variants {
        video: Some(VideoVariant {
            codecs: "avc1.64001f".into(),
            resolution: Some((1280, 720)),
        }),
        audio_codecs: Some("mp4a.40.2".into()),
        bandwidth: 1_500_000,
    };
    render_multivariant(&mut text, "cam", &v);
    let Ok(Playlist::MasterPlaylist(m)) = m3u8_rs::parse_playlist_res(text.as_bytes()) else {
        panic!("{text}");
    };
    assert_eq!(m.variants.len(), 1);
    let var = &m.variants[0];
    assert_eq!(var.uri, "cam/v.m3u8");
    assert_eq!(var.codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
    assert_eq!(var.audio.as_deref(), Some("audio"));
    assert_eq!(var.bandwidth, 1_500_000);
    let res = var.resolution.unwrap();
    assert_eq!((res.width, res.height), (1280, 720));
    assert_eq!(m.alternatives.len(), 1);
    assert_eq!(m.alternatives[0].uri.as_deref(), Some("cam/a.m3u8"));
    assert_eq!(m.alternatives[0].group_id, "audio");
    assert!(m.alternatives[0].default);
    // Every URI maps back to a media playlist.
    assert_eq!(
        urls::parse("/live/cam/v.m3u8").unwrap().resource,
        Resource::MediaPlaylist(TrackKind::Video)
    );

    let audio_only = Variants {
        video: None,
        audio_codecs: Some("mp4a.40.2".into()),
        bandwidth: 128_000,
    };
    render_multivariant(&mut text, "radio", &audio_only);
    let Ok(Playlist::MasterPlaylist(m)) = m3u8_rs::parse_playlist_res(text.as_bytes()) else {
        panic!("{text}");
    };
    assert_eq!(m.variants.len(), 1);
    assert!(m.alternatives.is_empty());
    assert_eq!(m.variants[0].uri, "radio/a.m3u8");
    assert_eq!(m.variants[0].codecs.as_deref(), Some("mp4a.40.2"));
}

#[test]
fn datetimes_are_rfc3339_utc_with_milliseconds() {
    let mut s = String::new();
    write_datetime(&mut s, 1_800_000_000_123);
    assert_eq!(s, "2027-01-15T08:00:00.123Z");
    s.clear();
    write_datetime(&mut s, 951_782_400_000);
    assert_eq!(s, "2000-02-29T00:00:00.000Z");
}
