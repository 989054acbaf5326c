//! Outbound TCP connections (origin pulls, push relays, HTTP hook calls): a socket in the slab,
//! connected with `IORING_OP_CONNECT`, then started by its session once the
//! connect completes. After that they take the same receive, send, timeout and
//! close paths as accepted connections.

use std::net::SocketAddr;
use std::os::fd::IntoRawFd;

use socket2::{Domain, Protocol as SockProtocol, SockAddr, Socket, Type};

use crate::metrics::{CloseReason, Listener};
use crate::runtime::{Completion, Reactor};
use crate::server::conn::{Conn, ConnSetup, Proto};
use crate::server::token::{Op, Token};
use crate::server::worker::CoreState;

/// Longest a TCP connect may take.
pub const CONNECT_TIMEOUT_MS: u64 = 3_000;
/// Longest from connected to the peer accepting the play or publish request.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
/// Most control bytes (acks, requests) queued towards a peer.
const CONTROL_LIMIT: usize = 64 << 10;

/// The peer address an outbound connection's state keeps (boxed: it must not
/// move while the connect is in flight).
fn peer_sockaddr(proto: &Proto) -> Option<&SockAddr> {
    match proto {
        Proto::Origin(oc) => Some(oc.addr()),
        Proto::Relay(rc) => Some(rc.addr()),
        Proto::Hook(hc) => Some(hc.addr()),
        Proto::Http(_) | Proto::Rtmp(_) => None,
    }
}

impl CoreState {
    /// Creates a socket, puts it in the slab with `proto` and submits its
    /// connect to `addr`. Returns its (slot, generation).
    pub(crate) fn open_outbound(
        &mut self,
        r: &mut Reactor,
        addr: SocketAddr,
        listener: Listener,
        proto: Proto,
    ) -> Result<(u32, u32), &'static str> {
        let now = self.now_ms();
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM,
            Some(SockProtocol::TCP),
        )
        .map_err(|_| "cannot create socket")?;
        let _ = socket.set_nodelay(true);
        if !self.shared.try_open_connection() {
            return Err("connection limit reached");
        }
        // Counted under the listener of its protocol so open/close stay balanced.
        self.metrics.open_connections.inc(listener);
        let fd = socket.into_raw_fd();
        let setup = ConnSetup {
            fd,
            peer: Some(addr),
            listener,
            proto,
            max_frames: self.shared.config.runtime.max_frames_per_send,
            control_limit: CONTROL_LIMIT,
            connect_deadline_ms: Some(now + CONNECT_TIMEOUT_MS),
            close_reason: CloseReason::IoError,
        };
        let slot = self.conns.insert(|generation| Conn::new(setup, generation));
        self.conns.arm_timer(slot);
        let Some(conn) = self.conns.at(slot) else {
            return Err("slot vanished");
        };
        let generation = conn.generation;
        let Some(sockaddr) = peer_sockaddr(&conn.proto) else {
            return Err("not an outbound connection");
        };
        let token = Token::new(Op::Connect, slot, generation).pack();
        // SAFETY: the address is boxed inside the connection, which stays in the
        // slab until every operation on it (this connect included) has completed.
        match unsafe { r.connect(fd, sockaddr.as_ptr(), sockaddr.len(), token) } {
            Ok(()) => conn.inflight += 1,
            Err(_) => self.conns.close_later(slot, CloseReason::IoError),
        }
        Ok((slot, generation))
    }

    /// A connect finished: the session writes its opening bytes and receiving
    /// starts; on failure the close reports it to the owner (pull or relay).
    pub(crate) fn on_outbound_connected(&mut self, r: &mut Reactor, token: Token, c: Completion) {
        let now = self.now_ms();
        let Some(conn) = self.conns.get_mut(token.slot, token.generation) else {
            return;
        };
        conn.inflight = conn.inflight.saturating_sub(1);
        if conn.closing {
            self.maybe_free(token.slot);
            return;
        }
        if c.result < 0 {
            tracing::debug!(core = self.core, peer = ?conn.peer, errno = -c.result, "outbound connect failed");
            self.conns.close_later(token.slot, CloseReason::IoError);
            return;
        }
        // From here on the session's start deadline (HANDSHAKE_TIMEOUT_MS) applies.
        conn.connect_deadline_ms = None;
        let opening = match &mut conn.proto {
            Proto::Origin(oc) => oc.start(now),
            Proto::Relay(rc) => rc.start(now),
            Proto::Hook(hc) => hc.start(),
            Proto::Http(_) | Proto::Rtmp(_) => None,
        };
        let queued = opening.is_some_and(|bytes| conn.outbox.queue_control(&bytes).is_ok());
        if !queued {
            self.conns
                .close_later(token.slot, CloseReason::ProtocolError);
            return;
        }
        let recv = Token::new(Op::Recv, token.slot, token.generation).pack();
        match r.recv_multishot(conn.fd, recv) {
            Ok(()) => conn.inflight += 1,
            Err(_) => {
                self.conns.close_later(token.slot, CloseReason::IoError);
                return;
            }
        }
        self.sends.mark_ready(&mut self.conns, token.slot);
        self.conns.arm_timer(token.slot);
    }
}
