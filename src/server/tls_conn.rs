//! TLS on an accepted connection (the HTTPS and RTMPS listeners): the glue
//! between a connection's socket and its [`TlsSession`].
//!
//! It sits at the connection's send level, under every protocol:
//! * received ciphertext is decrypted here and the plaintext goes to the same
//!   HTTP / RTMP handling as a plain connection's bytes (`CoreState::on_tls_data`);
//! * outgoing, whatever the connection's outbox gathered for one send (control
//!   bytes, per-viewer headers and shared bodies, from any egress) is handed to
//!   [`TlsSession::send`] as one list of slices and encrypted in one pass into
//!   the outbox's record buffer ([`Outbox::seal`](crate::runtime::outbox::Outbox::seal)),
//!   which is what the kernel sends. The record buffer holds at most
//!   `TlsLimits::max_ciphertext_out`; a gathered send larger than that is sealed
//!   in parts, each after the previous one's send completed (back-pressure: the
//!   buffer never grows past its bound).
//!
//! Handshake flights, tickets and alerts go out the same way (a send with no
//! plaintext); the handshake deadline joins the connection's timer; a
//! connection that ends after its last send (`close_after_flush`) sends
//! close_notify with it.

use std::sync::Arc;

use rustls::ServerConfig;

use super::worker::CoreState;
use crate::config::Config;
use crate::metrics::{CloseReason, TlsHandshakeResult};
use crate::protocol::http::response::{self, ResponseContext};
use crate::runtime::Reactor;
use crate::tls::session::Received;
use crate::tls::{Plaintext, TlsError, TlsLimits, TlsSession};

/// The answer to a plain HTTP request on the HTTPS port.
const PLAIN_HTTP_ON_HTTPS: &[u8] = b"This is an HTTPS port: use https://\n";
/// The answer to a plain HTTP request on the RTMPS port.
const PLAIN_HTTP_ON_RTMPS: &[u8] =
    b"This is an RTMPS port: use rtmps:// (HTTP is on the HTTPS port)\n";

/// One connection's TLS state.
pub struct TlsConn {
    session: TlsSession,
    /// A TLS error happened: received bytes are ignored and only what rustls
    /// still has queued (an alert) goes out before the close.
    failed: bool,
    /// Most plaintext sealed into one record buffer.
    max_plain: usize,
    /// The server side (an accepted connection): its handshakes are counted.
    server: bool,
}

impl TlsConn {
    /// The server side of a connection accepted at `now_ms`.
    pub fn server(
        config: Arc<ServerConfig>,
        limits: TlsLimits,
        now_ms: u64,
    ) -> Result<TlsConn, TlsError> {
        Ok(TlsConn {
            session: TlsSession::server(config, limits, now_ms)?,
            failed: false,
            max_plain: limits.max_plaintext_per_send(),
            server: true,
        })
    }

    /// The client side of an outbound connection (an edge pull from an
    /// `https://` / `rtmps://` origin) to `host`, opened at `now_ms`. Its
    /// ClientHello goes with the connection's first send; what the upstream
    /// session queues before the handshake is done is held by rustls (bounded)
    /// and sent after it.
    pub fn client(
        config: Arc<rustls::ClientConfig>,
        host: &str,
        limits: TlsLimits,
        now_ms: u64,
    ) -> Result<TlsConn, String> {
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| format!("origin host {host:?} is no TLS server name: {e}"))?;
        Ok(TlsConn {
            session: TlsSession::client(config, name, limits, now_ms).map_err(|e| e.to_string())?,
            failed: false,
            max_plain: limits.max_plaintext_per_send(),
            server: false,
        })
    }

    /// The handshake deadline, while handshaking.
    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        self.session.poll_timeout()
    }

    /// Checks the handshake deadline at `now_ms`.
    pub(crate) fn handle_timeout(&mut self, now_ms: u64) -> Result<(), String> {
        self.session
            .handle_timeout(now_ms)
            .map_err(|e| e.to_string())
    }

    /// Still handshaking (and not failed): a close now is a handshake that
    /// never finished.
    pub(crate) fn handshake_pending(&self) -> bool {
        self.server && !self.failed && self.session.is_handshaking()
    }

    /// Most plaintext one record buffer takes.
    pub(crate) fn max_plain(&self) -> usize {
        self.max_plain
    }

    /// Decrypts `ciphertext`, appending the plaintext to `plain` (nothing once
    /// failed); also says whether rustls now has bytes to send.
    pub(crate) fn receive(
        &mut self,
        ciphertext: &[u8],
        plain: &mut Vec<u8>,
    ) -> (Result<Received, TlsError>, bool) {
        if self.failed {
            return (Ok(Received::default()), false);
        }
        let received = self.session.receive(ciphertext, plain);
        (received, self.session.wants_transmit())
    }

    /// After a TLS error: input is ignored from now on and sends carry only
    /// what rustls still has queued (an alert). Whether there is such an alert.
    pub(crate) fn fail(&mut self) -> bool {
        self.failed = true;
        self.session.wants_transmit()
    }

    /// The session itself (state queries, the fuzz target's checks).
    pub(crate) fn session(&mut self) -> &mut TlsSession {
        &mut self.session
    }

    /// The outbox's seal transform: encrypts one part of a gathered send into
    /// `out` (with whatever rustls has queued before it), and close_notify after
    /// it when `close`. After a failure only the queued alert goes out.
    pub(crate) fn seal(
        &mut self,
        slices: &[&[u8]],
        close: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), TlsError> {
        if self.failed {
            self.session.poll_transmit(out);
            return Ok(());
        }
        self.session.send(slices, out)?;
        if close {
            self.session.close(out);
        }
        Ok(())
    }
}

/// The bounds of every accepted TLS connection: the handshake must finish
/// within `limits.handshake_timeout` (the plain protocols' handshake limit);
/// one receive's plaintext is at most a receive buffer plus the records rustls
/// may have held back from the previous one.
pub fn limits(config: &Config) -> TlsLimits {
    let defaults = TlsLimits::default();
    let recv = config.runtime.recv_buffer_size as usize;
    TlsLimits {
        handshake_timeout_ms: config.limits.handshake_timeout.as_millis() as u64,
        max_plaintext_in: defaults.max_plaintext_in.max(recv + (32 << 10)),
        max_ciphertext_out: defaults.max_ciphertext_out,
    }
}

/// Where a TLS error lands in `tls_handshakes{result}`, if it ended a handshake.
fn handshake_result(error: &TlsError, handshaking: bool) -> Option<TlsHandshakeResult> {
    match error {
        TlsError::Plaintext(_) => Some(TlsHandshakeResult::Plaintext),
        TlsError::HandshakeTimeout { .. } => Some(TlsHandshakeResult::Timeout),
        _ if handshaking => Some(TlsHandshakeResult::Failed),
        _ => None,
    }
}

impl CoreState {
    /// Ciphertext from a TLS connection: decrypted, and the plaintext handled as
    /// a plain connection's bytes would be.
    pub(super) fn on_tls_data(&mut self, slot: u32, data: &[u8]) {
        let core = self.core;
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let Some(tls) = conn.tls.as_deref_mut() else {
            return;
        };
        let mut plain = std::mem::take(&mut self.tls_plain);
        plain.clear();
        let (received, transmit) = tls.receive(data, &mut plain);
        match received {
            Ok(received) => {
                if received.handshake_done && tls.server {
                    self.metrics.tls_handshakes.inc(TlsHandshakeResult::Ok);
                    tracing::debug!(
                        core,
                        slot,
                        peer = ?conn.peer,
                        sni = tls.session.server_name().unwrap_or(""),
                        version = ?tls.session.protocol_version(),
                        "TLS handshake done"
                    );
                }
                if transmit {
                    self.sends.mark_ready(&mut self.conns, slot);
                }
                if !plain.is_empty() {
                    self.on_plain_data(slot, &plain);
                }
                if received.peer_closed {
                    self.conns.close_later(slot, CloseReason::PeerClosed);
                }
            }
            Err(error) => self.tls_failed(slot, error),
        }
        self.tls_plain = plain;
    }

    /// A TLS error: counted, logged (never key material: rustls' errors carry
    /// none), then the alert rustls queued (if any) is sent and the connection
    /// closed.
    fn tls_failed(&mut self, slot: u32, error: TlsError) {
        let core = self.core;
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let Some(tls) = conn.tls.as_deref_mut() else {
            return;
        };
        let handshaking = tls.session.is_handshaking();
        if let Some(result) = handshake_result(&error, handshaking).filter(|_| tls.server) {
            self.metrics.tls_handshakes.inc(result);
        }
        tracing::debug!(core, slot, peer = ?conn.peer, %error, "TLS error; closing");
        let alert = tls.fail();
        conn.close_reason = CloseReason::ProtocolError;
        if matches!(error, TlsError::Plaintext(Plaintext::Http)) {
            // Plain HTTP on the HTTPS port: say so in plain HTTP (as nginx's 497
            // does), then close. The TLS state goes, so the answer is sent as is.
            conn.tls = None;
            let body = match conn.proto {
                super::conn::Proto::Rtmp(_) => PLAIN_HTTP_ON_RTMPS,
                _ => PLAIN_HTTP_ON_HTTPS,
            };
            let mut out = bytes::BytesMut::new();
            response::write_response(
                &ResponseContext::for_bad_request(),
                400,
                "text/plain; charset=utf-8",
                body,
                &[],
                &mut out,
            );
            if conn.outbox.queue_control(&out).is_ok() {
                conn.close_after_flush = true;
                self.sends.mark_ready(&mut self.conns, slot);
                return;
            }
            self.conns.close_later(slot, CloseReason::ProtocolError);
        } else if alert && conn.viewer.is_none() {
            conn.close_after_flush = true;
            self.sends.mark_ready(&mut self.conns, slot);
        } else {
            self.conns.close_later(slot, CloseReason::ProtocolError);
        }
    }

    /// Builds and submits a TLS connection's next send: the remainder of a
    /// gathered send still to seal, or a new gathered send (control bytes, the
    /// viewer's frames) sealed into the record buffer.
    pub(super) fn flush_tls(&mut self, r: &mut Reactor, slot: u32, now_ms: u64) {
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let first = !conn.outbox.is_resealable();
        if first {
            if conn.outbox.begin().is_err() {
                return;
            }
            let failed = conn.tls.as_ref().is_some_and(|t| t.failed);
            if conn.viewer.is_some() && !failed {
                self.fill_viewer_send(slot, now_ms);
            }
        }
        let core = self.core;
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        if conn.closing {
            let _ = conn.outbox.release();
            return;
        }
        // close_notify goes with the last bytes of a connection that ends after
        // this send (not before control bytes queued meanwhile, e.g. an FLV end).
        let close = conn.done_after_flush() && !conn.outbox.has_control();
        let Some(tls) = conn.tls.as_deref_mut() else {
            return;
        };
        let max_plain = tls.max_plain();
        let sealed = conn.outbox.seal(max_plain, |slices, last, out| {
            tls.seal(slices, last && close, out)
        });
        match sealed {
            Ok(Some(msg)) => self.submit_gathered(r, slot, msg, first),
            Ok(None) => {
                if close {
                    let reason = conn.close_reason;
                    self.conns.close_later(slot, reason);
                }
            }
            Err(error) => {
                tracing::debug!(core, slot, %error, "TLS send failed; closing");
                let _ = conn.outbox.release();
                self.conns.close_later(slot, CloseReason::ProtocolError);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_handshake_results() {
        let plaintext = TlsError::Plaintext(Plaintext::Http);
        assert_eq!(
            handshake_result(&plaintext, true),
            Some(TlsHandshakeResult::Plaintext)
        );
        let timeout = TlsError::HandshakeTimeout { limit_ms: 1 };
        assert_eq!(
            handshake_result(&timeout, true),
            Some(TlsHandshakeResult::Timeout)
        );
        assert_eq!(
            handshake_result(&TlsError::Closed, true),
            Some(TlsHandshakeResult::Failed)
        );
        // After the handshake an error is a protocol error, not a handshake result.
        assert_eq!(handshake_result(&TlsError::Closed, false), None);
    }

    #[test]
    fn limits_follow_the_config() {
        let mut config = Config::default();
        config.limits.handshake_timeout = std::time::Duration::from_millis(1500);
        config.runtime.recv_buffer_size = 64 << 10;
        let l = limits(&config);
        assert_eq!(l.handshake_timeout_ms, 1500);
        assert!(l.max_plaintext_in >= (64 << 10) + (16 << 10));
        assert_eq!(
            l.max_ciphertext_out,
            TlsLimits::default().max_ciphertext_out
        );
    }
}
