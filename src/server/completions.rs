//! What a core does with each completion: accepted sockets become connections,
//! received bytes go to their session, finished sends free their frames and
//! queue the next, and closes release the slot once nothing is in flight.

use std::os::fd::RawFd;
use std::time::Instant;

use super::conn::{Conn, ConnSetup, Hold, Proto};
use super::http_conn::HttpConn;
use super::rtmp_conn::RtmpConn;
use super::token::{Op, Token};
use super::worker::{CoreState, CONTROL_LIMIT};
use super::MeshMsg;
use crate::auth::hooks::HookAction;
use crate::metrics::{AcceptErrorKind, CloseReason, Listener, Protocol, RefuseReason};
use crate::runtime::outbox::SendProgress;
use crate::runtime::{Completion, Reactor};
use crate::stream::ViewerId;

pub(super) fn arm_wake(r: &mut Reactor, state: &mut CoreState) {
    let token = Token::new(Op::Wake, 0, 0).pack();
    let buf: *mut u64 = &mut *state.wake_buf;
    // SAFETY: wake_buf is boxed and lives as long as the core state.
    match unsafe { r.read_eventfd(state.mesh.wake_fd(), buf, token) } {
        Ok(()) | Err(crate::runtime::SubmitError::Quiescing) => {}
        Err(e) => tracing::error!(core = state.core, error = %e, "cannot arm cross-core wake-up"),
    }
}

impl CoreState {
    pub(super) fn on_completion(&mut self, r: &mut Reactor, c: Completion) {
        let Some(token) = Token::unpack(c.user_data) else {
            return;
        };
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
        if c.result == -libc::ECANCELED {
            // Cancelled on purpose (shutdown, or control back-pressure, which set the pause).
            return;
        }
        if c.result < 0 {
            let errno = -c.result;
            self.metrics
                .accept_errors
                .inc(AcceptErrorKind::from_errno(errno));
            let now = Instant::now();
            if self.accepts.warn_now(now) {
                tracing::warn!(core = self.core, errno, "accept failed; pausing accepts");
            }
            if !c.more() {
                self.accepts.pause(index, now);
            }
            return;
        }
        if !c.more() && self.shutting_down.is_none() {
            // The kernel ended the multishot accept; arm it again.
            self.accepts.arm(r, index);
        }
        let fd = c.result as RawFd;
        let Some(kind) = self.accepts.kind(index) else {
            unsafe { libc::close(fd) };
            return;
        };
        if self.shutting_down.is_some() || !self.shared.try_open_connection() {
            self.metrics
                .connections_refused
                .inc(RefuseReason::ConnectionLimit);
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
        let notsent_lowat = self.shared.config.viewer.socket_notsent_lowat;
        if notsent_lowat > 0 {
            let _ = crate::runtime::socket::set_notsent_lowat(fd, notsent_lowat);
        }
        let now = self.now_ms();
        let tls = match self.accepted_tls(kind, now) {
            Ok(tls) => tls,
            Err(()) => {
                self.metrics.open_connections.dec(kind);
                self.shared.connection_closed();
                unsafe { libc::close(fd) };
                return;
            }
        };
        let max_frames = self.shared.config.runtime.max_frames_per_send;
        let proto = match kind.plain() {
            Listener::Rtmp => Proto::Rtmp(Box::new(RtmpConn::new(&self.shared, now))),
            _ => Proto::Http(HttpConn::new(&self.shared, now)),
        };
        let peer = peer_addr(fd);
        let setup = ConnSetup {
            fd,
            peer,
            listener: kind,
            proto,
            max_frames,
            control_limit: CONTROL_LIMIT,
            connect_deadline_ms: None,
            close_reason: CloseReason::PeerClosed,
        };
        let slot = self.conns.insert(|generation| Conn {
            tls,
            ..Conn::new(setup, generation)
        });
        self.conns.arm_timer(slot);
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        tracing::debug!(core = self.core, slot, fd, ?peer, ?kind, "accepted");
        let token = Token::new(Op::Recv, slot, conn.generation).pack();
        match r.recv_multishot(fd, token) {
            Ok(()) => conn.inflight += 1,
            Err(_) => self.conns.close_later(slot, CloseReason::IoError),
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
            tracing::debug!(
                core = self.core,
                slot = token.slot,
                result = c.result,
                more = c.more(),
                "receive ended"
            );
            let reason = if c.result == 0 || c.result == -libc::ECONNRESET {
                CloseReason::PeerClosed
            } else if c.result == -libc::ECANCELED {
                conn.close_reason
            } else {
                CloseReason::IoError
            };
            self.conns.close_later(token.slot, reason);
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
            // A final completion carrying data: the reactor could not re-arm the
            // receive (its backlog was full). Nothing would ever read this socket
            // again, so close it rather than leave it deaf until its deadline.
            self.conns.close_later(token.slot, CloseReason::IoError);
            self.maybe_free(token.slot);
        }
    }

    fn on_data(&mut self, slot: u32, data: &[u8]) {
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        if conn.tls.is_some() {
            self.on_tls_data(slot, data);
        } else {
            if !conn.received {
                conn.received = true;
                let accepted = matches!(conn.proto, Proto::Http(_) | Proto::Rtmp(_));
                if accepted && data.first().is_some_and(|&b| crate::tls::looks_like_tls(b)) {
                    // The plain protocol refuses it as usual; counted to tell
                    // "https:// sent to the http port" apart from garbage.
                    self.metrics
                        .connections_refused
                        .inc(RefuseReason::TlsOnPlainPort);
                    tracing::debug!(core = self.core, slot, peer = ?conn.peer, "TLS ClientHello on a plain port");
                }
            }
            self.on_plain_data(slot, data);
        }
        self.conns.arm_timer(slot);
    }

    /// Plaintext for a connection's protocol: what arrived on a plain socket, or
    /// what TLS decrypted.
    pub(super) fn on_plain_data(&mut self, slot: u32, data: &[u8]) {
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        match &conn.proto {
            Proto::Rtmp(rc) => {
                if rc.publishing.is_some() {
                    self.metrics
                        .bytes_received
                        .add(crate::metrics::IngestSource::Publisher, data.len() as u64);
                }
                self.on_rtmp_data(slot, data);
            }
            Proto::Http(_) => self.on_http_data(slot, data),
            Proto::Origin(_) => self.on_origin_data(slot, data),
            Proto::Relay(_) => self.on_relay_data(slot, data),
            Proto::Hook(_) => self.on_hook_data(slot, data),
        }
    }

    /// The TLS state of a connection accepted on `kind` at `now_ms`: `None` on a
    /// plain listener; `Err` (counted, logged) if the session cannot be made.
    fn accepted_tls(
        &mut self,
        kind: Listener,
        now_ms: u64,
    ) -> Result<Option<Box<super::tls_conn::TlsConn>>, ()> {
        if !kind.is_tls() {
            return Ok(None);
        }
        let Some(server) = self.shared.tls.as_ref() else {
            // `serve` only binds TLS listeners with [tls] loaded.
            return Err(());
        };
        let config = match kind {
            Listener::Rtmps => server.rtmps(),
            _ => server.https(),
        };
        match super::tls_conn::TlsConn::server(config, self.shared.tls_limits, now_ms) {
            Ok(tls) => Ok(Some(Box::new(tls))),
            Err(error) => {
                tracing::warn!(core = self.core, %error, "cannot start a TLS session");
                self.metrics
                    .tls_handshakes
                    .inc(crate::metrics::TlsHandshakeResult::Failed);
                Err(())
            }
        }
    }

    fn on_send(&mut self, r: &mut Reactor, token: Token, c: Completion) {
        let now_us = self.now_us();
        let Some(conn) = self.conns.get_mut(token.slot, token.generation) else {
            return;
        };
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
            // The send's completion: the kernel is done with it.
            conn.outbox.on_failed();
            if !conn.closing {
                let reason = if c.result == -libc::EPIPE || c.result == -libc::ECONNRESET {
                    CloseReason::PeerClosed
                } else {
                    CloseReason::IoError
                };
                self.conns.close_later(token.slot, reason);
            }
            self.maybe_free(token.slot);
            return;
        }
        if let Some(viewer) = &conn.viewer {
            self.metrics
                .bytes_sent
                .add(viewer.egress.protocol(), c.result as u64);
        } else if conn.hls {
            // Counted as the kernel takes it, not as queued (a player that
            // hangs up leaves queued parts unsent).
            self.metrics.bytes_sent.add(Protocol::Hls, c.result as u64);
        }
        if conn.outbox.completes_send(c.result as usize) {
            // The whole send left: its frames are delivered (to the kernel).
            for hold in conn.outbox.held() {
                if let Hold::Frame(out, _) = hold {
                    // From the frame reaching this server (on whichever core
                    // ingested it) to this send completing: includes the mesh hop.
                    let us = now_us.saturating_sub(out.entry.arrived_us());
                    self.metrics
                        .server_latency
                        .observe_ns(us.saturating_mul(1_000));
                }
            }
        }
        match conn.outbox.on_sent(c.result as usize) {
            SendProgress::Partial => {
                let Some(msg) = conn.outbox.resume() else {
                    return;
                };
                match submit_send(
                    r,
                    conn.fd,
                    msg,
                    c.user_data,
                    self.shared.config.runtime.zero_copy_send,
                ) {
                    Ok(()) => conn.inflight += 1,
                    Err(_) => {
                        // Never reached the kernel.
                        conn.outbox.on_failed();
                        self.conns.close_later(token.slot, CloseReason::IoError);
                    }
                }
            }
            SendProgress::NotInFlight => {}
            // A TLS send's record buffer left; the rest of its plaintext is sealed next.
            SendProgress::MoreToSeal => self.sends.mark_ready(&mut self.conns, token.slot),
            SendProgress::Complete => {
                if conn.done_after_flush() && !conn.outbox.has_pending() {
                    let reason = conn.close_reason;
                    self.conns.close_later(token.slot, reason);
                } else {
                    let http = matches!(conn.proto, Proto::Http(_));
                    // A viewer that took everything its stream had (parked in the
                    // shard) has nothing to send: the stream's next frame wakes it
                    // with that frame's urgency. Queueing it now would send an audio
                    // frame that lands later in this turn on its own, past the flush
                    // policy. Only audio arrived meanwhile (the viewer waits in the
                    // `SendQueue`): the policy holds it for the stream's next video
                    // frame or its deadline. Otherwise more may be waiting: control
                    // bytes, frames past the last send's cap, or a video frame that
                    // came while the send was in flight.
                    let caught_up = conn
                        .viewer
                        .as_ref()
                        .is_some_and(|v| !v.finished && self.shard.is_parked(v.id));
                    if conn.outbox.has_pending() || !(conn.woken || caught_up) {
                        self.sends.mark_ready(&mut self.conns, token.slot);
                    }
                    if http {
                        // Pipelined requests paused behind many queued responses.
                        self.process_http(token.slot);
                    }
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
    pub(super) fn close_pending(&mut self, r: &mut Reactor) {
        while let Some((slot, reason)) = self.conns.next_to_close() {
            self.close_now(r, slot, reason);
        }
    }

    /// Starts closing `slot`: detaches it from streams, cancels its operations and
    /// closes the socket. The slot is freed once every operation has finished.
    pub fn close_now(&mut self, r: &mut Reactor, slot: u32, reason: CloseReason) {
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        if conn.closing {
            return;
        }
        conn.closing = true;
        conn.close_reason = reason;
        let (fd, generation, listener) = (conn.fd, conn.generation, conn.listener);
        tracing::debug!(core = self.core, slot, fd, peer = ?conn.peer, ?reason, "closing connection");
        self.count_close_failure(slot, reason);
        self.conns.cancel_timer(slot);
        self.detach(slot);
        self.metrics.connections_closed.inc(reason);
        self.metrics.open_connections.dec(listener);
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        // Ending the socket's armed operations: `shutdown` makes the multishot
        // receive complete with EOF and any pending send fail, in O(1). A cancel by
        // fd would do the same but scans every pending request of the ring, which
        // turns a mass disconnect (10k viewers at once) into seconds of kernel time.
        // Only a socket that is not connected yet (an outbound connect in flight)
        // needs the cancel.
        // SAFETY: shutting down a socket this connection owns.
        if unsafe { libc::shutdown(fd, libc::SHUT_RDWR) } != 0 {
            let _ = r.cancel_fd(fd, Token::new(Op::Ignore, slot, generation).pack());
        }
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
        let free = self
            .conns
            .at(slot)
            .is_some_and(|c| c.closing && c.inflight == 0);
        if free {
            self.conns.remove(slot);
            self.shared.connection_closed();
        }
    }

    /// Removes a connection's viewer and publisher roles.
    fn detach(&mut self, slot: u32) {
        let now = self.now_ms();
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let reason = conn.close_reason;
        if let Some(viewer) = conn.viewer.take() {
            let protocol = viewer.egress.protocol();
            self.remove_viewer(viewer.id, protocol);
        }
        self.end_publishing(slot, now);
        self.origin_conn_closed(slot);
        self.relay_conn_closed(slot);
        self.hook_conn_closed(slot, reason);
        // Fire-and-forget notifications of a session that ended with its connection.
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let (unpublish, stop) = (conn.hook_unpublish.take(), conn.hook_stop.take());
        if let Some(who) = unpublish {
            self.notify_hook(HookAction::Unpublish, &who);
        }
        if let Some(who) = stop {
            self.notify_hook(HookAction::Stop, &who);
        }
    }

    /// Drops a viewer from the shard and its bookkeeping.
    pub fn remove_viewer(&mut self, id: ViewerId, protocol: crate::metrics::Protocol) {
        self.viewer_conns.remove(&id);
        if let Some(removed) = self.shard.remove_viewer(id) {
            self.metrics.viewers.dec(protocol);
            // The last viewer of an ended stream (or of a replica) removes it.
            self.metrics.streams.set(self.shard.stream_count() as i64);
            self.report.viewer_left(removed.stream_id, protocol);
            if let Some((to, msg)) = removed.unsubscribe {
                self.mesh.send(&self.metrics, to, MeshMsg::Stream(msg));
            }
        }
    }
}

/// Queues a gathered send: a copying `sendmsg`, or `SENDMSG_ZC` when configured,
/// from the core's registered region when every iovec of the send lies in it.
pub(super) fn submit_send(
    r: &mut Reactor,
    fd: RawFd,
    msg: *const libc::msghdr,
    user_data: u64,
    zero_copy: bool,
) -> Result<(), crate::runtime::SubmitError> {
    // SAFETY: `msg` comes from the connection's outbox (`finish`/`resume`), which is
    // now in flight: it keeps the header, iovecs and bodies alive and refuses to touch
    // them until the send's last completion (the notification for zero-copy).
    unsafe {
        if zero_copy {
            r.sendmsg_zc_registered(fd, msg, user_data).map(|_| ())
        } else {
            r.sendmsg(fd, msg, user_data)
        }
    }
}

fn peer_addr(fd: RawFd) -> Option<std::net::SocketAddr> {
    // SAFETY: borrowing the fd only for the duration of the call.
    let sock = std::mem::ManuallyDrop::new(unsafe {
        <socket2::Socket as std::os::fd::FromRawFd>::from_raw_fd(fd)
    });
    sock.peer_addr().ok().and_then(|a| a.as_socket())
}
