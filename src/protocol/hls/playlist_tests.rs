//! Playlists and the MPD, read back by independent parsers (m3u8-rs,
//! roxmltree) and checked against the spec's rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use m3u8_rs::{MediaPlaylist, Playlist};

use super::config::HlsConfig;
use super::mpd::{render_mpd, MpdParams, MpdTrack};
use super::playlist::{
    render_media, render_multivariant, render_ts, skippable_segments, write_datetime, InitRef,
    MediaParams, Variants, VideoVariant,
};
use super::testkit::{av_frames, check_invariants, feed};
use super::timeline::{FrameMeta, StartPoint, Timeline, TrackKind, Tracks};
use super::urls::{self, Resource};

const AV: Tracks = Tracks {
    video: true,
    audio: true,
};
const INITS: &[InitRef] = &[InitRef {
    from_epoch: 0,
    id: 0xabc,
}];

fn params(track: TrackKind, skip: bool) -> MediaParams<'static> {
    MediaParams {
        track,
        inits: INITS,
        other_rendition: true,
        skip,
    }
}

fn media(tl: &Timeline, track: TrackKind, skip: bool) -> String {
    let mut s = String::new();
    render_media(&mut s, tl, params(track, skip));
    s
}

fn parse_media(text: &str) -> MediaPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(Playlist::MediaPlaylist(p)) => p,
        other => panic!("not a media playlist: {other:?}\n{text}"),
    }
}

/// The attributes of the first line starting with `#tag:`.
fn attrs<'a>(text: &'a str, tag: &str) -> Option<Vec<(&'a str, &'a str)>> {
    let prefix = format!("#{tag}:");
    let line = text.lines().find(|l| l.starts_with(&prefix))?;
    Some(attr_list(&line[prefix.len()..]))
}

fn attr_list(s: &str) -> Vec<(&str, &str)> {
    // Attribute values here never contain commas inside quotes.
    s.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, v.trim_matches('"')))
        .collect()
}

fn attr<'a>(list: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    list.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn secs(v: &str) -> f64 {
    v.parse().unwrap()
}

/// Every `(msn, part)` named by EXT-X-PART lines, in order.
fn part_refs(text: &str, track: TrackKind) -> Vec<(u64, u32, f64, bool)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .map(|rest| {
            let a = attr_list(rest);
            let uri = format!("/live/s/{}", attr(&a, "URI").unwrap());
            let p = urls::parse(&uri).unwrap();
            match p.resource {
                Resource::Part {
                    track: t,
                    msn,
                    part,
                } => {
                    assert_eq!(t, track);
                    (
                        msn,
                        part,
                        secs(attr(&a, "DURATION").unwrap()),
                        attr(&a, "INDEPENDENT") == Some("YES"),
                    )
                }
                other => panic!("{other:?}"),
            }
        })
        .collect()
}

/// The spec's rules for one LL-HLS media playlist.
fn check_ll_rules(text: &str, tl: &Timeline, track: TrackKind) {
    let pl = parse_media(text);
    let timing = tl.timing();
    assert_eq!(pl.version, Some(9));
    assert_eq!(pl.target_duration, u64::from(timing.target_duration_s));
    let sc = attrs(text, "EXT-X-SERVER-CONTROL").unwrap();
    let pinf = attrs(text, "EXT-X-PART-INF").unwrap();
    let part_target = secs(attr(&pinf, "PART-TARGET").unwrap());
    let phb = secs(attr(&sc, "PART-HOLD-BACK").unwrap());
    assert!(
        phb >= 3.0 * part_target - 1e-9,
        "PART-HOLD-BACK {phb} < 3 x {part_target}"
    );
    assert_eq!(attr(&sc, "CAN-BLOCK-RELOAD"), Some("YES"));
    let csu = secs(attr(&sc, "CAN-SKIP-UNTIL").unwrap());
    assert!(csu >= 6.0 * pl.target_duration as f64);
    for seg in &pl.segments {
        assert!(
            (seg.duration.round() as u64) <= pl.target_duration,
            "EXTINF {} > TARGETDURATION",
            seg.duration
        );
    }
    // Parts: each <= PART-TARGET, (msn, part) strictly increasing and
    // contiguous, belonging to listed segments or the open one.
    let parts = part_refs(text, track);
    for w in parts.windows(2) {
        let (a, b) = ((w[0].0, w[0].1), (w[1].0, w[1].1));
        assert!(b == (a.0, a.1 + 1) || b == (a.0 + 1, 0), "{a:?} -> {b:?}");
    }
    for p in &parts {
        assert!(
            p.2 <= part_target + 1e-9,
            "part {p:?} > PART-TARGET {part_target}"
        );
    }
    // Segment URIs follow MEDIA-SEQUENCE (after any skipped segments).
    let skipped: u64 = attrs(text, "EXT-X-SKIP").map_or(0, |a| {
        attr(&a, "SKIPPED-SEGMENTS").unwrap().parse().unwrap()
    });
    for (i, seg) in pl.segments.iter().enumerate() {
        let msn = pl.media_sequence + skipped + i as u64;
        let mut want = String::new();
        urls::write_track_file(&mut want, Resource::Segment { track, msn });
        assert_eq!(seg.uri, want);
    }
    // The preload hint names the part after the last listed one.
    let hint = attrs(text, "EXT-X-PRELOAD-HINT").unwrap();
    assert_eq!(attr(&hint, "TYPE"), Some("PART"));
    let (hm, hp) = tl.open_part().unwrap();
    let mut want = String::new();
    urls::write_track_file(
        &mut want,
        Resource::Part {
            track,
            msn: hm,
            part: hp,
        },
    );
    assert_eq!(attr(&hint, "URI"), Some(want.as_str()));
    if let Some(last) = parts.last() {
        assert!((hm, hp) == (last.0, last.1 + 1) || (hm, hp) == (last.0 + 1, 0));
    }
    // The rendition report names the other playlist with our last part.
    let rr = attrs(text, "EXT-X-RENDITION-REPORT").unwrap();
    let (lm, lp) = tl.last_part().unwrap();
    assert_eq!(attr(&rr, "LAST-MSN"), Some(lm.to_string().as_str()));
    assert_eq!(attr(&rr, "LAST-PART"), Some(lp.to_string().as_str()));
    assert!(
        !attr(&rr, "URI").unwrap().starts_with('/'),
        "must be relative"
    );
}

fn running() -> Timeline {
    let mut tl = Timeline::new(HlsConfig::default(), AV, StartPoint::PublishStart).unwrap();
    feed(&mut tl, &av_frames(30, 1, 60, 30 * 21 + 12, true));
    tl
}

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

fn mpd_text(tl: &Timeline) -> String {
    let mut s = String::new();
    let rendered = render_mpd(
        &mut s,
        tl,
        &MpdParams {
            stream: "cam",
            utc_timing_url: "/time?iso&ms",
            video: Some(MpdTrack {
                codecs: "avc1.64001f".into(),
                init_id: 7,
                bandwidth: 600_000,
                resolution: Some((640, 360)),
            }),
            audio: Some(MpdTrack {
                codecs: "mp4a.40.2".into(),
                init_id: 8,
                bandwidth: 128_000,
                resolution: None,
            }),
            now_unix_ms: 1_800_000_100_000,
        },
    );
    assert_eq!(rendered, !s.is_empty());
    s
}

/// `(t, d)` of every `S` of the video `SegmentTemplate` of each period, and
/// each period's `startNumber`.
fn video_timelines(text: &str) -> Vec<(u64, Vec<(u64, u64)>)> {
    let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    doc.root_element()
        .children()
        .filter(|n| n.has_tag_name("Period"))
        .map(|p| {
            let tmpl = p
                .descendants()
                .find(|n| n.has_tag_name("SegmentTemplate"))
                .unwrap();
            let ss = tmpl
                .descendants()
                .filter(|n| n.has_tag_name("S"))
                .map(|n| {
                    (
                        n.attribute("t").unwrap().parse().unwrap(),
                        n.attribute("d").unwrap().parse().unwrap(),
                    )
                })
                .collect();
            (tmpl.attribute("startNumber").unwrap().parse().unwrap(), ss)
        })
        .collect()
}

#[test]
fn no_mpd_without_a_segment_and_the_first_open_segment_is_listed_at_once() {
    let mut tl = Timeline::new(HlsConfig::default(), AV, StartPoint::PublishStart).unwrap();
    // Nothing packaged: no MPD at all (dash.js cannot start from an empty
    // SegmentTimeline; the request waits instead).
    assert_eq!(mpd_text(&tl), "");
    // A third of a second in: the open first segment is the one `S`, from DTS
    // 0, one target long (the GOP is not known yet), so a player can start.
    feed(&mut tl, &av_frames(30, 1, 30, 10, true));
    assert!(tl.segments().is_empty());
    let text = mpd_text(&tl);
    assert_eq!(video_timelines(&text), vec![(0, vec![(0, 2000)])]);
    let doc = roxmltree::Document::parse(&text).unwrap();
    // Refreshed every part target, so the next segment is seen as it opens.
    assert_eq!(
        doc.root_element().attribute("minimumUpdatePeriod"),
        Some("PT0.334S")
    );
    // Once it closes, its real duration replaces the nominal one and the
    // next open segment follows it.
    feed(&mut tl, &av_frames(30, 1, 30, 40, true)[10..]);
    let first = &tl.segments()[0];
    assert_eq!((first.start_ms, first.duration_ms), (0, 1000));
    let open = tl.open_segment_nominal().unwrap();
    assert_eq!(
        video_timelines(&mpd_text(&tl)),
        vec![(0, vec![(0, 1000), (1000, open.duration_ms)])]
    );
    // A finished stream lists only what closed.
    let mut ev = Vec::new();
    tl.finish(1400, &mut ev);
    let listed = video_timelines(&mpd_text(&tl));
    assert_eq!(listed[0].1.len(), tl.segments().len());
}

#[test]
fn a_new_publishers_open_segment_opens_its_period() {
    let mut tl = Timeline::new(HlsConfig::default(), AV, StartPoint::PublishStart).unwrap();
    let first = av_frames(30, 1, 60, 30 * 6, true);
    feed(&mut tl, &first);
    tl.new_publisher();
    let base = first.last().unwrap().dts_ms + 300;
    // The new publisher's first half second: its first segment is still open.
    let second: Vec<FrameMeta> = av_frames(30, 1, 60, 15, true)
        .into_iter()
        .map(|mut f| {
            f.dts_ms += base;
            f
        })
        .collect();
    feed(&mut tl, &second);
    let (open_msn, _) = tl.open_segment().unwrap();
    let periods = video_timelines(&mpd_text(&tl));
    assert_eq!(periods.len(), 2, "{periods:?}");
    assert_eq!(periods[1].0, open_msn);
    assert_eq!(periods[1].1.len(), 1);
    assert_eq!(periods[1].1[0].0, base);
}

#[test]
fn the_mpd_is_a_dynamic_low_latency_manifest_over_the_same_numbers() {
    let tl = running();
    let text = mpd_text(&tl);
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mpd = doc.root_element();
    assert_eq!(mpd.tag_name().name(), "MPD");
    assert_eq!(mpd.attribute("type"), Some("dynamic"));
    assert!(mpd
        .attribute("availabilityStartTime")
        .unwrap()
        .ends_with('Z'));
    let utc = mpd
        .children()
        .find(|n| n.has_tag_name("UTCTiming"))
        .unwrap();
    assert_eq!(utc.attribute("value"), Some("/time?iso&ms"));
    assert_eq!(
        utc.attribute("schemeIdUri"),
        Some("urn:mpeg:dash:utc:http-iso:2014")
    );
    let periods: Vec<_> = mpd
        .children()
        .filter(|n| n.has_tag_name("Period"))
        .collect();
    assert_eq!(periods.len(), 1);
    let sets: Vec<_> = periods[0]
        .children()
        .filter(|n| n.has_tag_name("AdaptationSet"))
        .collect();
    assert_eq!(sets.len(), 2);
    for set in sets {
        let tmpl = set
            .descendants()
            .find(|n| n.has_tag_name("SegmentTemplate"))
            .unwrap();
        assert_eq!(tmpl.attribute("availabilityTimeComplete"), Some("false"));
        let ato: f64 = tmpl
            .attribute("availabilityTimeOffset")
            .unwrap()
            .parse()
            .unwrap();
        assert!((ato - 1.666).abs() < 1e-9);
        let start: u64 = tmpl.attribute("startNumber").unwrap().parse().unwrap();
        assert_eq!(start, tl.segments()[0].msn);
        let media = tmpl.attribute("media").unwrap();
        let letter = if set.attribute("contentType") == Some("video") {
            "v"
        } else {
            "a"
        };
        assert_eq!(media, format!("cam/{letter}/$Number$.m4s"));
        // $Number$ URLs are the HLS whole-segment URLs.
        let seg_url = format!("/live/{}", media.replace("$Number$", &start.to_string()));
        assert!(matches!(
            urls::parse(&seg_url).unwrap().resource,
            Resource::Segment { msn, .. } if msn == start
        ));
        let init = format!("/live/{}", tmpl.attribute("initialization").unwrap());
        assert!(matches!(
            urls::parse(&init).unwrap().resource,
            Resource::Init { .. }
        ));
        let ss: Vec<(u64, u64)> = tmpl
            .descendants()
            .filter(|n| n.has_tag_name("S"))
            .map(|n| {
                (
                    n.attribute("t").unwrap().parse().unwrap(),
                    n.attribute("d").unwrap().parse().unwrap(),
                )
            })
            .collect();
        // Every closed segment, then the open one with its nominal duration
        // (addressable before it closes: LL-DASH streams it).
        assert_eq!(ss.len(), tl.segments().len() + 1);
        for (s, seg) in ss.iter().zip(tl.segments()) {
            assert_eq!(*s, (seg.start_ms, seg.duration_ms));
        }
        let open = tl.open_segment_nominal().unwrap();
        assert_eq!(ss.last(), Some(&(open.start_ms, open.duration_ms)));
        assert_eq!(open.msn, start + tl.segments().len() as u64);
        for w in ss.windows(2) {
            assert_eq!(w[0].0 + w[0].1, w[1].0, "timeline contiguous");
        }
    }
}

#[test]
fn a_new_publisher_is_a_new_period() {
    let mut tl = Timeline::new(
        HlsConfig {
            window_segments: 12,
            ..HlsConfig::default()
        },
        AV,
        StartPoint::PublishStart,
    )
    .unwrap();
    let first = av_frames(30, 1, 60, 30 * 6, true);
    feed(&mut tl, &first);
    tl.new_publisher();
    let base = first.last().unwrap().dts_ms + 300;
    let second: Vec<FrameMeta> = av_frames(30, 1, 60, 30 * 6 + 1, true)
        .into_iter()
        .map(|mut f| {
            f.dts_ms += base;
            f
        })
        .collect();
    feed(&mut tl, &second);
    let text = mpd_text(&tl);
    let doc = roxmltree::Document::parse(&text).unwrap();
    let periods: Vec<_> = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("Period"))
        .collect();
    assert_eq!(periods.len(), 2);
    assert_eq!(periods[0].attribute("id"), Some("0"));
    assert_eq!(periods[1].attribute("id"), Some("1"));
    assert_eq!(
        periods[1].attribute("start"),
        Some(format!("PT{}.{:03}S", base / 1000, base % 1000).as_str())
    );
    let start1: u64 = periods[1]
        .descendants()
        .find(|n| n.has_tag_name("SegmentTemplate"))
        .unwrap()
        .attribute("startNumber")
        .unwrap()
        .parse()
        .unwrap();
    let disc = tl.segments().iter().find(|s| s.discontinuity).unwrap();
    assert_eq!(start1, disc.msn);
    assert_eq!(periods[0].attribute("start"), Some("PT0.000S"));
}

#[test]
fn periods_and_availability_start_stay_fixed_as_the_window_slides() {
    let mut tl = Timeline::new(HlsConfig::default(), AV, StartPoint::PublishStart).unwrap();
    let frames = av_frames(30, 1, 60, 30 * 40, true);
    let mut ev = Vec::new();
    let mut seen: Option<(String, String)> = None;
    for (i, f) in frames.iter().enumerate() {
        tl.push(*f, 1_800_000_000_000 + f.dts_ms, &mut ev);
        if i % 97 != 0 || tl.segments().is_empty() {
            continue;
        }
        let text = mpd_text(&tl);
        let doc = roxmltree::Document::parse(&text).unwrap();
        let root = doc.root_element();
        let period = root.children().find(|n| n.has_tag_name("Period")).unwrap();
        let now = (
            root.attribute("availabilityStartTime").unwrap().to_string(),
            period.attribute("start").unwrap().to_string(),
        );
        match &seen {
            None => seen = Some(now),
            Some(s) => assert_eq!(s, &now),
        }
    }
    assert!(tl.segments()[0].msn > 5, "the window slid");
}
