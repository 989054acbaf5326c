//! `https://` and `rtmps://` clients: ringcast's own sans-IO TLS client
//! ([`TlsSession`] over rustls) between loadgen's io_uring socket and the
//! unchanged HTTP-FLV / RTMP protocol code.
//!
//! The protocol code keeps writing plaintext into the connection's pending
//! buffer; [`ClientTlsConn::seal`] encrypts at most one bounded send's worth of
//! it (plus handshake flights) into the buffer the kernel sends. Received
//! ciphertext is decrypted by [`ClientTlsConn::open`] into the worker's one
//! plaintext buffer, which the protocol reads and the worker clears at once, so
//! neither side grows and an idle viewer holds no plaintext.
//!
//! Session resumption is off: every viewer is a new client doing a full
//! handshake (ECDHE + certificate verification), which is what a server's
//! handshake rate has to be measured against and what a crowd of real viewers
//! joining a stream costs it.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bytes::{Buf, BytesMut};
use ringcast::tls::{ClientTls, TlsError, TlsLimits, TlsSession};
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use crate::stats::Interval;
use crate::target::{Scheme, Target};
use crate::viewer::Now;

/// Most ciphertext one send carries (and rustls may queue); the plaintext taken
/// per send is this less record overhead ([`TlsLimits::max_plaintext_per_send`]).
pub const MAX_CIPHERTEXT_PER_SEND: usize = 256 * 1024;
/// Most plaintext one receive may decrypt to: a provided buffer is at most
/// 16 KiB of ciphertext, which never decrypts to more.
pub const MAX_PLAINTEXT_PER_RECEIVE: usize = 64 * 1024;
/// A connection's ciphertext scratch keeps at most this capacity between sends
/// (publishers seal up to [`MAX_CIPHERTEXT_PER_SEND`]; viewers send little).
const CIPHER_RETAIN: usize = 16 * 1024;

/// The client configurations of one worker: HTTPS (ALPN `http/1.1`) and RTMPS.
#[derive(Debug, Clone)]
pub struct TlsConfigs {
    https: Arc<ClientConfig>,
    rtmps: Arc<ClientConfig>,
}

impl TlsConfigs {
    /// Trusts the PEM certificates in `ca`, or the system store when `None`.
    pub fn load(ca: Option<&Path>) -> anyhow::Result<Self> {
        let client = ClientTls::load(ca).context("loading TLS roots (--ca)")?;
        let full_handshakes = |config: Arc<ClientConfig>| {
            let mut config = (*config).clone();
            config.resumption = Resumption::disabled();
            Arc::new(config)
        };
        Ok(Self {
            https: full_handshakes(client.https()),
            rtmps: full_handshakes(client.rtmps()),
        })
    }

    /// The configuration for `target`'s protocol.
    pub fn for_target(&self, target: &Target) -> Arc<ClientConfig> {
        match target.scheme {
            Scheme::Rtmp => self.rtmps.clone(),
            Scheme::HttpFlv | Scheme::Hls => self.https.clone(),
        }
    }
}

/// The server name `target` is verified against: its IP literal or host name.
pub fn server_name(target: &Target) -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(target.host.clone())
        .with_context(|| format!("{:?} is not a TLS server name", target.host))
}

/// One connection's TLS.
#[derive(Debug)]
pub struct ClientTlsConn {
    session: TlsSession,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    limits: TlsLimits,
    /// Ciphertext scratch of one seal.
    cipher: Vec<u8>,
    started_us: u64,
    per_send: usize,
}

impl ClientTlsConn {
    /// A client to `name` whose connect starts at `now`; the ClientHello goes out
    /// with the first [`Self::seal`].
    pub fn new(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        handshake_timeout_ms: u64,
        now: Now,
    ) -> Result<Self, TlsError> {
        let limits = TlsLimits {
            handshake_timeout_ms,
            max_plaintext_in: MAX_PLAINTEXT_PER_RECEIVE,
            max_ciphertext_out: MAX_CIPHERTEXT_PER_SEND,
        };
        Ok(Self {
            session: TlsSession::client(config.clone(), name.clone(), limits, now.mono_us / 1000)?,
            config,
            name,
            limits,
            cipher: Vec::new(),
            started_us: now.mono_us,
            per_send: limits.max_plaintext_per_send(),
        })
    }

    /// A fresh session to the same server for a new socket opened at `now`.
    pub fn restart(&mut self, now: Now) -> Result<(), TlsError> {
        self.session = TlsSession::client(
            self.config.clone(),
            self.name.clone(),
            self.limits,
            now.mono_us / 1000,
        )?;
        self.started_us = now.mono_us;
        Ok(())
    }

    /// Whether the handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// Whether [`Self::seal`] has something to send now: a TLS flight, or
    /// plaintext in `pending` once the handshake is done.
    pub fn wants_transmit(&self, pending: &BytesMut) -> bool {
        self.session.wants_transmit() || (!pending.is_empty() && !self.session.is_handshaking())
    }

    /// Appends to `out` what TLS itself has queued (handshake flights) if
    /// anything, else up to one send's worth of `pending` encrypted (taken out of
    /// `pending`). Plaintext waits in `pending` until the handshake is done, so
    /// nothing piles up inside rustls and every send stays within
    /// [`MAX_CIPHERTEXT_PER_SEND`].
    pub fn seal(&mut self, pending: &mut BytesMut, out: &mut BytesMut) -> Result<(), TlsError> {
        self.cipher.clear();
        if self.session.wants_transmit() || self.session.is_handshaking() || pending.is_empty() {
            self.session.poll_transmit(&mut self.cipher);
        } else {
            let n = pending.len().min(self.per_send);
            let (now, _) = pending.split_at(n);
            self.session.send(&[now], &mut self.cipher)?;
            pending.advance(n);
        }
        out.extend_from_slice(&self.cipher);
        if self.cipher.capacity() > CIPHER_RETAIN {
            self.cipher = Vec::new();
        }
        Ok(())
    }

    /// Decrypts `data`, appending the plaintext to `plain`; counts the handshake
    /// (and its time since connect start) when it completes.
    pub fn open(
        &mut self,
        data: &[u8],
        plain: &mut Vec<u8>,
        now: Now,
        iv: &mut Interval,
    ) -> Result<(), TlsError> {
        let got = self.session.receive(data, plain)?;
        if got.handshake_done {
            iv.counters.tls_handshakes += 1;
            iv.hist
                .tls_handshake_us
                .saturating_record(now.mono_us.saturating_sub(self.started_us).max(1));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast::tls::{ServerTls, TlsConfig};

    fn now(ms: u64) -> Now {
        Now {
            mono_us: ms * 1000,
            unix_us: 1_700_000_000_000_000 + ms * 1000,
        }
    }

    /// A self-signed localhost certificate, written where ringcast's loader reads it.
    fn server_and_ca(tag: &str) -> (ServerTls, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("loadgen-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (cert_path, key_path) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let server = ServerTls::load(&TlsConfig {
            cert: cert_path.clone(),
            key: key_path,
            sni: Vec::new(),
            ca: None,
        })
        .unwrap();
        (server, cert_path)
    }

    /// A loadgen client for `url` trusting a fresh self-signed localhost certificate, the
    /// ringcast server session presenting it, and the certificate's path (for cleanup).
    fn client_and_server(tag: &str, url: &str) -> (ClientTlsConn, TlsSession, std::path::PathBuf) {
        let (server_tls, ca) = server_and_ca(tag);
        let configs = TlsConfigs::load(Some(&ca)).unwrap();
        let target = Target::parse(url).unwrap();
        let client = ClientTlsConn::new(
            configs.for_target(&target),
            server_name(&target).unwrap(),
            5000,
            now(0),
        )
        .unwrap();
        let server = TlsSession::server(server_tls.https(), TlsLimits::default(), 0).unwrap();
        (client, server, ca)
    }

    #[test]
    fn seals_in_bounded_sends_and_opens_what_the_server_sends() {
        let (mut client, mut server, ca) =
            client_and_server("seal", "https://localhost:1/live/x.flv");
        // 600 KiB of plaintext queued before the handshake: more than one send takes.
        let mut pending = BytesMut::from(&vec![7u8; 600 * 1024][..]);
        let mut iv = Interval::default();
        let (mut received, mut total, mut plain) = (Vec::new(), 0, Vec::new());
        let mut to_client = Vec::new();
        for step in 0..64 {
            let mut wire = BytesMut::new();
            client.seal(&mut pending, &mut wire).unwrap();
            assert!(wire.len() <= MAX_CIPHERTEXT_PER_SEND, "{}", wire.len());
            // In receive-sized pieces, as a server reads them.
            for piece in wire.chunks(16 * 1024) {
                server.receive(piece, &mut received).unwrap();
                assert!(received.iter().all(|&b| b == 7));
                total += received.len();
                received.clear();
            }
            to_client.clear();
            server.poll_transmit(&mut to_client);
            if step == 3 {
                server
                    .send(&[b"HTTP/1.1 200 OK\r\n\r\n"], &mut to_client)
                    .unwrap();
            }
            if !to_client.is_empty() {
                client
                    .open(&to_client, &mut plain, now(10 + step), &mut iv)
                    .unwrap();
            }
            if !client.wants_transmit(&pending) && total == 600 * 1024 {
                break;
            }
        }
        assert_eq!(total, 600 * 1024);
        assert_eq!(plain, b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(iv.counters.tls_handshakes, 1);
        assert_eq!(iv.hist.tls_handshake_us.len(), 1);
        let _ = std::fs::remove_dir_all(ca.parent().unwrap());
    }

    #[test]
    fn a_certificate_for_another_name_fails_the_handshake() {
        let (mut client, mut server, ca) =
            client_and_server("name", "https://127.0.0.1:1/live/x.flv");
        let (mut wire, mut sink, mut back) = (BytesMut::new(), Vec::new(), Vec::new());
        client.seal(&mut BytesMut::new(), &mut wire).unwrap();
        server.receive(&wire, &mut sink).unwrap();
        server.poll_transmit(&mut back);
        let err = client.open(&back, &mut Vec::new(), now(1), &mut Interval::default());
        assert!(matches!(err, Err(TlsError::Protocol(_))), "{err:?}");
        let _ = std::fs::remove_dir_all(ca.parent().unwrap());
    }
}
