//! HLS / DASH requests on the public HTTP port: `GET`/`HEAD` of every URL of
//! `protocol::hls::urls`, `OPTIONS` preflight, and the clock the MPD's
//! `UTCTiming` names. Stream keys and play tokens as HTTP-FLV (tokens are
//! checked on the entry URLs: `.m3u8`, `-ts.m3u8`, `.mpd`; the URLs they
//! list are relative and carry no query). A request is answered from the
//! core's [`HlsView`] of the stream, or held as a waiter; the connection is
//! parked meanwhile, so pipelined requests behind it are answered in order.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::waiters::{Streaming, Waiter};
use crate::auth::Action;
use crate::metrics::{CloseReason, HlsKind};
use crate::protocol::hls::serve::{Answer, Cacheability};
use crate::protocol::hls::urls::{self, Resource, UrlError};
use crate::protocol::hls::{Body, HlsView, RequestError};
use crate::protocol::http::range::{parse_range, ByteRange, RangeRequest};
use crate::protocol::http::request::{Method, Request};
use crate::protocol::http::response::{self, BodyFraming, ResponseContext, LAST_CHUNK};
use crate::server::conn::{Hold, Proto};
use crate::server::pending::WaitingPlay;
use crate::server::worker::CoreState;
use crate::stream::{StreamId, StreamKey};

/// How long a request waits for the owner core's first view of a stream, or
/// for a live stream's first packaged keyframe.
const VIEW_WAIT_MS: u64 = 2_000;

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
fn kind(resource: &Resource, query: &str) -> HlsKind {
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

/// The bytes of `body` in `r` (slices of its pieces; nothing copied).
fn slice_body(body: &Body, r: ByteRange) -> Body {
    let mut out = Vec::new();
    let mut at = 0u64;
    for p in body.pieces() {
        let (start, end) = (at, at + p.len() as u64);
        at = end;
        if end <= r.first || start > r.last {
            continue;
        }
        let from = r.first.saturating_sub(start) as usize;
        let to = ((r.last + 1).min(end) - start) as usize;
        out.push(p.slice(from..to));
    }
    Body::from_pieces(out)
}

/// `Cache-Control` of a reply.
fn cache_control(cache: Cacheability, view: &HlsView) -> String {
    let timing = view.state().map(|s| s.timing);
    match cache {
        Cacheability::Immutable => "max-age=31536000, immutable".to_owned(),
        // Whole seconds: a 334 ms part target gives 0 (revalidate each time).
        Cacheability::ShortLived => {
            format!("max-age={}", timing.map_or(0, |t| t.part_target_ms / 1_000))
        }
        Cacheability::BlockingReload => format!(
            "max-age={}",
            timing.map_or(0, |t| t.target_duration_s.saturating_mul(3))
        ),
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
        if let Some(suffix) = entry_suffix(&parsed.resource) {
            let (app, stream) = (parsed.app.to_owned(), parsed.stream.to_owned());
            let q = (!query.is_empty()).then_some(query);
            if self
                .authorize(slot, Action::Play, &app, &stream, suffix, q)
                .is_err()
            {
                return Some(self.hls_error(slot, ctx, 403));
            }
        }
        self.metrics.hls.request(kind(&parsed.resource, query));
        let generation = self.conns.at(slot)?.generation;
        let hreq = HlsRequest {
            key,
            resource: parsed.resource,
            query: query.to_owned(),
            ctx,
            since_ms: self.now_ms(),
            generation,
            range: req.header("range").map(str::to_owned),
        };
        Some(self.hls_start(slot, hreq))
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
    fn hls_error(&mut self, slot: u32, ctx: ResponseContext, status: u16) -> bool {
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
            None => self.hls_start(slot, req),
        };
        if keep {
            self.process_http(slot);
        }
    }

    /// Holds a request until `deadline_ms` (503 when the core holds too many).
    fn hls_wait(
        &mut self,
        slot: u32,
        stream_id: StreamId,
        req: HlsRequest,
        deadline_ms: u64,
        streaming: Option<Streaming>,
    ) -> bool {
        let ctx = req.ctx;
        let w = Waiter {
            slot,
            stream_id,
            req,
            deadline_ms,
            streaming,
        };
        if self.hls.waiters.add(w).is_err() {
            if streaming.is_some() {
                self.conns.close_later(slot, CloseReason::ProtocolError);
                return false;
            }
            return self.hls_error(slot, ctx, 503);
        }
        self.metrics.hls.waiters.set(self.hls.waiters.len() as i64);
        self.park(slot);
        // The core's timer wheel answers it at its deadline.
        if let Some(Proto::Http(http)) = self.conns.at(slot).map(|c| &mut c.proto) {
            http.park_until(deadline_ms);
        }
        self.conns.arm_timer(slot);
        false
    }

    /// The timer wheel fired for the request held on `slot`: 503 (a
    /// streamed segment that stalled is closed instead).
    pub(crate) fn hls_held_due(&mut self, slot: u32, now_ms: u64) {
        let Some(w) = self.hls.waiters.take_slot(slot) else {
            return;
        };
        self.metrics.hls.waiters.set(self.hls.waiters.len() as i64);
        self.hls_expired(w, now_ms);
    }

    /// Answers a waiter whose deadline passed.
    fn hls_expired(&mut self, w: Waiter, _now_ms: u64) {
        if self
            .conns
            .get_mut(w.slot, w.req.generation)
            .is_none_or(|c| c.closing)
        {
            return;
        }
        if w.streaming.is_some() {
            self.conns.close_later(w.slot, CloseReason::StreamEnded);
            return;
        }
        if self.hls_error(w.slot, w.req.ctx, 503) {
            self.process_http(w.slot);
        }
    }

    /// No further request is read on `slot` until this one is answered.
    fn park(&mut self, slot: u32) {
        if let Some(Proto::Http(http)) = self.conns.at(slot).map(|c| &mut c.proto) {
            http.park();
        }
    }

    /// Answers (or holds) a request from `view`.
    fn hls_answer(
        &mut self,
        slot: u32,
        stream_id: StreamId,
        req: HlsRequest,
        view: &Arc<HlsView>,
        streaming: Option<Streaming>,
    ) -> bool {
        if let Some(st) = streaming {
            return self.hls_stream_more(slot, stream_id, req, view, st);
        }
        let now = self.now_ms();
        let ctx = req.ctx;
        let k = kind(&req.resource, &req.query);
        match view.answer(req.resource, &req.query, req.since_ms, now) {
            Ok(Answer::Serve(reply)) => {
                let cc = cache_control(reply.cache, view);
                let total = reply.body.len() as u64;
                // Ranges of immutable bodies only (a playlist changes under them).
                let range = if reply.cache == Cacheability::Immutable {
                    parse_range(req.range.as_deref(), total)
                } else {
                    RangeRequest::Whole
                };
                let mut head = BytesMut::new();
                let (status, body, content_range) = match range {
                    RangeRequest::Whole => (200, reply.body.clone(), None),
                    RangeRequest::Part(r) => (
                        206,
                        slice_body(&reply.body, r),
                        Some(format!("bytes {}-{}/{total}", r.first, r.last)),
                    ),
                    RangeRequest::Unsatisfiable => {
                        self.metrics.hls.error(416);
                        let cr = format!("bytes */{total}");
                        response::write_body_head(
                            &ctx,
                            416,
                            reply.content_type,
                            Some(0),
                            &[("Content-Range", &cr)],
                            &mut head,
                        );
                        return self.respond_bytes(slot, head.freeze(), None, ctx.keep_alive);
                    }
                };
                let mut extra: Vec<(&str, &str)> = vec![("Cache-Control", &cc)];
                if reply.cache == Cacheability::Immutable {
                    extra.push(("Accept-Ranges", "bytes"));
                }
                if let Some(cr) = &content_range {
                    extra.push(("Content-Range", cr));
                }
                response::write_body_head(
                    &ctx,
                    status,
                    reply.content_type,
                    Some(body.len() as u64),
                    &extra,
                    &mut head,
                );
                let body = (!ctx.head_only).then_some(&body);
                if let Some(b) = body {
                    self.metrics.hls.bytes(k, b.len() as u64);
                }
                self.respond_bytes(slot, head.freeze(), body, ctx.keep_alive)
            }
            Ok(Answer::Wait(p)) => self.hls_wait(slot, stream_id, req, p.deadline_ms, None),
            Ok(Answer::InProgress { track, msn }) => {
                let mut head = BytesMut::new();
                let framing = response::write_body_head(
                    &ctx,
                    200,
                    crate::protocol::hls::serve::M4S_TYPE,
                    None,
                    &[("Cache-Control", "no-cache")],
                    &mut head,
                );
                if framing == BodyFraming::None {
                    return self.respond_bytes(slot, head.freeze(), None, ctx.keep_alive);
                }
                if !self.queue_bytes(slot, head.freeze()) {
                    return false;
                }
                let st = Streaming {
                    track,
                    msn,
                    next_part: 0,
                };
                self.hls_stream_more(slot, stream_id, req, view, st)
            }
            // Live, but no keyframe packaged yet (a stream just started, an
            // edge pull just connected): wait a little for it.
            Err(RequestError::NotStarted) if now < req.since_ms.saturating_add(VIEW_WAIT_MS) => {
                let deadline_ms = req.since_ms.saturating_add(VIEW_WAIT_MS);
                self.hls_wait(slot, stream_id, req, deadline_ms, None)
            }
            Err(e) => {
                if e != RequestError::NotStarted {
                    tracing::debug!(core = self.core, key = %req.key, error = %e, "HLS request refused");
                }
                self.hls_error(slot, ctx, e.status())
            }
        }
    }

    /// Sends the parts of an in-progress segment that landed since the last
    /// call; ends the body once the segment is complete, else waits again.
    fn hls_stream_more(
        &mut self,
        slot: u32,
        stream_id: StreamId,
        req: HlsRequest,
        view: &Arc<HlsView>,
        mut st: Streaming,
    ) -> bool {
        let chunked = req.ctx.version == crate::protocol::http::request::Version::Http11;
        let chunks = match view.segment_chunks(st.track, st.msn, st.next_part) {
            Ok(c) => c,
            Err(_) => {
                // Gone mid-body (evicted, stream gone): no status can be sent
                // now, and ending the body would fake a complete segment.
                self.conns.close_later(slot, CloseReason::StreamEnded);
                return false;
            }
        };
        let len = chunks.body.len();
        if len > 0 {
            self.metrics.hls.bytes(HlsKind::Segment, len as u64);
            let mut pieces: Vec<Bytes> = Vec::with_capacity(chunks.body.pieces().len() + 2);
            if chunked {
                let mut line = [0u8; response::CHUNK_SIZE_LINE_MAX];
                let n = response::write_chunk_size_line(len as u32, &mut line);
                pieces.push(Bytes::copy_from_slice(&line[..n]));
            }
            pieces.extend(chunks.body.pieces().iter().cloned());
            if chunked {
                pieces.push(Bytes::from_static(response::CHUNK_END));
            }
            for p in pieces {
                if !self.queue_bytes(slot, p) {
                    return false;
                }
            }
        }
        st.next_part = chunks.next_part;
        if chunks.complete {
            let end = if chunked {
                Bytes::from_static(LAST_CHUNK)
            } else {
                Bytes::new()
            };
            let keep = req.ctx.keep_alive && chunked;
            return self.respond_bytes(slot, end, None, keep);
        }
        self.mark_send(slot);
        let deadline = self.now_ms().saturating_add(
            view.state()
                .map_or(VIEW_WAIT_MS, |s| s.timing.block_limit_ms()),
        );
        self.hls_wait(slot, stream_id, req, deadline, Some(st))
    }

    /// Re-asks every waiter of `stream_id` against this core's current view.
    pub(crate) fn hls_wake(&mut self, stream_id: StreamId) {
        let waiters = self.hls.waiters.take_stream(stream_id);
        if waiters.is_empty() {
            return;
        }
        let view = self.hls_current_view(stream_id);
        for w in waiters {
            if self
                .conns
                .get_mut(w.slot, w.req.generation)
                .is_none_or(|c| c.closing)
            {
                continue;
            }
            let slot = w.slot;
            let keep = match &view {
                Some(v) => self.hls_answer(slot, stream_id, w.req, v, w.streaming),
                None if w.streaming.is_some() => {
                    self.conns.close_later(slot, CloseReason::StreamEnded);
                    false
                }
                None => self.hls_error(slot, w.req.ctx, 404),
            };
            if keep {
                self.process_http(slot);
            }
        }
        self.metrics.hls.waiters.set(self.hls.waiters.len() as i64);
    }

    /// The 100 ms sweep: a backstop for waiters past their deadline (the
    /// timer wheel answers them first), session estimates; idle copies and
    /// finished packagers go.
    pub(crate) fn hls_sweep(&mut self, now_ms: u64) {
        for w in self.hls.waiters.take_due(now_ms) {
            self.hls_expired(w, now_ms);
        }
        self.metrics.hls.waiters.set(self.hls.waiters.len() as i64);
        let mut sessions = std::mem::take(&mut self.hls.sessions);
        let estimates = sessions.estimates(now_ms, |id| {
            let view = self.hls_current_view(id)?;
            let closed = view.state().and_then(|s| s.last_closed_msn).unwrap_or(0);
            Some((view.version(), closed))
        });
        self.hls.sessions = sessions;
        if let Some(estimates) = estimates {
            for (stream_id, n) in estimates {
                self.report.set_hls_sessions(stream_id, n);
            }
        }
        self.hls_drop_idle(now_ms);
        self.hls_drop_finished(now_ms);
        self.hls
            .held
            .retain(|_, r| now_ms.saturating_sub(r.since_ms) < 3_600_000);
    }

    /// Queues bytes of a response in order (no copy); false (closing) when
    /// the connection cannot take more.
    fn queue_bytes(&mut self, slot: u32, bytes: Bytes) -> bool {
        let Some(conn) = self.conns.at(slot) else {
            return false;
        };
        if conn.outbox.queue_in_order(bytes, Hold::Bytes).is_err() {
            self.conns.close_later(slot, CloseReason::ProtocolError);
            return false;
        }
        true
    }

    fn mark_send(&mut self, slot: u32) {
        self.sends.mark_ready(&mut self.conns, slot);
    }

    /// Queues a complete response (`head`, then `body`'s shared pieces, never
    /// copied); keeps the connection for the next request or closes it after
    /// the send. True when the next request may be read.
    pub(crate) fn respond_bytes(
        &mut self,
        slot: u32,
        head: Bytes,
        body: Option<&Body>,
        keep_alive: bool,
    ) -> bool {
        if !head.is_empty() && !self.queue_bytes(slot, head) {
            return false;
        }
        for piece in body.map(Body::pieces).unwrap_or_default() {
            let Some(conn) = self.conns.at(slot) else {
                return false;
            };
            if conn.outbox.queue_body(Hold::Bytes(piece.clone())).is_err() {
                self.conns.close_later(slot, CloseReason::ProtocolError);
                return false;
            }
        }
        self.response_done(slot, keep_alive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::hls::TrackKind;

    #[test]
    fn kinds_entry_urls_and_cache_headers() {
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
        let empty = HlsView::empty();
        assert_eq!(
            cache_control(Cacheability::Immutable, &empty),
            "max-age=31536000, immutable"
        );
        assert_eq!(cache_control(Cacheability::ShortLived, &empty), "max-age=0");
        assert_eq!(
            cache_control(Cacheability::BlockingReload, &empty),
            "max-age=0"
        );
    }

    #[test]
    fn ranges_slice_the_shared_pieces() {
        let a = Bytes::from_static(b"0123");
        let body = Body::from_pieces(vec![
            a.clone(),
            Bytes::from_static(b"4567"),
            Bytes::from_static(b"89"),
        ]);
        let cut = slice_body(&body, ByteRange { first: 2, last: 8 });
        assert_eq!(&cut.to_bytes()[..], b"2345678");
        assert_eq!(
            cut.pieces()[0].as_ptr(),
            a[2..].as_ptr(),
            "a slice, not a copy"
        );
        let last = slice_body(&body, ByteRange { first: 9, last: 9 });
        assert_eq!(&last.to_bytes()[..], b"9");
    }
}
