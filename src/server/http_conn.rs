//! HTTP connections: HTTP-FLV and WebSocket-FLV viewers (`GET /{app}/{stream}.flv`,
//! with or without `Upgrade: websocket`), HLS and DASH (`server::hls`), the JSON
//! API, the status page and `/metrics`.
//!
//! Keep-alive and pipelining: requests are read one at a time, in order; a
//! response queued at once lets the next one be read; an HLS request held as
//! a waiter parks the connection until it is answered (`process_http` then
//! reads on). At most `limits.http_max_requests` per connection; reading
//! also pauses while many response pieces wait to be sent, and resumes after
//! a send completes.

use bytes::{Bytes, BytesMut};

use super::access::Access;
use super::api::{self, ApiAction};
use super::conn::{Egress, Hold, Proto};
use super::egress_flv::FlvEgress;
use super::failures::play_refusal;
use super::hooks::Resume;
use super::pending::WaitingPlay;
use super::shared::Shared;
use super::worker::CoreState;
use crate::auth::Action;
use crate::edge::origin::asks_source_timeline;
use crate::metrics::{CloseReason, Listener, RefuseReason};
use crate::protocol::hls::Body;
use crate::protocol::http::connection::{HttpConnection, HttpTimeouts};
use crate::protocol::http::request::{Method, Request, RequestParser};
use crate::protocol::http::response::{self, BodyFraming, ResponseContext};
use crate::protocol::ws::handshake::upgrade_request;
use crate::protocol::ws::reader::{FrameReader, ReaderLimits};
use crate::runtime::outbox::PREFIX_SLOT;
use crate::stream::StreamKey;

/// One HTTP connection's protocol state: its sans-IO request state and deadlines,
/// and once it switched to WebSocket, the parser of the client's frames.
pub struct HttpConn {
    state: HttpConnection,
    /// Set by the `101`: the client's WebSocket frames are read here from then on.
    pub(super) ws: Option<Box<FrameReader>>,
}

impl HttpConn {
    /// A connection accepted at `now_ms`: its first request head is due within
    /// `limits.handshake_timeout`, later ones within `limits.idle_timeout`.
    pub fn new(shared: &Shared, now_ms: u64) -> Self {
        let limits = &shared.config.limits;
        let timeouts = HttpTimeouts {
            head_ms: limits.handshake_timeout.as_millis() as u64,
            idle_ms: limits.idle_timeout.as_millis() as u64,
        };
        HttpConn {
            state: HttpConnection::new(RequestParser::default(), timeouts, now_ms)
                .with_max_requests(limits.http_max_requests),
            ws: None,
        }
    }

    /// The response is held (waiting for a publisher or an origin) or streaming:
    /// ignore further input.
    pub(crate) fn hold(&mut self) {
        self.state.hold();
    }

    /// A request is answered later: pipelined input is buffered, not read.
    pub(crate) fn park(&mut self) {
        self.state.park();
    }

    /// The parked request must be answered by `deadline_ms` (the core's
    /// timer wheel fires then).
    pub(crate) fn park_until(&mut self, deadline_ms: u64) {
        self.state.park_until(deadline_ms);
    }

    /// The parked request's deadline passed.
    pub(crate) fn park_expired(&self, now_ms: u64) -> bool {
        self.state.park_expired(now_ms)
    }

    /// The connection's next deadline.
    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        self.state.poll_timeout()
    }

    /// Checks its deadlines at `now_ms`; why it must close, if one passed.
    pub(crate) fn handle_timeout(&mut self, now_ms: u64) -> Result<(), String> {
        self.state.handle_timeout(now_ms).map_err(|e| e.to_string())
    }
}

/// Reading further pipelined requests pauses while more response pieces
/// than this wait to be sent on the connection.
const READ_PAUSE_BODIES: usize = 1024;

/// `/{app}/{name}.flv` → (app, name).
fn flv_target(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?.strip_suffix(".flv")?;
    let (app, name) = rest.rsplit_once('/')?;
    Some((app, name))
}

impl CoreState {
    /// Bytes from an HTTP client.
    pub(super) fn on_http_data(&mut self, slot: u32, data: &[u8]) {
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let Proto::Http(http) = &mut conn.proto else {
            return;
        };
        if http.ws.is_some() {
            // Switched to WebSocket: the client's bytes are frames now.
            return self.on_ws_data(slot, data);
        }
        if http.state.is_held() || conn.close_after_flush {
            return;
        }
        http.state.push(data);
        self.process_http(slot);
    }

    /// Serves the complete requests buffered on `slot`, in order, until one is
    /// held, the connection closes, or its queued responses are too many.
    pub(crate) fn process_http(&mut self, slot: u32) {
        loop {
            let Some(conn) = self.conns.at(slot) else {
                return;
            };
            if conn.closing
                || conn.close_after_flush
                || conn.outbox.queued_bodies() > READ_PAUSE_BODIES
            {
                return;
            }
            // A TLS listener serves its plain twin's routes.
            let listener = conn.listener.plain();
            let Proto::Http(http) = &mut conn.proto else {
                return;
            };
            match http.state.next_request() {
                Ok(None) => return,
                Ok(Some(req)) => {
                    let keep_going = self.on_request(slot, req, listener);
                    if !keep_going {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(core = self.core, error = %e, "bad HTTP request");
                    let mut out = BytesMut::new();
                    response::write_error(
                        &ResponseContext::for_bad_request(),
                        e.status(),
                        &mut out,
                    );
                    self.respond_and_close(slot, &out, CloseReason::ProtocolError);
                    return;
                }
            }
        }
    }

    /// Serves one request; true if the connection stays open for another.
    fn on_request(&mut self, slot: u32, req: Request, listener: Listener) -> bool {
        let mut ctx = ResponseContext::for_request(&req);
        let last = match self.conns.at(slot).map(|c| &c.proto) {
            Some(Proto::Http(http)) => http.state.is_last_request(),
            _ => true,
        };
        if last {
            ctx.keep_alive = false;
        }
        let mut out = BytesMut::new();
        if req.content_length > 0 {
            response::write_error(&ctx, 413, &mut out);
            self.respond_and_close(slot, &out, CloseReason::ProtocolError);
            return false;
        }
        // The admin routes live on the admin listener; the public port answers them
        // only when the operator put them there (`[api] on_public_port`).
        let api_only_here = !self.shared.config.api.on_public_port;
        if listener == Listener::Http && req.content_length == 0 {
            if let Some(keep_going) = self.on_hls_request(slot, &req, ctx) {
                return keep_going;
            }
        }
        if let (Some((app, name)), true) = (flv_target(&req.path), listener == Listener::Http) {
            return self.on_flv_request(slot, &req, ctx, app.to_owned(), name.to_owned());
        }
        if api_only_here && listener == Listener::Http {
            response::write_error(&ctx, 404, &mut out);
        } else if req.method == Method::Options {
            response::write_options(&ctx, "GET, HEAD, DELETE, OPTIONS", &mut out);
        } else {
            let shared = self.shared.clone();
            let api = api::route(
                req.method.as_str(),
                &req.target,
                &req.headers,
                &shared.api,
                &shared.metrics,
                || shared.snapshot(),
            );
            let extra: Vec<(&str, &str)> =
                api.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            response::write_response(
                &ctx,
                api.status,
                api.content_type,
                &api.body,
                &extra,
                &mut out,
            );
            if let Some(ApiAction::KickPublisher { app, name }) = api.action {
                self.kick_publisher(&app, &name);
            }
        }
        self.respond(slot, &out, ctx.keep_alive)
    }

    fn on_flv_request(
        &mut self,
        slot: u32,
        req: &Request,
        mut ctx: ResponseContext,
        app: String,
        name: String,
    ) -> bool {
        let mut out = BytesMut::new();
        // WebSocket-FLV: the same path as HTTP-FLV; only the head (101, written
        // when the play starts) and the framing differ.
        match upgrade_request(req) {
            Ok(accept) => ctx.websocket = accept,
            Err(e) => {
                tracing::debug!(core = self.core, error = %e, "bad WebSocket upgrade");
                self.metrics
                    .connections_refused
                    .inc(RefuseReason::BadWebSocketHandshake);
                response::write_error_with(&ctx, e.status(), e.headers(), &mut out);
                return self.respond(slot, &out, false);
            }
        }
        if !matches!(req.method, Method::Get | Method::Head) {
            response::write_method_not_allowed(&ctx, "GET, HEAD, OPTIONS", &mut out);
            return self.respond(slot, &out, false);
        }
        let key = match StreamKey::new(&app, &name) {
            Ok(key) => key,
            Err(e) => {
                tracing::debug!(core = self.core, error = %e, "bad stream name in HTTP-FLV request");
                response::write_error(&ctx, 400, &mut out);
                return self.respond(slot, &out, false);
            }
        };
        let query = req.target.split_once('?').map(|(_, q)| q);
        let resume = || Resume::Flv {
            ctx,
            key: key.clone(),
            query: query.map(str::to_owned),
        };
        match self.authorize(slot, Action::Play, &app, &name, ".flv", query, resume) {
            Access::Granted => {}
            Access::Held => {
                self.hold_http(slot);
                return false;
            }
            Access::Refused(_) => {
                response::write_error(&ctx, 403, &mut out);
                return self.respond(slot, &out, false);
            }
        }
        self.flv_authorized(slot, ctx, &key, query.map(str::to_owned))
    }

    /// From here on the connection belongs to its one (held or streaming) response.
    fn hold_http(&mut self, slot: u32) {
        if let Some(Proto::Http(http)) = self.conns.at(slot).map(|c| &mut c.proto) {
            http.hold();
        }
    }

    /// An HTTP-FLV play `[auth]` allowed: held for an edge pull or a publisher, or started.
    pub(super) fn flv_authorized(
        &mut self,
        slot: u32,
        ctx: ResponseContext,
        key: &StreamKey,
        query: Option<String>,
    ) -> bool {
        self.hold_http(slot);
        if let Some(conn) = self.conns.at(slot) {
            conn.source_timeline = query.as_deref().is_some_and(asks_source_timeline);
        }
        self.arm_stop_hook(slot, key.app(), key.name(), query.as_deref());
        if self.edge_enabled() {
            // Always through the key's pull core: it serialises pull start and close.
            self.edge_hold_viewer(slot, key.clone(), query, WaitingPlay::Flv(ctx));
            return false;
        }
        self.start_flv_viewer(slot, ctx, key)
    }

    /// Answers 403 to an HTTP-FLV request held for its hook, then closes.
    pub(super) fn refuse_flv_unauthorized(&mut self, slot: u32, ctx: ResponseContext) {
        let mut out = BytesMut::new();
        response::write_error(&ctx, 403, &mut out);
        self.respond(slot, &out, false);
    }

    /// Answers an HTTP-FLV request with an error `status`, then closes.
    pub(super) fn refuse_flv(&mut self, slot: u32, ctx: ResponseContext, status: u16) {
        let reason = match status {
            503 => RefuseReason::OriginUnavailable,
            _ => RefuseReason::StreamNotFound,
        };
        self.metrics.connections_refused.inc(reason);
        let mut out = BytesMut::new();
        response::write_error(&ctx, status, &mut out);
        self.respond(slot, &out, false);
    }

    /// Makes the connection a viewer of `key` if it is live; otherwise it waits
    /// for a publisher (when configured) or gets a 404. False: no further request
    /// is read on this connection.
    pub(super) fn start_flv_viewer(
        &mut self,
        slot: u32,
        ctx: ResponseContext,
        key: &StreamKey,
    ) -> bool {
        if self.shared.directory.lookup(key).is_some() {
            return self.begin_flv_play(slot, ctx, key);
        }
        let now_ms = self.now_ms();
        let play = WaitingPlay::Flv(ctx);
        if !self
            .pending
            .hold(&mut self.conns, slot, key.clone(), play, now_ms)
        {
            self.refuse_flv(slot, ctx, 404);
        }
        false
    }

    /// Writes the HTTP-FLV head (or the WebSocket `101`) and starts the viewer of a
    /// live stream.
    pub(super) fn begin_flv_play(
        &mut self,
        slot: u32,
        ctx: ResponseContext,
        key: &StreamKey,
    ) -> bool {
        let mut out = BytesMut::new();
        let framing = response::write_flv_head(&ctx, &mut out);
        if framing == BodyFraming::None {
            return self.respond(slot, &out, false);
        }
        let mut egress = match framing {
            BodyFraming::WebSocket => {
                if let Some(Proto::Http(http)) = self.conns.at(slot).map(|c| &mut c.proto) {
                    http.ws = Some(Box::new(FrameReader::new(ReaderLimits::default())));
                }
                FlvEgress::websocket()
            }
            _ => FlvEgress::new(framing == BodyFraming::Chunked),
        };
        let mut header = [0u8; PREFIX_SLOT];
        let n = egress.start(true, true, &mut header);
        out.extend_from_slice(&header[..n]);
        if let Some(conn) = self.conns.at(slot) {
            // Behind any response still queued on the connection (pipelining).
            let _ = conn.outbox.queue_in_order(out.freeze(), Hold::Bytes);
        }
        match self.start_viewer(slot, key, Egress::Flv(egress)) {
            Ok(()) => false,
            Err(e) => {
                // A limit, or a race with the publisher leaving: the head is
                // queued, so end the body.
                self.metrics.connections_refused.inc(play_refusal(&e));
                self.conns.close_later(slot, CloseReason::StreamEnded);
                false
            }
        }
    }

    /// Queues a complete response; keeps the connection for the next request or
    /// closes it after the send.
    fn respond(&mut self, slot: u32, bytes: &[u8], keep_alive: bool) -> bool {
        self.respond_bytes(slot, Bytes::copy_from_slice(bytes), None, keep_alive)
    }

    /// A complete response is queued on `slot`: the next request head is
    /// awaited (keep-alive) or the connection closes after the send. True
    /// when the next request may be read.
    pub(crate) fn response_done(&mut self, slot: u32, keep_alive: bool) -> bool {
        let now = self.now_ms();
        let Some(conn) = self.conns.at(slot) else {
            return false;
        };
        if let Proto::Http(http) = &mut conn.proto {
            http.state.answered(now, keep_alive);
        }
        if !keep_alive {
            conn.close_after_flush = true;
        }
        self.sends.mark_ready(&mut self.conns, slot);
        self.conns.arm_timer(slot);
        keep_alive
    }

    /// Queues bytes of a response in order (no copy); false (closing) when
    /// the connection cannot take more.
    pub(crate) fn queue_bytes(&mut self, slot: u32, bytes: Bytes) -> bool {
        let Some(conn) = self.conns.at(slot) else {
            return false;
        };
        if conn.outbox.queue_in_order(bytes, Hold::Bytes).is_err() {
            self.conns.close_later(slot, CloseReason::ProtocolError);
            return false;
        }
        true
    }

    pub(crate) fn mark_send(&mut self, slot: u32) {
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

    fn respond_and_close(&mut self, slot: u32, bytes: &[u8], reason: CloseReason) {
        if let Some(conn) = self.conns.at(slot) {
            conn.close_reason = reason;
        }
        self.respond(slot, bytes, false);
    }
}

#[cfg(test)]
mod tests {
    use super::flv_target;

    #[test]
    fn flv_paths() {
        assert_eq!(flv_target("/live/cam.flv"), Some(("live", "cam")));
        assert_eq!(flv_target("/a/b/c.flv"), Some(("a/b", "c")));
        assert_eq!(flv_target("/live/cam"), None);
        assert_eq!(flv_target("/cam.flv"), None);
    }
}
