//! App and stream names: splitting `name?query` and validating both halves.
//!
//! Names end up as stream-directory keys, metric labels and possibly file paths,
//! so anything that could escape a directory or confuse a log line is refused.

use std::fmt;

use thiserror::Error;

/// Which name a [`NameError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameField {
    /// The `app` of `connect`.
    App,
    /// A stream name (publish, play, releaseStream, ...).
    Stream,
}

impl fmt::Display for NameField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameField::App => "app",
            NameField::Stream => "stream",
        })
    }
}

/// The naming rule a name broke.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NameError {
    /// The name (before `?`) is empty.
    #[error("empty")]
    Empty,
    /// The name (before `?`) is longer than the policy allows.
    #[error("{len} bytes exceeds the limit of {limit}")]
    TooLong {
        /// Name length in bytes.
        len: usize,
        /// The policy's maximum.
        limit: usize,
    },
    /// The query (after `?`) is longer than the policy allows.
    #[error("query of {len} bytes exceeds the limit of {limit}")]
    QueryTooLong {
        /// Query length in bytes.
        len: usize,
        /// The policy's maximum.
        limit: usize,
    },
    /// A NUL byte.
    #[error("contains NUL")]
    Nul,
    /// A control character other than NUL.
    #[error("contains control character {byte:#04x}")]
    ControlCharacter {
        /// The offending byte.
        byte: u8,
    },
    /// A `..` path segment.
    #[error("contains a '..' path segment")]
    DotDotSegment,
    /// A path separator where the policy forbids it.
    #[error("contains a path separator")]
    Separator,
}

/// Limits and rules for app and stream names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamePolicy {
    /// Maximum bytes of an app or stream name, query excluded.
    pub max_name_len: usize,
    /// Maximum bytes of a query string.
    pub max_query_len: usize,
    /// Whether `/` may appear in stream names (apps may always contain `/`).
    pub allow_slash_in_stream: bool,
}

impl Default for NamePolicy {
    fn default() -> Self {
        NamePolicy {
            max_name_len: 256,
            max_query_len: 4096,
            allow_slash_in_stream: false,
        }
    }
}

/// A validated name with its optional query string (`name?query`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamName {
    /// The part before the first `?`.
    pub name: String,
    /// The part after the first `?`, if there was one.
    pub query: Option<String>,
}

impl StreamName {
    /// Splits `raw` at the first `?` and validates both halves under `policy`.
    pub fn parse(raw: &str, field: NameField, policy: &NamePolicy) -> Result<Self, NameError> {
        let (name, query) = match raw.split_once('?') {
            Some((n, q)) => (n, Some(q)),
            None => (raw, None),
        };
        validate_name(name, field, policy)?;
        if let Some(q) = query {
            validate_query(q, policy)?;
        }
        Ok(StreamName {
            name: name.to_owned(),
            query: query.map(str::to_owned),
        })
    }

    /// The name as written on the wire, `name` or `name?query`.
    pub fn to_wire(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.name, q),
            None => self.name.clone(),
        }
    }
}

fn check_characters(s: &str) -> Result<(), NameError> {
    for &b in s.as_bytes() {
        if b == 0 {
            return Err(NameError::Nul);
        }
        if b < 0x20 || b == 0x7F {
            return Err(NameError::ControlCharacter { byte: b });
        }
    }
    Ok(())
}

fn validate_name(name: &str, field: NameField, policy: &NamePolicy) -> Result<(), NameError> {
    if name.len() > policy.max_name_len {
        return Err(NameError::TooLong {
            len: name.len(),
            limit: policy.max_name_len,
        });
    }
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    check_characters(name)?;
    if name.contains('\\') {
        return Err(NameError::Separator);
    }
    let slash_allowed = field == NameField::App || policy.allow_slash_in_stream;
    if !slash_allowed && name.contains('/') {
        return Err(NameError::Separator);
    }
    if name.split('/').any(|segment| segment == "..") {
        return Err(NameError::DotDotSegment);
    }
    Ok(())
}

fn validate_query(query: &str, policy: &NamePolicy) -> Result<(), NameError> {
    if query.len() > policy.max_query_len {
        return Err(NameError::QueryTooLong {
            len: query.len(),
            limit: policy.max_query_len,
        });
    }
    check_characters(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(raw: &str) -> Result<StreamName, NameError> {
        StreamName::parse(raw, NameField::Stream, &NamePolicy::default())
    }

    #[test]
    fn splits_name_and_query() {
        assert_eq!(
            stream("test?token=abc&x=1"),
            Ok(StreamName {
                name: "test".into(),
                query: Some("token=abc&x=1".into())
            })
        );
        assert_eq!(
            stream("test"),
            Ok(StreamName {
                name: "test".into(),
                query: None
            })
        );
        let with_q = stream("a?b?c").unwrap();
        assert_eq!(with_q.query.as_deref(), Some("b?c"));
        assert_eq!(with_q.to_wire(), "a?b?c");
    }

    #[test]
    fn ten_kib_names_with_nul_and_dotdot_are_rejected() {
        let mut raw = "a".repeat(10 * 1024);
        raw.push('\0');
        raw.push_str("/../x");
        assert_eq!(
            stream(&raw),
            Err(NameError::TooLong {
                len: raw.len(),
                limit: 256
            })
        );
        let lax = NamePolicy {
            max_name_len: 64 * 1024,
            ..NamePolicy::default()
        };
        assert_eq!(
            StreamName::parse(&raw, NameField::Stream, &lax),
            Err(NameError::Nul)
        );
        assert_eq!(
            StreamName::parse(&raw, NameField::App, &lax),
            Err(NameError::Nul)
        );
    }

    #[test]
    fn rejects_each_rule() {
        assert_eq!(stream(""), Err(NameError::Empty));
        assert_eq!(stream("?q"), Err(NameError::Empty));
        assert_eq!(stream("a\0b"), Err(NameError::Nul));
        assert_eq!(
            stream("a\nb"),
            Err(NameError::ControlCharacter { byte: b'\n' })
        );
        assert_eq!(
            stream("a\x7f"),
            Err(NameError::ControlCharacter { byte: 0x7f })
        );
        assert_eq!(stream("a/b"), Err(NameError::Separator));
        assert_eq!(stream("a\\b"), Err(NameError::Separator));
        assert_eq!(stream(".."), Err(NameError::DotDotSegment));
        assert_eq!(stream("ok?x\0"), Err(NameError::Nul));
        let q = format!("s?{}", "q".repeat(5000));
        assert_eq!(
            stream(&q),
            Err(NameError::QueryTooLong {
                len: 5000,
                limit: 4096
            })
        );
    }

    #[test]
    fn slashes_follow_the_policy_but_dotdot_never_passes() {
        let app = |raw: &str| StreamName::parse(raw, NameField::App, &NamePolicy::default());
        assert!(app("live/sub").is_ok());
        assert_eq!(app("live/../etc"), Err(NameError::DotDotSegment));
        let lax = NamePolicy {
            allow_slash_in_stream: true,
            ..NamePolicy::default()
        };
        assert!(StreamName::parse("a/b", NameField::Stream, &lax).is_ok());
        assert_eq!(
            StreamName::parse("a/../b", NameField::Stream, &lax),
            Err(NameError::DotDotSegment)
        );
        assert!(stream("a..b").is_ok(), "'..' inside a segment is harmless");
        assert!(stream("mp4:clip.mp4").is_ok());
        assert!(stream("caf\u{e9} 1").is_ok());
    }
}
