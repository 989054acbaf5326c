//! The LL-DASH manifest over the same CMAF chunks the LL-HLS playlists list.
//!
//! * `type="dynamic"`, one `Period` per publisher epoch present in the window
//!   (a new publisher is a new period, like `EXT-X-DISCONTINUITY` in HLS).
//! * `SegmentTemplate` with `$Number$` (the same numbers as the HLS media
//!   sequence, so `{v,a}/{msn}.m4s` serves both) and a `SegmentTimeline` with
//!   the exact start and duration of every closed segment: segments start at
//!   keyframes, not on a fixed grid, so `@duration` would misplace them.
//! * The segment being produced is the last `S`: its exact start and its
//!   *nominal* duration (to the end of its grid window,
//!   [`Timeline::open_segment_nominal`]), so a player can address it before
//!   it closes; the next render replaces that `d` with the real one. Its
//!   `$Number$` URL is the whole segment's, streamed while produced and
//!   byte-identical to the stored segment afterwards.
//! * `availabilityTimeOffset` = segment target - part target: the open
//!   segment becomes available one part after it starts and is streamed
//!   chunk by chunk; `availabilityTimeComplete="false"` puts dash.js into
//!   low-latency mode.
//! * `minimumUpdatePeriod` = one part target: the next segment is listed as
//!   soon as it opens, so a player refreshes often enough to see it before it
//!   finishes the current one (dash.js refreshes at most once a second).
//! * A timeline with no segment at all (nothing open, nothing closed) is not
//!   rendered: dash.js cannot start from an empty `SegmentTimeline`.
//! * `UTCTiming` points at the URL the caller passes (ringcast's own clock).
//!
//! Times: timescale 1000, media time = the stream timeline's DTS in ms (the
//! fMP4 muxer's `tfdt` must use the same), `availabilityStartTime` = the wall
//! clock at DTS 0, so a period's `start` and `presentationTimeOffset` are the
//! DTS where its publisher began (0 for the first), fixed for its life.

use std::fmt::Write as _;

use super::playlist::write_datetime;
use super::timeline::{Timeline, TrackKind};
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

/// One `S` of a `SegmentTimeline`: a closed segment, or the open one with
/// its nominal duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    msn: u64,
    start_ms: u64,
    duration_ms: u64,
    epoch: u64,
}

fn dur(out: &mut String, ms: u64) {
    let _ = write!(out, "PT{}.{:03}S", ms / 1000, ms % 1000);
}

fn write_track(
    out: &mut String,
    p: &MpdParams<'_>,
    kind: TrackKind,
    t: &MpdTrack,
    segs: &[Entry],
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

/// Renders the MPD into `out` (cleared first). Returns false, leaving `out`
/// empty, when the timeline has no segment yet (nothing to list).
pub fn render_mpd(out: &mut String, tl: &Timeline, p: &MpdParams<'_>) -> bool {
    out.clear();
    let timing = tl.timing();
    let mut segs: Vec<Entry> = tl
        .segments()
        .iter()
        .map(|s| Entry {
            msn: s.msn,
            start_ms: s.start_ms,
            duration_ms: s.duration_ms,
            epoch: s.epoch,
        })
        .collect();
    if !tl.is_finished() {
        if let Some(open) = tl.open_segment_nominal() {
            segs.push(Entry {
                msn: open.msn,
                start_ms: open.start_ms,
                duration_ms: open.duration_ms,
                epoch: open.epoch,
            });
        }
    }
    if segs.is_empty() {
        return false;
    }
    // availabilityStartTime: the wall clock at DTS 0, from the oldest segment
    // listed (closed, or else the open one).
    let ast = tl
        .segments()
        .front()
        .map(|s| s.wallclock_ms.saturating_sub(s.start_ms))
        .or_else(|| {
            let (_, _, wall) = tl.open_segment_flags()?;
            let open = tl.open_segment_nominal()?;
            Some(wall.saturating_sub(open.start_ms))
        })
        .unwrap_or(p.now_unix_ms);
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
    dur(out, u64::from(timing.part_target_ms));
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
    // One period per epoch, in order.
    let mut start = 0;
    let mut periods: Vec<&[Entry]> = Vec::new();
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
    for period in periods {
        let first = period.first();
        let epoch = first.map_or(0, |s| s.epoch);
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
    true
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
