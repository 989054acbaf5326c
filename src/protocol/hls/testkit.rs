//! Test helpers: synthetic frame sequences and the invariants every timeline
//! must keep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::config::HlsConfig;
use super::timeline::{FrameMeta, Placement, Timeline, TimelineEvent, TrackKind};

/// Video at `fps_num/fps_den` fps with a keyframe every `gop` frames, from
/// frame `first` for `count` frames, plus AAC audio (1024 samples at 48 kHz)
/// interleaved in DTS order when `audio`. DTS rounded to ms like RTMP.
pub fn av_frames(fps_num: u64, fps_den: u64, gop: u64, count: u64, audio: bool) -> Vec<FrameMeta> {
    let mut out = Vec::new();
    let mut a = 0u64;
    for i in 0..count {
        let dts = i * 1000 * fps_den / fps_num;
        while audio && a * 1024 * 1000 / 48_000 <= dts {
            out.push(FrameMeta {
                track: TrackKind::Audio,
                keyframe: true,
                dts_ms: a * 1024 * 1000 / 48_000,
                size: 300,
            });
            a += 1;
        }
        out.push(FrameMeta {
            track: TrackKind::Video,
            keyframe: i % gop == 0,
            dts_ms: dts,
            size: if i % gop == 0 { 20_000 } else { 2_000 },
        });
    }
    out
}

/// Feeds every frame; returns placements and events.
pub fn feed(tl: &mut Timeline, frames: &[FrameMeta]) -> (Vec<Placement>, Vec<TimelineEvent>) {
    let mut ev = Vec::new();
    let mut pl = Vec::new();
    for f in frames {
        pl.push(tl.push(*f, 1_800_000_000_000 + f.dts_ms, &mut ev));
    }
    (pl, ev)
}

/// A config with a large window (so nothing is evicted in the tests that
/// compare whole histories).
pub fn big_window() -> HlsConfig {
    HlsConfig {
        window_segments: 64,
        ..HlsConfig::default()
    }
}

/// The spec's rules over a timeline's closed segments: numbers contiguous,
/// parts contiguous and indexed from 0, every part <= PART-TARGET (when
/// `strict_parts`), rounded EXTINF <= TARGETDURATION, parts sum to the segment.
pub fn check_invariants(tl: &Timeline, strict_parts: bool) {
    let timing = tl.timing();
    let segs: Vec<_> = tl.segments().iter().collect();
    for w in segs.windows(2) {
        assert_eq!(w[0].msn + 1, w[1].msn, "msn contiguous");
        // Holes only after a stall or before a new publisher.
        assert!(
            w[0].start_ms + w[0].duration_ms <= w[1].start_ms,
            "segments overlap at {}",
            w[1].msn
        );
    }
    for s in &segs {
        let rounded = (s.duration_ms + 500) / 1000;
        assert!(
            rounded <= u64::from(timing.target_duration_s),
            "segment {} lasts {} ms > TARGETDURATION {}",
            s.msn,
            s.duration_ms,
            timing.target_duration_s
        );
        if s.gap {
            assert!(s.parts.is_empty());
            continue;
        }
        let mut t = s.start_ms;
        for (i, p) in s.parts.iter().enumerate() {
            assert_eq!(p.index as usize, i);
            assert_eq!(p.msn, s.msn);
            assert_eq!(p.start_ms, t, "parts contiguous in {}", s.msn);
            if strict_parts {
                assert!(
                    p.duration_ms <= u64::from(timing.part_target_ms),
                    "part {}.{} lasts {} ms > PART-TARGET",
                    s.msn,
                    i,
                    p.duration_ms
                );
            }
            t += p.duration_ms;
        }
        assert_eq!(
            t,
            s.start_ms + s.duration_ms,
            "parts sum to segment {}",
            s.msn
        );
        assert_eq!(s.parts[0].independent, s.independent);
    }
}

/// No holes between segments (a stream without stalls).
pub fn assert_contiguous(tl: &Timeline) {
    let segs: Vec<_> = tl.segments().iter().collect();
    for w in segs.windows(2) {
        assert_eq!(
            w[0].start_ms + w[0].duration_ms,
            w[1].start_ms,
            "hole before segment {}",
            w[1].msn
        );
    }
}
