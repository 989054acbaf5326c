//! Request-target handling for the API: splitting the raw target into
//! percent-decoded segments (so `%2F` inside a stream name stays inside it), and
//! percent-encoding names back into play URLs.

/// Longest request target the API accepts.
pub const MAX_TARGET_LEN: usize = 2048;

/// Longest decoded path segment (an app or stream name).
pub const MAX_SEGMENT_LEN: usize = 256;

/// Most path segments the API looks at; its deepest route has five.
pub const MAX_SEGMENTS: usize = 8;

/// Why a request target was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The target is longer than [`MAX_TARGET_LEN`].
    #[error("request target of {len} bytes exceeds the limit of {limit}")]
    TargetTooLong {
        /// Target length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A decoded segment is longer than [`MAX_SEGMENT_LEN`].
    #[error("path segment of {len} bytes exceeds the limit of {limit}")]
    SegmentTooLong {
        /// Segment length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// More than [`MAX_SEGMENTS`] segments.
    #[error("more than {limit} path segments")]
    TooManySegments {
        /// The limit.
        limit: usize,
    },
    /// A `%` not followed by two hex digits, or a decoded control character.
    #[error("malformed percent-encoding in path")]
    BadEscape,
    /// A segment does not decode to UTF-8.
    #[error("path segment is not UTF-8")]
    NotUtf8,
    /// The target does not start with `/`.
    #[error("request target must be origin-form (start with '/')")]
    NotOriginForm,
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_segment(raw: &str) -> Result<String, PathError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        let decoded = if b == b'%' {
            let hi = bytes
                .next()
                .and_then(hex_value)
                .ok_or(PathError::BadEscape)?;
            let lo = bytes
                .next()
                .and_then(hex_value)
                .ok_or(PathError::BadEscape)?;
            (hi << 4) | lo
        } else {
            b
        };
        if decoded.is_ascii_control() {
            return Err(PathError::BadEscape);
        }
        out.push(decoded);
        if out.len() > MAX_SEGMENT_LEN {
            return Err(PathError::SegmentTooLong {
                len: raw.len(),
                limit: MAX_SEGMENT_LEN,
            });
        }
    }
    String::from_utf8(out).map_err(|_| PathError::NotUtf8)
}

/// Splits a raw request target (`/api/v1/streams/live/cam%201?x=1`) into its
/// decoded path segments (`["api", "v1", "streams", "live", "cam 1"]`),
/// dropping the query and empty segments from doubled or trailing slashes.
pub fn split_target(target: &str) -> Result<Vec<String>, PathError> {
    if target.len() > MAX_TARGET_LEN {
        return Err(PathError::TargetTooLong {
            len: target.len(),
            limit: MAX_TARGET_LEN,
        });
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let path = path.strip_prefix('/').ok_or(PathError::NotOriginForm)?;
    let mut segments = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        if segments.len() == MAX_SEGMENTS {
            return Err(PathError::TooManySegments {
                limit: MAX_SEGMENTS,
            });
        }
        segments.push(decode_segment(raw)?);
    }
    Ok(segments)
}

/// Percent-encodes `s` for use as one URL path segment: everything but RFC 3986
/// unreserved characters is escaped, so `/`, `?`, `#` and spaces in a stream name
/// cannot change the URL's structure.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_decodes_segments() {
        assert_eq!(
            split_target("/api/v1/streams/live/cam%201?token=x").unwrap(),
            ["api", "v1", "streams", "live", "cam 1"]
        );
        assert_eq!(split_target("/").unwrap(), Vec::<String>::new());
        assert_eq!(split_target("//api//v1/").unwrap(), ["api", "v1"]);
    }

    #[test]
    fn encoded_slash_stays_inside_its_segment() {
        assert_eq!(split_target("/a%2Fb/c").unwrap(), ["a/b", "c"]);
    }

    #[test]
    fn rejects_bad_targets_with_the_limit() {
        assert_eq!(split_target("/a%2"), Err(PathError::BadEscape));
        assert_eq!(split_target("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(split_target("/a%0A"), Err(PathError::BadEscape));
        assert_eq!(split_target("/a%FF"), Err(PathError::NotUtf8));
        assert_eq!(split_target("api"), Err(PathError::NotOriginForm));
        let long = format!("/{}", "a".repeat(MAX_TARGET_LEN));
        assert!(matches!(
            split_target(&long),
            Err(PathError::TargetTooLong {
                limit: MAX_TARGET_LEN,
                ..
            })
        ));
        let seg = format!("/{}", "b".repeat(MAX_SEGMENT_LEN + 1));
        assert!(matches!(
            split_target(&seg),
            Err(PathError::SegmentTooLong {
                limit: MAX_SEGMENT_LEN,
                ..
            })
        ));
        let deep = "/a".repeat(MAX_SEGMENTS + 1);
        assert_eq!(
            split_target(&deep),
            Err(PathError::TooManySegments {
                limit: MAX_SEGMENTS
            })
        );
    }

    #[test]
    fn encoding_round_trips_through_split() {
        let name = "cam 1/ü?#&<x>";
        let enc = encode_segment(name);
        assert!(!enc.contains(['/', '?', '#', ' ', '<']));
        assert_eq!(split_target(&format!("/{enc}")).unwrap(), [name]);
    }
}
