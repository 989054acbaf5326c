//! Upstream connections to origins. They live in the core's connection slab as
//! [`Proto::Origin`], so receives, sends, timeouts and closes take the same
//! paths as every other connection; this file opens them (`IORING_OP_CONNECT`),
//! feeds their bytes to the [`Upstream`] session and reports their end to the
//! pull.

use std::os::fd::IntoRawFd;

use bytes::BytesMut;
use rand::SeedableRng;
use socket2::{Domain, Protocol as SockProtocol, SockAddr, Socket, Type};

use crate::edge::origin::OriginScheme;
use crate::edge::upstream::{Upstream, UpstreamEvent, UpstreamLimits};
use crate::metrics::{CloseReason, FailureSide, IngestSource, Listener};
use crate::runtime::{Completion, Reactor};
use crate::server::conn::{Conn, ConnSetup, Proto};
use crate::server::token::{Op, Token};
use crate::server::worker::CoreState;
use crate::stream::StreamKey;

/// Longest a TCP connect to an origin may take.
pub const CONNECT_TIMEOUT_MS: u64 = 3_000;
/// Longest from connected to the origin accepting the play request.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
/// A live upstream that sends nothing for this long is dead.
pub const MEDIA_TIMEOUT_MS: u64 = 10_000;
/// Most control bytes (acks, the request) queued towards an origin.
const CONTROL_LIMIT: usize = 64 << 10;

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

impl CoreState {
    /// Opens the connections the pulls asked for since the last turn.
    pub(crate) fn submit_origin_connects(&mut self, r: &mut Reactor) {
        if self.edge.connects.is_empty() {
            return;
        }
        let connects = std::mem::take(&mut self.edge.connects);
        for c in connects {
            let wanted = self
                .edge
                .pulls
                .get(&c.key)
                .is_some_and(|e| e.conn.is_none() && e.pull.origin() == Some(c.origin) && !e.pull.is_finished());
            if !wanted {
                continue;
            }
            self.metrics.origin_pull_attempts.inc();
            if let Err(reason) = self.open_origin_conn(r, &c.key, c.origin) {
                tracing::info!(core = self.core, key = %c.key, origin = c.origin, reason, "origin connect failed");
                self.origin_attempt_failed(&c.key, false);
            }
        }
    }

    fn open_origin_conn(&mut self, r: &mut Reactor, key: &StreamKey, index: usize) -> Result<(), &'static str> {
        let now = self.now_ms();
        let target = self.edge.origins.get_mut(index).ok_or("no such origin")?;
        let origin = target.origin.clone().ok_or("unusable origin URL")?;
        if target.addr.is_none() {
            target.addr = super::resolve(&origin);
        }
        let addr = target.addr.ok_or("origin host does not resolve")?;
        let query = self.edge.pulls.get(key).and_then(|e| e.query.clone());
        let limits = UpstreamLimits {
            max_chunk_size: self.shared.config.limits.max_chunk_size,
            max_message_len: self.shared.config.limits.max_message_size,
        };
        let mut rng = rand::rngs::SmallRng::from_entropy();
        let upstream = Upstream::new(&origin.request_for(key, query.as_deref()), limits, &mut rng, now);
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(SockProtocol::TCP))
            .map_err(|_| "cannot create socket")?;
        let _ = socket.set_nodelay(true);
        if !self.shared.try_open_connection() {
            return Err("connection limit reached");
        }
        let listener = match origin.scheme {
            OriginScheme::Rtmp => Listener::Rtmp,
            OriginScheme::Http => Listener::Http,
        };
        self.metrics.open_connections.inc(listener);
        let fd = socket.into_raw_fd();
        let oc = OriginConn {
            key: key.clone(),
            upstream,
            addr: Box::new(SockAddr::from(addr)),
            out: BytesMut::new(),
            events: Vec::new(),
            not_found: false,
        };
        let max_frames = self.shared.config.runtime.max_frames_per_send;
        let setup = ConnSetup {
            fd,
            peer: Some(addr),
            listener,
            proto: Proto::Origin(Box::new(oc)),
            max_frames,
            control_limit: CONTROL_LIMIT,
            deadline_ms: now + CONNECT_TIMEOUT_MS,
            close_reason: CloseReason::IoError,
        };
        let slot = self.conns.insert(|generation| Conn::new(setup, generation));
        let Some(conn) = self.conns.at(slot) else { return Err("slot vanished") };
        let generation = conn.generation;
        if let Some(entry) = self.edge.pulls.get_mut(key) {
            entry.conn = Some((slot, generation));
        }
        let Proto::Origin(oc) = &conn.proto else { return Err("not an origin connection") };
        let token = Token::new(Op::Connect, slot, generation).pack();
        // SAFETY: the address is boxed inside the connection, which stays in the
        // slab until every operation on it (this connect included) has completed.
        match unsafe { r.connect(fd, oc.addr.as_ptr(), oc.addr.len(), token) } {
            Ok(()) => conn.inflight += 1,
            Err(_) => self.close_later(slot, CloseReason::IoError),
        }
        tracing::debug!(core = self.core, %key, origin = %origin.url, "connecting to origin");
        Ok(())
    }

    /// A connect finished: start the session, or let the close report the failure.
    pub(crate) fn on_origin_connected(&mut self, r: &mut Reactor, token: Token, c: Completion) {
        let now = self.now_ms();
        let Some(conn) = self.conns.get_mut(token.slot, token.generation) else { return };
        conn.inflight = conn.inflight.saturating_sub(1);
        if conn.closing {
            self.maybe_free(token.slot);
            return;
        }
        if c.result < 0 {
            tracing::debug!(core = self.core, errno = -c.result, "origin connect failed");
            self.close_later(token.slot, CloseReason::IoError);
            return;
        }
        conn.deadline_ms = now + HANDSHAKE_TIMEOUT_MS;
        let Proto::Origin(oc) = &mut conn.proto else { return };
        let started = oc.upstream.start(&mut oc.out);
        let out = oc.out.split();
        if started.is_err() || conn.outbox.queue_control(&out).is_err() {
            self.close_later(token.slot, CloseReason::ProtocolError);
            return;
        }
        let recv = Token::new(Op::Recv, token.slot, token.generation).pack();
        match r.recv_multishot(conn.fd, recv) {
            Ok(()) => conn.inflight += 1,
            Err(_) => {
                self.close_later(token.slot, CloseReason::IoError);
                return;
            }
        }
        self.mark_ready(token.slot);
    }

    /// Bytes from an origin.
    pub(crate) fn on_origin_data(&mut self, slot: u32, data: &[u8]) {
        let now = self.now_ms();
        self.metrics.bytes_received.add(IngestSource::Origin, data.len() as u64);
        let Some(conn) = self.conns.at(slot) else { return };
        let generation = conn.generation;
        let Proto::Origin(oc) = &mut conn.proto else { return };
        let result = oc.upstream.handle_input(data, now, &mut oc.out, &mut oc.events);
        let mut events = std::mem::take(&mut oc.events);
        let key = oc.key.clone();
        let out = oc.out.split();
        if !out.is_empty() {
            if conn.outbox.queue_control(&out).is_err() {
                self.close_later(slot, CloseReason::ProtocolError);
                return;
            }
            self.mark_ready(slot);
        }
        let current = self.edge.pulls.get(&key).is_some_and(|e| e.conn == Some((slot, generation)));
        if !current {
            self.close_later(slot, CloseReason::StreamEnded);
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
                    let Some(entry) = self.edge.pulls.get_mut(&key) else { break };
                    if entry.pull.media() {
                        self.metrics.origin_pull_recoveries.inc();
                        tracing::info!(core = self.core, %key, "origin pull recovered");
                    }
                    let Some((stream_id, _)) = entry.stream else { continue };
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
                if oc.upstream_started() {
                    conn.deadline_ms = now + MEDIA_TIMEOUT_MS;
                }
            }
        }
        if let Err(e) = result {
            tracing::info!(core = self.core, %key, error = %e, "origin broke the protocol");
            stop = Some(CloseReason::ProtocolError);
        }
        if let Some(reason) = stop {
            self.close_later(slot, reason);
        }
    }

    /// An origin connection is closing (any reason): if it was its pull's
    /// current upstream, the pull learns it failed.
    pub(crate) fn origin_conn_closed(&mut self, slot: u32) {
        let Some(conn) = self.conns.at(slot) else { return };
        let generation = conn.generation;
        let Proto::Origin(oc) = &conn.proto else { return };
        let (key, not_found) = (oc.key.clone(), oc.not_found);
        let current = self.edge.pulls.get(&key).is_some_and(|e| e.conn == Some((slot, generation)));
        if !current {
            return;
        }
        if let Some(entry) = self.edge.pulls.get_mut(&key) {
            entry.conn = None;
        }
        self.origin_attempt_failed(&key, not_found);
    }

    fn origin_attempt_failed(&mut self, key: &StreamKey, not_found: bool) {
        let now = self.now_ms();
        self.metrics.origin_pull_failures.inc();
        self.metrics.failures.inc(FailureSide::Origin);
        let mut actions = std::mem::take(&mut self.edge.actions);
        actions.clear();
        if let Some(entry) = self.edge.pulls.get_mut(key) {
            tracing::info!(core = self.core, %key, not_found, origin = ?entry.pull.origin(), "origin pull failed");
            entry.pull.upstream_failed(not_found, now, &mut actions);
        }
        self.apply_pull_actions(key, &mut actions);
        self.edge.actions = actions;
    }
}

impl OriginConn {
    fn upstream_started(&self) -> bool {
        self.upstream.is_started()
    }
}
