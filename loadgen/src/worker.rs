//! One worker: a thread pinned to a core, driving its share of clients on ringcast's
//! own io_uring [`Reactor`], and writing one [`Interval`] line per second.
//!
//! Connections are opened nonblocking and completed by their first `send` (the
//! reactor has no connect op; io_uring parks the send until the socket is
//! writable), then read with one multishot receive each into the reactor's shared
//! provided-buffer ring, so an idle viewer holds no receive buffer at all.

use std::io::Write;
use std::os::fd::RawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ringcast::runtime::{Completion, Reactor, ReactorConfig};

use crate::arena::SharedArena;
use crate::httpflv::{write_request, HttpFlvViewer};
use crate::net::{classify_errno, start_connect};
use crate::spec::{Role, WorkerSpec};
use crate::stats::{FailureKind, Interval, Phase};
use crate::target::{Scheme, Target};
use crate::viewer::{is_sampled, Now, ViewerMeter};

/// Operation tags in the low bits of `user_data`; the client index is above them.
const OP_SEND: u64 = 1;
const OP_RECV: u64 = 2;
const OP_CLOSE: u64 = 3;
const OP_CANCEL: u64 = 4;
const OP_BITS: u32 = 3;
/// Clients started per loop turn at most, so a ramp burst cannot starve receiving.
const MAX_STARTS_PER_TURN: usize = 512;
/// Longest sleep in one loop turn.
const MAX_WAIT: Duration = Duration::from_millis(50);

fn user_data(index: usize, op: u64) -> u64 {
    ((index as u64) << OP_BITS) | op
}

/// Reads both clocks.
fn now(origin: Instant) -> Now {
    let unix_us = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    Now { mono_us: origin.elapsed().as_micros() as u64, unix_us }
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

/// The protocol a viewer speaks.
#[derive(Debug)]
enum ViewerProto {
    HttpFlv(HttpFlvViewer),
}

/// One simulated viewer's connection.
#[derive(Debug)]
struct ViewerConn {
    fd: RawFd,
    state: ConnState,
    meter: ViewerMeter,
    proto: ViewerProto,
    /// Bytes to send; only touched when no send is in flight, since the kernel reads
    /// them asynchronously.
    out: Vec<u8>,
    sent: usize,
    setup_deadline_us: u64,
}

impl ViewerConn {
    fn phase(&self) -> Phase {
        match (&self.proto, self.state) {
            (_, ConnState::Connecting) => Phase::Connect,
            (ViewerProto::HttpFlv(h), _) => h.phase(),
        }
    }

    fn set_up(&self) -> bool {
        match &self.proto {
            ViewerProto::HttpFlv(h) => {
                if self.meter.sampled() {
                    self.meter.playing()
                } else {
                    h.phase() == Phase::Streaming
                }
            }
        }
    }
}

/// Runs `spec` to its end, writing interval lines to `out`.
pub fn run(spec: &WorkerSpec, out: &mut dyn Write) -> anyhow::Result<()> {
    if let Some(core) = spec.core {
        let pinned = core_affinity::set_for_current(core_affinity::CoreId { id: core });
        tracing::debug!(core, pinned, "worker pinned");
    }
    match &spec.role {
        Role::Viewers { sample } => Viewers::new(spec, *sample)?.run(out),
        Role::Publishers { .. } => anyhow::bail!("this build has no RTMP publisher yet"),
    }
}

/// The viewers of one worker.
struct Viewers<'a> {
    spec: &'a WorkerSpec,
    sample: f64,
    targets: Vec<Target>,
    reactor: Reactor,
    conns: Vec<ViewerConn>,
    arena: SharedArena,
    iv: Interval,
    origin: Instant,
}

impl<'a> Viewers<'a> {
    fn new(spec: &'a WorkerSpec, sample: f64) -> anyhow::Result<Self> {
        let base = Target::parse(&spec.url)?;
        let targets = (0..spec.streams.max(1)).map(|i| base.for_stream(i)).collect();
        let cfg = ReactorConfig { recv_buffers: 2048, recv_buffer_size: 16 * 1024, ..ReactorConfig::default() };
        let reactor = Reactor::new(&cfg).context("creating the io_uring reactor")?;
        Ok(Viewers {
            spec,
            sample,
            targets,
            reactor,
            conns: Vec::with_capacity(spec.count as usize),
            arena: SharedArena::default(),
            iv: Interval::default(),
            origin: Instant::now(),
        })
    }

    fn run(mut self, out: &mut dyn Write) -> anyhow::Result<()> {
        let end_us = self.spec.duration_ms * 1000;
        let mut second = 0u64;
        loop {
            let t = now(self.origin);
            let run_us = t.unix_us.saturating_sub(self.spec.start_unix_us);
            if t.unix_us >= self.spec.start_unix_us && run_us >= end_us {
                break;
            }
            if run_us / 1_000_000 > second && t.unix_us >= self.spec.start_unix_us {
                self.check_setup_deadlines(t);
                writeln!(out, "{}", self.iv.to_line(second as u32)?)?;
                out.flush()?;
                self.iv.reset();
                second = run_us / 1_000_000;
            }
            let next_start = self.start_due(t, run_us);
            let until_second = 1_000_000 - run_us % 1_000_000;
            let wait_us = next_start.unwrap_or(u64::MAX).min(until_second).min(MAX_WAIT.as_micros() as u64);
            self.reactor.submit_and_wait(1, Some(Duration::from_micros(wait_us.max(100))))?;
            let t = now(self.origin);
            let conns = &mut self.conns;
            let iv = &mut self.iv;
            self.reactor.drain_completions(|r, c| on_completion(r, c, conns, iv, t));
        }
        let t = now(self.origin);
        for i in 0..self.conns.len() {
            let conn = &mut self.conns[i];
            // Still counted as up in the last second: they were, until we hung up.
            if conn.state == ConnState::Open {
                conn.meter.finish(t, &mut self.iv);
            }
            close(&mut self.reactor, conn, i);
        }
        writeln!(out, "{}", self.iv.to_line(second as u32)?)?;
        out.flush()?;
        let _ = self.reactor.submit_and_wait(0, None);
        Ok(())
    }

    /// Starts the viewers whose ramp time has come; returns µs until the next one.
    fn start_due(&mut self, t: Now, run_us: u64) -> Option<u64> {
        if t.unix_us < self.spec.start_unix_us {
            return Some(self.spec.start_unix_us - t.unix_us);
        }
        for _ in 0..MAX_STARTS_PER_TURN {
            let k = self.conns.len() as u64;
            if k >= self.spec.count {
                return None;
            }
            let at = self.spec.start_offset_us(k);
            if at > run_us {
                return Some(at - run_us);
            }
            self.start_viewer(k, t);
        }
        Some(0)
    }

    fn start_viewer(&mut self, k: u64, t: Now) {
        let index = self.conns.len();
        let sampled = is_sampled(self.spec.global_index(k), self.sample);
        let meter = ViewerMeter::new(t, sampled, &mut self.iv);
        let target = &self.targets[self.spec.stream_of(k) as usize % self.targets.len()];
        let mut out = Vec::new();
        let proto = match target.scheme {
            Scheme::HttpFlv => {
                write_request(target, &mut out);
                ViewerProto::HttpFlv(HttpFlvViewer::new(self.arena.clone()))
            }
            Scheme::Rtmp => {
                // Refused at the command line already; count it rather than panic.
                self.iv.failures.record(Phase::Connect, FailureKind::Protocol);
                return;
            }
        };
        let deadline = t.mono_us + self.spec.setup_timeout_ms * 1000;
        let mut conn = ViewerConn {
            fd: -1,
            state: ConnState::Connecting,
            meter,
            proto,
            out,
            sent: 0,
            setup_deadline_us: deadline,
        };
        match start_connect(target.addr, self.spec.source_octet(k)) {
            Ok(fd) => conn.fd = fd,
            Err(e) => {
                let kind = e.raw_os_error().map_or(FailureKind::Io, classify_errno);
                self.iv.failures.record(Phase::Connect, kind);
                conn.state = ConnState::Closed;
                self.conns.push(conn);
                return;
            }
        }
        self.conns.push(conn);
        let conn = &mut self.conns[index];
        if let Err(e) = queue_send(&mut self.reactor, conn, index) {
            tracing::warn!(error = %e, "send queue full");
            fail(&mut self.reactor, conn, index, &mut self.iv, Phase::Connect, FailureKind::Io);
        }
    }

    fn check_setup_deadlines(&mut self, t: Now) {
        for (i, conn) in self.conns.iter_mut().enumerate() {
            if conn.state != ConnState::Closed && t.mono_us > conn.setup_deadline_us && !conn.set_up() {
                let phase = conn.phase();
                fail(&mut self.reactor, conn, i, &mut self.iv, phase, FailureKind::Timeout);
            }
        }
    }
}

fn queue_send(reactor: &mut Reactor, conn: &mut ViewerConn, index: usize) -> Result<(), ringcast::runtime::SubmitError> {
    let rest = &conn.out[conn.sent..];
    // SAFETY: `out` is not modified or dropped while the send is in flight: it is only
    // touched again from this send's completion, and conns are never removed.
    unsafe { reactor.send(conn.fd, rest.as_ptr(), rest.len() as u32, user_data(index, OP_SEND)) }
}

fn close(reactor: &mut Reactor, conn: &mut ViewerConn, index: usize) {
    if conn.fd >= 0 {
        let _ = reactor.cancel_fd(conn.fd, user_data(index, OP_CANCEL));
        let _ = reactor.close(conn.fd, user_data(index, OP_CLOSE));
        conn.fd = -1;
    }
    conn.state = ConnState::Closed;
}

fn fail(reactor: &mut Reactor, conn: &mut ViewerConn, index: usize, iv: &mut Interval, phase: Phase, kind: FailureKind) {
    if conn.state == ConnState::Closed {
        return;
    }
    if conn.state == ConnState::Open {
        iv.counters.viewers_up -= 1;
    }
    iv.failures.record(phase, kind);
    tracing::debug!(index, ?phase, ?kind, "viewer failed");
    close(reactor, conn, index);
}

fn on_completion(r: &mut Reactor, c: Completion, conns: &mut [ViewerConn], iv: &mut Interval, t: Now) {
    let index = (c.user_data >> OP_BITS) as usize;
    let op = c.user_data & ((1 << OP_BITS) - 1);
    let Some(conn) = conns.get_mut(index) else {
        if let Some(id) = c.buffer_id() {
            r.recycle_buffer(id);
        }
        return;
    };
    match op {
        OP_SEND => {
            if conn.state == ConnState::Closed {
                return;
            }
            if c.result < 0 {
                let phase = conn.phase();
                fail(r, conn, index, iv, phase, classify_errno(-c.result));
                return;
            }
            conn.sent += c.result as usize;
            if conn.state == ConnState::Connecting {
                conn.state = ConnState::Open;
                iv.counters.viewers_up += 1;
                if r.recv_multishot(conn.fd, user_data(index, OP_RECV)).is_err() {
                    fail(r, conn, index, iv, Phase::Handshake, FailureKind::Io);
                    return;
                }
            }
            if conn.sent < conn.out.len() {
                if queue_send(r, conn, index).is_err() {
                    fail(r, conn, index, iv, Phase::Handshake, FailureKind::Io);
                }
            } else {
                conn.out = Vec::new();
                conn.sent = 0;
            }
        }
        OP_RECV => {
            let Some(id) = c.buffer_id() else {
                if conn.state != ConnState::Closed {
                    let phase = conn.phase();
                    let kind = if c.result == 0 { FailureKind::EarlyEof } else { classify_errno(-c.result) };
                    fail(r, conn, index, iv, phase, kind);
                }
                return;
            };
            if conn.state == ConnState::Open {
                let result = match (&mut conn.proto, r.recv_buffer(id, c.result.max(0) as usize)) {
                    (ViewerProto::HttpFlv(h), Some(data)) => h.on_bytes(data, t, &mut conn.meter, iv).map_err(|e| e.classify()),
                    (_, None) => Err((conn.phase(), FailureKind::Io)),
                };
                r.recycle_buffer(id);
                if let Err((phase, kind)) = result {
                    fail(r, conn, index, iv, phase, kind);
                }
            } else {
                r.recycle_buffer(id);
            }
        }
        _ => {}
    }
}
