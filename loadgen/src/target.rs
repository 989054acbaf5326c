//! Where load goes: a parsed `http://…/x.flv`, `http://…/x.m3u8` (also `-ts.m3u8`),
//! `http://…/x.mpd` or `rtmp://…/app/stream` URL that must point at this machine;
//! `https://…/x.flv` and `rtmps://…/app/stream` are the same over TLS.
//!
//! loadgen opens tens of thousands of connections per second; pointed at someone
//! else's server that is an attack, so anything but a loopback address is refused.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use thiserror::Error;

/// The protocol a target speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// HTTP-FLV: `GET /path` answered by an endless FLV body.
    HttpFlv,
    /// HLS, LL-HLS or LL-DASH: an `http://` URL whose path ends in `.m3u8` or `.mpd`
    /// (see [`crate::hls::player::Mode`]).
    Hls,
    /// RTMP: `connect` to an app, then `play` or `publish` a stream.
    Rtmp,
}

/// A parsed URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Protocol.
    pub scheme: Scheme,
    /// Server address (always loopback).
    pub addr: SocketAddr,
    /// `host[:port]` as written, for the HTTP `Host` header and RTMP `tcUrl`.
    pub authority: String,
    /// HTTP: the request path. RTMP: the application name (`live`).
    pub path: String,
    /// RTMP: the stream name (`x`); empty for HTTP.
    pub stream: String,
    /// `https://` or `rtmps://`: the connection speaks TLS first.
    pub tls: bool,
    /// The host as written (no port, no brackets): the TLS server name.
    pub host: String,
}

/// Why a URL was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TargetError {
    /// None of `http://`, `https://`, `rtmp://`, `rtmps://`.
    #[error("unsupported URL scheme in {0:?}: use http(s)://…/x.flv or rtmp(s)://…/app/stream")]
    Scheme(String),
    /// HLS/DASH players speak plain HTTP only.
    #[error("HLS/DASH over https:// is not supported by loadgen: {0:?}")]
    HlsOverTls(String),
    /// The host is not an IP literal or `localhost`.
    #[error("host {0:?} is not an IP address or localhost")]
    Host(String),
    /// The host is not on this machine.
    #[error("refusing non-loopback target {0}: loadgen only loads servers on this machine (127.0.0.0/8, ::1)")]
    NotLoopback(IpAddr),
    /// Port missing digits or out of range.
    #[error("bad port in {0:?}")]
    Port(String),
    /// RTMP URL without `/app/stream`.
    #[error("RTMP URL {0:?} needs /app/stream")]
    RtmpPath(String),
    /// The URL exceeds the length limit.
    #[error("URL of {len} bytes exceeds the limit {limit}")]
    TooLong {
        /// Its length.
        len: usize,
        /// [`MAX_URL_LEN`].
        limit: usize,
    },
}

/// Longest URL accepted; they go into request lines and AMF strings.
pub const MAX_URL_LEN: usize = 1024;

impl Target {
    /// Parses `url` and checks that it points at loopback.
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        if url.len() > MAX_URL_LEN {
            return Err(TargetError::TooLong {
                len: url.len(),
                limit: MAX_URL_LEN,
            });
        }
        let (scheme, rest, default_port, tls) = if let Some(r) = url.strip_prefix("http://") {
            (Scheme::HttpFlv, r, 80, false)
        } else if let Some(r) = url.strip_prefix("https://") {
            (Scheme::HttpFlv, r, 443, true)
        } else if let Some(r) = url.strip_prefix("rtmp://") {
            (Scheme::Rtmp, r, 1935, false)
        } else if let Some(r) = url.strip_prefix("rtmps://") {
            // ffmpeg's and OBS's default RTMPS port.
            (Scheme::Rtmp, r, 443, true)
        } else {
            return Err(TargetError::Scheme(url.to_string()));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let (host, port) = split_host_port(authority, default_port)
            .ok_or_else(|| TargetError::Port(url.into()))?;
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.parse()
                .map_err(|_| TargetError::Host(host.to_string()))?
        };
        if !ip.is_loopback() {
            return Err(TargetError::NotLoopback(ip));
        }
        let addr = SocketAddr::new(ip, port);
        let scheme = match scheme {
            Scheme::HttpFlv if crate::hls::player::Mode::of_path(path).is_some() => Scheme::Hls,
            s => s,
        };
        if tls && scheme == Scheme::Hls {
            return Err(TargetError::HlsOverTls(url.into()));
        }
        let host = host.to_string();
        match scheme {
            Scheme::HttpFlv | Scheme::Hls => Ok(Target {
                scheme,
                addr,
                authority: authority.to_string(),
                path: path.to_string(),
                stream: String::new(),
                tls,
                host,
            }),
            Scheme::Rtmp => {
                let trimmed = path.trim_start_matches('/');
                let (app, stream) = trimmed
                    .rsplit_once('/')
                    .ok_or_else(|| TargetError::RtmpPath(url.into()))?;
                if app.is_empty() || stream.is_empty() {
                    return Err(TargetError::RtmpPath(url.into()));
                }
                Ok(Target {
                    scheme,
                    addr,
                    authority: authority.to_string(),
                    path: app.into(),
                    stream: stream.into(),
                    tls,
                    host,
                })
            }
        }
    }

    /// `rtmp://host[:port]/app` (`rtmps://` over TLS), the RTMP `tcUrl`.
    pub fn tc_url(&self) -> String {
        let scheme = if self.tls { "rtmps" } else { "rtmp" };
        format!("{scheme}://{}/{}", self.authority, self.path)
    }

    /// The same target with `{i}` in the stream name or path replaced by `index`, so
    /// `--streams K` publishers and their viewers can address K distinct streams.
    pub fn for_stream(&self, index: u32) -> Target {
        let mut t = self.clone();
        t.stream = t.stream.replace("{i}", &index.to_string());
        t.path = t.path.replace("{i}", &index.to_string());
        t
    }
}

fn split_host_port(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, rest) = v6.split_once(']')?;
        let port = match rest.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if rest.is_empty() => default_port,
            None => return None,
        };
        return Some((host, port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, port.parse().ok()?)),
        None => Some((authority, default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_and_rtmp_loopback_urls() {
        let h = Target::parse("http://127.0.0.1:8080/live/x.flv").unwrap();
        assert_eq!(
            (h.scheme, h.addr.port(), h.path.as_str()),
            (Scheme::HttpFlv, 8080, "/live/x.flv")
        );
        let r = Target::parse("rtmp://localhost/live/x").unwrap();
        assert_eq!(
            (r.scheme, r.addr.port(), r.path.as_str(), r.stream.as_str()),
            (Scheme::Rtmp, 1935, "live", "x")
        );
        assert_eq!(r.tc_url(), "rtmp://localhost/live");
        for hls in ["/live/x.m3u8", "/live/x-ts.m3u8", "/live/x.mpd"] {
            let t = Target::parse(&format!("http://127.0.0.1:8080{hls}")).unwrap();
            assert_eq!((t.scheme, t.path.as_str()), (Scheme::Hls, hls));
        }
        let v6 = Target::parse("rtmp://[::1]:1936/app/s").unwrap();
        assert_eq!(v6.addr, "[::1]:1936".parse().unwrap());
        assert!(
            Target::parse("http://127.9.9.9/a.flv").is_ok(),
            "all of 127/8 is loopback"
        );
    }

    #[test]
    fn refuses_other_hosts_with_a_clear_error() {
        assert_eq!(
            Target::parse("http://10.0.0.1/x.flv"),
            Err(TargetError::NotLoopback("10.0.0.1".parse().unwrap()))
        );
        let msg = Target::parse("rtmp://192.168.1.2/live/x")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("refusing non-loopback"), "{msg}");
        assert!(matches!(
            Target::parse("http://example.com/x.flv"),
            Err(TargetError::Host(_))
        ));
        assert!(matches!(
            Target::parse("srt://127.0.0.1/x"),
            Err(TargetError::Scheme(_))
        ));
        assert!(matches!(
            Target::parse("rtmp://127.0.0.1/live"),
            Err(TargetError::RtmpPath(_))
        ));
        assert!(matches!(
            Target::parse("rtmp://127.0.0.1:99999/live/x"),
            Err(TargetError::Port(_))
        ));
        let long = format!("http://127.0.0.1/{}", "a".repeat(MAX_URL_LEN));
        assert!(matches!(
            Target::parse(&long),
            Err(TargetError::TooLong { .. })
        ));
    }

    #[test]
    fn parses_tls_urls_with_their_default_ports() {
        let h = Target::parse("https://localhost/live/x.flv").unwrap();
        assert_eq!(
            (h.scheme, h.tls, h.addr.port(), h.host.as_str()),
            (Scheme::HttpFlv, true, 443, "localhost")
        );
        let r = Target::parse("rtmps://127.0.0.1:1443/live/x").unwrap();
        assert_eq!(
            (r.scheme, r.tls, r.addr.port(), r.host.as_str()),
            (Scheme::Rtmp, true, 1443, "127.0.0.1")
        );
        assert_eq!(r.tc_url(), "rtmps://127.0.0.1:1443/live");
        let v6 = Target::parse("rtmps://[::1]/live/x").unwrap();
        assert_eq!((v6.addr.port(), v6.host.as_str()), (443, "::1"));
        assert!(!Target::parse("rtmp://127.0.0.1/live/x").unwrap().tls);
        assert!(matches!(
            Target::parse("https://127.0.0.1/live/x.m3u8"),
            Err(TargetError::HlsOverTls(_))
        ));
        assert!(matches!(
            Target::parse("https://10.1.1.1/live/x.flv"),
            Err(TargetError::NotLoopback(_))
        ));
    }

    #[test]
    fn stream_index_templates() {
        let t = Target::parse("rtmp://127.0.0.1/live/s{i}").unwrap();
        assert_eq!(t.for_stream(3).stream, "s3");
        let h = Target::parse("http://127.0.0.1/live/s{i}.flv").unwrap();
        assert_eq!(h.for_stream(7).path, "/live/s7.flv");
    }
}
