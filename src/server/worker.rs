//! One core's event loop: accept, receive, hand bytes to sessions, route frames
//! through the stream shard, and send every ready connection's queued bytes in
//! one gathered `sendmsg`, all submitted with one `io_uring_enter` per turn.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::{Conn, ConnSetup, Hold, Proto, Slab};
use super::http_conn::HttpConn;
use crate::runtime::outbox::SendProgress;
use super::report::CoreReport;
use super::rtmp_conn::RtmpConn;
use super::shared::Shared;
use super::token::{Op, Token};
use super::{signals, MeshMsg};
use crate::metrics::{AcceptErrorKind, CloseReason, CoreMetrics, Listener, RefuseReason};
use crate::runtime::mesh::CoreLink;
use crate::runtime::arena::AlignedArena;
use crate::runtime::{Completion, Reactor, ReactorConfig};
use crate::stream::{OutFrame, Shard, ShardConfig, StreamId, ViewerId};

/// Most control bytes (command replies, acks, HTTP heads) queued per connection.
pub(crate) const CONTROL_LIMIT: usize = 256 << 10;
/// Size of each block of a core's payload arena.
const ARENA_BLOCK: usize = 4 << 20;
/// How often timeouts, grace periods and the API report are checked.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// How often viewers whose sends never complete are checked against the hard lag.
const SLOW_SWEEP_EVERY: Duration = Duration::from_secs(1);
/// After an accept error (EMFILE...), accepting pauses this long.
const ACCEPT_PAUSE: Duration = Duration::from_millis(200);
/// Longest a turn sleeps waiting for completions.
const MAX_WAIT: Duration = Duration::from_millis(50);
/// Most messages waiting for room in one cross-core ring before frames are dropped.
const MESH_BACKLOG: usize = 1 << 16;

/// A listening socket of this core.
pub struct CoreListener {
    /// The socket (SO_REUSEPORT: one per core per port).
    pub socket: socket2::Socket,
    /// Which port it is.
    pub kind: Listener,
    paused_until: Option<Instant>,
}

impl CoreListener {
    /// Wraps a bound, listening socket.
    pub fn new(socket: socket2::Socket, kind: Listener) -> Self {
        CoreListener { socket, kind, paused_until: None }
    }
}

/// Everything a core owns, except its reactor (handed to each handler).
pub struct CoreState {
    /// This core's index (0-based, among the server's cores).
    pub core: usize,
    /// Shared configuration and cross-core directory.
    pub shared: Arc<Shared>,
    /// This core's metrics block.
    pub metrics: Arc<CoreMetrics>,
    /// Connections.
    pub conns: Slab,
    /// Streams and viewers of this core.
    pub shard: Shard,
    /// Which connection each viewer is on.
    pub viewer_conns: HashMap<ViewerId, u32>,
    /// The publisher connection of each stream owned here.
    pub publishers: HashMap<StreamId, u32>,
    /// Connections with something to send, flushed at the end of the turn.
    pub ready: Vec<u32>,
    /// Connections to close at the end of the current completion batch.
    pub to_close: Vec<(u32, CloseReason)>,
    /// Cross-core links.
    pub mesh: CoreLink<MeshMsg>,
    /// Messages waiting for room in a full cross-core ring, per target core.
    pub mesh_backlog: Vec<VecDeque<MeshMsg>>,
    /// The listeners.
    pub listeners: Vec<CoreListener>,
    /// What this core tells the API.
    pub report: CoreReport,
    /// Reusable batch buffer for viewer sends.
    pub batch: Vec<OutFrame>,
    /// Where ingested frame payloads are assembled: 64-byte-aligned pieces of
    /// preallocated blocks (aligned sources make the kernel's copies faster).
    pub arena: AlignedArena,
    /// Viewers waiting for their stream to go live.
    pub pending: Vec<super::pending::Pending>,
    /// Viewers woken in the current merge window.
    woken: Vec<u32>,
    /// When the current merge window ends.
    merge_deadline: Option<Instant>,
    /// Edge mode: origin pulls run by this core and viewers waiting for one.
    pub edge: super::edge::EdgeCore,
    /// Push relays of streams published on this core.
    pub relays: super::edge::relay::Relays,
    mesh_inbox: Vec<MeshMsg>,
    epoch: Instant,
    wake_buf: Box<u64>,
    shutting_down: Option<Instant>,
    next_sweep: Instant,
    next_slow_sweep: Instant,
    last_accept_warning: Option<Instant>,
}

impl CoreState {
    /// Milliseconds since this core started: the clock every sans-IO layer gets.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Queues `slot` for a send at the end of the turn.
    pub fn mark_ready(&mut self, slot: u32) {
        if let Some(conn) = self.conns.at(slot) {
            if !conn.queued && !conn.closing {
                conn.queued = true;
                self.ready.push(slot);
            }
        }
    }

    /// A viewer has new frames: it is sent to at the end of the merge window, so
    /// frames arriving meanwhile leave in the same gathered send.
    pub fn wake_viewer(&mut self, slot: u32) {
        let window = self.shared.config.runtime.send_merge_window;
        if window.is_zero() {
            self.mark_ready(slot);
            return;
        }
        let Some(conn) = self.conns.at(slot) else { return };
        if conn.queued || conn.woken || conn.closing {
            return;
        }
        conn.woken = true;
        self.woken.push(slot);
        self.merge_deadline.get_or_insert_with(|| Instant::now() + window);
    }

    /// Moves the viewers woken during a merge window that has ended to the ready list.
    fn end_merge_window(&mut self, now: Instant) {
        if self.merge_deadline.is_none_or(|d| d > now) {
            return;
        }
        self.merge_deadline = None;
        let woken = std::mem::take(&mut self.woken);
        for &slot in &woken {
            if let Some(conn) = self.conns.at(slot) {
                conn.woken = false;
            }
            self.mark_ready(slot);
        }
        self.woken = woken;
        self.woken.clear();
    }

    /// Queues `slot` to be closed.
    pub fn close_later(&mut self, slot: u32, reason: CloseReason) {
        self.to_close.push((slot, reason));
    }

    /// Sends `msg` to another core, keeping order; backs up (bounded) when its ring is full.
    pub fn send_to_core(&mut self, to: usize, msg: MeshMsg) {
        let backlog = &mut self.mesh_backlog[to];
        if backlog.is_empty() {
            if let Err(msg) = self.mesh.send(to, msg) {
                backlog.push_back(msg);
            }
        } else if backlog.len() < MESH_BACKLOG {
            backlog.push_back(msg);
        } else {
            // The target core is hopelessly behind; its replicas will see a gap and
            // their viewers skip to the next keyframe.
            self.metrics.frames_dropped.inc(crate::metrics::DropReason::QueueCap);
        }
    }

    fn flush_mesh_backlog(&mut self) {
        for to in 0..self.mesh_backlog.len() {
            while let Some(msg) = self.mesh_backlog[to].pop_front() {
                if let Err(msg) = self.mesh.send(to, msg) {
                    self.mesh_backlog[to].push_front(msg);
                    break;
                }
            }
        }
    }
}

/// A core: its reactor and its state.
pub struct Worker {
    reactor: Reactor,
    state: CoreState,
}

impl Worker {
    /// Builds the core's reactor and state (on the core's own thread).
    pub fn new(
        core: usize,
        shared: Arc<Shared>,
        mesh: CoreLink<MeshMsg>,
        listeners: Vec<CoreListener>,
    ) -> std::io::Result<Worker> {
        let cfg = &shared.config;
        let reactor = Reactor::new(&ReactorConfig {
            entries: cfg.runtime.ring_entries,
            recv_buffers: cfg.runtime.recv_buffers,
            recv_buffer_size: cfg.runtime.recv_buffer_size,
            defer_taskrun: cfg.runtime.defer_taskrun,
            ..ReactorConfig::default()
        })?;
        let metrics = shared.metrics.core(core).ok_or_else(|| std::io::Error::other("no metrics block for core"))?;
        let shard = Shard::new(core, shard_config(&shared));
        let cores = mesh.cores();
        let now = Instant::now();
        let state = CoreState {
            core,
            metrics,
            conns: Slab::default(),
            shard,
            viewer_conns: HashMap::new(),
            publishers: HashMap::new(),
            ready: Vec::new(),
            to_close: Vec::new(),
            mesh,
            mesh_backlog: (0..cores).map(|_| VecDeque::new()).collect(),
            listeners,
            report: CoreReport::default(),
            batch: Vec::with_capacity(cfg.runtime.max_frames_per_send),
            arena: AlignedArena::new(ARENA_BLOCK),
            edge: super::edge::EdgeCore::new(cfg),
            relays: super::edge::relay::Relays::new(cfg),
            mesh_inbox: Vec::new(),
            pending: Vec::new(),
            woken: Vec::new(),
            merge_deadline: None,
            epoch: shared.epoch,
            wake_buf: Box::new(0),
            shutting_down: None,
            next_sweep: now,
            next_slow_sweep: now + SLOW_SWEEP_EVERY,
            last_accept_warning: None,
            shared,
        };
        Ok(Worker { reactor, state })
    }

    /// Runs until shutdown completes.
    pub fn run(mut self) -> std::io::Result<()> {
        let Worker { reactor, state } = &mut self;
        for index in 0..state.listeners.len() {
            arm_accept(reactor, state, index);
        }
        arm_wake(reactor, state);
        tracing::info!(core = state.core, features = ?reactor.features(), "core running");
        loop {
            let turn_start = Instant::now();
            if signals::requested() && state.shutting_down.is_none() {
                state.begin_shutdown(reactor);
            }
            if let Some(started) = state.shutting_down {
                let deadline = state.shared.config.server.shutdown_timeout;
                if state.conns.is_empty() || started.elapsed() > deadline {
                    break;
                }
            }
            state.end_merge_window(Instant::now());
            state.flush_ready(reactor);
            state.flush_mesh_backlog();
            state.mesh.flush_wakeups();
            let sends_before = reactor.stats().sends;
            let want = usize::from(state.ready.is_empty());
            let wait = state.merge_deadline.map_or(MAX_WAIT, |d| d.saturating_duration_since(Instant::now()).min(MAX_WAIT));
            reactor.submit_and_wait(want, Some(wait))?;
            let waited = turn_start.elapsed();
            state.metrics.reactor.record_submit(reactor.stats().sends - sends_before);
            reactor.drain_completions(|r, c| state.on_completion(r, c));
            state.drain_mesh();
            if state.shutting_down.is_none() {
                state.submit_origin_connects(reactor);
                state.submit_relay_connects(reactor);
            }
            state.close_pending(reactor);
            let now = Instant::now();
            if now >= state.next_sweep {
                state.next_sweep = now + SWEEP_EVERY;
                state.sweep(reactor, now);
            }
            let busy = turn_start.elapsed().saturating_sub(waited.min(MAX_WAIT));
            state.metrics.reactor.record_turn(busy.as_nanos() as u64, waited.as_nanos() as u64);
        }
        tracing::info!(core = state.core, "core stopped");
        Ok(())
    }
}

fn shard_config(shared: &Shared) -> ShardConfig {
    let c = &shared.config;
    let mut sc = ShardConfig::default();
    sc.ring.max_frames = c.stream.ring_max_frames;
    sc.ring.max_bytes = c.stream.ring_max_bytes;
    sc.max_viewers = c.server.max_connections;
    sc
}

fn arm_accept(r: &mut Reactor, state: &mut CoreState, index: usize) {
    let fd = state.listeners[index].socket.as_raw_fd();
    let token = Token::new(Op::Accept, index as u32, 0).pack();
    if let Err(e) = r.accept_multishot(fd, token) {
        tracing::error!(core = state.core, error = %e, "cannot arm accept");
    }
}

fn arm_wake(r: &mut Reactor, state: &mut CoreState) {
    let token = Token::new(Op::Wake, 0, 0).pack();
    let buf: *mut u64 = &mut *state.wake_buf;
    // SAFETY: wake_buf is boxed and lives as long as the core state.
    if let Err(e) = unsafe { r.read_eventfd(state.mesh.wake_fd(), buf, token) } {
        tracing::error!(core = state.core, error = %e, "cannot arm cross-core wake-up");
    }
}

impl CoreState {
    fn on_completion(&mut self, r: &mut Reactor, c: Completion) {
        let Some(token) = Token::unpack(c.user_data) else { return };
        match token.op {
            Op::Accept => self.on_accept(r, token.slot as usize, c),
            Op::Recv => self.on_recv(r, token, c),
            Op::Send => self.on_send(r, token, c),
            Op::Close => self.on_closed(token),
            Op::Wake => arm_wake(r, self),
            Op::Connect => self.on_outbound_connected(r, token, c),
            Op::Ignore => {}
        }
    }

    fn on_accept(&mut self, r: &mut Reactor, index: usize, c: Completion) {
        if c.result < 0 {
            let errno = -c.result;
            self.metrics.accept_errors.inc(AcceptErrorKind::from_errno(errno));
            let now = Instant::now();
            if self.last_accept_warning.is_none_or(|t| now - t >= Duration::from_secs(1)) {
                self.last_accept_warning = Some(now);
                tracing::warn!(core = self.core, errno, "accept failed; pausing accepts");
            }
            if !c.more() {
                if let Some(l) = self.listeners.get_mut(index) {
                    l.paused_until = Some(now + ACCEPT_PAUSE);
                }
            }
            return;
        }
        if !c.more() && self.shutting_down.is_none() {
            // The kernel ended the multishot accept; arm it again.
            arm_accept(r, self, index);
        }
        let fd = c.result as RawFd;
        let Some(kind) = self.listeners.get(index).map(|l| l.kind) else {
            unsafe { libc::close(fd) };
            return;
        };
        if self.shutting_down.is_some() || !self.shared.try_open_connection() {
            self.metrics.connections_refused.inc(RefuseReason::ConnectionLimit);
            unsafe { libc::close(fd) };
            return;
        }
        self.metrics.connections_accepted.inc(kind);
        self.metrics.open_connections.inc(kind);
        let _ = crate::runtime::socket::set_nodelay(fd);
        let send_buffer = self.shared.config.viewer.socket_send_buffer;
        if send_buffer > 0 {
            let _ = crate::runtime::socket::set_send_buffer(fd, send_buffer);
        }
        let now = self.now_ms();
        let cfg = &self.shared.config;
        let deadline_ms = now + cfg.limits.handshake_timeout.as_millis() as u64;
        let max_frames = cfg.runtime.max_frames_per_send;
        let proto = match kind {
            Listener::Rtmp => Proto::Rtmp(Box::new(RtmpConn::new(&self.shared, now))),
            _ => Proto::Http(HttpConn::default()),
        };
        let peer = peer_addr(fd);
        let setup = ConnSetup {
            fd,
            peer,
            listener: kind,
            proto,
            max_frames,
            control_limit: CONTROL_LIMIT,
            deadline_ms,
            close_reason: CloseReason::PeerClosed,
        };
        let slot = self.conns.insert(|generation| Conn::new(setup, generation));
        let Some(conn) = self.conns.at(slot) else { return };
        let token = Token::new(Op::Recv, slot, conn.generation).pack();
        match r.recv_multishot(fd, token) {
            Ok(()) => conn.inflight += 1,
            Err(_) => self.close_later(slot, CloseReason::IoError),
        }
    }

    fn on_recv(&mut self, r: &mut Reactor, token: Token, c: Completion) {
        let Some(conn) = self.conns.get_mut(token.slot, token.generation) else {
            if let Some(id) = c.buffer_id() {
                r.recycle_buffer(id);
            }
            return;
        };
        if !c.more() {
            conn.inflight = conn.inflight.saturating_sub(1);
        }
        if c.result <= 0 {
            let reason = if c.result == 0 || c.result == -libc::ECONNRESET {
                CloseReason::PeerClosed
            } else if c.result == -libc::ECANCELED {
                conn.close_reason
            } else {
                CloseReason::IoError
            };
            self.close_later(token.slot, reason);
            if let Some(id) = c.buffer_id() {
                r.recycle_buffer(id);
            }
            self.maybe_free(token.slot);
            return;
        }
        let Some(id) = c.buffer_id() else { return };
        let closing = conn.closing;
        if !closing {
            // Sessions copy what they keep; the buffer goes back to the kernel right after.
            if let Some(data) = r.recv_buffer(id, c.result as usize) {
                self.on_data(token.slot, data);
            }
        }
        r.recycle_buffer(id);
        if !c.more() {
            // Multishot receive ended without EOF/error (cancelled): nothing to re-arm.
            self.maybe_free(token.slot);
        }
    }

    fn on_data(&mut self, slot: u32, data: &[u8]) {
        let Some(conn) = self.conns.at(slot) else { return };
        let listener = conn.listener;
        match &conn.proto {
            Proto::Rtmp(rc) => {
                if rc.publishing.is_some() {
                    self.metrics.bytes_received.add(crate::metrics::IngestSource::Publisher, data.len() as u64);
                }
                self.on_rtmp_data(slot, data);
            }
            Proto::Http(_) => self.on_http_data(slot, data, listener),
            Proto::Origin(_) => self.on_origin_data(slot, data),
            Proto::Relay(_) => self.on_relay_data(slot, data),
        }
    }

    fn on_send(&mut self, r: &mut Reactor, token: Token, c: Completion) {
        let now = self.now_ms();
        let Some(conn) = self.conns.get_mut(token.slot, token.generation) else { return };
        // Zero-copy sends complete twice: the result, then (flagged MORE) a
        // notification once the kernel no longer reads the buffers. The outbox
        // must stay untouched until that notification.
        let result = if c.is_notification() {
            conn.zc_result.take().unwrap_or(0)
        } else if c.more() {
            conn.zc_result = Some(c.result);
            return;
        } else {
            c.result
        };
        conn.inflight = conn.inflight.saturating_sub(1);
        let c = Completion { result, ..c };
        if c.result < 0 || conn.closing {
            conn.outbox.release();
            if !conn.closing {
                let reason = if c.result == -libc::EPIPE || c.result == -libc::ECONNRESET {
                    CloseReason::PeerClosed
                } else {
                    CloseReason::IoError
                };
                self.close_later(token.slot, reason);
            }
            self.maybe_free(token.slot);
            return;
        }
        if let Some(viewer) = &conn.viewer {
            self.metrics.bytes_sent.add(viewer.egress.protocol(), c.result as u64);
        }
        if c.result as usize >= conn.outbox.bytes_queued() {
            // The whole send left: its frames are delivered (to the kernel).
            for hold in conn.outbox.held() {
                if let Hold::Frame(out) = hold {
                    let ms = now.saturating_sub(out.entry.arrival_ms());
                    self.metrics.server_latency.observe_ns(ms * 1_000_000);
                }
            }
        }
        match conn.outbox.on_sent(c.result as usize) {
            SendProgress::Partial => {
                let msg = conn.outbox.msghdr();
                match submit_send(r, conn.fd, msg, c.user_data, self.shared.config.runtime.zero_copy_send) {
                    Ok(()) => conn.inflight += 1,
                    Err(_) => {
                        conn.outbox.release();
                        self.close_later(token.slot, CloseReason::IoError);
                    }
                }
            }
            SendProgress::Complete => {
                if conn.done_after_flush() && !conn.outbox.has_control() {
                    let reason = conn.close_reason;
                    self.close_later(token.slot, reason);
                } else {
                    // More may be waiting: control bytes or frames that arrived meanwhile.
                    self.mark_ready(token.slot);
                }
            }
        }
    }

    fn on_closed(&mut self, token: Token) {
        if let Some(conn) = self.conns.get_mut(token.slot, token.generation) {
            conn.inflight = conn.inflight.saturating_sub(1);
        }
        self.maybe_free(token.slot);
    }

    /// Submits the close of every connection queued for it.
    fn close_pending(&mut self, r: &mut Reactor) {
        while let Some((slot, reason)) = self.to_close.pop() {
            self.close_now(r, slot, reason);
        }
    }

    /// Starts closing `slot`: detaches it from streams, cancels its operations and
    /// closes the socket. The slot is freed once every operation has finished.
    pub fn close_now(&mut self, r: &mut Reactor, slot: u32, reason: CloseReason) {
        let Some(conn) = self.conns.at(slot) else { return };
        if conn.closing {
            return;
        }
        conn.closing = true;
        conn.close_reason = reason;
        let (fd, generation, listener) = (conn.fd, conn.generation, conn.listener);
        self.detach(slot);
        self.metrics.connections_closed.inc(reason);
        self.metrics.open_connections.dec(listener);
        let Some(conn) = self.conns.at(slot) else { return };
        let _ = r.cancel_fd(fd, Token::new(Op::Ignore, slot, generation).pack());
        match r.close(fd, Token::new(Op::Close, slot, generation).pack()) {
            Ok(()) => conn.inflight += 1,
            Err(_) => unsafe {
                libc::close(fd);
            },
        }
        self.maybe_free(slot);
    }

    /// Frees the slot once the connection is closing and nothing is in flight.
    pub(super) fn maybe_free(&mut self, slot: u32) {
        let free = self.conns.at(slot).is_some_and(|c| c.closing && c.inflight == 0);
        if free {
            self.conns.remove(slot);
            self.shared.connection_closed();
        }
    }

    /// Removes a connection's viewer and publisher roles.
    fn detach(&mut self, slot: u32) {
        let now = self.now_ms();
        let Some(conn) = self.conns.at(slot) else { return };
        if let Some(viewer) = conn.viewer.take() {
            let protocol = viewer.egress.protocol();
            self.remove_viewer(viewer.id, protocol);
        }
        self.end_publishing(slot, now);
        self.origin_conn_closed(slot);
        self.relay_conn_closed(slot);
    }

    /// Drops a viewer from the shard and its bookkeeping.
    pub fn remove_viewer(&mut self, id: ViewerId, protocol: crate::metrics::Protocol) {
        self.viewer_conns.remove(&id);
        if let Some(removed) = self.shard.remove_viewer(id) {
            self.metrics.viewers.dec(protocol);
            self.report.viewer_left(removed.stream_id, protocol);
            if let Some((to, msg)) = removed.unsubscribe {
                self.send_to_core(to, MeshMsg::Stream(msg));
            }
        }
    }

    fn begin_shutdown(&mut self, r: &mut Reactor) {
        tracing::info!(core = self.core, connections = self.conns.len(), "shutting down");
        self.shutting_down = Some(Instant::now());
        for l in &self.listeners {
            let _ = r.cancel_fd(l.socket.as_raw_fd(), Token::new(Op::Ignore, 0, 0).pack());
        }
        let slots: Vec<u32> = self.conns.indices().collect();
        for slot in slots {
            let Some(conn) = self.conns.at(slot) else { continue };
            if conn.viewer.is_some() {
                // Viewers get a clean end of stream, then close.
                self.finish_viewer(slot);
            } else {
                self.close_later(slot, CloseReason::Shutdown);
            }
        }
    }

    /// Periodic work: timeouts, grace periods, paused accepts, the API report.
    fn sweep(&mut self, r: &mut Reactor, now: Instant) {
        let now_ms = self.now_ms();
        for index in 0..self.listeners.len() {
            if self.listeners[index].paused_until.is_some_and(|t| t <= now) && self.shutting_down.is_none() {
                self.listeners[index].paused_until = None;
                arm_accept(r, self, index);
            }
        }
        let expired: Vec<u32> = self.conns.expired(now_ms).collect();
        for slot in expired {
            self.close_now(r, slot, CloseReason::Timeout);
        }
        for ended in self.shard.tick(now_ms) {
            self.stream_ended(ended);
        }
        if now >= self.next_slow_sweep {
            self.next_slow_sweep = now + SLOW_SWEEP_EVERY;
            self.close_stuck_viewers(now_ms);
        }
        self.resolve_pending(now_ms);
        self.expire_waiters(now_ms);
        self.tick_pulls(now_ms);
        self.publish_report(now_ms);
    }

    /// A viewer whose socket is stuck never asks for its next batch, so the
    /// shard's periodic check is what closes it at the hard bound.
    fn close_stuck_viewers(&mut self, now_ms: u64) {
        let mut stuck = Vec::new();
        self.shard.sweep_slow(now_ms, &mut stuck);
        for (id, reason) in stuck {
            let Some(&slot) = self.viewer_conns.get(&id) else { continue };
            self.metrics.slow_viewer_closes.inc();
            tracing::info!(core = self.core, %reason, "closing stuck viewer");
            self.close_later(slot, CloseReason::SlowViewer);
        }
    }

    fn drain_mesh(&mut self) {
        let mut msgs = std::mem::take(&mut self.mesh_inbox);
        self.mesh.drain(|_from, msg| msgs.push(msg));
        for msg in msgs.drain(..) {
            match msg {
                MeshMsg::Stream(msg) => self.on_stream_msg(msg),
                MeshMsg::Edge(msg) => self.on_edge_msg(msg),
            }
        }
        self.mesh_inbox = msgs;
    }

    /// Sends every ready connection's queued bytes: one gathered send each.
    fn flush_ready(&mut self, r: &mut Reactor) {
        let ready = std::mem::take(&mut self.ready);
        for &slot in &ready {
            self.flush_one(r, slot);
        }
        let mut ready = ready;
        ready.clear();
        if self.ready.is_empty() {
            self.ready = ready;
        }
    }

    fn flush_one(&mut self, r: &mut Reactor, slot: u32) {
        let now_ms = self.now_ms();
        let Some(conn) = self.conns.at(slot) else { return };
        conn.queued = false;
        if conn.closing || conn.outbox.is_busy() {
            return;
        }
        conn.outbox.begin();
        if conn.viewer.is_some() {
            self.fill_viewer_send(slot, now_ms);
        }
        let Some(conn) = self.conns.at(slot) else { return };
        if conn.closing {
            conn.outbox.release();
            return;
        }
        match conn.outbox.finish() {
            Some(msg) => {
                let token = Token::new(Op::Send, slot, conn.generation).pack();
                match submit_send(r, conn.fd, msg, token, self.shared.config.runtime.zero_copy_send) {
                    Ok(()) => conn.inflight += 1,
                    Err(_) => {
                        conn.outbox.release();
                        self.close_later(slot, CloseReason::IoError);
                    }
                }
            }
            None => {
                if conn.done_after_flush() {
                    let reason = conn.close_reason;
                    self.close_later(slot, reason);
                }
            }
        }
    }
}

/// Queues a gathered send: a copying `sendmsg`, or `SENDMSG_ZC` when configured.
fn submit_send(
    r: &mut Reactor,
    fd: RawFd,
    msg: *const libc::msghdr,
    user_data: u64,
    zero_copy: bool,
) -> Result<(), crate::runtime::SubmitError> {
    // SAFETY: the connection's outbox keeps the header, iovecs and bodies alive and
    // untouched until the send's last completion (the notification for zero-copy).
    unsafe {
        if zero_copy {
            r.sendmsg_zc(fd, msg, user_data)
        } else {
            r.sendmsg(fd, msg, user_data)
        }
    }
}

fn peer_addr(fd: RawFd) -> Option<std::net::SocketAddr> {
    // SAFETY: borrowing the fd only for the duration of the call.
    let sock = std::mem::ManuallyDrop::new(unsafe { <socket2::Socket as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    sock.peer_addr().ok().and_then(|a| a.as_socket())
}
