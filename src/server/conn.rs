//! Connections of one core: the slab that owns them and what each one is.

use std::net::SocketAddr;
use std::os::fd::RawFd;

use bytes::Bytes;

use super::edge::origin_conn::OriginConn;
use super::edge::relay::RelayConn;
use super::egress_flv::FlvEgress;
use super::egress_rtmp::RtmpEgress;
use super::hook_conn::HookConn;
use super::http_conn::HttpConn;
use super::rtmp_conn::RtmpConn;
use crate::auth::hooks::HookSubject;
use crate::metrics::{CloseReason, Listener, Protocol};
use crate::runtime::outbox::{Outbox, SendBody};
use crate::runtime::TimerId;
use crate::stream::{EncodingSlot, OutFrame, ViewerId};

/// What keeps the bytes of one gathered-send element alive until the kernel took
/// them, and says which bytes they are (the outbox reads the body from here).
pub enum Hold {
    /// Bytes in the outbox scratch or control buffer: nothing to keep.
    Nothing,
    /// A shared frame (its payload and cached encodings); the body sent is one of them.
    Frame(OutFrame, FrameBody),
    /// Bytes encoded for this viewer alone.
    Bytes(Bytes),
}

/// Which of a shared frame's byte strings a [`Hold::Frame`] sends.
#[derive(Clone, Copy, Debug)]
pub enum FrameBody {
    /// The frame's payload (the FLV tag body).
    Payload,
    /// An encoding cached on the ring entry (set before the hold is built).
    Encoding(EncodingSlot),
}

// SAFETY: every variant's bytes are immutable and stay put while the hold lives,
// wherever the hold moves: a `Bytes`' data never moves; a frame's payload and its
// cached encodings live in the `Rc<RingEntry>` that `OutFrame` keeps alive, and a
// cached encoding, once set, is never replaced (a `OnceCell` behind a shared `Rc`).
unsafe impl SendBody for Hold {
    fn body(&self) -> &[u8] {
        match self {
            Hold::Nothing => &[],
            Hold::Frame(out, FrameBody::Payload) => &out.entry.frame().payload,
            // Already set by whoever built the hold; the closure only runs if not.
            Hold::Frame(out, FrameBody::Encoding(slot)) => {
                out.entry.encoding(*slot, |_| Bytes::new())
            }
            Hold::Bytes(bytes) => bytes,
        }
    }
}
/// How a viewer's frames are framed on the wire.
pub enum Egress {
    /// HTTP-FLV or WebSocket-FLV.
    Flv(FlvEgress),
    /// RTMP play.
    Rtmp(RtmpEgress),
}

impl Egress {
    /// The metrics protocol label.
    pub fn protocol(&self) -> Protocol {
        match self {
            Egress::Flv(flv) if flv.is_websocket() => Protocol::WsFlv,
            Egress::Flv(_) => Protocol::HttpFlv,
            Egress::Rtmp(_) => Protocol::Rtmp,
        }
    }
}

/// The protocol spoken on a connection.
pub enum Proto {
    /// HTTP: HTTP-FLV viewers, API, status page, metrics.
    Http(HttpConn),
    /// RTMP: publishers and players.
    Rtmp(Box<RtmpConn>),
    /// An upstream connection of an origin pull (edge mode).
    Origin(Box<OriginConn>),
    /// A push relay publishing a local stream to another server.
    Relay(Box<RelayConn>),
    /// An HTTP hook call to a hook server.
    Hook(Box<HookConn>),
}

/// A viewer attached to a connection.
pub struct ViewerState {
    /// The shard's id for it.
    pub id: ViewerId,
    /// Its framing.
    pub egress: Egress,
    /// Set once the stream ended and the end-of-stream bytes were queued.
    pub finished: bool,
}

/// One accepted connection.
pub struct Conn {
    /// The socket.
    pub fd: RawFd,
    /// Bumped each time the slot is reused; stale completions are recognised by it.
    pub generation: u32,
    /// The peer's address.
    pub peer: Option<SocketAddr>,
    /// Which listener accepted it.
    pub listener: Listener,
    /// Protocol state.
    pub proto: Proto,
    /// Outgoing bytes.
    pub outbox: Outbox<Hold>,
    /// A viewer, once it plays.
    pub viewer: Option<ViewerState>,
    /// Close once everything queued has been sent.
    pub close_after_flush: bool,
    /// Close has been submitted; waiting for in-flight operations to finish.
    pub closing: bool,
    /// Why it is closing (for metrics).
    pub close_reason: CloseReason,
    /// Operations submitted and not yet finished (multishot recv counts once).
    pub inflight: u32,
    /// An outbound connection's TCP connect must finish by then (ms on the core
    /// clock); every other deadline is its session's (`poll_timeout`).
    pub connect_deadline_ms: Option<u64>,
    /// Its entry in the core's timer wheel and the deadline it was armed for.
    pub timer: Option<(TimerId, u64)>,
    /// The connection is queued in the core's ready list.
    pub queued: bool,
    /// The viewer waits in the `SendQueue` (audio held by the flush policy, or the
    /// send-merge window) until its stream's next video frame or its deadline; a
    /// completed send does not flush it meanwhile.
    pub woken: bool,
    /// A zero-copy send's result, held until its buffer notification arrives.
    pub zc_result: Option<i32>,
    /// TLS (HTTPS and RTMPS listeners): decrypts what arrives, seals what is sent.
    pub tls: Option<Box<super::tls_conn::TlsConn>>,
    /// Bytes have arrived on it (its first bytes are checked for a TLS
    /// ClientHello on a plain port).
    pub received: bool,
    /// Set while it publishes and `[hooks] on_unpublish` is configured: what
    /// the hook is told when the publishing ends.
    pub hook_unpublish: Option<Box<HookSubject>>,
    /// Set once a play was allowed and `[hooks] on_stop` is configured: what
    /// the hook is told when the viewer stops.
    pub hook_stop: Option<Box<HookSubject>>,
    /// Its play asked for the stream's own timestamps (an edge's pull:
    /// `edge::origin::SOURCE_TIMELINE_QUERY`), whatever `stream.timestamps` says.
    pub source_timeline: bool,
    /// The stream whose HLS / DASH session this connection started and was
    /// allowed (`server::hls::session_access`): its entry URLs are not asked again.
    pub hls_allowed: Option<crate::stream::StreamKey>,
    /// It asked for an HLS/DASH URL: what is sent on it from then on counts as
    /// `ringcast_sent_bytes_total{protocol="hls"}` (it has no viewer to name one).
    pub hls: bool,
}

/// What a new connection starts with.
pub struct ConnSetup {
    /// The socket.
    pub fd: RawFd,
    /// The peer's address.
    pub peer: Option<SocketAddr>,
    /// Which listener (or, for outbound connections, which side) it belongs to.
    pub listener: Listener,
    /// Protocol state.
    pub proto: Proto,
    /// Most frames one gathered send carries.
    pub max_frames: usize,
    /// Most control bytes queued.
    pub control_limit: usize,
    /// An outbound connect's deadline (ms); `None` for accepted connections.
    pub connect_deadline_ms: Option<u64>,
    /// What its close is counted as unless another reason comes first.
    pub close_reason: CloseReason,
}

impl Conn {
    /// A fresh connection in slab generation `generation`.
    pub fn new(setup: ConnSetup, generation: u32) -> Conn {
        Conn {
            fd: setup.fd,
            generation,
            peer: setup.peer,
            listener: setup.listener,
            proto: setup.proto,
            outbox: Outbox::new(setup.max_frames, setup.control_limit),
            viewer: None,
            close_after_flush: false,
            closing: false,
            close_reason: setup.close_reason,
            inflight: 0,
            connect_deadline_ms: setup.connect_deadline_ms,
            timer: None,
            queued: false,
            woken: false,
            zc_result: None,
            tls: None,
            received: false,
            hook_unpublish: None,
            hook_stop: None,
            source_timeline: false,
            hls_allowed: None,
            hls: false,
        }
    }

    /// Marked to close after its sends, and no viewer stream is still running on it.
    pub fn done_after_flush(&self) -> bool {
        self.close_after_flush && self.viewer.as_ref().is_none_or(|v| v.finished)
    }
}

/// A slab of connections with generation-checked slots and a free list.
#[derive(Default)]
pub struct Slab {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
}

struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

impl Slab {
    /// Inserts a connection built by `make(generation)`; returns its slot index.
    pub fn insert(&mut self, make: impl FnOnce(u32) -> Conn) -> u32 {
        self.live += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.generation = slot.generation.wrapping_add(1) & 0xff_ffff;
            slot.conn = Some(make(slot.generation));
            index
        } else {
            self.slots.push(Slot {
                generation: 0,
                conn: Some(make(0)),
            });
            (self.slots.len() - 1) as u32
        }
    }

    /// The connection in `index` if its generation matches.
    pub fn get_mut(&mut self, index: u32, generation: u32) -> Option<&mut Conn> {
        self.slots
            .get_mut(index as usize)
            .filter(|s| s.generation == generation)
            .and_then(|s| s.conn.as_mut())
    }

    /// The connection in `index`, whatever its generation.
    pub fn at(&mut self, index: u32) -> Option<&mut Conn> {
        self.slots
            .get_mut(index as usize)
            .and_then(|s| s.conn.as_mut())
    }

    /// Removes the connection in `index`.
    pub fn remove(&mut self, index: u32) -> Option<Conn> {
        let conn = self.slots.get_mut(index as usize)?.conn.take()?;
        self.free.push(index);
        self.live -= 1;
        Some(conn)
    }

    /// Connections alive.
    pub fn len(&self) -> usize {
        self.live
    }

    /// No connection alive.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Slot indices of live connections.
    pub fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.conn.is_some())
            .map(|(i, _)| i as u32)
    }
}
