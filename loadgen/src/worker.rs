//! One worker: a thread pinned to a core, driving its share of clients on ringcast's
//! own io_uring [`Reactor`], and writing one [`Interval`] line per second.
//!
//! Connections are opened nonblocking and completed by their first `send` (the
//! reactor has no connect op; io_uring parks the send until the socket is
//! writable), then read with one multishot receive each into the reactor's shared
//! provided-buffer ring, so an idle viewer holds no receive buffer at all.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::os::fd::RawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::{Buf, BytesMut};
use rand::SeedableRng;
use ringcast::protocol::rtmp::session::client::{ClientEvent, ClientMode};
use ringcast::runtime::{Completion, Reactor, ReactorConfig};

use crate::arena::SharedArena;
use crate::filesource::FileSource;
use crate::hls::player::{Flow, HlsPlayer, Mode};
use crate::httpflv::{write_request, HttpFlvViewer};
use crate::net::{classify_errno, start_connect};
use crate::rtmp::{session, viewer_session, MediaSource, Publisher, RtmpViewer};
use crate::spec::{Role, SourceSpec, WorkerSpec};
use crate::stats::{FailureKind, Interval, Phase};
use crate::synthetic::{SyntheticConfig, SyntheticSource};
use crate::target::{Scheme, Target};
use crate::tls::{server_name, ClientTlsConn, TlsConfigs};
use crate::viewer::{is_sampled, Now, ViewerMeter};

/// Operation tags in the low bits of `user_data`; above them the connection's
/// generation (a replaced HLS connection's late completions are told apart by
/// it), then the client index.
const OP_SEND: u64 = 1;
const OP_RECV: u64 = 2;
const OP_CLOSE: u64 = 3;
const OP_CANCEL: u64 = 4;
const OP_BITS: u32 = 3;
const GEN_BITS: u32 = 8;
/// Sends of replaced connections still in flight per client, at most; past it a
/// close by the server fails the viewer instead of reconnecting.
const MAX_RETIRED: usize = 2;
/// Clients started per loop turn at most, so a ramp burst cannot starve receiving.
const MAX_STARTS_PER_TURN: usize = 512;
/// Longest sleep in one loop turn.
const MAX_WAIT: Duration = Duration::from_millis(50);
/// A publisher whose unsent output exceeds this is not keeping up with real time.
const MAX_PENDING_OUT: usize = 16 << 20;

fn user_data(index: usize, gen: u8, op: u64) -> u64 {
    ((index as u64) << (OP_BITS + GEN_BITS)) | (u64::from(gen) << OP_BITS) | op
}

/// Reads both clocks.
fn now(origin: Instant) -> Now {
    let unix_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    Now {
        mono_us: origin.elapsed().as_micros() as u64,
        unix_us,
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum ConnState {
    /// Socket created, first send in flight.
    Connecting,
    /// Connected, receiving.
    Open,
    /// Failed or finished; fd closed or closing.
    Closed,
}

/// What a connection is.
#[derive(Debug)]
enum Proto {
    HttpFlv(HttpFlvViewer),
    Hls(Box<HlsPlayer>),
    Rtmp(RtmpViewer),
    Publish(Box<Publisher>),
    /// `loadgen handshakes`: no protocol after TLS.
    Handshake,
}

/// One client connection.
#[derive(Debug)]
struct Conn {
    fd: RawFd,
    state: ConnState,
    /// Viewers only.
    meter: Option<ViewerMeter>,
    proto: Proto,
    /// Bytes the kernel is sending; untouched until that send completes.
    inflight: BytesMut,
    sending: bool,
    /// Bytes produced meanwhile, sent next.
    pending: BytesMut,
    setup_deadline_us: u64,
    /// The client's setup limit, µs (a handshake client's deadline restarts with
    /// each cycle).
    setup_timeout_us: u64,
    /// HLS: the earliest entry this connection has in the worker's timer heap.
    timer_at: Option<u64>,
    /// Generation of the socket (bumped when an HLS connection is replaced).
    gen: u8,
    /// Send buffers of replaced sockets whose send is still in flight, by generation.
    retired: Vec<(u8, BytesMut)>,
    /// Where to reconnect: server and source address octet.
    addr: std::net::SocketAddr,
    source_octet: u8,
    /// `https://`, `rtmps://`: `pending` holds plaintext, sealed into `inflight`.
    tls: Option<Box<ClientTlsConn>>,
    /// Handshake clients: our side shut (FIN sent), waiting for the server's.
    half_closed: bool,
}

impl Conn {
    fn phase(&self) -> Phase {
        if self.state == ConnState::Connecting {
            return Phase::Connect;
        }
        if self.tls.as_ref().is_some_and(|t| t.is_handshaking()) {
            return Phase::Handshake;
        }
        match &self.proto {
            Proto::HttpFlv(h) => h.phase(),
            Proto::Hls(h) => h.phase(),
            Proto::Rtmp(r) => r.phase(),
            Proto::Publish(p) => p.phase(),
            Proto::Handshake => Phase::Streaming,
        }
    }

    fn set_up(&self) -> bool {
        if let Proto::Hls(h) = &self.proto {
            return h.set_up();
        }
        if let Proto::Handshake = self.proto {
            // Each cycle (connect, handshake, close) must end within the deadline.
            return false;
        }
        let sampled_playing = self
            .meter
            .as_ref()
            .map(|m| m.sampled().then(|| m.playing()));
        match (&self.proto, sampled_playing) {
            (_, Some(Some(playing))) => playing,
            (Proto::HttpFlv(h), _) => h.phase() == Phase::Streaming,
            (Proto::Hls(h), _) => h.set_up(),
            (Proto::Rtmp(r), _) => r.streaming(),
            (Proto::Publish(p), _) => p.publishing(),
            (Proto::Handshake, _) => false,
        }
    }
}

/// Sizes the provided-buffer ring for `clients` connections: (buffers, bytes each).
///
/// Every connection with unread data holds a buffer until its completion is handled;
/// when the ring runs dry the reactor parks receives with ENOBUFS and re-arms all of
/// them at the next recycle, a storm that grows with the number of connections. So
/// the ring gets two buffers per connection (up to the 32768 the kernel allows), and
/// buffers shrink from 16 KiB towards 2 KiB so the ring stays near [`RING_BUDGET`]:
/// at the low bitrates of big runs a frame fits in 2 KiB anyway.
pub fn recv_ring_size(clients: u64) -> (u16, u32) {
    let buffers = clients
        .saturating_mul(2)
        .clamp(2048, 32768)
        .next_power_of_two()
        .min(32768);
    let size = (RING_BUDGET / buffers).clamp(2048, 16 * 1024);
    (buffers as u16, size as u32)
}

/// Bytes of receive buffers one worker aims for (the ring is shared by all its
/// connections, so per viewer this shrinks as viewers grow).
pub const RING_BUDGET: u64 = 32 << 20;

/// Runs `spec` to its end, writing interval lines to `out`.
pub fn run(spec: &WorkerSpec, out: &mut dyn Write) -> anyhow::Result<()> {
    if let Some(core) = spec.core {
        let pinned = core_affinity::set_for_current(core_affinity::CoreId { id: core });
        tracing::debug!(core, pinned, "worker pinned");
    }
    Worker::new(spec)?.run(out)
}

/// A publisher's source as configured, built once per worker and cloned per publisher.
enum SourceTemplate {
    Synthetic(SyntheticConfig),
    File(FileSource),
}

/// The clients of one worker.
struct Worker<'a> {
    spec: &'a WorkerSpec,
    targets: Vec<Target>,
    source: Option<SourceTemplate>,
    /// Client configurations, when a target is `https://` or `rtmps://`.
    tls: Option<TlsConfigs>,
    reactor: Reactor,
    /// Connections by index (the `user_data` key); never removed, so indices stay valid.
    conns: Vec<Conn>,
    /// Clients started so far (some may have failed before getting a connection).
    started: u64,
    arena: SharedArena,
    rng: rand::rngs::SmallRng,
    events: Vec<ClientEvent>,
    /// Plaintext of one TLS receive, read by the protocol and cleared at once.
    plain: Vec<u8>,
    /// HLS players' wake-ups (timed reloads, request deadlines): (mono µs, conn).
    timers: BinaryHeap<Reverse<(u64, usize)>>,
    iv: Interval,
    origin: Instant,
}

impl<'a> Worker<'a> {
    fn new(spec: &'a WorkerSpec) -> anyhow::Result<Self> {
        let base = Target::parse(&spec.url)?;
        let targets = (0..spec.streams.max(1))
            .map(|i| base.for_stream(i))
            .collect();
        let tls = if base.tls {
            Some(TlsConfigs::load(
                spec.ca.as_deref().map(std::path::Path::new),
            )?)
        } else {
            None
        };
        let source = match &spec.role {
            Role::Viewers { .. } | Role::Handshakes => None,
            Role::Publishers {
                source:
                    SourceSpec::Synthetic {
                        video_bitrate,
                        audio_bitrate,
                        fps,
                        gop_ms,
                    },
            } => {
                let cfg = SyntheticConfig {
                    video_bitrate: *video_bitrate,
                    audio_bitrate: *audio_bitrate,
                    fps: *fps,
                    gop_ms: *gop_ms,
                };
                SyntheticSource::new(cfg)?;
                Some(SourceTemplate::Synthetic(cfg))
            }
            Role::Publishers {
                source: SourceSpec::File { path },
            } => Some(SourceTemplate::File(FileSource::open(path)?)),
        };
        let (recv_buffers, recv_buffer_size) = recv_ring_size(spec.count);
        let cfg = ReactorConfig {
            recv_buffers,
            recv_buffer_size,
            ..ReactorConfig::default()
        };
        let reactor = Reactor::new(&cfg).context("creating the io_uring reactor")?;
        Ok(Worker {
            spec,
            targets,
            source,
            tls,
            reactor,
            conns: Vec::with_capacity(spec.count as usize),
            started: 0,
            arena: SharedArena::default(),
            rng: rand::rngs::SmallRng::from_entropy(),
            events: Vec::new(),
            plain: Vec::new(),
            timers: BinaryHeap::new(),
            iv: Interval::default(),
            origin: Instant::now(),
        })
    }

    fn run(mut self, out: &mut dyn Write) -> anyhow::Result<()> {
        let end_us = self.spec.duration_ms * 1000;
        let mut second = 0u64;
        // Time spent handling the previous turn's completions, added to this turn's.
        let mut drained_us = 0u64;
        loop {
            let t = now(self.origin);
            let started = t.unix_us >= self.spec.start_unix_us;
            let run_us = t.unix_us.saturating_sub(self.spec.start_unix_us);
            if started && run_us >= end_us {
                break;
            }
            if started && run_us / 1_000_000 > second {
                self.check_setup_deadlines(t);
                writeln!(out, "{}", self.iv.to_line(second as u32)?)?;
                out.flush()?;
                self.iv.reset();
                second = run_us / 1_000_000;
            }
            let next_start = self.start_due(t, run_us);
            let next_frame = self.pump_publishers(t);
            let next_timer = self.pump_timers(t);
            let until_second = 1_000_000 - run_us % 1_000_000;
            let wait_us = [
                next_start,
                next_frame,
                next_timer,
                Some(until_second),
                Some(MAX_WAIT.as_micros() as u64),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(0);
            let busy_us = now(self.origin).mono_us.saturating_sub(t.mono_us) + drained_us;
            self.iv.hist.turn_us.saturating_record(busy_us.max(1));
            self.reactor
                .submit_and_wait(1, Some(Duration::from_micros(wait_us.max(100))))?;
            let t = now(self.origin);
            let (conns, iv, timers) = (&mut self.conns, &mut self.iv, &mut self.timers);
            let (events, plain) = (&mut self.events, &mut self.plain);
            self.reactor.drain_completions(|r, c| {
                on_completion(r, c, conns, iv, (&mut *events, &mut *plain), timers, t)
            });
            drained_us = now(self.origin).mono_us.saturating_sub(t.mono_us);
        }
        let t = now(self.origin);
        for i in 0..self.conns.len() {
            let conn = &mut self.conns[i];
            // Still counted as up in the last second: they were, until we hung up.
            if conn.state == ConnState::Open {
                if let Some(m) = conn.meter.as_mut() {
                    m.finish(t, &mut self.iv);
                }
                if let Proto::Hls(h) = &mut conn.proto {
                    h.finish(t, &mut self.iv);
                }
                if let Proto::Publish(p) = &mut conn.proto {
                    // Best effort: the goodbye goes out only if nothing else is in flight.
                    p.close(&mut conn.pending);
                    let _ = flush(&mut self.reactor, conn, i);
                }
            }
            close(&mut self.reactor, conn, i);
        }
        writeln!(out, "{}", self.iv.to_line(second as u32)?)?;
        out.flush()?;
        let _ = self.reactor.submit_and_wait(0, None);
        tracing::info!(first = self.spec.first, clients = self.conns.len(), stats = ?self.reactor.stats(), "worker done");
        Ok(())
    }

    /// Starts the clients whose ramp time has come; returns µs until the next one.
    fn start_due(&mut self, t: Now, run_us: u64) -> Option<u64> {
        if t.unix_us < self.spec.start_unix_us {
            return Some(self.spec.start_unix_us - t.unix_us);
        }
        for _ in 0..MAX_STARTS_PER_TURN {
            let k = self.started;
            if k >= self.spec.count {
                return None;
            }
            let at = self.spec.start_offset_us(k);
            if at > run_us {
                return Some(at - run_us);
            }
            // Counted before starting: a client that fails to start is not retried.
            self.started += 1;
            self.start_client(k, t);
        }
        Some(0)
    }

    fn new_source(&self) -> Option<MediaSource> {
        match self.source.as_ref()? {
            SourceTemplate::Synthetic(cfg) => {
                SyntheticSource::new(*cfg).ok().map(MediaSource::Synthetic)
            }
            SourceTemplate::File(f) => Some(MediaSource::File(f.clone())),
        }
    }

    fn start_client(&mut self, k: u64, t: Now) {
        let index = self.conns.len();
        let target = &self.targets[self.spec.stream_of(k) as usize % self.targets.len()];
        let mut out = BytesMut::new();
        let (meter, proto) = match (&self.spec.role, target.scheme) {
            (Role::Viewers { sample }, scheme) => {
                let sampled = is_sampled(self.spec.global_index(k), *sample);
                let meter = ViewerMeter::new(t, sampled, &mut self.iv);
                let hls_mode = Mode::of_path(&target.path).filter(|_| scheme == Scheme::Hls);
                let proto = if let Some(mode) = hls_mode {
                    let p = HlsPlayer::start(
                        mode,
                        &target.authority,
                        &target.path,
                        sampled,
                        t,
                        &mut out,
                    );
                    Ok(Proto::Hls(Box::new(p)))
                } else if scheme == Scheme::HttpFlv {
                    write_request(target, &mut out);
                    Ok(Proto::HttpFlv(HttpFlvViewer::new(self.arena.clone())))
                } else {
                    let s = viewer_session(target, sampled, &mut self.rng, t.mono_us / 1000);
                    RtmpViewer::start(s, self.arena.clone(), &mut out).map(Proto::Rtmp)
                };
                (Some(meter), proto)
            }
            (Role::Publishers { .. }, _) => {
                let s = session(target, ClientMode::Publish, &mut self.rng, t.mono_us / 1000);
                let proto = match self.new_source() {
                    Some(src) => {
                        Publisher::start(s, src, &mut out).map(|p| Proto::Publish(Box::new(p)))
                    }
                    None => Err((Phase::Connect, FailureKind::Protocol)),
                };
                (None, proto)
            }
            (Role::Handshakes, _) => {
                let proto = if target.tls {
                    Ok(Proto::Handshake)
                } else {
                    tracing::warn!(url = %self.spec.url, "handshakes need an https:// or rtmps:// URL");
                    Err((Phase::Connect, FailureKind::Protocol))
                };
                (None, proto)
            }
        };
        let tls = match (&self.tls, target.tls) {
            (Some(configs), true) => server_name(target)
                .map_err(|e| tracing::warn!(error = %e, "TLS client"))
                .and_then(|name| {
                    let limit = self.spec.setup_timeout_ms;
                    ClientTlsConn::new(configs.for_target(target), name, limit, t)
                        .map_err(|e| tracing::warn!(error = %e, "TLS client"))
                })
                .map(|c| Some(Box::new(c)))
                .map_err(|()| (Phase::Handshake, FailureKind::Protocol)),
            _ => Ok(None),
        };
        let (proto, tls) = match (proto, tls) {
            (Ok(p), Ok(tls)) => (p, tls),
            (Err((phase, kind)), _) | (_, Err((phase, kind))) => {
                self.iv.failures.record(phase, kind);
                return;
            }
        };
        let mut conn = Conn {
            fd: -1,
            state: ConnState::Connecting,
            meter,
            proto,
            inflight: BytesMut::new(),
            sending: false,
            pending: out,
            setup_deadline_us: t.mono_us + self.spec.setup_timeout_ms * 1000,
            setup_timeout_us: self.spec.setup_timeout_ms * 1000,
            timer_at: None,
            gen: 0,
            retired: Vec::new(),
            addr: target.addr,
            source_octet: self.spec.source_octet(k),
            tls,
            half_closed: false,
        };
        match start_connect(target.addr, self.spec.source_octet(k)) {
            Ok(fd) => conn.fd = fd,
            Err(e) => {
                self.iv.failures.record(
                    Phase::Connect,
                    e.raw_os_error().map_or(FailureKind::Io, classify_errno),
                );
                conn.state = ConnState::Closed;
                self.conns.push(conn);
                return;
            }
        }
        self.conns.push(conn);
        let conn = &mut self.conns[index];
        schedule(&mut self.timers, conn, index);
        if flush(&mut self.reactor, conn, index).is_err() {
            fail(
                &mut self.reactor,
                conn,
                index,
                &mut self.iv,
                Phase::Connect,
                FailureKind::Io,
            );
        }
    }

    /// Sends publishers' due frames; returns µs until the next frame is due.
    fn pump_publishers(&mut self, t: Now) -> Option<u64> {
        self.source.as_ref()?;
        let mut next: Option<u64> = None;
        for i in 0..self.conns.len() {
            let conn = &mut self.conns[i];
            let Proto::Publish(p) = &mut conn.proto else {
                continue;
            };
            if conn.state != ConnState::Open {
                continue;
            }
            let res = p.pump(t, &mut self.iv, &mut conn.pending);
            let res = res.and_then(|due| {
                if conn.pending.len() > MAX_PENDING_OUT {
                    tracing::warn!(
                        index = i,
                        pending = conn.pending.len(),
                        "publisher cannot send in real time"
                    );
                    return Err((Phase::Streaming, FailureKind::Timeout));
                }
                flush(&mut self.reactor, conn, i).map_err(|e| (Phase::Streaming, e.kind()))?;
                Ok(due)
            });
            match res {
                Ok(due) => {
                    next = match (next, due) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    }
                }
                Err((phase, kind)) => {
                    fail_client(&mut self.reactor, conn, i, &mut self.iv, phase, kind)
                }
            }
        }
        next
    }

    /// Wakes the HLS players whose time has come; returns µs until the next one.
    fn pump_timers(&mut self, t: Now) -> Option<u64> {
        while let Some(&Reverse((due, i))) = self.timers.peek() {
            if due > t.mono_us {
                return Some(due - t.mono_us);
            }
            self.timers.pop();
            let Some(conn) = self.conns.get_mut(i) else {
                continue;
            };
            if conn.timer_at == Some(due) {
                conn.timer_at = None;
            }
            if conn.state == ConnState::Closed {
                continue;
            }
            let connecting = conn.state == ConnState::Connecting;
            let res = match &mut conn.proto {
                Proto::Hls(h) => h
                    .on_timer(t, &mut conn.pending)
                    .map_err(|e| e.classify(h.streaming())),
                _ => Ok(()),
            };
            let res = res.and_then(|()| {
                flush(&mut self.reactor, conn, i).map_err(|e| (conn.phase(), e.kind()))
            });
            match res {
                Ok(()) => schedule(&mut self.timers, conn, i),
                Err((phase, kind)) => {
                    let phase = if connecting { Phase::Connect } else { phase };
                    fail_client(&mut self.reactor, conn, i, &mut self.iv, phase, kind);
                }
            }
        }
        None
    }

    /// Fails clients not set up by their deadline. Only the server's lateness counts:
    /// a client whose socket already holds bytes that loadgen has not read yet (its
    /// receive waits for a buffer, or this turn ran long) is judged again next second.
    fn check_setup_deadlines(&mut self, t: Now) {
        for (i, conn) in self.conns.iter_mut().enumerate() {
            if conn.state != ConnState::Closed
                && t.mono_us > conn.setup_deadline_us
                && !conn.set_up()
            {
                if conn.state == ConnState::Open && unread_bytes(conn.fd) > 0 {
                    self.iv.counters.late_reads += 1;
                    continue;
                }
                let phase = conn.phase();
                fail(
                    &mut self.reactor,
                    conn,
                    i,
                    &mut self.iv,
                    phase,
                    FailureKind::Timeout,
                );
            }
        }
    }
}

/// Puts an HLS player's next wake-up in the heap, unless an entry at least as early
/// is there already (so the heap holds about one entry per player).
fn schedule(timers: &mut BinaryHeap<Reverse<(u64, usize)>>, conn: &mut Conn, index: usize) {
    let Proto::Hls(h) = &conn.proto else {
        return;
    };
    if conn.state == ConnState::Closed {
        return;
    }
    if let Some(due) = h.next_due_us() {
        if conn.timer_at.is_none_or(|at| due < at) {
            timers.push(Reverse((due, index)));
            conn.timer_at = Some(due);
        }
    }
}

/// Bytes received on `fd` and not read yet (`FIONREAD`); 0 on error.
fn unread_bytes(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through a valid pointer.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if rc == 0 {
        usize::try_from(n).unwrap_or(0)
    } else {
        0
    }
}

/// Why a connection's bytes could not go out.
#[derive(Debug)]
enum FlushError {
    /// The reactor refused the send.
    Submit,
    /// TLS refused to seal (closed, over its bound).
    Tls,
}

impl FlushError {
    fn kind(&self) -> FailureKind {
        match self {
            FlushError::Submit => FailureKind::Io,
            FlushError::Tls => FailureKind::Protocol,
        }
    }
}

/// Starts sending `pending` if nothing is in flight. Over TLS, `pending` is
/// plaintext: one bounded send's worth of it, with any handshake flight, is
/// sealed into `inflight` and the rest waits for that send's completion.
fn flush(reactor: &mut Reactor, conn: &mut Conn, index: usize) -> Result<(), FlushError> {
    if conn.sending || conn.fd < 0 {
        return Ok(());
    }
    match conn.tls.as_mut() {
        None => {
            if conn.pending.is_empty() {
                return Ok(());
            }
            std::mem::swap(&mut conn.inflight, &mut conn.pending);
            conn.pending.clear();
        }
        Some(tls) => {
            if !tls.wants_transmit(&conn.pending) {
                return Ok(());
            }
            conn.inflight.clear();
            tls.seal(&mut conn.pending, &mut conn.inflight)
                .map_err(|e| {
                    tracing::debug!(index, error = %e, "TLS seal");
                    FlushError::Tls
                })?;
            if conn.inflight.is_empty() {
                return Ok(());
            }
        }
    }
    send_inflight(reactor, conn, index).map_err(|_| FlushError::Submit)
}

fn send_inflight(
    reactor: &mut Reactor,
    conn: &mut Conn,
    index: usize,
) -> Result<(), ringcast::runtime::SubmitError> {
    conn.sending = true;
    // SAFETY: `inflight` is neither modified nor dropped while the send is in flight:
    // it is only touched again from this send's completion, and conns are never removed.
    unsafe {
        reactor.send(
            conn.fd,
            conn.inflight.as_ptr(),
            conn.inflight.len() as u32,
            user_data(index, conn.gen, OP_SEND),
        )
    }
}

fn close(reactor: &mut Reactor, conn: &mut Conn, index: usize) {
    if conn.fd >= 0 {
        // `shutdown` ends the armed receive (EOF) and pending sends in O(1); a
        // cancel by fd scans every pending request, so closing 10k clients at the
        // end of a run took seconds of kernel time. Only an unconnected socket (a
        // connect in flight) needs the cancel.
        // SAFETY: shutting down a socket this client owns.
        if unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) } != 0 {
            let _ = reactor.cancel_fd(conn.fd, user_data(index, conn.gen, OP_CANCEL));
        }
        let _ = reactor.close(conn.fd, user_data(index, conn.gen, OP_CLOSE));
        conn.fd = -1;
    }
    conn.state = ConnState::Closed;
}

fn fail(
    reactor: &mut Reactor,
    conn: &mut Conn,
    index: usize,
    iv: &mut Interval,
    phase: Phase,
    kind: FailureKind,
) {
    if conn.state == ConnState::Closed {
        return;
    }
    if conn.state == ConnState::Open && conn.meter.is_some() {
        iv.counters.viewers_up -= 1;
    }
    iv.failures.record(phase, kind);
    tracing::debug!(index, ?phase, ?kind, "client failed");
    close(reactor, conn, index);
}

/// Like [`fail`], keeping the publishers-up gauge right.
fn fail_client(
    reactor: &mut Reactor,
    conn: &mut Conn,
    index: usize,
    iv: &mut Interval,
    phase: Phase,
    kind: FailureKind,
) {
    let was_publishing =
        matches!(&conn.proto, Proto::Publish(p) if p.publishing()) && conn.state == ConnState::Open;
    fail(reactor, conn, index, iv, phase, kind);
    if was_publishing {
        iv.counters.publishers_up -= 1;
    }
}

fn on_completion(
    r: &mut Reactor,
    c: Completion,
    conns: &mut [Conn],
    iv: &mut Interval,
    (events, plain): (&mut Vec<ClientEvent>, &mut Vec<u8>),
    timers: &mut BinaryHeap<Reverse<(u64, usize)>>,
    t: Now,
) {
    let index = (c.user_data >> (OP_BITS + GEN_BITS)) as usize;
    let gen = ((c.user_data >> OP_BITS) & 0xff) as u8;
    let op = c.user_data & ((1 << OP_BITS) - 1);
    let Some(conn) = conns.get_mut(index) else {
        if let Some(id) = c.buffer_id() {
            r.recycle_buffer(id);
        }
        return;
    };
    if gen != conn.gen {
        // A replaced socket's last words: its send buffer may go now.
        if let Some(id) = c.buffer_id() {
            r.recycle_buffer(id);
        }
        if op == OP_SEND {
            if let Some(i) = conn.retired.iter().position(|(g, _)| *g == gen) {
                conn.retired.swap_remove(i);
            }
        }
        return;
    }
    match op {
        OP_SEND => on_sent(r, c, conn, index, iv),
        OP_RECV => {
            let Some(id) = c.buffer_id() else {
                if matches!(conn.proto, Proto::Handshake) && conn.state == ConnState::Open {
                    end_handshake_cycle(r, conn, index, iv, t, c.result);
                    return;
                }
                let hls_eof =
                    c.result == 0 && matches!(&conn.proto, Proto::Hls(h) if h.may_reconnect());
                if hls_eof && conn.state == ConnState::Open {
                    // A keep-alive connection the server closed between requests.
                    if let Err((phase, kind)) = reconnect(r, conn, index, iv, t) {
                        fail_client(r, conn, index, iv, phase, kind);
                    }
                    schedule(timers, conn, index);
                    return;
                }
                if conn.state != ConnState::Closed {
                    let phase = conn.phase();
                    let kind = if c.result == 0 {
                        FailureKind::EarlyEof
                    } else {
                        classify_errno(-c.result)
                    };
                    fail_client(r, conn, index, iv, phase, kind);
                }
                return;
            };
            if conn.state != ConnState::Open {
                r.recycle_buffer(id);
                return;
            }
            let result = match r.recv_buffer(id, c.result.max(0) as usize) {
                Some(data) => on_received(conn, data, t, iv, events, plain),
                None => Err((conn.phase(), FailureKind::Io)),
            };
            r.recycle_buffer(id);
            let result = match result {
                Ok(Flow::Reconnect) => reconnect(r, conn, index, iv, t),
                Ok(Flow::Continue) => Ok(()),
                Err(e) => Err(e),
            };
            let result =
                result.and_then(|()| flush(r, conn, index).map_err(|e| (conn.phase(), e.kind())));
            match result {
                Ok(()) => schedule(timers, conn, index),
                Err((phase, kind)) => fail_client(r, conn, index, iv, phase, kind),
            }
        }
        _ => {}
    }
}

/// Feeds received bytes to the protocol, through TLS first when there is one.
fn on_received(
    conn: &mut Conn,
    data: &[u8],
    t: Now,
    iv: &mut Interval,
    events: &mut Vec<ClientEvent>,
    plain: &mut Vec<u8>,
) -> Result<Flow, (Phase, FailureKind)> {
    let Some(tls) = conn.tls.as_mut() else {
        return on_data(conn, data, t, iv, events);
    };
    plain.clear();
    if let Err(e) = tls.open(data, plain, t, iv) {
        tracing::debug!(error = %e, "TLS receive");
        return Err((conn.phase(), FailureKind::Protocol));
    }
    if plain.is_empty() {
        return Ok(Flow::Continue);
    }
    let res = on_data(conn, plain, t, iv, events);
    plain.clear();
    res
}

fn on_data(
    conn: &mut Conn,
    data: &[u8],
    t: Now,
    iv: &mut Interval,
    events: &mut Vec<ClientEvent>,
) -> Result<Flow, (Phase, FailureKind)> {
    let res = match (&mut conn.proto, conn.meter.as_mut()) {
        (Proto::HttpFlv(h), Some(meter)) => {
            h.on_bytes(data, t, meter, iv).map_err(|e| e.classify())
        }
        (Proto::Hls(h), Some(meter)) => {
            meter.on_bytes(data.len(), t, iv);
            return h
                .on_bytes(data, t, iv, &mut conn.pending)
                .map_err(|e| e.classify(h.streaming()));
        }
        (Proto::Rtmp(v), Some(meter)) => v.on_bytes(data, t, meter, iv, &mut conn.pending, events),
        (Proto::Publish(p), _) => p.on_bytes(data, t, iv, &mut conn.pending, events),
        // Handshake clients read nothing after TLS (tickets are TLS's own).
        (Proto::Handshake, _) | (_, None) => Ok(()),
    };
    res.map(|()| Flow::Continue)
}

/// Replaces an HLS player's connection that the server closes (keep-alive limit
/// or idle timeout): the old socket is shut, a new one opened from the same
/// source address, and the request in flight sent again on it. A handshake
/// client's next cycle starts the same way, with a fresh TLS session.
fn reconnect(
    r: &mut Reactor,
    conn: &mut Conn,
    index: usize,
    iv: &mut Interval,
    t: Now,
) -> Result<(), (Phase, FailureKind)> {
    let phase = conn.phase();
    if conn.retired.len() >= MAX_RETIRED {
        return Err((phase, FailureKind::EarlyEof));
    }
    if conn.sending {
        // The kernel may still read this buffer: keep it until that send completes.
        conn.retired
            .push((conn.gen, std::mem::take(&mut conn.inflight)));
        conn.sending = false;
    }
    if conn.fd >= 0 {
        // SAFETY: shutting down a socket this client owns.
        unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) };
        let _ = r.close(conn.fd, user_data(index, conn.gen, OP_CLOSE));
        conn.fd = -1;
    }
    if conn.state == ConnState::Open && conn.meter.is_some() {
        iv.counters.viewers_up -= 1;
    }
    conn.state = ConnState::Connecting;
    conn.gen = conn.gen.wrapping_add(1);
    conn.pending.clear();
    conn.half_closed = false;
    if let Proto::Hls(h) = &mut conn.proto {
        h.reconnected(t, &mut conn.pending)
            .map_err(|e| e.classify(h.streaming()))?;
        iv.counters.reconnects += 1;
    }
    if let Some(tls) = conn.tls.as_mut() {
        tls.restart(t).map_err(|e| {
            tracing::debug!(error = %e, "TLS client");
            (Phase::Handshake, FailureKind::Protocol)
        })?;
    }
    conn.fd = start_connect(conn.addr, conn.source_octet).map_err(|e| {
        (
            Phase::Connect,
            e.raw_os_error().map_or(FailureKind::Io, classify_errno),
        )
    })?;
    flush(r, conn, index).map_err(|e| (Phase::Connect, e.kind()))
}

fn on_sent(r: &mut Reactor, c: Completion, conn: &mut Conn, index: usize, iv: &mut Interval) {
    conn.sending = false;
    if conn.state == ConnState::Closed {
        return;
    }
    if c.result < 0 {
        let phase = conn.phase();
        fail_client(r, conn, index, iv, phase, classify_errno(-c.result));
        return;
    }
    if conn.state == ConnState::Connecting {
        conn.state = ConnState::Open;
        if conn.meter.is_some() {
            iv.counters.viewers_up += 1;
        }
        if r.recv_multishot(conn.fd, user_data(index, conn.gen, OP_RECV))
            .is_err()
        {
            fail_client(r, conn, index, iv, Phase::Handshake, FailureKind::Io);
            return;
        }
    }
    conn.inflight
        .advance((c.result as usize).min(conn.inflight.len()));
    let res = if conn.inflight.is_empty() {
        flush(r, conn, index)
    } else {
        send_inflight(r, conn, index).map_err(|_| FlushError::Submit)
    };
    if let Err(e) = res {
        let phase = conn.phase();
        fail_client(r, conn, index, iv, phase, e.kind());
        return;
    }
    let handshake_sent = matches!(conn.proto, Proto::Handshake)
        && conn.tls.as_ref().is_some_and(|t| !t.is_handshaking())
        && !conn.sending
        && !conn.half_closed;
    if handshake_sent {
        // Our Finished is out: close our side and wait for the server's FIN, so
        // the server completes its handshake and loadgen never resets a socket
        // with the server's session tickets unread.
        conn.half_closed = true;
        // SAFETY: shutting down the write side of a socket this client owns.
        unsafe { libc::shutdown(conn.fd, libc::SHUT_WR) };
    }
}

/// A handshake client's socket ended (`result`: 0 for the server's FIN, or a
/// negative errno): a clean end after a completed handshake is one cycle;
/// anything else is a failure. Either way a new socket starts the next cycle.
fn end_handshake_cycle(
    r: &mut Reactor,
    conn: &mut Conn,
    index: usize,
    iv: &mut Interval,
    t: Now,
    result: i32,
) {
    let done = conn.half_closed && result == 0;
    if !done {
        let kind = if result == 0 {
            FailureKind::EarlyEof
        } else {
            classify_errno(-result)
        };
        iv.failures.record(conn.phase(), kind);
    }
    if let Err((phase, kind)) = reconnect(r, conn, index, iv, t) {
        fail_client(r, conn, index, iv, phase, kind);
        return;
    }
    conn.setup_deadline_us = t.mono_us + conn.setup_timeout_us;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes_are_powers_of_two_within_kernel_limits() {
        assert_eq!(recv_ring_size(1), (2048, 16 * 1024));
        assert_eq!(recv_ring_size(1500), (4096, 8 * 1024));
        assert_eq!(recv_ring_size(4000), (8192, 4 * 1024));
        assert_eq!(recv_ring_size(9000), (32768, 2048));
        assert_eq!(recv_ring_size(u64::MAX), (32768, 2048));
    }

    #[test]
    fn user_data_keeps_index_and_op_apart() {
        let ud = user_data(123_456, 201, OP_RECV);
        assert_eq!(
            (
                ud >> (OP_BITS + GEN_BITS),
                (ud >> OP_BITS) & 0xff,
                ud & ((1 << OP_BITS) - 1)
            ),
            (123_456, 201, OP_RECV)
        );
    }
}
