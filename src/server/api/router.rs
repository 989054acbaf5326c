//! The API router: a pure function from a request line and headers to a
//! response value (and, for `DELETE`, an action for the server to carry out).

use serde::Serialize;

use super::auth::{AuthOutcome, BearerToken};
use super::path::{split_target, PathError};
use super::snapshot::{ServerInfo, ServerSnapshot, ViewerCounts};
use super::status_page::{host_from_header, render_status_page, PlayUrlConfig};
use crate::metrics::{MetricsRegistry, METRICS_CONTENT_TYPE};

/// `Content-Type` of API responses.
pub const JSON_CONTENT_TYPE: &str = "application/json";
/// `Content-Type` of the status page.
pub const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// How the API behaves; built once from the config.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// When set, requests must carry `Authorization: Bearer <token>`.
    pub token: Option<BearerToken>,
    /// Serve `/metrics` without the token (scrapers on a trusted network).
    pub public_metrics: bool,
    /// Serve the status page without the token (browsers cannot add the header).
    pub public_status_page: bool,
    /// How the status page builds play URLs.
    pub play_urls: PlayUrlConfig,
    /// Seconds between status page self-refreshes.
    pub refresh_secs: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            token: None,
            public_metrics: false,
            public_status_page: false,
            play_urls: PlayUrlConfig::default(),
            refresh_secs: 5,
        }
    }
}

impl ApiConfig {
    /// The default config protected by `token` when one is given.
    pub fn with_token(token: Option<&str>) -> Self {
        Self {
            token: token.map(BearerToken::new),
            ..Self::default()
        }
    }
}

/// Something the server must do after sending the response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ApiAction {
    /// Disconnect the publisher (or stop the origin pull) of `app`/`name`.
    KickPublisher {
        /// Application.
        app: String,
        /// Stream name.
        name: String,
    },
}

/// A response for the server to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiResponse {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type` header value.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// Headers beyond `Content-Type`/`Content-Length` (`Allow`, `WWW-Authenticate`,
    /// `Cache-Control`).
    pub headers: Vec<(&'static str, String)>,
    /// What the server must do once the response is sent.
    pub action: Option<ApiAction>,
}

impl ApiResponse {
    fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type,
            body,
            headers: vec![("Cache-Control", "no-store".to_owned())],
            action: None,
        }
    }

    fn json<T: Serialize>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::new(status, JSON_CONTENT_TYPE, body),
            Err(e) => Self::error(500, &format!("serialising response: {e}")),
        }
    }

    fn error(status: u16, message: &str) -> Self {
        #[derive(Serialize)]
        struct ErrorBody<'a> {
            error: &'a str,
        }
        let body = serde_json::to_vec(&ErrorBody { error: message })
            .unwrap_or_else(|_| b"{\"error\":\"internal\"}".to_vec());
        Self::new(status, JSON_CONTENT_TYPE, body)
    }

    fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The standard reason phrase for [`ApiResponse::status`].
    pub fn reason(&self) -> &'static str {
        match self.status {
            200 => "OK",
            202 => "Accepted",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            405 => "Method Not Allowed",
            414 => "URI Too Long",
            _ => "Internal Server Error",
        }
    }
}

/// The routes the API knows, from the path alone.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    StatusPage,
    Metrics,
    Streams,
    Stream { app: String, name: String },
    Server,
}

impl Route {
    fn parse(segments: Vec<String>) -> Option<Self> {
        let mut it = segments.into_iter();
        let parts: [Option<String>; 6] = std::array::from_fn(|_| it.next());
        match parts {
            [None, ..] => Some(Self::StatusPage),
            [Some(m), None, ..] if m == "metrics" => Some(Self::Metrics),
            [Some(a), Some(v), Some(r), rest @ ..] if a == "api" && v == "v1" => {
                match (r.as_str(), rest) {
                    ("streams", [None, ..]) => Some(Self::Streams),
                    ("streams", [Some(app), Some(name), None]) => Some(Self::Stream {
                        app: app.clone(),
                        name: name.clone(),
                    }),
                    ("server", [None, ..]) => Some(Self::Server),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn allowed_methods(&self) -> &'static str {
        match self {
            Self::Stream { .. } => "GET, DELETE",
            _ => "GET",
        }
    }

    fn is_public(&self, cfg: &ApiConfig) -> bool {
        match self {
            Self::Metrics => cfg.public_metrics,
            Self::StatusPage => cfg.public_status_page,
            _ => false,
        }
    }
}

/// JSON body of `GET /api/v1/server`.
#[derive(Serialize)]
struct ServerReport<'a> {
    #[serde(flatten)]
    server: &'a ServerInfo,
    streams: usize,
    viewers: ViewerCounts,
}

/// JSON body of `GET /api/v1/streams`.
#[derive(Serialize)]
struct StreamList<'a> {
    streams: &'a [super::snapshot::StreamSnapshot],
}

/// Whether `target` is one of the API's routes (`/`, `/metrics`, `/api/v1/...`),
/// for a listener that serves media too and must decide who answers.
pub fn handles(target: &str) -> bool {
    split_target(target).is_ok_and(|segments| Route::parse(segments).is_some())
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Answers one API request.
///
/// `method` and `target` are the request line's method and raw target (not
/// percent-decoded: `%2F` inside a stream name must stay inside it); `headers`
/// are the request headers (only `Authorization` and `Host` are read).
/// `snapshot` is called only for routes that show streams or server facts, so a
/// `/metrics` scrape never pays for assembling one.
pub fn route(
    method: &str,
    target: &str,
    headers: &[(String, String)],
    config: &ApiConfig,
    metrics: &MetricsRegistry,
    snapshot: impl FnOnce() -> ServerSnapshot,
) -> ApiResponse {
    let segments = match split_target(target) {
        Ok(s) => s,
        Err(e @ PathError::TargetTooLong { .. }) => return ApiResponse::error(414, &e.to_string()),
        Err(e) => return ApiResponse::error(400, &e.to_string()),
    };
    let Some(route) = Route::parse(segments) else {
        return ApiResponse::error(404, "no such route");
    };

    if let (Some(token), false) = (&config.token, route.is_public(config)) {
        match token.check(header(headers, "authorization")) {
            AuthOutcome::Allowed => {}
            AuthOutcome::Missing => {
                return ApiResponse::error(401, "bearer token required")
                    .with_header("WWW-Authenticate", "Bearer realm=\"ringcast\"".to_owned());
            }
            AuthOutcome::Invalid => {
                tracing::info!(target, "API request with a wrong bearer token");
                return ApiResponse::error(401, "invalid bearer token").with_header(
                    "WWW-Authenticate",
                    "Bearer realm=\"ringcast\", error=\"invalid_token\"".to_owned(),
                );
            }
        }
    }

    match (method, route) {
        ("GET", Route::StatusPage) => {
            let snap = snapshot();
            let host =
                host_from_header(header(headers, "host")).unwrap_or(&config.play_urls.default_host);
            let html = render_status_page(&snap, host, &config.play_urls, config.refresh_secs);
            ApiResponse::new(200, HTML_CONTENT_TYPE, html.into_bytes())
        }
        ("GET", Route::Metrics) => {
            let mut body = Vec::with_capacity(16 * 1024);
            match metrics.render_bytes(&mut body) {
                Ok(()) => ApiResponse::new(200, METRICS_CONTENT_TYPE, body),
                Err(e) => ApiResponse::error(500, &e.to_string()),
            }
        }
        ("GET", Route::Streams) => {
            let snap = snapshot();
            ApiResponse::json(
                200,
                &StreamList {
                    streams: &snap.streams,
                },
            )
        }
        ("GET", Route::Stream { app, name }) => {
            let snap = snapshot();
            match snap.stream(&app, &name) {
                Some(stream) => ApiResponse::json(200, stream),
                None => ApiResponse::error(404, "stream not found"),
            }
        }
        ("DELETE", Route::Stream { app, name }) => {
            if snapshot().stream(&app, &name).is_none() {
                return ApiResponse::error(404, "stream not found");
            }
            tracing::info!(%app, %name, "API: kicking publisher");
            let action = ApiAction::KickPublisher { app, name };
            let mut resp = ApiResponse::json(202, &action);
            resp.action = Some(action);
            resp
        }
        ("GET", Route::Server) => {
            let snap = snapshot();
            ApiResponse::json(
                200,
                &ServerReport {
                    server: &snap.server,
                    streams: snap.streams.len(),
                    viewers: snap.total_viewers(),
                },
            )
        }
        (_, route) => ApiResponse::error(405, "method not allowed")
            .with_header("Allow", route.allowed_methods().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Protocol;
    use crate::server::api::snapshot::{AudioInfo, ConnectionCounts, StreamSnapshot, VideoInfo};
    use serde_json::Value;

    fn snap() -> ServerSnapshot {
        ServerSnapshot {
            server: ServerInfo {
                version: "0.1.0".into(),
                cores: 2,
                uptime_secs: 10,
                connections: ConnectionCounts {
                    open: 5,
                    accepted_total: 9,
                    refused_total: 1,
                },
                limits: [("max_connections".to_owned(), 100_000)]
                    .into_iter()
                    .collect(),
            },
            streams: vec![
                StreamSnapshot {
                    app: "live".into(),
                    name: "cam1".into(),
                    publisher_addr: Some("198.51.100.4:40000".parse().unwrap()),
                    video: Some(VideoInfo {
                        codec: "h264".into(),
                        width: Some(1920),
                        height: Some(1080),
                        fps: Some(25.0),
                    }),
                    audio: Some(AudioInfo {
                        codec: "aac".into(),
                        sample_rate: Some(48_000),
                        channels: Some(2),
                    }),
                    bitrate_in_bps: 4_000_000,
                    viewers: ViewerCounts {
                        http_flv: 2,
                        rtmp: 1,
                        hls: 0,
                        ws_flv: 0,
                    },
                    core: 1,
                    uptime_secs: 8,
                    ..Default::default()
                },
                StreamSnapshot {
                    app: "live".into(),
                    name: "a/b".into(),
                    ..Default::default()
                },
            ],
        }
    }

    fn call(method: &str, target: &str, headers: &[(&str, &str)], cfg: &ApiConfig) -> ApiResponse {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        let metrics = MetricsRegistry::new(2).unwrap();
        metrics.core(0).unwrap().viewers.add(Protocol::HttpFlv, 2);
        route(method, target, &headers, cfg, &metrics, snap)
    }

    fn json(resp: &ApiResponse) -> Value {
        assert_eq!(resp.content_type, JSON_CONTENT_TYPE);
        serde_json::from_slice(&resp.body).unwrap()
    }

    #[test]
    fn lists_streams() {
        let r = call("GET", "/api/v1/streams", &[], &ApiConfig::default());
        assert_eq!(r.status, 200);
        let v = json(&r);
        let first = &v["streams"][0];
        assert_eq!(first["app"], "live");
        assert_eq!(first["name"], "cam1");
        assert_eq!(first["publisher_addr"], "198.51.100.4:40000");
        assert_eq!(first["video"]["codec"], "h264");
        assert_eq!(first["video"]["width"], 1920);
        assert_eq!(first["audio"]["sample_rate"], 48_000);
        assert_eq!(first["bitrate_in_bps"], 4_000_000);
        assert_eq!(first["viewers"]["http_flv"], 2);
        assert_eq!(first["core"], 1);
        assert_eq!(v["streams"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn gets_one_stream_with_encoded_slash_and_404s_unknown() {
        let cfg = ApiConfig::default();
        let r = call("GET", "/api/v1/streams/live/cam1", &[], &cfg);
        assert_eq!(r.status, 200);
        assert_eq!(json(&r)["name"], "cam1");
        let r = call("GET", "/api/v1/streams/live/a%2Fb", &[], &cfg);
        assert_eq!(json(&r)["name"], "a/b");
        let r = call("GET", "/api/v1/streams/live/nope", &[], &cfg);
        assert_eq!(r.status, 404);
        assert_eq!(json(&r)["error"], "stream not found");
        assert_eq!(
            call("GET", "/api/v1/streams/live/cam1/extra", &[], &cfg).status,
            404
        );
    }

    #[test]
    fn delete_kicks_the_publisher_through_an_action() {
        let cfg = ApiConfig::default();
        let r = call("DELETE", "/api/v1/streams/live/cam1", &[], &cfg);
        assert_eq!(r.status, 202);
        assert_eq!(
            r.action,
            Some(ApiAction::KickPublisher {
                app: "live".into(),
                name: "cam1".into()
            })
        );
        assert_eq!(json(&r)["action"], "kick_publisher");
        let r = call("DELETE", "/api/v1/streams/live/nope", &[], &cfg);
        assert_eq!((r.status, r.action), (404, None));
    }

    #[test]
    fn server_report_has_version_cores_connections_limits_and_totals() {
        let r = call("GET", "/api/v1/server", &[], &ApiConfig::default());
        assert_eq!(r.status, 200);
        let v = json(&r);
        assert_eq!(v["version"], "0.1.0");
        assert_eq!(v["cores"], 2);
        assert_eq!(v["connections"]["open"], 5);
        assert_eq!(v["limits"]["max_connections"], 100_000);
        assert_eq!(v["streams"], 2);
        assert_eq!(v["viewers"]["rtmp"], 1);
    }

    #[test]
    fn metrics_route_renders_the_registry_without_a_snapshot() {
        let metrics = MetricsRegistry::new(1).unwrap();
        let r = route(
            "GET",
            "/metrics",
            &[],
            &ApiConfig::default(),
            &metrics,
            || panic!("a metrics scrape must not build a snapshot"),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, METRICS_CONTENT_TYPE);
        assert!(String::from_utf8(r.body)
            .unwrap()
            .contains("# TYPE ringcast_viewers gauge"));
    }

    #[test]
    fn status_page_uses_host_header_for_play_urls() {
        let r = call(
            "GET",
            "/",
            &[("Host", "edge7.example:8080")],
            &ApiConfig::default(),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, HTML_CONTENT_TYPE);
        let html = String::from_utf8(r.body).unwrap();
        assert!(html.contains("http://edge7.example:8080/live/cam1.flv"));
        assert!(html.contains("/live/a%2Fb.flv"));
        let r = call("GET", "/", &[("Host", "<bad>")], &ApiConfig::default());
        assert!(String::from_utf8(r.body)
            .unwrap()
            .contains("rtmp://localhost:1935/live/cam1"));
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let cfg = ApiConfig::default();
        let r = call("POST", "/api/v1/streams", &[], &cfg);
        assert_eq!(r.status, 405);
        assert!(r.headers.contains(&("Allow", "GET".to_owned())));
        let r = call("PUT", "/api/v1/streams/live/cam1", &[], &cfg);
        assert!(r.headers.contains(&("Allow", "GET, DELETE".to_owned())));
        assert_eq!(r.action, None);
    }

    #[test]
    fn bad_targets_are_400_414_and_unknown_404() {
        let cfg = ApiConfig::default();
        assert_eq!(
            call("GET", "/api/v1/streams/live/a%zz", &[], &cfg).status,
            400
        );
        let long = format!("/api/{}", "x".repeat(super::super::path::MAX_TARGET_LEN));
        assert_eq!(call("GET", &long, &[], &cfg).status, 414);
        assert_eq!(call("GET", "/api/v2/streams", &[], &cfg).status, 404);
        assert_eq!(call("GET", "/favicon.ico", &[], &cfg).status, 404);
    }

    #[test]
    fn token_protects_every_route_unless_made_public() {
        let cfg = ApiConfig::with_token(Some("t0k"));
        for target in ["/", "/metrics", "/api/v1/streams", "/api/v1/server"] {
            let r = call("GET", target, &[], &cfg);
            assert_eq!(r.status, 401, "{target}");
            assert!(r
                .headers
                .iter()
                .any(|(n, v)| *n == "WWW-Authenticate" && v.starts_with("Bearer")));
            assert_eq!(
                call("GET", target, &[("authorization", "Bearer t0k")], &cfg).status,
                200
            );
        }
        let r = call(
            "DELETE",
            "/api/v1/streams/live/cam1",
            &[("Authorization", "Bearer wrong")],
            &cfg,
        );
        assert_eq!((r.status, r.action), (401, None));
        assert!(r.headers.iter().any(|(_, v)| v.contains("invalid_token")));
        let open = ApiConfig {
            public_metrics: true,
            public_status_page: true,
            ..cfg
        };
        assert_eq!(call("GET", "/metrics", &[], &open).status, 200);
        assert_eq!(call("GET", "/", &[], &open).status, 200);
        assert_eq!(call("GET", "/api/v1/streams", &[], &open).status, 401);
    }

    #[test]
    fn handles_only_api_routes() {
        assert!(handles("/"));
        assert!(handles("/metrics"));
        assert!(handles("/api/v1/streams/live/x?y=1"));
        assert!(!handles("/live/cam1.flv"));
        assert!(!handles("/api/v1/streams/live"));
        assert!(!handles("/a%zz"));
    }

    #[test]
    fn reason_phrases() {
        let r = call("GET", "/nope", &[], &ApiConfig::default());
        assert_eq!((r.status, r.reason()), (404, "Not Found"));
    }
}
