//! The LL-DASH manifest over the same CMAF chunks the LL-HLS playlists list.
//!
//! * `type="dynamic"`, one `Period` per publisher epoch present in the window
//!   (a new publisher is a new period, like `EXT-X-DISCONTINUITY` in HLS).
//! * `SegmentTemplate` with `$Number$` (the same numbers as the HLS media
//!   sequence, so `{v,a}/{msn}.m4s` serves both) and a `SegmentTimeline` with
//!   the exact start and duration of every closed segment: segments start at
//!   keyframes, not on a fixed grid, so `@duration` would misplace them.
//! * `availabilityTimeOffset` = segment target - part target: the open
//!   segment (the one after the last `S`) can be requested one part after it
//!   starts and is streamed chunk by chunk; `availabilityTimeComplete="false"`
//!   puts dash.js into low-latency mode.
//! * `UTCTiming` points at the URL the caller passes (ringcast's own clock).
//!
//! Times: timescale 1000, media time = the stream timeline's DTS in ms (the
//! fMP4 muxer's `tfdt` must use the same), `availabilityStartTime` = the wall
//! clock at DTS 0, so a period's `start` and `presentationTimeOffset` are the
//! DTS where its publisher began (0 for the first), fixed for its life.

use std::fmt::Write as _;

use super::playlist::write_datetime;
use super::timeline::{SegmentInfo, Timeline, TrackKind};
use super::urls::{self, Resource};

/// One track as the manifest describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpdTrack {
    /// RFC 6381 codec string.
    pub codecs: String,
    /// Codec-config id of its current init segment ([`urls::config_id`]).
    pub init_id: u64,
    /// Bits per second.
    pub bandwidth: u64,
    /// Video width and height, if known.
    pub resolution: Option<(u32, u32)>,
}

/// What an MPD render needs beyond the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpdParams<'a> {
    /// Stream name (the MPD sits at `/{app}/{stream}.mpd`; URLs are relative).
    pub stream: &'a str,
    /// Where players read the server's clock (`http-iso`).
    pub utc_timing_url: &'a str,
    /// The video track, if any.
    pub video: Option<MpdTrack>,
    /// The audio track, if any.
    pub audio: Option<MpdTrack>,
    /// Wall clock now (Unix ms), for `publishTime`.
    pub now_unix_ms: u64,
}

fn dur(out: &mut String, ms: u64) {
    let _ = write!(out, "PT{}.{:03}S", ms / 1000, ms % 1000);
}

fn write_track(
    out: &mut String,
    p: &MpdParams<'_>,
    kind: TrackKind,
    t: &MpdTrack,
    segs: &[&SegmentInfo],
    period_start_ms: u64,
    ato_ms: u64,
) {
    let (content, mime, sap) = match kind {
        TrackKind::Video => ("video", "video/mp4", ""),
        TrackKind::Audio => ("audio", "audio/mp4", " startWithSAP=\"1\""),
    };
    let _ = write!(
        out,
        "    <AdaptationSet contentType=\"{content}\" mimeType=\"{mime}\" segmentAlignment=\"true\"{sap}>\n      <Representation id=\"{}\" codecs=\"{}\" bandwidth=\"{}\"",
        urls::track_letter(kind),
        t.codecs,
        t.bandwidth
    );
    if let Some((w, h)) = t.resolution {
        let _ = write!(out, " width=\"{w}\" height=\"{h}\"");
    }
    out.push_str(">\n");
    let first = segs.first();
    let _ = write!(
        out,
        "        <SegmentTemplate timescale=\"1000\" presentationTimeOffset=\"{}\" startNumber=\"{}\" initialization=\"{}/",
        period_start_ms,
        first.map_or(0, |s| s.msn),
        xml_escape(p.stream)
    );
    urls::write_track_file(
        out,
        Resource::Init {
            track: kind,
            id: t.init_id,
        },
    );
    let _ = write!(
        out,
        "\" media=\"{}/{}/$Number$.m4s\" availabilityTimeOffset=\"{}.{:03}\" availabilityTimeComplete=\"false\">\n          <SegmentTimeline>\n",
        xml_escape(p.stream),
        urls::track_letter(kind),
        ato_ms / 1000,
        ato_ms % 1000
    );
    for s in segs {
        let _ = writeln!(
            out,
            "            <S t=\"{}\" d=\"{}\"/>",
            s.start_ms, s.duration_ms
        );
    }
    out.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n    </AdaptationSet>\n");
}

/// Renders the MPD into `out` (cleared first).
pub fn render_mpd(out: &mut String, tl: &Timeline, p: &MpdParams<'_>) {
    out.clear();
    let timing = tl.timing();
    let segs: Vec<&SegmentInfo> = tl.segments().iter().collect();
    let ast = segs
        .first()
        .map_or(p.now_unix_ms, |s| s.wallclock_ms.saturating_sub(s.start_ms));
    let ato = u64::from(
        timing
            .segment_target_ms
            .saturating_sub(timing.part_target_ms),
    );
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" type=\"dynamic\" availabilityStartTime=\"");
    write_datetime(out, ast);
    out.push_str("\" publishTime=\"");
    write_datetime(out, p.now_unix_ms);
    out.push_str("\" minimumUpdatePeriod=\"");
    dur(out, u64::from(timing.segment_target_ms));
    out.push_str("\" minBufferTime=\"");
    dur(out, u64::from(timing.part_target_ms) * 2);
    out.push_str("\" timeShiftBufferDepth=\"");
    dur(
        out,
        u64::from(timing.segment_target_ms) * tl.config().window_segments as u64,
    );
    out.push_str("\" maxSegmentDuration=\"");
    dur(out, timing.target_duration_ms());
    out.push_str("\">\n  <ServiceDescription id=\"0\">\n    <Latency target=\"");
    let _ = write!(
        out,
        "{}\" max=\"{}\"/>\n  </ServiceDescription>\n",
        timing.part_hold_back_ms() + u64::from(timing.part_target_ms),
        u64::from(timing.segment_target_ms) * 3
    );
    // One period per epoch, in order; an empty window still gets one period so
    // the manifest is valid before the first segment closes.
    let mut start = 0;
    let mut periods: Vec<&[&SegmentInfo]> = Vec::new();
    for i in 1..=segs.len() {
        let split = match (segs.get(i), segs.get(i - 1)) {
            (Some(a), Some(b)) => a.epoch != b.epoch,
            _ => true,
        };
        if split {
            periods.push(segs.get(start..i).unwrap_or(&[]));
            start = i;
        }
    }
    if periods.is_empty() {
        periods.push(&[]);
    }
    for period in periods {
        let first = period.first();
        let epoch = first
            .map(|s| s.epoch)
            .or_else(|| tl.open_segment_flags().map(|(_, e, _)| e))
            .unwrap_or(0);
        // The period starts where its publisher's media began (DTS 0 for the
        // first), not at the window's first segment, so it never moves.
        let start_ms = tl
            .epoch_start(epoch)
            .or(first.map(|s| s.start_ms))
            .unwrap_or(0);
        let _ = write!(out, "  <Period id=\"{epoch}\" start=\"");
        dur(out, start_ms);
        out.push_str("\">\n");
        if let Some(v) = &p.video {
            write_track(out, p, TrackKind::Video, v, period, start_ms, ato);
        }
        if let Some(a) = &p.audio {
            write_track(out, p, TrackKind::Audio, a, period, start_ms, ato);
        }
        out.push_str("  </Period>\n");
    }
    let _ = writeln!(
        out,
        "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"{}\"/>\n</MPD>",
        xml_escape(p.utc_timing_url)
    );
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
