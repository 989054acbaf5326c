//! Reading a live (LL-)DASH manifest the way dash.js does for a `SegmentTemplate`
//! with `$Number$` and a `SegmentTimeline`: the last period's video (and audio)
//! representation, its init and media URL templates, the segments listed, and
//! `availabilityTimeOffset`. Parsed with roxmltree; the document size is capped by
//! the HTTP layer and the timeline by [`MAX_SEGMENTS`].

use thiserror::Error;

use super::m3u8::seconds_ms;

/// Most `SegmentTimeline` segments accepted (after expanding `@r`).
pub const MAX_SEGMENTS: usize = 4096;

/// Why a manifest was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MpdError {
    /// Not well-formed XML.
    #[error("MPD is not XML: {0}")]
    Xml(String),
    /// No `Period` with a `SegmentTemplate` we can play.
    #[error("MPD has no playable {0} representation")]
    NoRepresentation(&'static str),
    /// An attribute could not be read.
    #[error("bad MPD attribute {0}")]
    BadAttribute(&'static str),
    /// More segments than the cap.
    #[error("more than {MAX_SEGMENTS} segments")]
    TooManySegments,
}

/// One listed segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DashSegment {
    /// `$Number$`.
    pub number: u64,
    /// Start, timescale ticks.
    pub start: u64,
    /// Duration, ticks.
    pub duration: u64,
}

/// One representation's addressing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DashTrack {
    /// Init segment URL (relative to the MPD).
    pub init: String,
    /// Media URL template with `$Number$` left in.
    pub media: String,
    /// Ticks per second.
    pub timescale: u64,
    /// `availabilityTimeOffset`, ms.
    pub ato_ms: u64,
    /// Listed segments, oldest first.
    pub segments: Vec<DashSegment>,
}

impl DashTrack {
    /// The media URL of segment `number`.
    pub fn media_url(&self, number: u64) -> String {
        self.media.replace("$Number$", &number.to_string())
    }

    /// The number of the segment after the listed ones (the one being produced).
    pub fn next_number(&self) -> Option<u64> {
        self.segments.last().map(|s| s.number.saturating_add(1))
    }
}

/// What a player needs from the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// `type="dynamic"`.
    pub dynamic: bool,
    /// `minimumUpdatePeriod`, ms.
    pub min_update_ms: Option<u64>,
    /// The video representation.
    pub video: Option<DashTrack>,
    /// The audio representation.
    pub audio: Option<DashTrack>,
    /// `availabilityStartTime`, Unix ms: the wall clock at media time 0.
    pub availability_start_ms: Option<u64>,
    /// `ServiceDescription/Latency@target`, ms: the latency a low-latency player
    /// aims for.
    pub target_latency_ms: Option<u64>,
}

impl DashTrack {
    /// The listed segment holding media time `ms`, or the one after the list (the
    /// segment being produced) when `ms` is past it: (number, its start in ms).
    pub fn segment_at(&self, ms: u64) -> Option<(u64, u64)> {
        let to_ms = |ticks: u64| ticks.saturating_mul(1000) / self.timescale.max(1);
        let first = self.segments.first()?;
        if ms < to_ms(first.start) {
            return Some((first.number, to_ms(first.start)));
        }
        for s in &self.segments {
            if ms < to_ms(s.start.saturating_add(s.duration)) {
                return Some((s.number, to_ms(s.start)));
            }
        }
        let last = self.segments.last()?;
        Some((
            last.number.saturating_add(1),
            to_ms(last.start.saturating_add(last.duration)),
        ))
    }
}

/// `2026-01-02T03:04:05.678Z` (UTC, as ringcast writes it) → Unix ms.
pub fn datetime_ms(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':');
    let (hh, mm) = (
        t.next()?.parse::<u64>().ok()?,
        t.next()?.parse::<u64>().ok()?,
    );
    let sec_ms = seconds_ms(t.next()?)?;
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    Some(days * 86_400_000 + hh * 3_600_000 + mm * 60_000 + sec_ms)
}

/// `PT1.5S`, `PT2M`, `PT0.334S` → ms (hours, minutes, seconds only).
pub fn duration_ms(s: &str) -> Option<u64> {
    let mut rest = s.strip_prefix("PT")?;
    let mut total = 0u64;
    while !rest.is_empty() {
        let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
        let (num, unit_rest) = rest.split_at(end);
        let ms = seconds_ms(num)?;
        let unit = unit_rest.chars().next()?;
        total = total.checked_add(match unit {
            'H' => ms.checked_mul(3600)?,
            'M' => ms.checked_mul(60)?,
            'S' => ms,
            _ => return None,
        })?;
        rest = unit_rest.get(1..)?;
    }
    Some(total)
}

fn num(node: roxmltree::Node<'_, '_>, name: &'static str) -> Result<Option<u64>, MpdError> {
    node.attribute(name)
        .map(|v| v.parse().map_err(|_| MpdError::BadAttribute(name)))
        .transpose()
}

fn track(
    period: roxmltree::Node<'_, '_>,
    content: &'static str,
) -> Result<Option<DashTrack>, MpdError> {
    let Some(set) = period.children().find(|n| {
        n.has_tag_name("AdaptationSet")
            && (n.attribute("contentType") == Some(content)
                || n.attribute("mimeType")
                    .is_some_and(|m| m.starts_with(content)))
    }) else {
        return Ok(None);
    };
    let rep = set.children().find(|n| n.has_tag_name("Representation"));
    let rep_id = rep.and_then(|r| r.attribute("id")).unwrap_or_default();
    let template = rep
        .and_then(|r| r.children().find(|n| n.has_tag_name("SegmentTemplate")))
        .or_else(|| set.children().find(|n| n.has_tag_name("SegmentTemplate")))
        .ok_or(MpdError::NoRepresentation(content))?;
    let (Some(init), Some(media)) = (
        template.attribute("initialization"),
        template.attribute("media"),
    ) else {
        return Err(MpdError::NoRepresentation(content));
    };
    let mut segments = Vec::new();
    let mut number = num(template, "startNumber")?.unwrap_or(1);
    let mut t = 0u64;
    if let Some(tl) = template
        .children()
        .find(|n| n.has_tag_name("SegmentTimeline"))
    {
        for s in tl.children().filter(|n| n.has_tag_name("S")) {
            if let Some(start) = num(s, "t")? {
                t = start;
            }
            let d = num(s, "d")?.ok_or(MpdError::BadAttribute("d"))?;
            let r = num(s, "r")?.unwrap_or(0);
            for _ in 0..=r {
                if segments.len() >= MAX_SEGMENTS {
                    return Err(MpdError::TooManySegments);
                }
                segments.push(DashSegment {
                    number,
                    start: t,
                    duration: d,
                });
                number = number.saturating_add(1);
                t = t.saturating_add(d);
            }
        }
    }
    let ato_ms = template
        .attribute("availabilityTimeOffset")
        .map(|v| seconds_ms(v).ok_or(MpdError::BadAttribute("availabilityTimeOffset")))
        .transpose()?
        .unwrap_or(0);
    Ok(Some(DashTrack {
        init: init.replace("$RepresentationID$", rep_id),
        media: media.replace("$RepresentationID$", rep_id),
        timescale: num(template, "timescale")?.unwrap_or(1).max(1),
        ato_ms,
        segments,
    }))
}

/// Parses a manifest.
pub fn parse(text: &str) -> Result<Manifest, MpdError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| MpdError::Xml(e.to_string()))?;
    let mpd = doc.root_element();
    if !mpd.has_tag_name("MPD") {
        return Err(MpdError::Xml("root is not MPD".into()));
    }
    let period = mpd
        .children()
        .rfind(|n| n.has_tag_name("Period"))
        .ok_or(MpdError::NoRepresentation("period"))?;
    let video = track(period, "video")?;
    let audio = track(period, "audio")?;
    if video.is_none() && audio.is_none() {
        return Err(MpdError::NoRepresentation("video or audio"));
    }
    let target_latency_ms = mpd
        .children()
        .find(|n| n.has_tag_name("ServiceDescription"))
        .and_then(|d| d.children().find(|n| n.has_tag_name("Latency")))
        .and_then(|l| l.attribute("target"))
        .and_then(|v| v.parse().ok());
    Ok(Manifest {
        availability_start_ms: mpd.attribute("availabilityStartTime").and_then(datetime_ms),
        target_latency_ms,
        dynamic: mpd.attribute("type") == Some("dynamic"),
        min_update_ms: mpd.attribute("minimumUpdatePeriod").and_then(duration_ms),
        video,
        audio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_ms("PT2.000S"), Some(2000));
        assert_eq!(duration_ms("PT1M0.5S"), Some(60_500));
        assert_eq!(duration_ms("PT1H"), Some(3_600_000));
        assert_eq!(duration_ms("P1D"), None);
        assert_eq!(duration_ms("PT1X"), None);
        assert_eq!(datetime_ms("1970-01-01T00:00:01.500Z"), Some(1500));
        assert_eq!(
            datetime_ms("2026-12-06T04:09:43.193Z"),
            Some(1_796_530_183_193)
        );
        assert_eq!(datetime_ms("2026-12-06 04:09:43Z"), None);
    }

    #[test]
    fn repeats_and_templates() {
        let text = r#"<MPD type="dynamic" minimumUpdatePeriod="PT2S"><Period id="0">
<AdaptationSet mimeType="video/mp4"><Representation id="v1">
<SegmentTemplate timescale="1000" startNumber="5" initialization="s/$RepresentationID$/init.mp4" media="s/$RepresentationID$/$Number$.m4s" availabilityTimeOffset="1.666">
<SegmentTimeline><S t="100" d="2000" r="2"/><S d="1000"/></SegmentTimeline></SegmentTemplate></Representation></AdaptationSet></Period></MPD>"#;
        let m = parse(text).unwrap();
        assert!(m.dynamic);
        assert_eq!(m.min_update_ms, Some(2000));
        assert!(m.audio.is_none());
        let v = m.video.unwrap();
        assert_eq!(v.init, "s/v1/init.mp4");
        assert_eq!(v.media_url(9), "s/v1/9.m4s");
        assert_eq!(v.ato_ms, 1666);
        let got: Vec<(u64, u64, u64)> = v
            .segments
            .iter()
            .map(|s| (s.number, s.start, s.duration))
            .collect();
        assert_eq!(
            got,
            [
                (5, 100, 2000),
                (6, 2100, 2000),
                (7, 4100, 2000),
                (8, 6100, 1000)
            ]
        );
        assert_eq!(v.next_number(), Some(9));
        assert_eq!(v.segment_at(0), Some((5, 100)));
        assert_eq!(v.segment_at(2100), Some((6, 2100)));
        assert_eq!(v.segment_at(7099), Some((8, 6100)));
        assert_eq!(
            v.segment_at(9000),
            Some((9, 7100)),
            "the one being produced"
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert!(matches!(parse("<MPD"), Err(MpdError::Xml(_))));
        assert!(parse("<MPD><Period/></MPD>").is_err());
        let many = format!(
            "<MPD><Period><AdaptationSet contentType=\"video\"><SegmentTemplate initialization=\"i\" media=\"$Number$\"><SegmentTimeline><S d=\"1\" r=\"{}\"/></SegmentTimeline></SegmentTemplate></AdaptationSet></Period></MPD>",
            MAX_SEGMENTS
        );
        assert_eq!(parse(&many), Err(MpdError::TooManySegments));
    }
}
