//! [`TlsSession`]: one connection's TLS, sans-IO. The caller owns every byte
//! buffer: ciphertext read from the socket is handed in as a slice, plaintext
//! comes out appended to the caller's `Vec`, and the caller's plaintext (a
//! gathered list of slices) goes out as ciphertext appended to another of its
//! `Vec`s, which the caller then sends. Time is `now_ms` on the caller's clock.
//!
//! Gathered sends: a viewer's queued frames are several slices (per-viewer
//! headers, shared bodies). [`TlsSession::send`] hands them to rustls as one
//! vectored write, so records are filled across slice boundaries (full-size
//! records, not one per frame) and the bytes are read once, encrypted straight
//! into the connection's record queue, then moved to the caller's buffer.

use std::io::{IoSlice, Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use super::TLS_HANDSHAKE_RECORD;

/// Bounds of one TLS connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsLimits {
    /// From creation until the handshake completes, in ms.
    pub handshake_timeout_ms: u64,
    /// Most plaintext the caller's receive buffer may hold after a
    /// [`TlsSession::receive`] (what it already held plus what was decrypted).
    pub max_plaintext_in: usize,
    /// Most ciphertext the caller's send buffer may hold after a
    /// [`TlsSession::send`], record overhead included; also caps what rustls
    /// queues internally.
    pub max_ciphertext_out: usize,
}

impl TlsLimits {
    /// Most plaintext one [`TlsSession::send`] may take when the ciphertext
    /// buffer starts empty: `max_ciphertext_out` less the worst-case overhead
    /// of the records it is cut into.
    pub fn max_plaintext_per_send(&self) -> usize {
        let record = MAX_RECORD_PLAINTEXT + RECORD_OVERHEAD;
        let full = self.max_ciphertext_out / record;
        let rest = self.max_ciphertext_out - full * record;
        (full * MAX_RECORD_PLAINTEXT + rest.saturating_sub(RECORD_OVERHEAD)).max(1)
    }
}

impl Default for TlsLimits {
    fn default() -> Self {
        Self {
            handshake_timeout_ms: 10_000,
            max_plaintext_in: 64 * 1024,
            // One gathered send is capped at 128 KiB of plaintext (DESIGN.md,
            // "Egress"); twice that leaves room for a send not yet written.
            max_ciphertext_out: 256 * 1024,
        }
    }
}

/// Worst-case bytes a record adds to its plaintext: 5 header + 8 explicit
/// nonce (TLS 1.2 AES-GCM) + 16 tag (TLS 1.3 adds 1 type byte and no nonce).
pub const RECORD_OVERHEAD: usize = 5 + 8 + 16;

/// Most plaintext in one TLS record.
pub const MAX_RECORD_PLAINTEXT: usize = 16 * 1024;

/// What a client sent on a TLS port instead of a ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plaintext {
    /// An RTMP C0 (version byte 0x03): an RTMP client on an RTMPS port.
    Rtmp,
    /// An ASCII upper-case letter: an HTTP method on an HTTPS port.
    Http,
}

impl std::fmt::Display for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Plaintext::Rtmp => "RTMP",
            Plaintext::Http => "HTTP",
        })
    }
}

/// Why a TLS connection must be closed. After any of them, [`TlsSession::poll_transmit`]
/// may still yield an alert worth sending before the close.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The first byte was plaintext of another protocol, not a ClientHello.
    #[error("plaintext {0} on a TLS port")]
    Plaintext(Plaintext),
    /// rustls refused the peer's bytes (garbage, bad handshake, bad record...).
    #[error("TLS: {0}")]
    Protocol(#[from] rustls::Error),
    /// The handshake did not complete in time.
    #[error("TLS handshake not complete after {limit_ms} ms")]
    HandshakeTimeout {
        /// The limit ([`TlsLimits::handshake_timeout_ms`]).
        limit_ms: u64,
    },
    /// Decrypted plaintext would exceed the receive bound.
    #[error("received plaintext {buffered} B exceeds the limit of {limit} B")]
    PlaintextInFull {
        /// What the caller's buffer would hold.
        buffered: usize,
        /// [`TlsLimits::max_plaintext_in`].
        limit: usize,
    },
    /// Encrypting this send would exceed the ciphertext bound; nothing of it was taken.
    #[error("ciphertext {buffered} B + {adding} B exceeds the limit of {limit} B")]
    CiphertextOutFull {
        /// What the caller's send buffer (and rustls' queue) held.
        buffered: usize,
        /// What this send would add, record overhead included.
        adding: usize,
        /// [`TlsLimits::max_ciphertext_out`].
        limit: usize,
    },
    /// rustls would not take more input (its own bounded queue is full).
    #[error("TLS input stalled: {0}")]
    Stalled(String),
    /// Data sent after close_notify.
    #[error("TLS session already closed")]
    Closed,
}

/// What a [`TlsSession::receive`] did besides appending plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Received {
    /// Plaintext bytes appended to the caller's buffer.
    pub plaintext: usize,
    /// The handshake completed during this call.
    pub handshake_done: bool,
    /// The peer sent close_notify: no more plaintext will come.
    pub peer_closed: bool,
}

/// One TLS connection (server or client side) over caller-owned buffers.
pub struct TlsSession {
    conn: Connection,
    limits: TlsLimits,
    handshake_deadline_ms: u64,
    /// Server side: the first byte was checked for plaintext.
    first_byte_checked: bool,
    closed: bool,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("server", &matches!(self.conn, Connection::Server(_)))
            .field("handshaking", &self.conn.is_handshaking())
            .field("closed", &self.closed)
            .finish()
    }
}

impl TlsSession {
    /// The server side of a connection accepted at `now_ms`.
    pub fn server(
        config: Arc<ServerConfig>,
        limits: TlsLimits,
        now_ms: u64,
    ) -> Result<Self, TlsError> {
        let conn = ServerConnection::new(config)?;
        Ok(Self::wrap(conn.into(), limits, now_ms, false))
    }

    /// The client side of a connection to `server_name` opened at `now_ms`;
    /// its ClientHello is ready in [`TlsSession::poll_transmit`] at once.
    pub fn client(
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        limits: TlsLimits,
        now_ms: u64,
    ) -> Result<Self, TlsError> {
        let conn = ClientConnection::new(config, server_name)?;
        Ok(Self::wrap(conn.into(), limits, now_ms, true))
    }

    fn wrap(mut conn: Connection, limits: TlsLimits, now_ms: u64, client: bool) -> Self {
        conn.set_buffer_limit(Some(limits.max_ciphertext_out));
        Self {
            conn,
            limits,
            handshake_deadline_ms: now_ms.saturating_add(limits.handshake_timeout_ms),
            first_byte_checked: client,
            closed: false,
        }
    }

    /// Feeds `ciphertext` (all of it is consumed) and appends the plaintext it
    /// carried to `plaintext`. Handshake replies are queued: call
    /// [`TlsSession::poll_transmit`] afterwards.
    pub fn receive(
        &mut self,
        ciphertext: &[u8],
        plaintext: &mut Vec<u8>,
    ) -> Result<Received, TlsError> {
        let mut outcome = Received::default();
        if !self.first_byte_checked {
            if let Some(&first) = ciphertext.first() {
                self.first_byte_checked = true;
                match first {
                    TLS_HANDSHAKE_RECORD => {}
                    0x03 => return Err(TlsError::Plaintext(Plaintext::Rtmp)),
                    b'A'..=b'Z' => return Err(TlsError::Plaintext(Plaintext::Http)),
                    // Anything else is rustls' to refuse, as garbage.
                    _ => {}
                }
            }
        }
        let was_handshaking = self.conn.is_handshaking();
        let mut rest = ciphertext;
        while !rest.is_empty() {
            let n = self
                .conn
                .read_tls(&mut rest)
                .map_err(|e| TlsError::Stalled(e.to_string()))?;
            let state = self.conn.process_new_packets()?;
            let available = state.plaintext_bytes_to_read();
            if available > 0 {
                let buffered = plaintext.len() + available;
                if buffered > self.limits.max_plaintext_in {
                    return Err(TlsError::PlaintextInFull {
                        buffered,
                        limit: self.limits.max_plaintext_in,
                    });
                }
                let start = plaintext.len();
                plaintext.resize(buffered, 0);
                let target = plaintext.get_mut(start..).unwrap_or_default();
                self.conn
                    .reader()
                    .read_exact(target)
                    .map_err(|e| TlsError::Stalled(e.to_string()))?;
                outcome.plaintext += available;
            }
            if state.peer_has_closed() {
                outcome.peer_closed = true;
                break;
            }
            if n == 0 {
                break;
            }
        }
        outcome.handshake_done = was_handshaking && !self.conn.is_handshaking();
        Ok(outcome)
    }

    /// Encrypts the gathered plaintext `slices` in one pass (records span
    /// slice boundaries) and appends the ciphertext to `ciphertext`, together
    /// with anything else queued (handshake, tickets). Returns the bytes
    /// appended. Fails without taking anything when the result would exceed
    /// [`TlsLimits::max_ciphertext_out`]. Before the handshake completes the
    /// plaintext is held (bounded by the same limit) and sent after it.
    pub fn send(&mut self, slices: &[&[u8]], ciphertext: &mut Vec<u8>) -> Result<usize, TlsError> {
        if self.closed {
            return Err(TlsError::Closed);
        }
        let start = ciphertext.len();
        let total: usize = slices.iter().map(|s| s.len()).sum();
        let adding = total + total.div_ceil(MAX_RECORD_PLAINTEXT) * RECORD_OVERHEAD;
        if start + adding > self.limits.max_ciphertext_out {
            return Err(TlsError::CiphertextOutFull {
                buffered: start,
                adding,
                limit: self.limits.max_ciphertext_out,
            });
        }
        self.drain(ciphertext);
        let mut owned: Vec<IoSlice<'_>> = slices
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| IoSlice::new(s))
            .collect();
        let mut pending: &mut [IoSlice<'_>] = &mut owned;
        let mut left = total;
        while left > 0 {
            let n = self
                .conn
                .writer()
                .write_vectored(pending)
                .map_err(|e| TlsError::Stalled(e.to_string()))?;
            self.drain(ciphertext);
            if n == 0 {
                // Only while handshaking: the held plaintext reached the limit.
                return Err(TlsError::CiphertextOutFull {
                    buffered: ciphertext.len(),
                    adding: left,
                    limit: self.limits.max_ciphertext_out,
                });
            }
            left -= n;
            IoSlice::advance_slices(&mut pending, n);
        }
        Ok(ciphertext.len() - start)
    }

    /// Appends whatever rustls has queued (handshake flights, tickets, alerts,
    /// close_notify) to `ciphertext`; returns the bytes appended.
    pub fn poll_transmit(&mut self, ciphertext: &mut Vec<u8>) -> usize {
        let start = ciphertext.len();
        self.drain(ciphertext);
        ciphertext.len() - start
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            // Writing into a Vec cannot fail.
            match self.conn.write_tls(out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    /// Queues close_notify and appends it (and anything queued before it) to
    /// `ciphertext`. Later sends fail with [`TlsError::Closed`].
    pub fn close(&mut self, ciphertext: &mut Vec<u8>) -> usize {
        if !self.closed {
            self.closed = true;
            self.conn.send_close_notify();
        }
        self.poll_transmit(ciphertext)
    }

    /// The handshake deadline (ms on the caller's clock) while handshaking;
    /// `None` once it completed (the protocol layer's own deadlines take over).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.conn
            .is_handshaking()
            .then_some(self.handshake_deadline_ms)
    }

    /// Checks the deadline at `now_ms`: [`TlsError::HandshakeTimeout`] once it
    /// passed with the handshake incomplete; then the connection must be closed.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Result<(), TlsError> {
        match self.poll_timeout() {
            Some(deadline) if now_ms >= deadline => Err(TlsError::HandshakeTimeout {
                limit_ms: self.limits.handshake_timeout_ms,
            }),
            _ => Ok(()),
        }
    }

    /// Whether rustls has bytes queued to send (a handshake flight, a ticket,
    /// an alert): the caller should [`TlsSession::poll_transmit`] (or `send`).
    pub fn wants_transmit(&self) -> bool {
        self.conn.wants_write()
    }

    /// Whether the handshake is still in progress.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The ALPN protocol agreed on, if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The SNI name the client asked for (server side).
    pub fn server_name(&self) -> Option<&str> {
        match &self.conn {
            Connection::Server(s) => s.server_name(),
            Connection::Client(_) => None,
        }
    }

    /// The TLS version agreed on, once known.
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// The peer's certificate chain (client side: the server's), once known.
    pub fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }
}

#[cfg(test)]
mod tests;
