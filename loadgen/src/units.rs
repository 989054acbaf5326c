//! Command-line quantities: `600k` bit rates and `30s` durations.

use thiserror::Error;

/// A quantity that did not parse.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UnitError {
    /// Not a number with a known suffix.
    #[error("cannot parse {0:?}: expected e.g. {1}")]
    Bad(String, &'static str),
}

/// Parses a bit rate: `600k`, `1.5M`, `64000` (bit/s).
pub fn parse_bitrate(s: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::Bad(s.to_string(), "600k, 2.5M or 64000");
    let t = s.trim();
    let (num, mult) = match t.char_indices().last().ok_or_else(bad)? {
        (i, 'k' | 'K') => (&t[..i], 1e3),
        (i, 'm' | 'M') => (&t[..i], 1e6),
        (i, 'g' | 'G') => (&t[..i], 1e9),
        _ => (t, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    Ok((v * mult).round() as u64)
}

/// Parses a duration into milliseconds: `30s`, `500ms`, `2m`, `1h`, or bare seconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::Bad(s.to_string(), "30s, 500ms, 2m or 1h");
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1e3)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60e3)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600e3)
    } else {
        (t, 1e3)
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    Ok((v * mult).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates() {
        assert_eq!(parse_bitrate("600k"), Ok(600_000));
        assert_eq!(parse_bitrate("1.5M"), Ok(1_500_000));
        assert_eq!(parse_bitrate("64000"), Ok(64_000));
        assert!(parse_bitrate("fast").is_err());
        assert!(parse_bitrate("").is_err());
        assert!(parse_bitrate("-5k").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("1.5"), Ok(1_500));
        assert!(parse_duration_ms("soon").is_err());
        assert!(parse_duration_ms("inf").is_err());
    }
}
