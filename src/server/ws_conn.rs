//! WebSocket-FLV connections after the `101`: the client's frames. The stream
//! itself goes out through the viewer's gathered sends like HTTP-FLV
//! (`server::egress_flv` frames each tag as one binary message).
//!
//! Control frames the server answers (pong, close) are queued as control bytes,
//! which go at the front of the next send: that send begins only once the one
//! before it left whole, so a control frame always lands between two messages.

use super::conn::Proto;
use super::worker::CoreState;
use crate::metrics::{CloseReason, WsCloseLabel};
use crate::protocol::ws::frame::{
    write_close_frame, write_control_frame, CloseCode, Opcode, MAX_CONTROL_FRAME,
};
use crate::protocol::ws::reader::Incoming;

impl CoreState {
    /// Bytes from a WebSocket-FLV client: pings answered, a close echoed, a frame
    /// that breaks the protocol or the size limit answered with a close; in both
    /// close cases the connection closes once the close frame left.
    pub(super) fn on_ws_data(&mut self, slot: u32, data: &[u8]) {
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        if conn.close_after_flush {
            // Our close frame is queued or sent (stream ended, or a close already
            // answered): the client's reply to it needs no answer.
            return;
        }
        let Proto::Http(http) = &mut conn.proto else {
            return;
        };
        let Some(reader) = http.ws.as_mut() else {
            return;
        };
        if reader.is_done() {
            return;
        }
        let mut frame = [0u8; MAX_CONTROL_FRAME];
        match reader.push(data) {
            Ok(Incoming { pong, close, .. }) => {
                if let Some(ping) = pong {
                    let n = write_control_frame(Opcode::Pong, ping.as_bytes(), &mut frame);
                    if conn.outbox.queue_control(&frame[..n]).is_err() {
                        // Pongs are not coalesced beyond a read: a client that pings
                        // faster than it reads is cut off.
                        self.conns.close_later(slot, CloseReason::ProtocolError);
                        return;
                    }
                    self.sends.mark_ready(&mut self.conns, slot);
                }
                if let Some(code) = close {
                    // Echo the client's code (RFC 6455 §5.5.1); an empty close gets one.
                    let n = match code {
                        Some(code) => write_close_frame(code, &mut frame),
                        None => write_control_frame(Opcode::Close, &[], &mut frame),
                    };
                    self.metrics.ws_closes.inc(WsCloseLabel::ClientClose);
                    self.close_ws(slot, &frame[..n], CloseReason::PeerClosed);
                }
            }
            Err(e) => {
                tracing::debug!(core = self.core, error = %e, "closing WebSocket-FLV client");
                let code = e.close_code();
                self.metrics.ws_closes.inc(match code {
                    CloseCode::MessageTooBig => WsCloseLabel::MessageTooBig,
                    CloseCode::InvalidPayload => WsCloseLabel::InvalidPayload,
                    CloseCode::ProtocolError | CloseCode::Normal => WsCloseLabel::ProtocolError,
                });
                let n = write_close_frame(code.code(), &mut frame);
                self.close_ws(slot, &frame[..n], CloseReason::ProtocolError);
            }
        }
    }

    /// Stops the viewer's frames, queues `close_frame` and closes after it is sent.
    fn close_ws(&mut self, slot: u32, close_frame: &[u8], reason: CloseReason) {
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        conn.close_reason = reason;
        // No message may follow a close frame.
        if let Some(viewer) = conn.viewer.as_mut() {
            viewer.finished = true;
        }
        if conn.outbox.queue_control(close_frame).is_err() {
            self.conns.close_later(slot, reason);
            return;
        }
        conn.close_after_flush = true;
        self.sends.mark_ready(&mut self.conns, slot);
    }
}
