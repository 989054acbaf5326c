//! Stream keys: the validated `app/name` pair a publisher claims and viewers ask for.
//!
//! Keys come straight from the network (RTMP `connect`/`publish`, HTTP paths), and
//! may later name files or metric labels, so they are validated once here and are
//! immutable afterwards. One `Arc<str>` holds `app/name`, so cloning a key is a
//! single refcount bump and hashing reads one contiguous string.

use std::fmt;
use std::sync::Arc;

/// Longest accepted `app`, in bytes.
pub const MAX_APP_LEN: usize = 128;
/// Longest accepted stream `name`, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Which half of a key a [`KeyError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPart {
    /// The application (RTMP `app`, first path segments).
    App,
    /// The stream name (last path segment).
    Name,
}

impl fmt::Display for KeyPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyPart::App => "app",
            KeyPart::Name => "name",
        })
    }
}

/// Why a key was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The part is empty (or, for `app`, has an empty `/`-separated segment).
    #[error("stream key {part} is empty or has an empty segment")]
    Empty {
        /// Which part.
        part: KeyPart,
    },
    /// The part is longer than its limit.
    #[error("stream key {part} is {len} bytes, limit {limit}")]
    TooLong {
        /// Which part.
        part: KeyPart,
        /// Its length in bytes.
        len: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// The part contains a NUL or other control character.
    #[error("stream key {part} contains control character {byte:#04x}")]
    ControlChar {
        /// Which part.
        part: KeyPart,
        /// The offending byte.
        byte: u8,
    },
    /// A `.` or `..` segment, which could walk out of a directory if the key names a file.
    #[error("stream key {part} has a '.' or '..' segment")]
    DotSegment {
        /// Which part.
        part: KeyPart,
    },
    /// The name contains `/` (only `app` may have segments).
    #[error("stream key name contains '/'")]
    SlashInName,
}

/// A validated stream key, displayed as `app/name`.
///
/// `app` may have several `/`-separated segments (`live/eu`); `name` has none, so
/// the split between them is unambiguous.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// `app/name`; `full[..split]` is the app.
    full: Arc<str>,
    split: usize,
}

impl StreamKey {
    /// Validates `app` and `name` and builds the key.
    ///
    /// Query strings (`name?token=...`) must be stripped by the caller: `?` is a
    /// legal character here.
    pub fn new(app: &str, name: &str) -> Result<Self, KeyError> {
        validate_part(app, KeyPart::App, MAX_APP_LEN)?;
        validate_part(name, KeyPart::Name, MAX_NAME_LEN)?;
        if name.contains('/') {
            return Err(KeyError::SlashInName);
        }
        let mut full = String::with_capacity(app.len() + 1 + name.len());
        full.push_str(app);
        full.push('/');
        full.push_str(name);
        Ok(StreamKey {
            full: full.into(),
            split: app.len(),
        })
    }

    /// Parses `app/name` (the last `/` separates the name), e.g. from an HTTP path
    /// with its leading `/` and `.flv` suffix removed.
    pub fn parse(path: &str) -> Result<Self, KeyError> {
        match path.rsplit_once('/') {
            Some((app, name)) => Self::new(app, name),
            None => Err(KeyError::Empty { part: KeyPart::App }),
        }
    }

    /// The application part.
    pub fn app(&self) -> &str {
        self.full.get(..self.split).unwrap_or_default()
    }

    /// The stream name part.
    pub fn name(&self) -> &str {
        self.full.get(self.split + 1..).unwrap_or_default()
    }

    /// `app/name` as one string.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

fn validate_part(part_str: &str, part: KeyPart, limit: usize) -> Result<(), KeyError> {
    if part_str.len() > limit {
        return Err(KeyError::TooLong {
            part,
            len: part_str.len(),
            limit,
        });
    }
    if let Some(&byte) = part_str.as_bytes().iter().find(|b| b.is_ascii_control()) {
        return Err(KeyError::ControlChar { part, byte });
    }
    for segment in part_str.split('/') {
        if segment.is_empty() {
            return Err(KeyError::Empty { part });
        }
        if segment == "." || segment == ".." {
            return Err(KeyError::DotSegment { part });
        }
    }
    Ok(())
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamKey({})", self.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_displays_app_slash_name() {
        let k = StreamKey::new("live", "cam1").unwrap();
        assert_eq!(k.app(), "live");
        assert_eq!(k.name(), "cam1");
        assert_eq!(k.to_string(), "live/cam1");
        let nested = StreamKey::new("live/eu", "cam1").unwrap();
        assert_eq!(nested.app(), "live/eu");
        assert_eq!(StreamKey::parse("live/eu/cam1").unwrap(), nested);
    }

    #[test]
    fn equal_keys_hash_equal_and_clone_shares() {
        use std::collections::HashSet;
        let a = StreamKey::new("live", "x").unwrap();
        let b = a.clone();
        assert!(Arc::ptr_eq(&a.full, &b.full));
        let set: HashSet<_> = [a, StreamKey::new("live", "x").unwrap()]
            .into_iter()
            .collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn rejects_bad_keys_naming_the_problem() {
        assert_eq!(
            StreamKey::new("", "x"),
            Err(KeyError::Empty { part: KeyPart::App })
        );
        assert_eq!(
            StreamKey::new("live", ""),
            Err(KeyError::Empty {
                part: KeyPart::Name
            })
        );
        assert_eq!(
            StreamKey::new("a//b", "x"),
            Err(KeyError::Empty { part: KeyPart::App })
        );
        assert_eq!(
            StreamKey::new("live", "a\0b"),
            Err(KeyError::ControlChar {
                part: KeyPart::Name,
                byte: 0
            })
        );
        assert_eq!(
            StreamKey::new("li\nve", "x"),
            Err(KeyError::ControlChar {
                part: KeyPart::App,
                byte: b'\n'
            })
        );
        assert_eq!(
            StreamKey::new("live", ".."),
            Err(KeyError::DotSegment {
                part: KeyPart::Name
            })
        );
        assert_eq!(
            StreamKey::new("../etc", "x"),
            Err(KeyError::DotSegment { part: KeyPart::App })
        );
        assert_eq!(StreamKey::new("live", "a/b"), Err(KeyError::SlashInName));
        let long = "n".repeat(MAX_NAME_LEN + 1);
        assert_eq!(
            StreamKey::new("live", &long),
            Err(KeyError::TooLong {
                part: KeyPart::Name,
                len: MAX_NAME_LEN + 1,
                limit: MAX_NAME_LEN
            })
        );
        assert!(
            StreamKey::new("live", "my..stream").is_ok(),
            "'..' inside a segment is harmless"
        );
        assert!(StreamKey::parse("nodelimiter").is_err());
    }
}
