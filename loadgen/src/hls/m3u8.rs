//! A small bounded parser for the HLS playlists a low-latency player reads: the
//! multivariant playlist (the video variant and the audio rendition) and a media
//! playlist with the LL-HLS tags (`EXT-X-PART`, `EXT-X-PRELOAD-HINT`,
//! `EXT-X-SERVER-CONTROL`, `EXT-X-PART-INF`, `EXT-X-SKIP`, `EXT-X-MAP`).
//!
//! m3u8-rs (a ringcast dev-dependency) parses the classic tags but hands the LL-HLS
//! ones back as unparsed strings, so this reads the few tags a player needs and
//! ignores the rest. Every list is capped ([`MAX_SEGMENTS`], [`MAX_PARTS`]) and
//! over-long lines are refused; the body itself is capped by the HTTP layer.

use thiserror::Error;

/// Most segments accepted in one media playlist.
pub const MAX_SEGMENTS: usize = 1024;
/// Most parts accepted in one media playlist.
pub const MAX_PARTS: usize = 4096;
/// Longest line accepted (bytes).
pub const MAX_LINE: usize = 4096;

/// Why a playlist was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PlaylistError {
    /// It does not start with `#EXTM3U`.
    #[error("not an M3U8 playlist")]
    NotM3u8,
    /// A line is longer than [`MAX_LINE`].
    #[error("line longer than {MAX_LINE} bytes")]
    LineTooLong,
    /// More segments or parts than the caps.
    #[error("more than {limit} {what}")]
    TooMany {
        /// Segments or parts.
        what: &'static str,
        /// The cap.
        limit: usize,
    },
    /// A tag's value could not be read.
    #[error("bad {0}")]
    BadTag(&'static str),
    /// The multivariant playlist names no variant.
    #[error("multivariant playlist has no variant")]
    NoVariant,
}

/// What a multivariant playlist offers (URIs as written, relative to it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Multivariant {
    /// The first variant's media playlist.
    pub variant: String,
    /// The audio rendition's media playlist, if the variant has a separate one.
    pub audio: Option<String>,
}

/// One part (`EXT-X-PART`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Its segment's media sequence number.
    pub msn: u64,
    /// Its index in the segment, from 0.
    pub index: u32,
    /// Duration, ms.
    pub duration_ms: u64,
    /// URI as written.
    pub uri: String,
    /// `INDEPENDENT=YES`: starts with a keyframe.
    pub independent: bool,
}

/// One whole segment (`EXTINF` + URI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Media sequence number.
    pub msn: u64,
    /// Duration, ms.
    pub duration_ms: u64,
    /// URI as written.
    pub uri: String,
    /// `EXT-X-GAP`: no media behind it.
    pub gap: bool,
}

/// A media playlist, as far as a player needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MediaPlaylist {
    /// `EXT-X-TARGETDURATION`, ms.
    pub target_duration_ms: u64,
    /// `EXT-X-PART-INF:PART-TARGET`, ms.
    pub part_target_ms: Option<u64>,
    /// `EXT-X-SERVER-CONTROL:PART-HOLD-BACK`, ms.
    pub part_hold_back_ms: Option<u64>,
    /// `EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES`.
    pub can_block_reload: bool,
    /// The first listed (or skipped) segment's number.
    pub media_sequence: u64,
    /// The last `EXT-X-MAP` URI (the init segment of the newest media).
    pub map: Option<String>,
    /// Closed segments, oldest first (skipped ones are not listed).
    pub segments: Vec<Segment>,
    /// Every listed part, closed segments' and the open segment's, in order.
    pub parts: Vec<Part>,
    /// `EXT-X-PRELOAD-HINT:TYPE=PART` URI: the part being produced.
    pub preload_hint: Option<String>,
    /// `EXT-X-ENDLIST`: the stream is over.
    pub ended: bool,
}

impl MediaPlaylist {
    /// The number the next segment after the listed closed ones will have.
    pub fn next_msn(&self) -> u64 {
        self.segments
            .last()
            .map_or(self.media_sequence, |s| s.msn.saturating_add(1))
    }

    /// The last listed part's position.
    pub fn last_part(&self) -> Option<(u64, u32)> {
        self.parts.last().map(|p| (p.msn, p.index))
    }

    /// The part a low-latency player starts at: the newest independent part that
    /// starts at least `hold_back_ms` before the end of the listed parts (hls.js
    /// starts PART-HOLD-BACK behind the live edge and needs a keyframe to decode);
    /// the oldest independent part when none is that far back.
    pub fn start_part(&self, hold_back_ms: u64) -> Option<&Part> {
        let mut from_end = 0u64;
        let mut oldest = None;
        for p in self.parts.iter().rev() {
            from_end = from_end.saturating_add(p.duration_ms);
            if p.independent {
                if from_end >= hold_back_ms {
                    return Some(p);
                }
                oldest = Some(p);
            }
        }
        oldest
    }
}

/// Reads `#TAG:value` lines; yields (tag or URI line).
fn lines(text: &str) -> Result<impl Iterator<Item = &str>, PlaylistError> {
    let mut it = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if it.next() != Some("#EXTM3U") {
        return Err(PlaylistError::NotM3u8);
    }
    if text.lines().any(|l| l.len() > MAX_LINE) {
        return Err(PlaylistError::LineTooLong);
    }
    Ok(it)
}

/// Splits an attribute list (`A=1,B="x,y",C=NO`) into (name, value) pairs, with
/// quotes removed from quoted values.
pub fn attributes(list: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = list;
    std::iter::from_fn(move || {
        let (name, after) = rest.split_once('=')?;
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            let tail = q.get(end + 1..).unwrap_or_default();
            (q.get(..end)?, tail.strip_prefix(',').unwrap_or(tail))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        rest = next;
        Some((name.trim(), value))
    })
}

fn attr<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    attributes(list).find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// Parses decimal seconds (`2`, `0.334`, `1.5`) into milliseconds (truncating
/// below a millisecond).
pub fn seconds_ms(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut ms = 0u64;
    for (i, b) in frac.bytes().take(3).enumerate() {
        ms += u64::from(b - b'0') * [100, 10, 1].get(i).copied().unwrap_or(0);
    }
    whole.checked_mul(1000)?.checked_add(ms)
}

/// Parses a multivariant playlist.
pub fn parse_multivariant(text: &str) -> Result<Multivariant, PlaylistError> {
    let mut out = Multivariant::default();
    let mut want_uri = false;
    for line in lines(text)? {
        if let Some(a) = line.strip_prefix("#EXT-X-MEDIA:") {
            if attr(a, "TYPE") == Some("AUDIO") && out.audio.is_none() {
                out.audio = attr(a, "URI").map(str::to_owned);
            }
        } else if line.starts_with("#EXT-X-STREAM-INF:") {
            want_uri = out.variant.is_empty();
        } else if !line.starts_with('#') && want_uri {
            out.variant = line.to_owned();
            want_uri = false;
        }
    }
    if out.variant.is_empty() {
        return Err(PlaylistError::NoVariant);
    }
    Ok(out)
}

/// Parses a media playlist (LL-HLS or classic).
pub fn parse_media(text: &str) -> Result<MediaPlaylist, PlaylistError> {
    let mut pl = MediaPlaylist::default();
    let mut msn: Option<u64> = None;
    let mut part_index = 0u32;
    let mut extinf: Option<u64> = None;
    let mut gap = false;
    for line in lines(text)? {
        let Some(tag) = line.strip_prefix('#') else {
            // A URI line: closes the segment the EXTINF opened.
            let Some(duration_ms) = extinf.take() else {
                continue;
            };
            let n = *msn.get_or_insert(pl.media_sequence);
            if pl.segments.len() >= MAX_SEGMENTS {
                return Err(PlaylistError::TooMany {
                    what: "segments",
                    limit: MAX_SEGMENTS,
                });
            }
            pl.segments.push(Segment {
                msn: n,
                duration_ms,
                uri: line.to_owned(),
                gap: std::mem::take(&mut gap),
            });
            msn = Some(n.saturating_add(1));
            part_index = 0;
            continue;
        };
        let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
        match name {
            "EXT-X-TARGETDURATION" => {
                pl.target_duration_ms = value
                    .parse::<u64>()
                    .ok()
                    .and_then(|s| s.checked_mul(1000))
                    .ok_or(PlaylistError::BadTag("EXT-X-TARGETDURATION"))?;
            }
            "EXT-X-MEDIA-SEQUENCE" => {
                pl.media_sequence = value
                    .parse()
                    .map_err(|_| PlaylistError::BadTag("EXT-X-MEDIA-SEQUENCE"))?;
            }
            "EXT-X-SKIP" => {
                let skipped: u64 = attr(value, "SKIPPED-SEGMENTS")
                    .and_then(|v| v.parse().ok())
                    .ok_or(PlaylistError::BadTag("EXT-X-SKIP"))?;
                msn = Some(pl.media_sequence.saturating_add(skipped));
            }
            "EXT-X-SERVER-CONTROL" => {
                pl.can_block_reload = attr(value, "CAN-BLOCK-RELOAD") == Some("YES");
                pl.part_hold_back_ms = attr(value, "PART-HOLD-BACK").and_then(seconds_ms);
            }
            "EXT-X-PART-INF" => {
                pl.part_target_ms = Some(
                    attr(value, "PART-TARGET")
                        .and_then(seconds_ms)
                        .ok_or(PlaylistError::BadTag("EXT-X-PART-INF"))?,
                );
            }
            "EXT-X-MAP" => {
                pl.map = Some(
                    attr(value, "URI")
                        .ok_or(PlaylistError::BadTag("EXT-X-MAP"))?
                        .to_owned(),
                );
            }
            "EXTINF" => {
                let d = value.split(',').next().unwrap_or_default();
                extinf = Some(seconds_ms(d).ok_or(PlaylistError::BadTag("EXTINF"))?);
            }
            "EXT-X-GAP" => gap = true,
            "EXT-X-PART" => {
                if pl.parts.len() >= MAX_PARTS {
                    return Err(PlaylistError::TooMany {
                        what: "parts",
                        limit: MAX_PARTS,
                    });
                }
                let uri = attr(value, "URI").ok_or(PlaylistError::BadTag("EXT-X-PART"))?;
                let duration_ms = attr(value, "DURATION")
                    .and_then(seconds_ms)
                    .ok_or(PlaylistError::BadTag("EXT-X-PART"))?;
                pl.parts.push(Part {
                    msn: *msn.get_or_insert(pl.media_sequence),
                    index: part_index,
                    duration_ms,
                    uri: uri.to_owned(),
                    independent: attr(value, "INDEPENDENT") == Some("YES"),
                });
                part_index = part_index.saturating_add(1);
            }
            "EXT-X-PRELOAD-HINT" if attr(value, "TYPE") == Some("PART") => {
                pl.preload_hint = attr(value, "URI").map(str::to_owned);
            }
            "EXT-X-ENDLIST" => pl.ended = true,
            _ => {}
        }
    }
    if pl.target_duration_ms == 0 {
        return Err(PlaylistError::BadTag("EXT-X-TARGETDURATION"));
    }
    Ok(pl)
}

/// Resolves `uri` (from a playlist at `base_path`) to an absolute path on the same
/// server; `None` for a URI on another host.
pub fn resolve(base_path: &str, uri: &str) -> Option<String> {
    if let Some(rest) = uri
        .strip_prefix("http://")
        .or_else(|| uri.strip_prefix("https://"))
    {
        return rest
            .find('/')
            .map(|i| rest.get(i..).unwrap_or("/").to_owned());
    }
    if uri.starts_with('/') {
        return Some(uri.to_owned());
    }
    let base = base_path.split('?').next().unwrap_or(base_path);
    let dir = base
        .rfind('/')
        .map_or("/", |i| base.get(..=i).unwrap_or("/"));
    Some(format!("{dir}{uri}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LL: &str = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,PART-HOLD-BACK=1.002
#EXT-X-PART-INF:PART-TARGET=0.334
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-MAP:URI=\"v/init-0000000000000001.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z
#EXTINF:2.000,
v/7.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:02.000Z
#EXT-X-PART:DURATION=0.320,URI=\"v/8.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.320,URI=\"v/8.1.m4s\"
#EXTINF:0.640,
v/8.m4s
#EXT-X-PART:DURATION=0.320,URI=\"v/9.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.320,URI=\"v/9.1.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"v/9.2.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"a.m3u8\",LAST-MSN=9,LAST-PART=1
";

    #[test]
    fn reads_the_ll_hls_tags() {
        let pl = parse_media(LL).unwrap();
        assert_eq!(pl.target_duration_ms, 2000);
        assert_eq!(pl.part_target_ms, Some(334));
        assert_eq!(pl.part_hold_back_ms, Some(1002));
        assert!(pl.can_block_reload);
        assert_eq!(pl.map.as_deref(), Some("v/init-0000000000000001.mp4"));
        assert_eq!(
            pl.segments.iter().map(|s| s.msn).collect::<Vec<_>>(),
            [7, 8]
        );
        assert_eq!(pl.next_msn(), 9);
        let pos: Vec<(u64, u32)> = pl.parts.iter().map(|p| (p.msn, p.index)).collect();
        assert_eq!(pos, [(8, 0), (8, 1), (9, 0), (9, 1)]);
        assert_eq!(pl.preload_hint.as_deref(), Some("v/9.2.m4s"));
        assert!(!pl.ended);
        // 1 s behind the edge: parts 9.1, 9.0, 8.1 sum to 960 ms, so 8.0 (independent).
        assert_eq!(pl.start_part(1002).map(|p| (p.msn, p.index)), Some((8, 0)));
        assert_eq!(pl.start_part(300).map(|p| (p.msn, p.index)), Some((9, 0)));
        assert_eq!(
            pl.start_part(60_000).map(|p| (p.msn, p.index)),
            Some((8, 0)),
            "the oldest independent part when the playlist is short"
        );
    }

    #[test]
    fn skip_and_gap_keep_the_numbers() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXTINF:2.0,\n#EXT-X-GAP\nv/13.m4s\n#EXTINF:2,\nv/14.m4s\n#EXT-X-ENDLIST\n";
        let pl = parse_media(text).unwrap();
        assert_eq!(
            pl.segments
                .iter()
                .map(|s| (s.msn, s.gap))
                .collect::<Vec<_>>(),
            [(13, true), (14, false)]
        );
        assert!(pl.ended);
    }

    #[test]
    fn multivariant_variant_and_audio() {
        let text = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,URI=\"s/a.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1.4d401e,mp4a.40.2\",AUDIO=\"audio\"\ns/v.m3u8\n";
        let m = parse_multivariant(text).unwrap();
        assert_eq!(m.variant, "s/v.m3u8");
        assert_eq!(m.audio.as_deref(), Some("s/a.m3u8"));
        assert_eq!(
            parse_multivariant("#EXTM3U\n"),
            Err(PlaylistError::NoVariant)
        );
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        assert_eq!(parse_media("hello"), Err(PlaylistError::NotM3u8));
        assert_eq!(
            parse_media("#EXTM3U\n#EXTINF:x,\na\n"),
            Err(PlaylistError::BadTag("EXTINF"))
        );
        assert!(parse_media("#EXTM3U\n").is_err(), "no TARGETDURATION");
        let long = format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#{}\n",
            "x".repeat(MAX_LINE)
        );
        assert_eq!(parse_media(&long), Err(PlaylistError::LineTooLong));
        let mut many = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n".to_owned();
        for i in 0..=MAX_SEGMENTS {
            many.push_str(&format!("#EXTINF:1,\n{i}.ts\n"));
        }
        assert!(matches!(
            parse_media(&many),
            Err(PlaylistError::TooMany { .. })
        ));
        for s in ["", ".", "1.x", "-1"] {
            assert_eq!(seconds_ms(s), None, "{s:?}");
        }
        assert_eq!(seconds_ms("2"), Some(2000));
        assert_eq!(seconds_ms("0.3349"), Some(334));
        assert_eq!(attributes("A=\"unterminated").count(), 0);
    }

    #[test]
    fn resolves_relative_uris() {
        assert_eq!(
            resolve("/live/s.m3u8", "s/v.m3u8").as_deref(),
            Some("/live/s/v.m3u8")
        );
        assert_eq!(
            resolve("/live/s/v.m3u8?_HLS_msn=3", "v/3.1.m4s").as_deref(),
            Some("/live/s/v/3.1.m4s")
        );
        assert_eq!(resolve("/a/b", "/x.ts").as_deref(), Some("/x.ts"));
        assert_eq!(
            resolve("/a/b", "http://127.0.0.1:8080/y.ts").as_deref(),
            Some("/y.ts")
        );
    }
}
