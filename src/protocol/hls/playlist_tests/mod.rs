//! Playlists and the MPD, read back by independent parsers (m3u8-rs,
//! roxmltree) and checked against the spec's rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod m3u8;
mod mpd;

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
