//! One core's event loop: accept, receive, hand bytes to sessions, route frames
//! through the stream shard, and send every ready connection's queued bytes in
//! one gathered `sendmsg`, all submitted with one `io_uring_enter` per turn.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::accepts::{Accepts, CoreListener};
use super::completions::{arm_wake, submit_send};
use super::conn::Hold;
use super::connections::Connections;
use super::core_mesh::CoreMesh;
use super::cpu_clock::CpuSampler;
use super::pending::PendingPlays;
use super::report::CoreReport;
use super::send_queue::SendQueue;
use super::shared::Shared;
use super::token::{Op, Token};
use super::{signals, MeshMsg};
use crate::metrics::{CloseReason, CoreMetrics};
use crate::runtime::arena::AlignedArena;
use crate::runtime::mesh::CoreLink;
use crate::runtime::outbox::PREFIX_SLOT;
use crate::runtime::region::{RegionConfig, SendRegion};
use crate::runtime::{Reactor, ReactorConfig};
use crate::stream::{OutFrame, Shard, ShardConfig, StreamId, ViewerId};

/// Most control bytes (command replies, acks, HTTP heads) queued per connection.
pub(crate) const CONTROL_LIMIT: usize = 256 << 10;
/// Size of each block of a core's payload arena.
const ARENA_BLOCK: usize = 4 << 20;
/// How often grace periods, held viewers, pulls and the API report are checked
/// (connection deadlines are the timer wheel's).
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// How often viewers whose sends never complete are checked against the hard lag.
const SLOW_SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Longest a turn sleeps waiting for completions.
const MAX_WAIT: Duration = Duration::from_millis(50);
/// Staging blocks of a core's registered send region; larger frames are not staged.
const REGION_BLOCK: usize = 1 << 20;
/// How long a stopping core waits for the kernel to finish its operations.
const QUIESCE_LIMIT: Duration = Duration::from_secs(2);

/// Everything a core owns, except its reactor (handed to each handler).
pub struct CoreState {
    /// This core's index (0-based, among the server's cores).
    pub core: usize,
    /// Shared configuration and cross-core directory.
    pub shared: Arc<Shared>,
    /// This core's metrics block.
    pub metrics: Arc<CoreMetrics>,
    /// Connections, their deadlines and their queued closes.
    pub conns: Connections,
    /// Streams and viewers of this core.
    pub shard: Shard,
    /// Which connection each viewer is on.
    pub viewer_conns: HashMap<ViewerId, u32>,
    /// The publisher connection of each stream owned here.
    pub publishers: HashMap<StreamId, u32>,
    /// Connections to send to at the end of the turn, and the send-merge window.
    pub sends: SendQueue,
    /// Cross-core links and the turn's inbox.
    pub mesh: CoreMesh,
    /// The listeners and their accept pauses.
    pub accepts: Accepts,
    /// What this core tells the API.
    pub report: CoreReport,
    /// Reusable batch buffer for viewer sends.
    pub batch: Vec<OutFrame>,
    /// Reusable list of the connections this turn flushes.
    flushing: Vec<u32>,
    /// Where ingested frame payloads are assembled: 64-byte-aligned pieces of
    /// preallocated blocks (aligned sources make the kernel's copies faster).
    pub arena: AlignedArena,
    /// Zero-copy sends: the region registered with this core's ring (viewer scratch
    /// and per-core copies of frame bodies), if configured and accepted.
    pub region: Option<SendRegion>,
    /// Viewers waiting for their stream to go live.
    pub pending: PendingPlays,
    /// Edge mode: origin pulls run by this core and viewers waiting for one.
    pub edge: super::edge::EdgeCore,
    /// Push relays of streams published on this core.
    pub relays: super::edge::relay::Relays,
    /// HTTP hook calls of this core and the sessions held for them.
    pub hooks: super::hooks::Hooks,
    /// HLS: packagers of owned streams, other cores' views, waiters.
    pub hls: super::hls::HlsCore,
    pub(super) epoch: Instant,
    pub(super) wake_buf: Box<u64>,
    pub(super) shutting_down: Option<Instant>,
    sweeps: SweepSchedule,
    /// Reused for the plaintext TLS decrypts from one receive (handed to the
    /// protocol at once, which copies what it keeps).
    pub(super) tls_plain: Vec<u8>,
}

impl CoreState {
    /// Milliseconds since this core started: the clock every sans-IO layer gets.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Microseconds on the same clock (shared by every core, so a frame's arrival
    /// time stays meaningful on the core that replicates it).
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Back-pressure for the never-dropped control lane: while more than
    /// [`CONTROL_BACKPRESSURE`](super::core_mesh::CONTROL_BACKPRESSURE) control
    /// messages wait for a peer core, accepting stops (the kernel's listen
    /// backlog holds new clients); the sweep re-arms
    /// accepts once a pause passes with the backlog below the mark.
    fn hold_accepts_while_control_backs_up(&mut self, r: &mut Reactor) {
        let Some(control) = self.mesh.control_backed_up() else {
            return;
        };
        if self.shutting_down.is_some() {
            return;
        }
        let now = Instant::now();
        self.accepts.pause_all(r, now);
        if self.accepts.warn_now(now) {
            tracing::warn!(
                core = self.core,
                control,
                "cross-core control backlog; pausing accepts"
            );
        }
    }
}

/// When the core's periodic work is next due: the sweep (grace periods, held
/// viewers, pulls, the report) every [`SWEEP_EVERY`], the stuck-viewer check
/// every [`SLOW_SWEEP_EVERY`].
struct SweepSchedule {
    next: Instant,
    next_slow: Instant,
}

impl SweepSchedule {
    /// The first sweep is due at once, the first slow check a period later.
    fn new(now: Instant) -> SweepSchedule {
        SweepSchedule {
            next: now,
            next_slow: now + SLOW_SWEEP_EVERY,
        }
    }

    /// Whether the sweep is due at `now`; if so the next one is scheduled.
    fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + SWEEP_EVERY;
        true
    }

    /// Whether the stuck-viewer check is due at `now`; if so the next one is scheduled.
    fn slow_due(&mut self, now: Instant) -> bool {
        if now < self.next_slow {
            return false;
        }
        self.next_slow = now + SLOW_SWEEP_EVERY;
        true
    }
}

/// A core: its reactor and its state.
///
/// The kernel reads and writes memory of both: the reactor's own (receive buffers,
/// registered region; its `Drop` orders that) and the state's (outboxes of sends in
/// flight, the wake-up counter). So `Drop` first drains the reactor into the state
/// ([`Reactor::quiesce`]: everything cancelled, every completion handled), and only
/// then do the fields drop: the reactor (closing the ring) before the state.
pub struct Worker {
    reactor: Reactor,
    state: CoreState,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let Worker { reactor, state } = self;
        // Only sends own memory of the state that must learn of their end (the
        // outboxes); other completions of a stopping core need no handling.
        let drained = reactor.quiesce(QUIESCE_LIMIT, |r, c| {
            if Token::unpack(c.user_data).is_some_and(|t| t.op == Op::Send) {
                state.on_completion(r, c);
            }
        });
        if !drained {
            tracing::error!(
                core = state.core,
                "kernel still holds operations; their buffers are leaked"
            );
        }
    }
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
        let mut reactor = reactor;
        let region = send_region(core, &shared, &mut reactor);
        let metrics = shared
            .metrics
            .core(core)
            .ok_or_else(|| std::io::Error::other("no metrics block for core"))?;
        let shard = Shard::new(core, shard_config(&shared));
        let now = Instant::now();
        let state = CoreState {
            core,
            metrics,
            // Outbound connections (pulls, relays) have deadlines too: room for them.
            conns: Connections::new(core, cfg.server.max_connections.saturating_mul(2)),
            shard,
            viewer_conns: HashMap::new(),
            publishers: HashMap::new(),
            sends: SendQueue::new(
                cfg.runtime.send_merge_window,
                cfg.runtime.audio_flush_delay,
                cfg.runtime.max_sends_per_turn,
            ),
            mesh: CoreMesh::new(mesh),
            accepts: Accepts::new(core, listeners),
            report: CoreReport::default(),
            batch: Vec::with_capacity(cfg.runtime.max_frames_per_send),
            flushing: Vec::new(),
            arena: AlignedArena::new(ARENA_BLOCK),
            region,
            edge: super::edge::EdgeCore::new(cfg),
            relays: super::edge::relay::Relays::new(cfg),
            hooks: super::hooks::Hooks::new(shared.hooks.as_ref()),
            hls: super::hls::HlsCore::new(cfg.hls.max_waiters_per_core),
            pending: PendingPlays::new(cfg.stream.wait_for_publisher),
            epoch: shared.epoch,
            wake_buf: Box::new(0),
            shutting_down: None,
            sweeps: SweepSchedule::new(now),
            tls_plain: Vec::new(),
            shared,
        };
        Ok(Worker { reactor, state })
    }

    /// Runs until shutdown completes.
    pub fn run(mut self) -> std::io::Result<()> {
        let Worker { reactor, state } = &mut self;
        state.accepts.arm_all(reactor);
        arm_wake(reactor, state);
        tracing::info!(core = state.core, features = ?reactor.features(), "core running");
        #[cfg(debug_assertions)]
        let injected_panic = fault::panic_deadline(state.core);
        let mut cpu = CpuSampler::start();
        // Sends are counted by the reactor when queued; each submit is charged
        // with every send queued since the previous one (a partial send's
        // remainder is queued while completions are drained, after the submit).
        let mut sends_counted = reactor.stats().sends;
        let mut enters_counted = reactor.stats().submits;
        let mut fixed_counted = reactor.stats().fixed_sends;
        loop {
            #[cfg(debug_assertions)]
            if injected_panic.is_some_and(|at| Instant::now() >= at) {
                panic!(
                    "fault injection: {} asked core {} to panic",
                    fault::PANIC_CORE_ENV,
                    state.core
                );
            }
            if signals::requested() && state.shutting_down.is_none() {
                state.begin_shutdown(reactor);
            }
            if let Some(started) = state.shutting_down {
                let deadline = state.shared.config.server.shutdown_timeout;
                if state.conns.is_empty() || started.elapsed() > deadline {
                    break;
                }
            }
            state
                .sends
                .end_merge_window(&mut state.conns, Instant::now());
            state.flush_ready(reactor);
            state.mesh.flush_backlogs();
            state.hold_accepts_while_control_backs_up(reactor);
            state.mesh.flush_wakeups();
            let want = usize::from(state.sends.is_empty());
            let wait = state.sends.wait(MAX_WAIT);
            let sends_now = reactor.stats().sends;
            reactor.submit_and_wait(want, Some(wait))?;
            // Every `io_uring_enter` since the last count: this one and any the
            // reactor made mid-flush because the submission queue was full.
            let enters_now = reactor.stats().submits;
            state
                .metrics
                .reactor
                .record_submits(enters_now - enters_counted, sends_now - sends_counted);
            (sends_counted, enters_counted) = (sends_now, enters_now);
            reactor.drain_completions(|r, c| state.on_completion(r, c));
            state.drain_mesh();
            if state.shutting_down.is_none() {
                state.submit_origin_connects(reactor);
                state.submit_relay_connects(reactor);
                state.submit_hook_calls(reactor);
                let fixed_now = reactor.stats().fixed_sends;
                state
                    .metrics
                    .reactor
                    .record_fixed_sends(fixed_now - fixed_counted);
                fixed_counted = fixed_now;
            }
            state.expire_timers(reactor);
            state.close_pending(reactor);
            let now = Instant::now();
            if state.sweeps.due(now) {
                state.sweep(reactor, now);
            }
            cpu.sample_if_due(now, &state.metrics.reactor, state.viewer_conns.len());
        }
        tracing::info!(core = state.core, "core stopped");
        Ok(())
    }
}

/// The core's registered send region, when zero-copy sends are on and the kernel
/// accepts the registration (else sends go without fixed buffers).
fn send_region(core: usize, shared: &Shared, reactor: &mut Reactor) -> Option<SendRegion> {
    let rt = &shared.config.runtime;
    if !rt.zero_copy_send || rt.registered_viewers == 0 || rt.registered_staging_bytes == 0 {
        return None;
    }
    let cfg = RegionConfig {
        scratch_slots: rt.registered_viewers,
        scratch_slot_size: PREFIX_SLOT * rt.max_frames_per_send.max(1),
        staging_bytes: rt.registered_staging_bytes,
        block_size: REGION_BLOCK,
    };
    let registered = SendRegion::new(cfg)
        .and_then(|region| reactor.register_region(region.mem()).map(|()| region));
    match registered {
        Ok(region) => {
            tracing::info!(
                core,
                bytes = cfg.total_bytes(),
                "send region registered for fixed-buffer zero-copy sends"
            );
            Some(region)
        }
        Err(e) => {
            tracing::warn!(core, bytes = cfg.total_bytes(), error = %e, "cannot register the send region (RLIMIT_MEMLOCK?); zero-copy sends go without fixed buffers");
            None
        }
    }
}

/// Fault injection for tests of the panic policy; compiled into debug builds only.
#[cfg(debug_assertions)]
mod fault {
    use std::time::{Duration, Instant};

    /// `RINGCAST_DEBUG_PANIC_CORE=N` or `N@MS`: core N panics MS milliseconds (default
    /// 0) after its loop starts.
    pub const PANIC_CORE_ENV: &str = "RINGCAST_DEBUG_PANIC_CORE";

    /// When `core` is to panic, if the environment asks for it.
    pub fn panic_deadline(core: usize) -> Option<Instant> {
        let spec = std::env::var(PANIC_CORE_ENV).ok()?;
        let (target, delay) = parse(&spec)?;
        (target == core).then(|| Instant::now() + delay)
    }

    fn parse(spec: &str) -> Option<(usize, Duration)> {
        let (core, ms) = spec.split_once('@').unwrap_or((spec, "0"));
        Some((
            core.trim().parse().ok()?,
            Duration::from_millis(ms.trim().parse().ok()?),
        ))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn specs() {
            assert_eq!(parse("1"), Some((1, Duration::ZERO)));
            assert_eq!(parse("0@250"), Some((0, Duration::from_millis(250))));
            assert_eq!(parse("x"), None);
            assert_eq!(parse("1@"), None);
        }
    }
}

fn shard_config(shared: &Shared) -> ShardConfig {
    let c = &shared.config;
    let mut sc = ShardConfig::default();
    sc.ring.max_frames = c.stream.ring_max_frames;
    sc.ring.max_bytes = c.stream.ring_max_bytes;
    sc.max_streams = c.server.max_streams;
    sc.max_viewers = c.server.max_viewers_per_core;
    sc
}

impl CoreState {
    fn begin_shutdown(&mut self, r: &mut Reactor) {
        tracing::info!(
            core = self.core,
            connections = self.conns.len(),
            "shutting down"
        );
        self.shutting_down = Some(Instant::now());
        self.accepts.cancel_all(r);
        let slots: Vec<u32> = self.conns.indices().collect();
        for slot in slots {
            let Some(conn) = self.conns.at(slot) else {
                continue;
            };
            if conn.viewer.is_some() {
                // Viewers get a clean end of stream, then close.
                self.finish_viewer(slot);
            } else {
                self.conns.close_later(slot, CloseReason::Shutdown);
            }
        }
    }

    /// Periodic work: grace periods, paused accepts, held viewers, pulls, the API report.
    fn sweep(&mut self, r: &mut Reactor, now: Instant) {
        let now_ms = self.now_ms();
        if self.shutting_down.is_none() {
            self.accepts.resume_due(r, now);
        }
        for ended in self.shard.tick(now_ms) {
            self.stream_ended(ended);
        }
        if self.sweeps.slow_due(now) {
            self.close_stuck_viewers(now_ms);
        }
        self.resolve_pending(now_ms);
        self.expire_waiters(now_ms);
        self.sweep_hooks(now_ms);
        self.tick_pulls(now_ms);
        self.hls_sweep(now_ms);
        self.publish_report();
    }

    /// A viewer whose socket is stuck never asks for its next batch, so the
    /// shard's periodic check is what closes it at the hard bound.
    fn close_stuck_viewers(&mut self, now_ms: u64) {
        let mut stuck = Vec::new();
        self.shard.sweep_slow(now_ms, &mut stuck);
        for (id, reason) in stuck {
            let Some(&slot) = self.viewer_conns.get(&id) else {
                continue;
            };
            self.metrics.slow_viewer_closes.inc();
            tracing::info!(core = self.core, %reason, "closing stuck viewer");
            self.conns.close_later(slot, CloseReason::SlowViewer);
        }
    }

    fn drain_mesh(&mut self) {
        let mut msgs = self.mesh.receive();
        for msg in msgs.drain(..) {
            match msg {
                MeshMsg::Stream(msg) => self.on_stream_msg(msg),
                MeshMsg::Edge(msg) => self.on_edge_msg(msg),
                MeshMsg::Hls(msg) => self.on_hls_msg(msg),
            }
        }
        self.mesh.handled(msgs);
    }

    /// Sends this turn's share of the ready connections' queued bytes: one
    /// gathered send each (see `SendQueue::take_turn`).
    fn flush_ready(&mut self, r: &mut Reactor) {
        let mut turn = std::mem::take(&mut self.flushing);
        self.sends.take_turn(&mut turn);
        for &slot in &turn {
            self.flush_one(r, slot);
        }
        self.flushing = turn;
    }

    fn flush_one(&mut self, r: &mut Reactor, slot: u32) {
        let now_ms = self.now_ms();
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        conn.queued = false;
        // Whatever it waited for goes in this send (or, if one is in flight,
        // in the one its completion queues).
        conn.woken = false;
        if conn.closing {
            return;
        }
        if conn.tls.is_some() {
            self.flush_tls(r, slot, now_ms);
            return;
        }
        if conn.outbox.begin().is_err() {
            return;
        }
        if conn.viewer.is_some() {
            self.fill_viewer_send(slot, now_ms);
        }
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        if conn.closing {
            let _ = conn.outbox.release();
            return;
        }
        match conn.outbox.finish() {
            Some(msg) => self.submit_gathered(r, slot, msg, true),
            None => {
                if conn.outbox.has_control() {
                    // Queued while this (empty) send was gathered, e.g. a viewer's
                    // end-of-stream bytes (last chunk, WebSocket close): they go in
                    // the next send, before any close.
                    self.sends.mark_ready(&mut self.conns, slot);
                } else if conn.done_after_flush() {
                    let reason = conn.close_reason;
                    self.conns.close_later(slot, reason);
                }
            }
        }
    }

    /// Submits the send `msg` that `slot`'s outbox just put in flight; `first`:
    /// the first (or only) part of its gathered send, whose frames it records.
    pub(super) fn submit_gathered(
        &mut self,
        r: &mut Reactor,
        slot: u32,
        msg: *const libc::msghdr,
        first: bool,
    ) {
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let token = Token::new(Op::Send, slot, conn.generation).pack();
        match submit_send(
            r,
            conn.fd,
            msg,
            token,
            self.shared.config.runtime.zero_copy_send,
        ) {
            Ok(()) => {
                conn.inflight += 1;
                let held = conn.outbox.held().iter();
                let frames = match first {
                    true => held.filter(|h| matches!(h, Hold::Frame(..))).count(),
                    false => 0,
                };
                self.metrics
                    .reactor
                    .record_send(conn.outbox.bytes_queued() as u64, frames as u64);
            }
            Err(_) => {
                // Never reached the kernel.
                conn.outbox.on_failed();
                self.conns.close_later(slot, CloseReason::IoError);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_are_due_once_per_period() {
        let t0 = Instant::now();
        let mut s = SweepSchedule::new(t0);
        assert!(s.due(t0));
        assert!(!s.due(t0 + SWEEP_EVERY / 2));
        assert!(s.due(t0 + SWEEP_EVERY));
        assert!(!s.slow_due(t0));
        assert!(s.slow_due(t0 + SLOW_SWEEP_EVERY));
        assert!(!s.slow_due(t0 + SLOW_SWEEP_EVERY + SWEEP_EVERY));
    }
}
