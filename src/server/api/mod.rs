//! The admin HTTP API, `/metrics` and the status page, as pure functions.
//!
//! The server parses the request head, calls [`route`] with the method, raw
//! target, headers, the [`ApiConfig`], the [`crate::metrics::MetricsRegistry`] and
//! a closure that assembles a [`ServerSnapshot`], writes the returned
//! [`ApiResponse`], and then carries out its [`ApiAction`], if any. Nothing here
//! touches sockets or cores.

mod auth;
mod path;
mod router;
mod snapshot;
mod status_page;

pub use self::auth::{AuthOutcome, BearerToken, MAX_AUTHORIZATION_LEN};
pub use self::path::{
    encode_segment, split_target, PathError, MAX_SEGMENTS, MAX_SEGMENT_LEN, MAX_TARGET_LEN,
};
pub use self::router::{
    handles, route, ApiAction, ApiConfig, ApiResponse, HTML_CONTENT_TYPE, JSON_CONTENT_TYPE,
};
pub use self::snapshot::{
    audio_codec_name, video_codec_name, AudioInfo, ConnectionCounts, ServerInfo, ServerSnapshot,
    StreamSnapshot, VideoInfo, ViewerCounts,
};
pub use self::status_page::{
    escape_html, host_from_header, play_urls, render_status_page, PlayUrlConfig, PlayUrls,
    MAX_HOST_LEN,
};
