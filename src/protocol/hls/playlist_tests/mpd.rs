//! The LL-DASH MPD read back by roxmltree: when it first appears, its
//! timelines over the playlists' numbers, and its periods across publishers
//! and a sliding window.

use super::*;

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
