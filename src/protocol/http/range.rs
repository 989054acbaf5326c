//! `Range: bytes=…` on a body of known length (RFC 9110 §14): one range is
//! served as 206 with `Content-Range`; several ranges, other units or a
//! malformed header are ignored (the whole body, 200, as the RFC allows);
//! a well-formed range wholly past the end is 416.

/// An inclusive byte range of a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub first: u64,
    /// Last byte (inclusive).
    pub last: u64,
}

impl ByteRange {
    /// Bytes in the range.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never empty (kept for clippy's `len` rule).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// Serve the whole body (no header, or one to ignore).
    Whole,
    /// Serve this part (206).
    Part(ByteRange),
    /// Nothing of the body is in the range (416, `Content-Range: bytes */len`).
    Unsatisfiable,
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Reads the `Range` header value (if any) against a body of `len` bytes.
pub fn parse_range(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = match (number(a), number(b)) {
        // bytes=-n: the last n bytes.
        (None, Some(n)) if a.is_empty() => {
            if n == 0 || len == 0 {
                return RangeRequest::Unsatisfiable;
            }
            ByteRange {
                first: len.saturating_sub(n),
                last: len - 1,
            }
        }
        (Some(first), None) if b.is_empty() => {
            if first >= len {
                return RangeRequest::Unsatisfiable;
            }
            ByteRange {
                first,
                last: len - 1,
            }
        }
        (Some(first), Some(last)) if first <= last => {
            if first >= len {
                return RangeRequest::Unsatisfiable;
            }
            ByteRange {
                first,
                last: last.min(len - 1),
            }
        }
        _ => return RangeRequest::Whole,
    };
    RangeRequest::Part(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_the_rfc() {
        let part = |first, last| RangeRequest::Part(ByteRange { first, last });
        assert_eq!(parse_range(None, 100), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), part(0, 9));
        assert_eq!(parse_range(Some("bytes=90-"), 100), part(90, 99));
        assert_eq!(parse_range(Some("bytes=-10"), 100), part(90, 99));
        assert_eq!(parse_range(Some("bytes=-1000"), 100), part(0, 99));
        assert_eq!(parse_range(Some("bytes=50-1000"), 100), part(50, 99));
        assert_eq!(
            parse_range(Some("bytes=100-"), 100),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=-0"), 100),
            RangeRequest::Unsatisfiable
        );
        for ignored in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=9-2",
            "bytes=x-",
            "bytes=",
            "bytes=-",
        ] {
            assert_eq!(
                parse_range(Some(ignored), 100),
                RangeRequest::Whole,
                "{ignored}"
            );
        }
        assert_eq!(part(3, 5), parse_range(Some(" bytes=3-5 "), 10));
        if let RangeRequest::Part(r) = part(3, 5) {
            assert_eq!(r.len(), 3);
        }
    }
}
