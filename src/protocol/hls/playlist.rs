//! Rendering the HLS playlists from the timeline: the LL-HLS media playlist
//! (full or `_HLS_skip=YES` delta), the multivariant playlist and the classic
//! MPEG-TS playlist. Each render is a pure function of the timeline's state,
//! so a version is rendered once and the bytes shared by every waiter.

use std::fmt::Write as _;

use super::timeline::{SegmentInfo, Timeline, TrackKind};
use super::urls::{self, Resource};

/// EXT-X-VERSION of the LL-HLS playlists: 9 is the floor for EXT-X-SKIP
/// (and above 6, the floor for EXT-X-MAP in a media playlist).
pub const LL_VERSION: u32 = 9;
/// EXT-X-VERSION of the MPEG-TS playlist (float EXTINF), for old players.
pub const TS_VERSION: u32 = 3;
/// Closed segments (counted back from the newest) that keep their EXT-X-PART
/// lines; older ones are listed whole (the spec: parts SHOULD go once more
/// than 3 target durations from the end; two segments are well inside).
pub const PART_SEGMENTS: usize = 2;

/// The init segment to use from a publisher epoch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitRef {
    /// First epoch (discontinuity sequence number) it applies to.
    pub from_epoch: u64,
    /// Its codec-config id ([`urls::config_id`]).
    pub id: u64,
}

/// What a media playlist render needs beyond the timeline.
#[derive(Clone, Copy, Debug)]
pub struct MediaParams<'a> {
    /// The playlist's track.
    pub track: TrackKind,
    /// The track's init segments by epoch, oldest first (at least one).
    pub inits: &'a [InitRef],
    /// Whether the other track exists (then an EXT-X-RENDITION-REPORT names it).
    pub other_rendition: bool,
    /// A `_HLS_skip=YES` delta update was asked for.
    pub skip: bool,
}

fn secs(out: &mut String, ms: u64) {
    let _ = write!(out, "{}.{:03}", ms / 1000, ms % 1000);
}

/// Formats Unix milliseconds as an ISO 8601 / RFC 3339 UTC date-time with
/// milliseconds (PROGRAM-DATE-TIME, MPD times).
pub fn write_datetime(out: &mut String, unix_ms: u64) {
    let days = unix_ms / 86_400_000;
    let rem = unix_ms % 86_400_000;
    // Howard Hinnant's civil_from_days.
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    );
}

fn init_for(inits: &[InitRef], epoch: u64) -> Option<u64> {
    inits
        .iter()
        .rev()
        .find(|i| i.from_epoch <= epoch)
        .or(inits.first())
        .map(|i| i.id)
}

/// The end of the playlist's media: the last closed part's end.
fn media_end(tl: &Timeline) -> u64 {
    if let Some((_, parts)) = tl.open_segment() {
        if let Some(p) = parts.last() {
            return p.start_ms + p.duration_ms;
        }
    }
    tl.segments()
        .back()
        .map_or(0, |s| s.start_ms + s.duration_ms)
}

/// How many leading segments a delta update replaces with EXT-X-SKIP: those
/// ending at least CAN-SKIP-UNTIL before the end of the playlist.
pub fn skippable_segments(tl: &Timeline) -> usize {
    let end = media_end(tl);
    let boundary = end.saturating_sub(tl.timing().can_skip_until_ms());
    if end < tl.timing().can_skip_until_ms() {
        return 0;
    }
    tl.segments()
        .iter()
        .take_while(|s| s.start_ms + s.duration_ms <= boundary)
        .count()
}

fn write_map(out: &mut String, track: TrackKind, id: u64) {
    out.push_str("#EXT-X-MAP:URI=\"");
    urls::write_track_file(out, Resource::Init { track, id });
    out.push_str("\"\n");
}

fn write_part_lines(out: &mut String, track: TrackKind, parts: &[super::timeline::PartInfo]) {
    for p in parts {
        out.push_str("#EXT-X-PART:DURATION=");
        secs(out, p.duration_ms);
        out.push_str(",URI=\"");
        urls::write_track_file(
            out,
            Resource::Part {
                track,
                msn: p.msn,
                part: p.index,
            },
        );
        out.push('"');
        if p.independent {
            out.push_str(",INDEPENDENT=YES");
        }
        out.push('\n');
    }
}

/// Renders a track's LL-HLS media playlist into `out` (cleared first).
pub fn render_media(out: &mut String, tl: &Timeline, params: MediaParams<'_>) {
    out.clear();
    let timing = tl.timing();
    let track = params.track;
    let segs = tl.segments();
    let first_msn = segs
        .front()
        .map(|s| s.msn)
        .or_else(|| tl.open_segment().map(|(m, _)| m))
        .unwrap_or(0);
    let first_epoch = segs
        .front()
        .map(|s| s.epoch.saturating_sub(u64::from(s.discontinuity)))
        .or_else(|| {
            tl.open_segment_flags()
                .map(|(d, e, _)| e.saturating_sub(u64::from(d)))
        })
        .unwrap_or(0);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{LL_VERSION}\n#EXT-X-TARGETDURATION:{}\n",
        timing.target_duration_s
    );
    out.push_str("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=");
    secs(out, timing.can_skip_until_ms());
    out.push_str(",PART-HOLD-BACK=");
    secs(out, timing.part_hold_back_ms());
    out.push_str("\n#EXT-X-PART-INF:PART-TARGET=");
    secs(out, u64::from(timing.part_target_ms));
    let _ = write!(
        out,
        "\n#EXT-X-MEDIA-SEQUENCE:{first_msn}\n#EXT-X-DISCONTINUITY-SEQUENCE:{first_epoch}\n"
    );
    let skipped = if params.skip && !tl.is_finished() {
        skippable_segments(tl)
    } else {
        0
    };
    if skipped > 0 {
        let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }
    let mut map: Option<u64> = None;
    let parts_from = segs.len().saturating_sub(PART_SEGMENTS);
    for (i, s) in segs.iter().enumerate().skip(skipped) {
        write_segment_head(
            out,
            track,
            params.inits,
            &mut map,
            s.discontinuity,
            s.epoch,
            s.wallclock_ms,
        );
        write_segment_body(out, track, s, i >= parts_from);
    }
    if let Some((_, parts)) = tl.open_segment() {
        if let Some((disc, epoch, wall)) = tl.open_segment_flags() {
            write_segment_head(out, track, params.inits, &mut map, disc, epoch, wall);
        }
        write_part_lines(out, track, parts);
        if let Some((hmsn, hpart)) = tl.open_part() {
            out.push_str("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"");
            urls::write_track_file(
                out,
                Resource::Part {
                    track,
                    msn: hmsn,
                    part: hpart,
                },
            );
            out.push_str("\"\n");
        }
    }
    if params.other_rendition {
        let other = match track {
            TrackKind::Video => TrackKind::Audio,
            TrackKind::Audio => TrackKind::Video,
        };
        let _ = write!(
            out,
            "#EXT-X-RENDITION-REPORT:URI=\"{}.m3u8\"",
            urls::track_letter(other)
        );
        // Both renditions share the timeline, hence the numbers.
        match (tl.last_part(), tl.last_closed_msn()) {
            (Some((m, p)), _) => {
                let _ = write!(out, ",LAST-MSN={m},LAST-PART={p}");
            }
            (None, Some(m)) => {
                let _ = write!(out, ",LAST-MSN={m}");
            }
            (None, None) => {}
        }
        out.push('\n');
    }
    if tl.is_finished() {
        out.push_str("#EXT-X-ENDLIST\n");
    }
}

#[allow(clippy::too_many_arguments)]
fn write_segment_head(
    out: &mut String,
    track: TrackKind,
    inits: &[InitRef],
    map: &mut Option<u64>,
    discontinuity: bool,
    epoch: u64,
    wallclock_ms: u64,
) {
    if discontinuity {
        out.push_str("#EXT-X-DISCONTINUITY\n");
    }
    if let Some(id) = init_for(inits, epoch) {
        if *map != Some(id) {
            write_map(out, track, id);
            *map = Some(id);
        }
    }
    out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
    write_datetime(out, wallclock_ms);
    out.push('\n');
}

fn write_segment_body(out: &mut String, track: TrackKind, s: &SegmentInfo, with_parts: bool) {
    if with_parts && !s.gap {
        write_part_lines(out, track, &s.parts);
    }
    out.push_str("#EXTINF:");
    secs(out, s.duration_ms);
    out.push_str(",\n");
    if s.gap {
        out.push_str("#EXT-X-GAP\n");
    }
    urls::write_track_file(out, Resource::Segment { track, msn: s.msn });
    out.push('\n');
}

/// Renders the classic MPEG-TS media playlist (whole segments only) into
/// `out`; it sits at `/{app}/{stream}-ts.m3u8`, so segment URIs are
/// `{stream}/{msn}.ts`.
pub fn render_ts(out: &mut String, tl: &Timeline, stream: &str) {
    out.clear();
    let segs = tl.segments();
    let first = segs.front();
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{TS_VERSION}\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
        tl.timing().target_duration_s,
        first.map_or(0, |s| s.msn),
        first.map_or(0, |s| s.epoch.saturating_sub(u64::from(s.discontinuity))),
    );
    for s in segs {
        if s.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
        write_datetime(out, s.wallclock_ms);
        out.push_str("\n#EXTINF:");
        secs(out, s.duration_ms);
        out.push_str(",\n");
        if s.gap {
            out.push_str("#EXT-X-GAP\n");
        }
        let _ = writeln!(out, "{stream}/{}.ts", s.msn);
    }
    if tl.is_finished() {
        out.push_str("#EXT-X-ENDLIST\n");
    }
}

/// The video variant as the multivariant playlist describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoVariant {
    /// RFC 6381 codec string ([`super::codecs::video_codec_string`]).
    pub codecs: String,
    /// Width and height in pixels, if known.
    pub resolution: Option<(u32, u32)>,
}

/// What the multivariant playlist lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variants {
    /// The video track, if any.
    pub video: Option<VideoVariant>,
    /// The audio codec string, if there is audio.
    pub audio_codecs: Option<String>,
    /// Peak bits per second (BANDWIDTH); see [`peak_bandwidth`].
    pub bandwidth: u64,
}

/// Peak bits per second over the window's segments, or `fallback` before
/// any segment closed.
pub fn peak_bandwidth(tl: &Timeline, fallback: u64) -> u64 {
    tl.segments()
        .iter()
        .filter(|s| s.duration_ms > 0 && !s.gap)
        .map(|s| s.bytes().saturating_mul(8_000) / s.duration_ms)
        .max()
        .unwrap_or(fallback)
}

/// Renders the multivariant playlist into `out`; it sits at
/// `/{app}/{stream}.m3u8`, so media playlists are `{stream}/{v,a}.m3u8`.
/// Video with audio: audio is an alternate rendition group; a single track:
/// one variant.
pub fn render_multivariant(out: &mut String, stream: &str, v: &Variants) {
    out.clear();
    let _ = write!(out, "#EXTM3U\n#EXT-X-VERSION:{LL_VERSION}\n");
    let codecs: Vec<&str> = v
        .video
        .as_ref()
        .map(|x| x.codecs.as_str())
        .into_iter()
        .chain(v.audio_codecs.as_deref())
        .collect();
    let codecs = codecs.join(",");
    match (&v.video, &v.audio_codecs) {
        (Some(video), audio) => {
            if audio.is_some() {
                let _ = writeln!(
                    out,
                    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,URI=\"{stream}/a.m3u8\""
                );
            }
            let _ = write!(
                out,
                "#EXT-X-STREAM-INF:BANDWIDTH={},CODECS=\"{codecs}\"",
                v.bandwidth
            );
            if let Some((w, h)) = video.resolution {
                let _ = write!(out, ",RESOLUTION={w}x{h}");
            }
            if audio.is_some() {
                out.push_str(",AUDIO=\"audio\"");
            }
            let _ = writeln!(out, "\n{stream}/v.m3u8");
        }
        (None, Some(_)) => {
            let _ = writeln!(
                out,
                "#EXT-X-STREAM-INF:BANDWIDTH={},CODECS=\"{codecs}\"\n{stream}/a.m3u8",
                v.bandwidth
            );
        }
        (None, None) => {}
    }
}
