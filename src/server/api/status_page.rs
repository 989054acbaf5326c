//! The small server-rendered HTML status page served on `GET /`: server facts,
//! one row per stream, and play URLs. It refreshes itself, so an operator can
//! leave it open without JavaScript.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::path::encode_segment;
use super::snapshot::{ServerSnapshot, StreamSnapshot};

/// Longest `Host` header value used to build play URLs.
pub const MAX_HOST_LEN: usize = 255;

/// How play URLs on the status page are built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayUrlConfig {
    /// Host used when the request's `Host` header is missing or unusable.
    pub default_host: String,
    /// Port of the RTMP listener.
    pub rtmp_port: u16,
    /// Port of the HTTP listener serving HTTP-FLV.
    pub http_port: u16,
    /// Port of the HTTPS listener (`server.https_listen`), when there is one.
    pub https_port: Option<u16>,
    /// Port of the RTMPS listener (`server.rtmps_listen`), when there is one.
    pub rtmps_port: Option<u16>,
}

impl Default for PlayUrlConfig {
    fn default() -> Self {
        Self {
            default_host: "localhost".to_owned(),
            rtmp_port: 1935,
            http_port: 8080,
            https_port: None,
            rtmps_port: None,
        }
    }
}

/// The host part of a `Host` header (port removed, IPv6 brackets kept), if it
/// contains only characters a hostname or address literal can have. Anything
/// else falls back to the configured host rather than being echoed.
pub fn host_from_header(host: Option<&str>) -> Option<&str> {
    let host = host?.trim();
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return None;
    }
    let name = if host.starts_with('[') {
        let end = host.find(']')?;
        host.get(..=end)?
    } else {
        host.split(':').next()?
    };
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    ok.then_some(name)
}

impl PlayUrlConfig {
    /// Play URLs on the ports the server listens on, so the page never shows a
    /// default port the server does not use.
    pub fn for_listeners(rtmp: SocketAddr, http: SocketAddr) -> Self {
        Self {
            rtmp_port: rtmp.port(),
            http_port: http.port(),
            ..Self::default()
        }
    }

    /// Adds the TLS listeners' ports, so their `https://`, `wss://` and
    /// `rtmps://` URLs are listed too.
    pub fn with_tls(mut self, https: Option<SocketAddr>, rtmps: Option<SocketAddr>) -> Self {
        self.https_port = https.map(|a| a.port());
        self.rtmps_port = rtmps.map(|a| a.port());
        self
    }
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Play URLs of one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayUrls {
    /// `rtmp://host:port/app/name`.
    pub rtmp: String,
    /// `http://host:port/app/name.flv`.
    pub http_flv: String,
    /// `ws://host:port/app/name.flv` (WebSocket-FLV).
    pub ws_flv: String,
    /// `http://host:port/app/name.m3u8` (LL-HLS).
    pub hls: String,
    /// `http://host:port/app/name-ts.m3u8` (MPEG-TS HLS).
    pub hls_ts: String,
    /// `http://host:port/app/name.mpd` (LL-DASH).
    pub dash: String,
    /// `https://host:port/app/name.flv` (HTTPS-FLV), with an HTTPS listener.
    pub https_flv: Option<String>,
    /// `wss://host:port/app/name.flv` (WebSocket-FLV over TLS), with an HTTPS listener.
    pub wss_flv: Option<String>,
    /// `rtmps://host:port/app/name`, with an RTMPS listener.
    pub rtmps: Option<String>,
}

/// Builds the play URLs of `app`/`name` on `host`.
pub fn play_urls(host: &str, cfg: &PlayUrlConfig, app: &str, name: &str) -> PlayUrls {
    let (app, name) = (encode_segment(app), encode_segment(name));
    PlayUrls {
        rtmp: format!("rtmp://{host}:{}/{app}/{name}", cfg.rtmp_port),
        http_flv: format!("http://{host}:{}/{app}/{name}.flv", cfg.http_port),
        ws_flv: format!("ws://{host}:{}/{app}/{name}.flv", cfg.http_port),
        hls: format!("http://{host}:{}/{app}/{name}.m3u8", cfg.http_port),
        hls_ts: format!("http://{host}:{}/{app}/{name}-ts.m3u8", cfg.http_port),
        dash: format!("http://{host}:{}/{app}/{name}.mpd", cfg.http_port),
        https_flv: cfg
            .https_port
            .map(|port| format!("https://{host}:{port}/{app}/{name}.flv")),
        wss_flv: cfg
            .https_port
            .map(|port| format!("wss://{host}:{port}/{app}/{name}.flv")),
        rtmps: cfg
            .rtmps_port
            .map(|port| format!("rtmps://{host}:{port}/{app}/{name}")),
    }
}

/// Human-readable duration: `3d 4h`, `2h 5m`, `7m 3s`, `12s`.
fn format_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// Human-readable bitrate: `2.50 Mb/s`, `128 kb/s`.
fn format_bitrate(bps: u64) -> String {
    if bps >= 1_000_000 {
        format!("{:.2} Mb/s", bps as f64 / 1e6)
    } else {
        format!("{} kb/s", bps / 1000)
    }
}

fn video_cell(s: &StreamSnapshot) -> String {
    let Some(v) = &s.video else {
        return "-".to_owned();
    };
    let mut cell = escape_html(&v.codec);
    if let (Some(w), Some(h)) = (v.width, v.height) {
        let _ = write!(cell, " {w}×{h}");
    }
    if let Some(fps) = v.fps {
        let _ = write!(cell, " @{fps:.2}");
    }
    cell
}

fn audio_cell(s: &StreamSnapshot) -> String {
    let Some(a) = &s.audio else {
        return "-".to_owned();
    };
    let mut cell = escape_html(&a.codec);
    if let Some(rate) = a.sample_rate {
        let _ = write!(cell, " {rate} Hz");
    }
    if let Some(ch) = a.channels {
        let _ = write!(cell, " {ch}ch");
    }
    cell
}

/// Renders the status page. `host` is the host play URLs point at (see
/// [`host_from_header`]); `refresh_secs` is how often the page reloads itself.
pub fn render_status_page(
    snapshot: &ServerSnapshot,
    host: &str,
    urls: &PlayUrlConfig,
    refresh_secs: u32,
) -> String {
    let srv = &snapshot.server;
    let viewers = snapshot.total_viewers();
    let mut html = String::with_capacity(2048 + snapshot.streams.len() * 1024);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{refresh_secs}\">\
         <title>ringcast {version}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:1.5em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}\
         code{{font-size:.9em}}</style></head><body>\n\
         <h1>ringcast {version}</h1>\n\
         <p>{cores} cores · up {uptime} · {open} connections · {streams} streams · \
         {total} viewers ({flv} HTTP-FLV, {ws} WebSocket-FLV, {rtmp} RTMP, {hls} HLS/DASH)</p>\n",
        version = escape_html(&srv.version),
        cores = srv.cores,
        uptime = format_duration(srv.uptime_secs),
        open = srv.connections.open,
        streams = snapshot.streams.len(),
        total = viewers.total(),
        flv = viewers.http_flv,
        ws = viewers.ws_flv,
        rtmp = viewers.rtmp,
        hls = viewers.hls,
    );
    if snapshot.streams.is_empty() {
        html.push_str("<p>No live streams.</p>\n");
    } else {
        html.push_str(
            "<table><tr><th>stream</th><th>source</th><th>video</th><th>audio</th><th>bitrate in</th>\
             <th>viewers (flv/ws/rtmp/hls)</th><th>core</th><th>uptime</th><th>play</th></tr>\n",
        );
        for s in &snapshot.streams {
            let play = play_urls(host, urls, &s.app, &s.name);
            let source = match (&s.publisher_addr, &s.origin) {
                (Some(addr), _) => addr.to_string(),
                (None, Some(origin)) => format!("pull {origin}"),
                (None, None) => "-".to_owned(),
            };
            let _ = write!(
                html,
                "<tr><td>{app}/{name}</td><td>{source}</td><td>{video}</td><td>{audio}</td><td>{bitrate}</td>\
                 <td>{total} ({flv}/{ws}/{rtmp}/{hls})</td><td>{core}</td><td>{uptime}</td>\
                 <td><a href=\"{flv_url}\">HTTP-FLV</a> <a href=\"{hls_url}\">HLS</a> \
                 <a href=\"{ts_url}\">TS</a> <a href=\"{dash_url}\">DASH</a> <code>{ws_url}</code> <code>{rtmp_url}</code>",
                app = escape_html(&s.app),
                name = escape_html(&s.name),
                source = escape_html(&source),
                video = video_cell(s),
                audio = audio_cell(s),
                bitrate = format_bitrate(s.bitrate_in_bps),
                total = s.viewers.total(),
                flv = s.viewers.http_flv,
                ws = s.viewers.ws_flv,
                rtmp = s.viewers.rtmp,
                hls = s.viewers.hls,
                core = s.core,
                uptime = format_duration(s.uptime_secs),
                flv_url = escape_html(&play.http_flv),
                ws_url = escape_html(&play.ws_flv),
                rtmp_url = escape_html(&play.rtmp),
                hls_url = escape_html(&play.hls),
                ts_url = escape_html(&play.hls_ts),
                dash_url = escape_html(&play.dash),
            );
            if let Some(url) = &play.https_flv {
                let _ = write!(html, " <a href=\"{}\">HTTPS-FLV</a>", escape_html(url));
            }
            for url in [&play.wss_flv, &play.rtmps].into_iter().flatten() {
                let _ = write!(html, " <code>{}</code>", escape_html(url));
            }
            html.push_str("</td></tr>\n");
        }
        html.push_str("</table>\n");
    }
    html.push_str("<p><a href=\"/api/v1/streams\">/api/v1/streams</a> · <a href=\"/api/v1/server\">/api/v1/server</a> · <a href=\"/metrics\">/metrics</a></p>\n</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::api::snapshot::{ServerInfo, VideoInfo, ViewerCounts};

    fn snapshot_with(app: &str, name: &str) -> ServerSnapshot {
        ServerSnapshot {
            server: ServerInfo {
                version: "0.1.0".into(),
                cores: 2,
                uptime_secs: 3725,
                ..Default::default()
            },
            streams: vec![StreamSnapshot {
                app: app.into(),
                name: name.into(),
                publisher_addr: Some("192.0.2.7:50000".parse().unwrap()),
                video: Some(VideoInfo {
                    codec: "h264".into(),
                    width: Some(1280),
                    height: Some(720),
                    fps: Some(30.0),
                }),
                bitrate_in_bps: 2_500_000,
                viewers: ViewerCounts {
                    http_flv: 3,
                    rtmp: 1,
                    hls: 0,
                    ws_flv: 0,
                },
                core: 1,
                uptime_secs: 65,
                ..Default::default()
            }],
        }
    }

    #[test]
    fn page_refreshes_and_lists_streams_with_play_urls() {
        let html = render_status_page(
            &snapshot_with("live", "cam1"),
            "edge.example",
            &PlayUrlConfig::default(),
            5,
        );
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
        assert!(html.contains("<td>live/cam1</td>"));
        assert!(html.contains("href=\"http://edge.example:8080/live/cam1.flv\""));
        assert!(html.contains("rtmp://edge.example:1935/live/cam1"));
        assert!(html.contains("h264 1280×720 @30.00"));
        assert!(html.contains("2.50 Mb/s"));
        assert!(html.contains("4 (3/0/1/0)"));
        assert!(html.contains("<code>ws://edge.example:8080/live/cam1.flv</code>"));
        assert!(html.contains("href=\"http://edge.example:8080/live/cam1.m3u8\">HLS</a>"));
        assert!(html.contains("up 1h 2m"));
        assert!(html.contains("192.0.2.7:50000"));
        assert!(html.contains("http://edge.example:8080/live/cam1.mpd"));
    }

    #[test]
    fn play_urls_use_the_listeners_ports() {
        let cfg = PlayUrlConfig::for_listeners(
            "0.0.0.0:19350".parse().unwrap(),
            "[::]:8081".parse().unwrap(),
        );
        let html = render_status_page(&snapshot_with("live", "cam1"), "edge.example", &cfg, 5);
        assert!(html.contains("rtmp://edge.example:19350/live/cam1"));
        assert!(html.contains("href=\"http://edge.example:8081/live/cam1.flv\""));
        assert!(!html.contains(":1935/"), "no default RTMP port: {html}");
        assert!(!html.contains(":8080/"), "no default HTTP port: {html}");
        assert!(
            !html.contains("https://") && !html.contains("wss://") && !html.contains("rtmps://")
        );
    }

    #[test]
    fn tls_listeners_add_https_wss_and_rtmps_urls() {
        let cfg = PlayUrlConfig::for_listeners(
            "0.0.0.0:1935".parse().unwrap(),
            "0.0.0.0:8080".parse().unwrap(),
        )
        .with_tls(
            Some("0.0.0.0:8443".parse().unwrap()),
            Some("0.0.0.0:1443".parse().unwrap()),
        );
        let html = render_status_page(&snapshot_with("live", "cam1"), "edge.example", &cfg, 5);
        assert!(html.contains("<a href=\"https://edge.example:8443/live/cam1.flv\">HTTPS-FLV</a>"));
        assert!(html.contains("<code>wss://edge.example:8443/live/cam1.flv</code>"));
        assert!(html.contains("<code>rtmps://edge.example:1443/live/cam1</code>"));
        let only_https = PlayUrlConfig::default().with_tls(Some("[::]:443".parse().unwrap()), None);
        let urls = play_urls("h", &only_https, "live", "a b");
        assert_eq!(
            urls.https_flv.as_deref(),
            Some("https://h:443/live/a%20b.flv")
        );
        assert_eq!(urls.wss_flv.as_deref(), Some("wss://h:443/live/a%20b.flv"));
        assert_eq!(urls.rtmps, None);
    }

    #[test]
    fn hostile_names_are_escaped_everywhere() {
        let evil = "<script>alert(\"x\")</script>&'";
        let html = render_status_page(
            &snapshot_with(evil, evil),
            "h",
            &PlayUrlConfig::default(),
            5,
        );
        assert!(!html.contains("<script>"));
        assert!(!html.contains("alert(\""));
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"));
        // In URLs the name is percent-encoded, so it cannot break out of href="…".
        assert!(html.contains("/%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E%26%27.flv"));
    }

    #[test]
    fn empty_server_says_so() {
        let html = render_status_page(
            &ServerSnapshot::default(),
            "h",
            &PlayUrlConfig::default(),
            10,
        );
        assert!(html.contains("No live streams."));
        assert!(!html.contains("<table>"));
    }

    #[test]
    fn host_header_is_validated() {
        assert_eq!(
            host_from_header(Some("edge.example:8080")),
            Some("edge.example")
        );
        assert_eq!(
            host_from_header(Some("[2001:db8::1]:8080")),
            Some("[2001:db8::1]")
        );
        assert_eq!(host_from_header(Some("evil\"><script>")), None);
        assert_eq!(host_from_header(Some("")), None);
        assert_eq!(host_from_header(None), None);
        assert_eq!(host_from_header(Some(&"a".repeat(MAX_HOST_LEN + 1))), None);
    }

    #[test]
    fn play_urls_encode_names_and_formats() {
        let urls = play_urls("h", &PlayUrlConfig::default(), "live", "a b");
        assert_eq!(urls.http_flv, "http://h:8080/live/a%20b.flv");
        assert_eq!(urls.ws_flv, "ws://h:8080/live/a%20b.flv");
        assert_eq!(urls.rtmp, "rtmp://h:1935/live/a%20b");
        assert_eq!(urls.hls, "http://h:8080/live/a%20b.m3u8");
        assert_eq!(urls.hls_ts, "http://h:8080/live/a%20b-ts.m3u8");
        assert_eq!(urls.dash, "http://h:8080/live/a%20b.mpd");
        assert_eq!(format_duration(90_000), "1d 1h");
        assert_eq!(format_duration(59), "59s");
        assert_eq!(format_bitrate(128_000), "128 kb/s");
    }
}
