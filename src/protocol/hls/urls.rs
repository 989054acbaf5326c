//! Every HLS and DASH URL in one place: how they are written and how a
//! request path maps back to what it names.
//!
//! All of them are immutable (one URL, one set of bytes) and carry nothing
//! per viewer, so any cache can hold them:
//!
//! | path | what |
//! |---|---|
//! | `/{app}/{stream}.m3u8` | multivariant playlist (LL-HLS, fMP4) |
//! | `/{app}/{stream}/v.m3u8`, `/{app}/{stream}/a.m3u8` | video / audio media playlist |
//! | `/{app}/{stream}-ts.m3u8` | classic MPEG-TS media playlist |
//! | `/{app}/{stream}.mpd` | LL-DASH manifest |
//! | `/{app}/{stream}/{v,a}/init-{id:016x}.mp4` | init segment; `id` hashes the codec config, so a new config is a new URL |
//! | `/{app}/{stream}/{v,a}/{msn}.{part}.m4s` | one part (one CMAF chunk) |
//! | `/{app}/{stream}/{v,a}/{msn}.m4s` | a whole segment (its parts back to back; also the DASH `$Number$` URL) |
//! | `/{app}/{stream}/{msn}.ts` | a muxed MPEG-TS segment |
//!
//! Playlists refer to these relatively: a media playlist at
//! `/{app}/{stream}/v.m3u8` names its parts `v/{msn}.{part}.m4s`. The `-ts`
//! suffix wins over a stream whose own name ends in `-ts`.

use std::fmt::Write as _;

use thiserror::Error;

use super::timeline::TrackKind;

/// Longest app or stream name accepted in a path (bytes).
pub const MAX_NAME_LEN: usize = 256;
/// Most digits accepted for a number in a path (u64 fits in 20).
pub const MAX_DIGITS: usize = 20;

/// Why a path is not an HLS/DASH resource.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum UrlError {
    /// Not of any HLS/DASH shape (the caller tries its other routes).
    #[error("not an HLS or DASH path")]
    NotHls,
    /// The app or stream name is empty or longer than the limit.
    #[error("app or stream name empty or longer than {limit} bytes")]
    BadName {
        /// [`MAX_NAME_LEN`].
        limit: usize,
    },
    /// A number in the path is not decimal digits, or too long.
    #[error("{field} is not a decimal number of at most {limit} digits")]
    BadNumber {
        /// Which number.
        field: &'static str,
        /// [`MAX_DIGITS`].
        limit: usize,
    },
    /// The track letter is neither `v` nor `a`.
    #[error("unknown track {0:?}, expected \"v\" or \"a\"")]
    BadTrack(String),
    /// An init id that is not 16 hex digits.
    #[error("init id is not 16 hex digits")]
    BadInitId,
}

/// What a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// The LL-HLS multivariant playlist.
    Multivariant,
    /// A track's LL-HLS media playlist.
    MediaPlaylist(TrackKind),
    /// The MPEG-TS media playlist.
    TsPlaylist,
    /// The DASH manifest.
    Mpd,
    /// A track's init segment for codec-config id `id`.
    Init {
        /// Track.
        track: TrackKind,
        /// Codec-config hash.
        id: u64,
    },
    /// One part.
    Part {
        /// Track.
        track: TrackKind,
        /// Segment.
        msn: u64,
        /// Part index.
        part: u32,
    },
    /// A whole fMP4 segment.
    Segment {
        /// Track.
        track: TrackKind,
        /// Segment.
        msn: u64,
    },
    /// A whole MPEG-TS segment.
    TsSegment {
        /// Segment.
        msn: u64,
    },
}

/// A parsed request path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HlsPath<'a> {
    /// Application name.
    pub app: &'a str,
    /// Stream name.
    pub stream: &'a str,
    /// What is asked for.
    pub resource: Resource,
}

/// The path letter of a track.
pub fn track_letter(track: TrackKind) -> &'static str {
    match track {
        TrackKind::Video => "v",
        TrackKind::Audio => "a",
    }
}

fn track_from(s: &str) -> Result<TrackKind, UrlError> {
    match s {
        "v" => Ok(TrackKind::Video),
        "a" => Ok(TrackKind::Audio),
        other => Err(UrlError::BadTrack(other.chars().take(16).collect())),
    }
}

fn name(s: &str) -> Result<&str, UrlError> {
    if s.is_empty() || s.len() > MAX_NAME_LEN {
        return Err(UrlError::BadName {
            limit: MAX_NAME_LEN,
        });
    }
    Ok(s)
}

fn number(s: &str, field: &'static str) -> Result<u64, UrlError> {
    let bad = UrlError::BadNumber {
        field,
        limit: MAX_DIGITS,
    };
    if s.is_empty() || s.len() > MAX_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    s.parse().map_err(|_| bad)
}

/// Maps a request path (without the query) to what it names.
pub fn parse(path: &str) -> Result<HlsPath<'_>, UrlError> {
    let rest = path.strip_prefix('/').ok_or(UrlError::NotHls)?;
    let parts: Vec<&str> = rest.splitn(5, '/').collect();
    match parts.as_slice() {
        [app, file] => {
            let app = name(app)?;
            let (stream, resource) = if let Some(s) = file.strip_suffix("-ts.m3u8") {
                (s, Resource::TsPlaylist)
            } else if let Some(s) = file.strip_suffix(".m3u8") {
                (s, Resource::Multivariant)
            } else if let Some(s) = file.strip_suffix(".mpd") {
                (s, Resource::Mpd)
            } else {
                return Err(UrlError::NotHls);
            };
            Ok(HlsPath {
                app,
                stream: name(stream)?,
                resource,
            })
        }
        [app, stream, file] => {
            let (app, stream) = (name(app)?, name(stream)?);
            let resource = if let Some(t) = file.strip_suffix(".m3u8") {
                Resource::MediaPlaylist(track_from(t)?)
            } else if let Some(n) = file.strip_suffix(".ts") {
                Resource::TsSegment {
                    msn: number(n, "msn")?,
                }
            } else {
                return Err(UrlError::NotHls);
            };
            Ok(HlsPath {
                app,
                stream,
                resource,
            })
        }
        [app, stream, track, file] => {
            let (app, stream) = (name(app)?, name(stream)?);
            let track = track_from(track)?;
            let resource = if let Some(id) = file
                .strip_prefix("init-")
                .and_then(|f| f.strip_suffix(".mp4"))
            {
                if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(UrlError::BadInitId);
                }
                Resource::Init {
                    track,
                    id: u64::from_str_radix(id, 16).map_err(|_| UrlError::BadInitId)?,
                }
            } else if let Some(stem) = file.strip_suffix(".m4s") {
                match stem.split_once('.') {
                    Some((msn, part)) => {
                        let part = number(part, "part")?;
                        Resource::Part {
                            track,
                            msn: number(msn, "msn")?,
                            part: u32::try_from(part).map_err(|_| UrlError::BadNumber {
                                field: "part",
                                limit: MAX_DIGITS,
                            })?,
                        }
                    }
                    None => Resource::Segment {
                        track,
                        msn: number(stem, "msn")?,
                    },
                }
            } else {
                return Err(UrlError::NotHls);
            };
            Ok(HlsPath {
                app,
                stream,
                resource,
            })
        }
        _ => Err(UrlError::NotHls),
    }
}

/// Writes the absolute path of `resource` for `app`/`stream`.
pub fn write_path(out: &mut String, app: &str, stream: &str, resource: Resource) {
    let _ = write!(out, "/{app}/");
    match resource {
        Resource::Multivariant => {
            let _ = write!(out, "{stream}.m3u8");
        }
        Resource::TsPlaylist => {
            let _ = write!(out, "{stream}-ts.m3u8");
        }
        Resource::Mpd => {
            let _ = write!(out, "{stream}.mpd");
        }
        Resource::MediaPlaylist(t) => {
            let _ = write!(out, "{stream}/{}.m3u8", track_letter(t));
        }
        Resource::TsSegment { msn } => {
            let _ = write!(out, "{stream}/{msn}.ts");
        }
        Resource::Init { .. } | Resource::Part { .. } | Resource::Segment { .. } => {
            let _ = write!(out, "{stream}/");
            write_track_file(out, resource);
        }
    }
}

/// Writes `{v,a}/file` for init, part and segment resources: the URI a media
/// playlist (which sits in `/{app}/{stream}/`) uses.
pub fn write_track_file(out: &mut String, resource: Resource) {
    match resource {
        Resource::Init { track, id } => {
            let _ = write!(out, "{}/init-{id:016x}.mp4", track_letter(track));
        }
        Resource::Part { track, msn, part } => {
            let _ = write!(out, "{}/{msn}.{part}.m4s", track_letter(track));
        }
        Resource::Segment { track, msn } => {
            let _ = write!(out, "{}/{msn}.m4s", track_letter(track));
        }
        _ => {}
    }
}

/// A stable 64-bit id for a codec configuration (FNV-1a of its bytes), used
/// in init URLs so that a changed configuration gets a new URL.
pub fn config_id(config_bytes: &[u8]) -> u64 {
    config_bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(r: Resource) {
        let mut s = String::new();
        write_path(&mut s, "live", "cam-1", r);
        let p = parse(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!((p.app, p.stream, p.resource), ("live", "cam-1", r), "{s}");
    }

    #[test]
    fn every_resource_round_trips() {
        for t in [TrackKind::Video, TrackKind::Audio] {
            roundtrip(Resource::MediaPlaylist(t));
            roundtrip(Resource::Init {
                track: t,
                id: 0xdead_beef_0123_4567,
            });
            roundtrip(Resource::Part {
                track: t,
                msn: 123_456,
                part: 7,
            });
            roundtrip(Resource::Segment {
                track: t,
                msn: u64::MAX,
            });
        }
        roundtrip(Resource::Multivariant);
        roundtrip(Resource::TsPlaylist);
        roundtrip(Resource::Mpd);
        roundtrip(Resource::TsSegment { msn: 0 });
    }

    #[test]
    fn paths_are_the_documented_ones() {
        let mut s = String::new();
        write_path(
            &mut s,
            "app",
            "s",
            Resource::Part {
                track: TrackKind::Video,
                msn: 12,
                part: 3,
            },
        );
        assert_eq!(s, "/app/s/v/12.3.m4s");
        s.clear();
        write_path(&mut s, "app", "s", Resource::TsSegment { msn: 9 });
        assert_eq!(s, "/app/s/9.ts");
        s.clear();
        write_path(
            &mut s,
            "app",
            "s",
            Resource::Init {
                track: TrackKind::Audio,
                id: 1,
            },
        );
        assert_eq!(s, "/app/s/a/init-0000000000000001.mp4");
    }

    #[test]
    fn malformed_paths_get_typed_errors() {
        assert_eq!(
            parse("/live/s/v/x.m4s"),
            Err(UrlError::BadNumber {
                field: "msn",
                limit: MAX_DIGITS
            })
        );
        assert_eq!(
            parse("/live/s/v/1.-2.m4s"),
            Err(UrlError::BadNumber {
                field: "part",
                limit: MAX_DIGITS
            })
        );
        assert_eq!(
            parse("/live/s/v/1.99999999999.m4s"),
            Err(UrlError::BadNumber {
                field: "part",
                limit: MAX_DIGITS
            })
        );
        assert_eq!(
            parse("/live/s/v/123456789012345678901.m4s"),
            Err(UrlError::BadNumber {
                field: "msn",
                limit: MAX_DIGITS
            })
        );
        assert!(matches!(
            parse("/live/s/x/1.m4s"),
            Err(UrlError::BadTrack(_))
        ));
        assert_eq!(parse("/live/s/v/init-12.mp4"), Err(UrlError::BadInitId));
        assert_eq!(
            parse("/live/.m3u8"),
            Err(UrlError::BadName {
                limit: MAX_NAME_LEN
            })
        );
        assert_eq!(parse("/live/s.flv"), Err(UrlError::NotHls));
        assert_eq!(parse("/a/b/c/d/e"), Err(UrlError::NotHls));
        assert_eq!(parse("live/s.m3u8"), Err(UrlError::NotHls));
        let long = format!("/live/{}.m3u8", "x".repeat(MAX_NAME_LEN + 1));
        assert_eq!(
            parse(&long),
            Err(UrlError::BadName {
                limit: MAX_NAME_LEN
            })
        );
    }

    #[test]
    fn config_id_is_stable_and_distinguishes_configs() {
        assert_eq!(config_id(b"abc"), config_id(b"abc"));
        assert_ne!(config_id(b"abc"), config_id(b"abd"));
        // FNV-1a test vector.
        assert_eq!(config_id(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
