//! HLS / DASH requests on the public HTTP port: `GET`/`HEAD` of every URL of
//! `protocol::hls::urls`, `OPTIONS` preflight, and the clock the MPD's
//! `UTCTiming` names. Stream keys and play tokens as HTTP-FLV (tokens are
//! checked on the entry URLs: `.m3u8`, `-ts.m3u8`, `.mpd`; the URLs they
//! list are relative and carry no query). A request is answered from the
//! core's [`HlsView`] of the stream, or held as a waiter; the connection is
//! parked meanwhile, so pipelined requests behind it are answered in order.

use bytes::BytesMut;

use crate::metrics::HlsKind;
use crate::protocol::hls::urls::{self, Resource, UrlError};
use crate::protocol::hls::HlsView;
use crate::protocol::http::request::{Method, Request};
use crate::protocol::http::response::{self, ResponseContext};
use crate::server::pending::WaitingPlay;
use crate::server::worker::CoreState;
use crate::stream::{StreamId, StreamKey};

/// How long a request waits for the owner core's first view of a stream, or
/// for a live stream's first packaged keyframe.
pub(super) const VIEW_WAIT_MS: u64 = 2_000;

/// One HLS request, as held by a waiter or a wait for the stream.
#[derive(Clone, Debug)]
pub struct HlsRequest {
    /// The stream.
    pub key: StreamKey,
    /// What is asked for.
    pub resource: Resource,
    /// The raw query (without `?`).
    pub query: String,
    /// How to answer.
    pub ctx: ResponseContext,
    /// When it arrived (core ms).
    pub since_ms: u64,
    /// Its connection's slab generation.
    pub generation: u32,
    /// Its `Range` header, if any (bounded by the request head limit).
    pub range: Option<String>,
}

/// The metrics kind of a request.
pub(super) fn kind(resource: &Resource, query: &str) -> HlsKind {
    match resource {
        Resource::Multivariant => HlsKind::Multivariant,
        Resource::MediaPlaylist(_) if query.contains("_HLS_msn=") => HlsKind::BlockingReload,
        Resource::MediaPlaylist(_) => HlsKind::MediaPlaylist,
        Resource::TsPlaylist => HlsKind::TsPlaylist,
        Resource::Mpd => HlsKind::Mpd,
        Resource::Init { .. } => HlsKind::Init,
        Resource::Part { .. } => HlsKind::Part,
        Resource::Segment { .. } => HlsKind::Segment,
        Resource::TsSegment { .. } => HlsKind::TsSegment,
    }
}

/// The suffix CDN signing schemes see after `/{app}/{stream}` on an entry URL.
fn entry_suffix(resource: &Resource) -> Option<&'static str> {
    match resource {
        Resource::Multivariant => Some(".m3u8"),
        Resource::TsPlaylist => Some("-ts.m3u8"),
        Resource::Mpd => Some(".mpd"),
        _ => None,
    }
}

impl CoreState {
    /// Answers `req` if its path is an HLS/DASH one (or the `UTCTiming`
    /// clock); `None` when it is not. `Some(keep_going)` otherwise, as
    /// `on_request`.
    pub(crate) fn on_hls_request(
        &mut self,
        slot: u32,
        req: &Request,
        ctx: ResponseContext,
    ) -> Option<bool> {
        let hls = &self.shared.config.hls;
        if !hls.enabled {
            return None;
        }
        if req.path == hls.utc_timing {
            return Some(self.serve_clock(slot, req, ctx));
        }
        let parsed = match urls::parse(&req.path) {
            Ok(p) => p,
            Err(UrlError::NotHls) => return None,
            Err(e) => {
                tracing::debug!(core = self.core, error = %e, "bad HLS path");
                return Some(self.hls_error(slot, ctx, 400));
            }
        };
        if req.method == Method::Options {
            let mut out = BytesMut::new();
            response::write_options(&ctx, "GET, HEAD, OPTIONS", &mut out);
            return Some(self.respond_bytes(slot, out.freeze(), None, ctx.keep_alive));
        }
        if !matches!(req.method, Method::Get | Method::Head) {
            let mut out = BytesMut::new();
            response::write_method_not_allowed(&ctx, "GET, HEAD, OPTIONS", &mut out);
            self.metrics.hls.error(405);
            return Some(self.respond_bytes(slot, out.freeze(), None, ctx.keep_alive));
        }
        let key = match StreamKey::new(parsed.app, parsed.stream) {
            Ok(k) => k,
            Err(_) => return Some(self.hls_error(slot, ctx, 400)),
        };
        let query = req.target.split_once('?').map_or("", |(_, q)| q);
        self.metrics.hls.request(kind(&parsed.resource, query));
        let generation = self.conns.at(slot)?.generation;
        let suffix = entry_suffix(&parsed.resource);
        // What CDN signing schemes sign after `/{app}/{stream}`.
        let (app_len, stream_len) = (parsed.app.len(), parsed.stream.len());
        let hreq = HlsRequest {
            key,
            resource: parsed.resource,
            query: query.to_owned(),
            ctx,
            since_ms: self.now_ms(),
            generation,
            range: req.header("range").map(str::to_owned),
        };
        // `[auth]` (signed URL, hook) once per viewer session: see
        // `session_access`.
        let prefix_len = 2 + app_len + stream_len;
        let uri_suffix = suffix.unwrap_or_else(|| req.path.get(prefix_len..).unwrap_or(""));
        match self.hls_access(slot, hreq, suffix.is_some(), uri_suffix) {
            Ok(hreq) => Some(self.hls_start(slot, hreq)),
            Err(keep_going) => Some(keep_going),
        }
    }

    /// The `UTCTiming` clock: the time now, ISO 8601 with milliseconds.
    fn serve_clock(&mut self, slot: u32, req: &Request, ctx: ResponseContext) -> bool {
        if !matches!(req.method, Method::Get | Method::Head) {
            return self.hls_error(slot, ctx, 405);
        }
        let mut now = String::new();
        crate::protocol::hls::playlist::write_datetime(&mut now, super::streams::unix_ms());
        let mut out = BytesMut::new();
        response::write_response(
            &ctx,
            200,
            "text/plain; charset=utf-8",
            now.as_bytes(),
            &[("Cache-Control", "no-store")],
            &mut out,
        );
        self.respond_bytes(slot, out.freeze(), None, ctx.keep_alive)
    }

    /// Answers with an error status (counted); keeps the connection.
    pub(crate) fn hls_error(&mut self, slot: u32, ctx: ResponseContext, status: u16) -> bool {
        self.metrics.hls.error(status);
        let mut out = BytesMut::new();
        response::write_error(&ctx, status, &mut out);
        self.respond_bytes(slot, out.freeze(), None, ctx.keep_alive)
    }

    /// Starts answering a request: from the stream's view, or held.
    pub(crate) fn hls_start(&mut self, slot: u32, req: HlsRequest) -> bool {
        let ctx = req.ctx;
        let Some((stream_id, owner)) = self.shared.directory.lookup(&req.key) else {
            return self.hls_not_live(slot, req);
        };
        match self.hls_view(stream_id, owner) {
            Some(view) => {
                self.count_session_tick(stream_id, &req, &view);
                self.hls_answer(slot, stream_id, req, &view, None)
            }
            // No view yet: owned here with no frame packaged, or the owner
            // core's first view is on its way.
            None if !self.shared.config.hls.enabled => self.hls_error(slot, ctx, 404),
            None => {
                let deadline_ms = req.since_ms.saturating_add(VIEW_WAIT_MS);
                self.hls_wait(slot, stream_id, req, deadline_ms, None)
            }
        }
    }

    /// Feeds the session estimate (`sessions.rs`) with a request.
    fn count_session_tick(&mut self, stream_id: StreamId, req: &HlsRequest, view: &HlsView) {
        use super::sessions::Tick;
        use crate::protocol::hls::TrackKind;
        let leading = if view.carries(TrackKind::Video) {
            TrackKind::Video
        } else {
            TrackKind::Audio
        };
        let tick = match req.resource {
            Resource::MediaPlaylist(t) if t == leading && req.query.contains("_HLS_msn=") => {
                Tick::Reload
            }
            Resource::Segment { track, .. } if track == leading => Tick::Segment,
            Resource::TsSegment { .. } => Tick::Segment,
            _ => return,
        };
        let progress = (
            view.version(),
            view.state().and_then(|s| s.last_closed_msn).unwrap_or(0),
        );
        self.hls.sessions.tick(stream_id, tick, progress);
    }

    /// The key is not live here: held for a publisher or an edge pull like
    /// an HTTP-FLV play, else 404.
    fn hls_not_live(&mut self, slot: u32, req: HlsRequest) -> bool {
        let ctx = req.ctx;
        let key = req.key.clone();
        if self.edge_enabled() {
            let query = (!req.query.is_empty()).then(|| req.query.clone());
            self.park(slot);
            self.hls.held.insert(slot, req);
            self.edge_hold_viewer(slot, key, query, WaitingPlay::Hls(ctx));
            return false;
        }
        let now = self.now_ms();
        if self
            .pending
            .hold(&mut self.conns, slot, key, WaitingPlay::Hls(ctx), now)
        {
            self.park(slot);
            self.hls.held.insert(slot, req);
            return false;
        }
        self.hls_error(slot, ctx, 404)
    }

    /// A held request's stream went live (or its wait failed: `status`).
    pub(crate) fn hls_resume_held(&mut self, slot: u32, status: Option<u16>) {
        let Some(req) = self.hls.held.remove(&slot) else {
            return;
        };
        if self
            .conns
            .get_mut(slot, req.generation)
            .is_none_or(|c| c.closing)
        {
            return;
        }
        let keep = match status {
            Some(s) => self.hls_error(slot, req.ctx, s),
            None => {
                // Its waits for a view and a keyframe count from now, not
                // from before the publisher (or the edge pull) came.
                let mut req = req;
                req.since_ms = self.now_ms();
                self.hls_start(slot, req)
            }
        };
        if keep {
            self.process_http(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::hls::TrackKind;

    #[test]
    fn kinds_and_entry_urls() {
        let v = TrackKind::Video;
        assert_eq!(
            kind(&Resource::MediaPlaylist(v), ""),
            HlsKind::MediaPlaylist
        );
        assert_eq!(
            kind(&Resource::MediaPlaylist(v), "_HLS_msn=3&_HLS_part=1"),
            HlsKind::BlockingReload
        );
        assert_eq!(
            kind(
                &Resource::Part {
                    track: v,
                    msn: 1,
                    part: 0
                },
                ""
            ),
            HlsKind::Part
        );
        assert_eq!(
            kind(&Resource::TsSegment { msn: 1 }, ""),
            HlsKind::TsSegment
        );
        assert_eq!(entry_suffix(&Resource::Multivariant), Some(".m3u8"));
        assert_eq!(entry_suffix(&Resource::TsPlaylist), Some("-ts.m3u8"));
        assert_eq!(entry_suffix(&Resource::Mpd), Some(".mpd"));
        assert_eq!(entry_suffix(&Resource::Segment { track: v, msn: 2 }), None);
    }
}
