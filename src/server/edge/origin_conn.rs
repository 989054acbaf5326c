//! Upstream connections to origins. They live in the core's connection slab as
//! [`Proto::Origin`] (opened by [`super::outbound`]), so receives, sends,
//! timeouts and closes take the same paths as every other connection; this
//! file feeds their bytes to the [`Upstream`] session and reports their end to
//! the pull.

use std::net::SocketAddr;

use bytes::BytesMut;
use rand::SeedableRng;
use socket2::SockAddr;

use crate::edge::origin::OriginScheme;
use crate::edge::resolve::Dial;
use crate::edge::upstream::{Upstream, UpstreamEvent, UpstreamLimits, UpstreamTimeouts};
use crate::metrics::{CloseReason, FailureSide, IngestSource, Listener};
use crate::runtime::Reactor;
use crate::server::conn::Proto;
use crate::server::edge::outbound::HANDSHAKE_TIMEOUT_MS;
use crate::server::edge::{EdgeCore, PendingConnect};
use crate::server::tls_conn::TlsConn;
use crate::server::worker::CoreState;
use crate::stream::StreamKey;

/// A live upstream that sends nothing for this long is dead.
pub const MEDIA_TIMEOUT_MS: u64 = 10_000;

/// One upstream connection's state.
pub struct OriginConn {
    /// The stream it pulls.
    pub key: StreamKey,
    upstream: Upstream,
    /// The origin's address; boxed so it stays put while the connect is in flight.
    addr: Box<SockAddr>,
    out: BytesMut,
    events: Vec<UpstreamEvent>,
    /// The origin said it does not have the stream.
    not_found: bool,
}

impl EdgeCore {
    /// Polls the origins' name lookups at `now_ms` and takes the connects the
    /// pulls asked for since the last turn (each goes through [`EdgeCore::dial`]).
    pub(crate) fn take_connects(&mut self, now_ms: u64) -> Vec<PendingConnect> {
        for target in &mut self.origins {
            target.poll(now_ms);
        }
        std::mem::take(&mut self.connects)
    }

    /// Where to connect for `c` at `now_ms`. `None` if the pull no longer wants
    /// it, or if the origin's fresh lookup is still in flight (then `c` is kept
    /// for a later turn).
    pub(crate) fn dial(
        &mut self,
        c: &PendingConnect,
        now_ms: u64,
    ) -> Option<Result<SocketAddr, &'static str>> {
        let wanted = self.pulls.get(&c.key).is_some_and(|e| {
            e.conn.is_none() && e.pull.origin() == Some(c.origin) && !e.pull.is_finished()
        });
        if !wanted {
            return None;
        }
        match self.origins.get(c.origin).map(|t| t.dial(now_ms)) {
            Some(Dial::Wait) => {
                self.connects.push(c.clone());
                None
            }
            Some(Dial::To(addr)) => Some(Ok(addr)),
            Some(Dial::Fail(why)) => Some(Err(why)),
            None => Some(Err("no such origin")),
        }
    }
}

impl CoreState {
    /// Opens the connections the pulls asked for since the last turn. Origin
    /// names are looked up again when due (every turn checks, nothing blocks);
    /// a connect whose fresh lookup is still in flight waits for a later turn.
    pub(crate) fn submit_origin_connects(&mut self, r: &mut Reactor) {
        let now = self.now_ms();
        for c in self.edge.take_connects(now) {
            let Some(addr) = self.edge.dial(&c, now) else {
                continue;
            };
            self.metrics.origin_pull_attempts.inc();
            if let Err(reason) =
                addr.and_then(|addr| self.open_origin_conn(r, &c.key, c.origin, addr))
            {
                tracing::info!(core = self.core, key = %c.key, origin = c.origin, reason, "origin connect failed");
                self.origin_attempt_failed(&c.key, false);
            }
        }
    }

    fn open_origin_conn(
        &mut self,
        r: &mut Reactor,
        key: &StreamKey,
        index: usize,
        addr: SocketAddr,
    ) -> Result<(), &'static str> {
        let now = self.now_ms();
        let target = self.edge.origins.get(index).ok_or("no such origin")?;
        let origin = target.origin.clone().ok_or("unusable origin URL")?;
        let query = self.edge.pulls.get(key).and_then(|e| e.query.clone());
        let limits = UpstreamLimits {
            max_chunk_size: self.shared.config.limits.max_chunk_size,
            max_message_len: self.shared.config.limits.max_message_size,
            timeouts: UpstreamTimeouts {
                start_ms: HANDSHAKE_TIMEOUT_MS,
                idle_ms: MEDIA_TIMEOUT_MS,
            },
        };
        let mut rng = rand::rngs::SmallRng::from_entropy();
        let upstream = Upstream::new(
            &origin.request_for(key, query.as_deref()),
            limits,
            &mut rng,
            now,
        );
        let listener = match origin.scheme {
            OriginScheme::Rtmp => Listener::Rtmp,
            OriginScheme::Http => Listener::Http,
        };
        let oc = OriginConn {
            key: key.clone(),
            upstream,
            addr: Box::new(SockAddr::from(addr)),
            out: BytesMut::new(),
            events: Vec::new(),
            not_found: false,
        };
        let tls = match (origin.tls, self.shared.client_tls.as_ref()) {
            (false, _) => None,
            (true, None) => return Err("no TLS client configuration"),
            (true, Some(client)) => {
                let config = match origin.scheme {
                    OriginScheme::Rtmp => client.rtmps(),
                    OriginScheme::Http => client.https(),
                };
                let limits = self.shared.tls_limits;
                match TlsConn::client(config, &origin.host, limits, now) {
                    Ok(tls) => Some(Box::new(tls)),
                    Err(why) => {
                        tracing::warn!(core = self.core, origin = %origin.url, %why, "cannot start TLS to origin");
                        return Err("cannot start TLS to origin");
                    }
                }
            }
        };
        let conn = self.open_outbound(r, addr, listener, Proto::Origin(Box::new(oc)))?;
        if let Some(c) = self.conns.get_mut(conn.0, conn.1) {
            c.tls = tls;
        }
        if let Some(entry) = self.edge.pulls.get_mut(key) {
            entry.conn = Some(conn);
        }
        tracing::debug!(core = self.core, %key, origin = %origin.url, "connecting to origin");
        Ok(())
    }

    /// Bytes from an origin.
    pub(crate) fn on_origin_data(&mut self, slot: u32, data: &[u8]) {
        let now = self.now_ms();
        self.metrics
            .bytes_received
            .add(IngestSource::Origin, data.len() as u64);
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let generation = conn.generation;
        let Proto::Origin(oc) = &mut conn.proto else {
            return;
        };
        let result =
            oc.upstream
                .handle_input(data, now, &mut self.arena, &mut oc.out, &mut oc.events);
        let mut events = std::mem::take(&mut oc.events);
        let key = oc.key.clone();
        let out = oc.out.split();
        if !out.is_empty() {
            if conn.outbox.queue_control(&out).is_err() {
                self.conns.close_later(slot, CloseReason::ProtocolError);
                return;
            }
            self.sends.mark_ready(&mut self.conns, slot);
        }
        if !self.edge.is_upstream(&key, (slot, generation)) {
            self.conns.close_later(slot, CloseReason::StreamEnded);
            return;
        }
        let mut stop = None;
        for event in events.drain(..) {
            match event {
                UpstreamEvent::Started => {
                    tracing::debug!(core = self.core, %key, "origin accepted play");
                    let mut actions = std::mem::take(&mut self.edge.actions);
                    actions.clear();
                    if let Some(entry) = self.edge.pulls.get_mut(&key) {
                        entry.pull.upstream_started(now, &mut actions);
                    }
                    self.apply_pull_actions(&key, &mut actions);
                    self.edge.actions = actions;
                }
                UpstreamEvent::Frame(frame) => {
                    let Some(entry) = self.edge.pulls.get_mut(&key) else {
                        break;
                    };
                    if entry.pull.media() {
                        self.metrics.origin_pull_recoveries.inc();
                        tracing::info!(core = self.core, %key, "origin pull recovered");
                    }
                    let Some((stream_id, _)) = entry.stream else {
                        continue;
                    };
                    self.metrics.frames_received.inc(IngestSource::Origin);
                    self.push_owned_frame(stream_id, frame, now);
                }
                UpstreamEvent::NotFound => {
                    if let Some(Proto::Origin(oc)) = self.conns.at(slot).map(|c| &mut c.proto) {
                        oc.not_found = true;
                    }
                    stop = Some(CloseReason::StreamEnded);
                    break;
                }
                UpstreamEvent::Ended => {
                    stop = Some(CloseReason::StreamEnded);
                    break;
                }
            }
        }
        if let Some(conn) = self.conns.at(slot) {
            if let Proto::Origin(oc) = &mut conn.proto {
                oc.events = events;
            }
        }
        if let Err(e) = result {
            tracing::info!(core = self.core, %key, error = %e, "origin broke the protocol");
            stop = Some(CloseReason::ProtocolError);
        }
        if let Some(reason) = stop {
            self.conns.close_later(slot, reason);
        }
    }

    /// An origin connection is closing (any reason): if it was its pull's
    /// current upstream, the pull learns it failed.
    pub(crate) fn origin_conn_closed(&mut self, slot: u32) {
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let generation = conn.generation;
        let Proto::Origin(oc) = &conn.proto else {
            return;
        };
        let (key, not_found) = (oc.key.clone(), oc.not_found);
        if self.edge.upstream_closed(&key, (slot, generation)) {
            self.origin_attempt_failed(&key, not_found);
        }
    }

    fn origin_attempt_failed(&mut self, key: &StreamKey, not_found: bool) {
        let now = self.now_ms();
        self.metrics.origin_pull_failures.inc();
        self.metrics.failures.inc(FailureSide::Origin);
        let mut actions = std::mem::take(&mut self.edge.actions);
        actions.clear();
        if let Some(origin) = self.edge.attempt_failed(key, not_found, now, &mut actions) {
            tracing::info!(core = self.core, %key, not_found, ?origin, "origin pull failed");
        }
        self.apply_pull_actions(key, &mut actions);
        self.edge.actions = actions;
    }
}

impl OriginConn {
    /// The upstream session's next deadline: the origin must accept the play
    /// within [`HANDSHAKE_TIMEOUT_MS`] of the connect, then send something at
    /// least every [`MEDIA_TIMEOUT_MS`].
    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        self.upstream.poll_timeout()
    }

    /// Checks the upstream's deadline at `now_ms`; why it must close, if it passed.
    pub(crate) fn handle_timeout(&mut self, now_ms: u64) -> Result<(), String> {
        self.upstream
            .handle_timeout(now_ms)
            .map_err(|e| e.to_string())
    }

    /// The origin's address.
    pub(crate) fn addr(&self) -> &SockAddr {
        &self.addr
    }

    /// The opening bytes (RTMP C0+C1 or the HTTP request), connected at
    /// `now_ms`; `None` if they cannot be written.
    pub(crate) fn start(&mut self, now_ms: u64) -> Option<BytesMut> {
        self.upstream.start(now_ms, &mut self.out).ok()?;
        Some(self.out.split())
    }
}
