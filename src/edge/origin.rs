//! Origin URLs (`rtmp://host[:port][/app]`, `http://host[:port][/prefix]`, and
//! their TLS forms `rtmps://` and `https://`) and what to ask an origin for a
//! given stream key.
//!
//! An RTMP origin with an app path serves every key under that app (the key's
//! name is played in it); without one the viewer's app is used, which is what a
//! chain of ringcast edges wants. An HTTP origin is asked for
//! `{prefix}/{app}/{name}.flv`.

use crate::stream::StreamKey;

/// Longest origin URL accepted.
pub const MAX_URL_LEN: usize = 1024;
/// Longest query string passed upstream.
pub const MAX_QUERY_LEN: usize = 1024;
/// Added to every pull's query: a ringcast origin then gives the pull the
/// stream's own timestamps instead of a timeline starting at 0, so every edge
/// sees the same DTS for the same frame (and numbers HLS segments alike).
/// Other origins ignore an unknown parameter.
pub const SOURCE_TIMELINE_QUERY: &str = "ringcast_timeline=source";

/// Whether a play request's query asks for the stream's own timestamps
/// ([`SOURCE_TIMELINE_QUERY`]).
pub fn asks_source_timeline(query: &str) -> bool {
    query.split('&').any(|pair| pair == SOURCE_TIMELINE_QUERY)
}

/// The upstream protocol of an origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginScheme {
    /// RTMP play.
    Rtmp,
    /// HTTP-FLV GET.
    Http,
}

impl OriginScheme {
    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            OriginScheme::Rtmp => 1935,
            OriginScheme::Http => 80,
        }
    }
}

/// Why an origin URL was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// Longer than [`MAX_URL_LEN`].
    #[error("origin URL is {len} bytes, limit {limit}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Not `rtmp://`, `http://`, `rtmps://` or `https://`.
    #[error("origin URL must start with rtmp://, http://, rtmps:// or https://")]
    Scheme,
    /// No host.
    #[error("origin URL has no host")]
    NoHost,
    /// The port is not a number in 1..=65535.
    #[error("origin URL port `{0}` is not 1..=65535")]
    Port(String),
    /// A control character, space, `?` or `#` where a plain URL was expected.
    #[error("origin URL contains a forbidden character {0:?}")]
    Character(char),
}

/// One configured origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The URL as configured (for logs and the API).
    pub url: String,
    /// Its protocol.
    pub scheme: OriginScheme,
    /// Spoken over TLS (`rtmps://`, `https://`; default port 443).
    pub tls: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// RTMP app or HTTP path prefix, without surrounding slashes; may be empty.
    pub path: String,
}

/// What to ask one origin for, for one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamRequest {
    /// RTMP: `connect` to `app` announcing `tc_url`, then `play` `stream?query`.
    Rtmp {
        /// The app.
        app: String,
        /// The `tcUrl`.
        tc_url: String,
        /// The stream name.
        stream: String,
        /// The play token or other query, passed on as-is.
        query: Option<String>,
    },
    /// HTTP-FLV: `GET path_and_query` with `Host: host`.
    Http {
        /// Request target, e.g. `/live/cam.flv?token=abc`.
        path_and_query: String,
        /// `Host` header value.
        host: String,
    },
}

impl Origin {
    /// Parses and validates an origin URL.
    pub fn parse(url: &str) -> Result<Origin, OriginError> {
        if url.len() > MAX_URL_LEN {
            return Err(OriginError::TooLong {
                len: url.len(),
                limit: MAX_URL_LEN,
            });
        }
        if let Some(c) = url
            .chars()
            .find(|c| c.is_control() || matches!(c, ' ' | '?' | '#'))
        {
            return Err(OriginError::Character(c));
        }
        let (scheme, tls, rest) = if let Some(rest) = url.strip_prefix("rtmp://") {
            (OriginScheme::Rtmp, false, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (OriginScheme::Http, false, rest)
        } else if let Some(rest) = url.strip_prefix("rtmps://") {
            (OriginScheme::Rtmp, true, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (OriginScheme::Http, true, rest)
        } else {
            return Err(OriginError::Scheme);
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = split_host_port(authority)?;
        if host.is_empty() {
            return Err(OriginError::NoHost);
        }
        let port = match port {
            None if tls => 443,
            None => scheme.default_port(),
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| OriginError::Port(p.to_owned()))?,
        };
        Ok(Origin {
            url: url.to_owned(),
            scheme,
            tls,
            host: host.to_owned(),
            port,
            path: path.trim_matches('/').to_owned(),
        })
    }

    /// `host:port` as written in a URL or `Host` header (IPv6 bracketed).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// What to ask this origin for `key`, passing `query` (a play token) upstream,
    /// with [`SOURCE_TIMELINE_QUERY`] appended (unless already there).
    pub fn request_for(&self, key: &StreamKey, query: Option<&str>) -> UpstreamRequest {
        // Only plain visible ASCII goes upstream: a CR, LF or space from an RTMP
        // play name must not reach an HTTP request line.
        let passed = query.filter(|q| {
            !q.is_empty() && q.len() <= MAX_QUERY_LEN && q.bytes().all(|b| b.is_ascii_graphic())
        });
        let query = Some(match passed {
            Some(q) if asks_source_timeline(q) => q.to_owned(),
            Some(q) => format!("{q}&{SOURCE_TIMELINE_QUERY}"),
            None => SOURCE_TIMELINE_QUERY.to_owned(),
        });
        match self.scheme {
            OriginScheme::Rtmp => {
                let app = if self.path.is_empty() {
                    key.app().to_owned()
                } else {
                    self.path.clone()
                };
                UpstreamRequest::Rtmp {
                    tc_url: format!(
                        "{}://{}/{}",
                        if self.tls { "rtmps" } else { "rtmp" },
                        self.authority(),
                        app
                    ),
                    app,
                    stream: key.name().to_owned(),
                    query,
                }
            }
            OriginScheme::Http => {
                let mut path = String::with_capacity(64);
                if !self.path.is_empty() {
                    path.push('/');
                    push_encoded(&mut path, &self.path);
                }
                path.push('/');
                push_encoded(&mut path, key.app());
                path.push('/');
                push_encoded(&mut path, key.name());
                path.push_str(".flv");
                if let Some(q) = &query {
                    path.push('?');
                    path.push_str(q);
                }
                UpstreamRequest::Http {
                    path_and_query: path,
                    host: self.authority(),
                }
            }
        }
    }
}

/// Appends `s` to a URL path, percent-encoding every byte that is not allowed
/// there as-is (`/` stays: an app may have several segments).
fn push_encoded(path: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
            path.push(char::from(b));
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), OriginError> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(OriginError::NoHost)?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(OriginError::Port(after.to_owned())),
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StreamKey {
        StreamKey::new("live", "cam").unwrap()
    }

    #[test]
    fn tls_origins_default_to_port_443_and_announce_rtmps() {
        let o = Origin::parse("rtmps://origin.example/live").unwrap();
        assert!(o.tls);
        assert_eq!((o.scheme, o.port), (OriginScheme::Rtmp, 443));
        let key = StreamKey::new("live", "cam").unwrap();
        match o.request_for(&key, None) {
            UpstreamRequest::Rtmp { tc_url, .. } => {
                assert_eq!(tc_url, "rtmps://origin.example:443/live")
            }
            other => panic!("{other:?}"),
        }
        let h = Origin::parse("https://origin.example:8443").unwrap();
        assert!(h.tls);
        assert_eq!((h.scheme, h.port), (OriginScheme::Http, 8443));
        assert!(!Origin::parse("http://origin.example").unwrap().tls);
        assert_eq!(Origin::parse("ftps://x"), Err(OriginError::Scheme));
    }

    #[test]
    fn rtmp_origin_with_and_without_app() {
        let o = Origin::parse("rtmp://10.0.0.1:1936/origin").unwrap();
        assert_eq!(
            (o.scheme, o.host.as_str(), o.port, o.path.as_str()),
            (OriginScheme::Rtmp, "10.0.0.1", 1936, "origin")
        );
        assert_eq!(
            o.request_for(&key(), Some("token=abc")),
            UpstreamRequest::Rtmp {
                app: "origin".into(),
                tc_url: "rtmp://10.0.0.1:1936/origin".into(),
                stream: "cam".into(),
                query: Some("token=abc&ringcast_timeline=source".into()),
            }
        );
        let bare = Origin::parse("rtmp://mid.example").unwrap();
        assert_eq!(bare.port, 1935);
        match bare.request_for(&key(), None) {
            UpstreamRequest::Rtmp {
                app, tc_url, query, ..
            } => {
                assert_eq!(app, "live", "the viewer's app is used");
                assert_eq!(tc_url, "rtmp://mid.example:1935/live");
                assert_eq!(query.as_deref(), Some(SOURCE_TIMELINE_QUERY));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_source_timeline_is_asked_once() {
        let o = Origin::parse("rtmp://h/live").unwrap();
        let q = "ringcast_timeline=source&t=1";
        match o.request_for(&key(), Some(q)) {
            UpstreamRequest::Rtmp { query, .. } => assert_eq!(query.as_deref(), Some(q)),
            other => panic!("{other:?}"),
        }
        assert!(asks_source_timeline("a=1&ringcast_timeline=source"));
        assert!(!asks_source_timeline("ringcast_timeline=sourcex"));
        assert!(!asks_source_timeline("x_ringcast_timeline=source"));
        assert!(!asks_source_timeline(""));
    }

    #[test]
    fn http_origin_paths() {
        let o = Origin::parse("http://[::1]:8080/").unwrap();
        assert_eq!(
            (o.host.as_str(), o.port, o.path.as_str()),
            ("::1", 8080, "")
        );
        assert_eq!(
            o.request_for(&key(), Some("t=1")),
            UpstreamRequest::Http {
                path_and_query: "/live/cam.flv?t=1&ringcast_timeline=source".into(),
                host: "[::1]:8080".into()
            }
        );
        let prefixed = Origin::parse("http://o.example/flv/").unwrap();
        assert_eq!(prefixed.port, 80);
        assert_eq!(
            prefixed.request_for(&key(), Some("")),
            UpstreamRequest::Http {
                path_and_query: "/flv/live/cam.flv?ringcast_timeline=source".into(),
                host: "o.example:80".into()
            }
        );
    }

    #[test]
    fn bad_urls_name_the_problem() {
        assert_eq!(Origin::parse("ftp://x"), Err(OriginError::Scheme));
        assert_eq!(Origin::parse("rtmp://:1935/live"), Err(OriginError::NoHost));
        assert_eq!(
            Origin::parse("rtmp://h:0/live"),
            Err(OriginError::Port("0".into()))
        );
        assert_eq!(
            Origin::parse("rtmp://h:99999"),
            Err(OriginError::Port("99999".into()))
        );
        assert_eq!(
            Origin::parse("http://h/a?b"),
            Err(OriginError::Character('?'))
        );
        assert_eq!(Origin::parse("http://[::1"), Err(OriginError::NoHost));
        let long = format!("http://{}", "a".repeat(MAX_URL_LEN));
        assert!(matches!(
            Origin::parse(&long),
            Err(OriginError::TooLong {
                limit: MAX_URL_LEN,
                ..
            })
        ));
    }

    #[test]
    fn names_are_percent_encoded_and_unsafe_queries_dropped() {
        let o = Origin::parse("http://h:1").unwrap();
        let key = StreamKey::new("live/sub", "my cam%").unwrap();
        assert_eq!(
            o.request_for(&key, Some("a=1\r\nX-Evil: 1")),
            UpstreamRequest::Http {
                path_and_query: "/live/sub/my%20cam%25.flv?ringcast_timeline=source".into(),
                host: "h:1".into()
            }
        );
        let rtmp = Origin::parse("rtmp://h/live").unwrap();
        match rtmp.request_for(&key, Some("t=a b")) {
            UpstreamRequest::Rtmp { query, .. } => {
                assert_eq!(query.as_deref(), Some(SOURCE_TIMELINE_QUERY))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oversized_query_is_not_passed_upstream() {
        let o = Origin::parse("http://h:1").unwrap();
        let q = "x".repeat(MAX_QUERY_LEN + 1);
        assert_eq!(
            o.request_for(&key(), Some(&q)),
            UpstreamRequest::Http {
                path_and_query: "/live/cam.flv?ringcast_timeline=source".into(),
                host: "h:1".into()
            }
        );
    }
}
