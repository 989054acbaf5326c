//! One HTTP hook call's connection: an outbound TCP connection in the core's
//! slab as [`Proto::Hook`] (opened by [`super::edge::outbound`], like origin
//! pulls), which writes the request once connected, reads the answer through
//! the sans-IO [`ResponseReader`] and reports how the call ended to the core's
//! [`super::hooks::Hooks`]. Its deadline is the call's timeout, on the core's
//! timer wheel like every other connection deadline.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use socket2::SockAddr;

use crate::auth::hooks::{CallId, CallOutcome, ResponseReader};
use crate::metrics::CloseReason;
use crate::server::conn::Proto;
use crate::server::worker::CoreState;

/// One hook call's connection state.
pub struct HookConn {
    /// The call it carries.
    pub call: CallId,
    /// The hook server's address; boxed so it stays put while the connect is in flight.
    addr: Box<SockAddr>,
    request: Bytes,
    reader: ResponseReader,
    deadline_ms: u64,
    /// The call's end was already reported.
    reported: bool,
}

impl HookConn {
    /// A call to `addr` sending `request`, due by `deadline_ms`.
    pub fn new(call: CallId, addr: SocketAddr, request: Bytes, deadline_ms: u64) -> HookConn {
        HookConn {
            call,
            addr: Box::new(SockAddr::from(addr)),
            request,
            reader: ResponseReader::new(),
            deadline_ms,
            reported: false,
        }
    }

    /// The hook server's address.
    pub(crate) fn addr(&self) -> &SockAddr {
        &self.addr
    }

    /// The request, once connected.
    pub(crate) fn start(&mut self) -> Option<BytesMut> {
        Some(BytesMut::from(&self.request[..]))
    }

    /// The core ended the call itself (timed out on its sweep): the close
    /// reports nothing more.
    pub(crate) fn mark_reported(&mut self) {
        self.reported = true;
    }

    /// The call's deadline.
    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        (!self.reported).then_some(self.deadline_ms)
    }

    /// Why it must close at `now_ms`, if its deadline passed.
    pub(crate) fn handle_timeout(&mut self, now_ms: u64) -> Result<(), String> {
        if !self.reported && now_ms >= self.deadline_ms {
            return Err("hook timeout".to_owned());
        }
        Ok(())
    }
}

impl CoreState {
    /// Bytes from a hook server: once the answer is complete (or broken) the
    /// call ends and the connection closes.
    pub(crate) fn on_hook_data(&mut self, slot: u32, data: &[u8]) {
        let now = self.now_ms();
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let Proto::Hook(hc) = &mut conn.proto else {
            return;
        };
        if hc.reported {
            return;
        }
        let (outcome, reason) = match hc.reader.push(data) {
            Ok(None) => return,
            Ok(Some(answer)) => (CallOutcome::Answer(answer), CloseReason::StreamEnded),
            Err(e) => {
                tracing::info!(core = self.core, error = %e, "unusable hook answer");
                (CallOutcome::Error, CloseReason::ProtocolError)
            }
        };
        hc.reported = true;
        let call = hc.call;
        self.conns.close_later(slot, reason);
        self.hook_call_ended(call, outcome, now);
    }

    /// A hook connection is closing: if its call has not ended yet, what
    /// arrived decides it (an answer delimited by the close), else it failed
    /// or timed out.
    pub(crate) fn hook_conn_closed(&mut self, slot: u32, reason: CloseReason) {
        let now = self.now_ms();
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let Proto::Hook(hc) = &mut conn.proto else {
            return;
        };
        if hc.reported {
            return;
        }
        hc.reported = true;
        let outcome = match (reason, hc.reader.on_close()) {
            (_, Ok(answer)) => CallOutcome::Answer(answer),
            (CloseReason::Timeout, Err(_)) => CallOutcome::Timeout,
            (_, Err(e)) => {
                tracing::info!(core = self.core, error = %e, ?reason, "hook call failed");
                CallOutcome::Error
            }
        };
        let call = hc.call;
        self.hook_call_ended(call, outcome, now);
    }
}
