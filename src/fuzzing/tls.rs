//! TLS: the server side of a connection's TLS glue fed arbitrary bytes: the
//! connection's `TlsConn` (session, failure state) and its outbox's sealed
//! sends, as a core drives them.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use bytes::Bytes;

use crate::runtime::outbox::{Outbox, SendProgress};
use crate::server::tls_conn::TlsConn;
use crate::tls::{TlsError, TlsLimits, ALPN_HTTP11};

/// A self-signed ECDSA P-256 certificate for `localhost`, only for fuzzing
/// (the server side never checks its own certificate's validity).
const CERT_PEM: &[u8] = include_bytes!("tls_cert.pem");
const KEY_PEM: &[u8] = include_bytes!("tls_key.pem");

fn server_config() -> Arc<ServerConfig> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(CERT_PEM)
                .collect::<Result<_, _>>()
                .expect("fuzz certificate");
            let key = PrivateKeyDer::from_pem_slice(KEY_PEM).expect("fuzz key");
            let mut config = ServerConfig::builder_with_provider(crate::tls::certs::provider())
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .expect("fuzz certificate and key");
            config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
            Arc::new(config)
        })
        .clone()
}

/// A server connection's TLS (`TlsConn`) fed arbitrary bytes at arbitrary
/// split points, with the clock advancing 250 ms per piece; what it has to send
/// (handshake flights, alerts, and the received plaintext echoed back as the
/// protocol layer's answer) goes through the outbox's sealed sends, which the
/// "kernel" takes `step` bytes at a time. Input: `[split seed][bytes...]`.
/// Checks: the plaintext handed out stays within the bound, every record
/// buffer stays within `max_ciphertext_out`, the handshake deadline holds, and
/// after an error nothing more is accepted.
pub fn tls_server(data: &[u8]) {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let step = usize::from(seed) * 11 + 1;
    let limits = TlsLimits {
        handshake_timeout_ms: 2_000,
        max_plaintext_in: 4096,
        max_ciphertext_out: 64 * 1024,
    };
    let mut conn = TlsConn::server(server_config(), limits, 0).expect("server session");
    let mut outbox: Outbox<Bytes> = Outbox::new(4, 64 * 1024);
    let mut plaintext = Vec::new();
    let mut now_ms = 0u64;
    for piece in input.chunks(step) {
        let (result, _) = conn.receive(piece, &mut plaintext);
        assert!(plaintext.len() <= limits.max_plaintext_in);
        let _ = outbox.queue_control(&plaintext);
        match result {
            Ok(received) => {
                send_all(&mut outbox, &mut conn, step, limits);
                if received.peer_closed {
                    break;
                }
            }
            Err(TlsError::Plaintext(_)) => {
                assert!(now_ms == 0, "plaintext is detected on the first bytes only");
                return;
            }
            Err(_) => {
                conn.fail();
                send_all(&mut outbox, &mut conn, step, limits);
                let (after, _) = conn.receive(piece, &mut plaintext);
                assert!(
                    after.is_ok() && plaintext.is_empty(),
                    "input after a failure"
                );
                break;
            }
        }
        // The protocol layer consumes what it got.
        plaintext.clear();
        now_ms += 250;
        let session = conn.session();
        match session.handle_timeout(now_ms) {
            Ok(()) => assert!(session.poll_timeout().is_none_or(|d| d > now_ms)),
            Err(TlsError::HandshakeTimeout { limit_ms }) => {
                assert_eq!(limit_ms, 2_000);
                assert!(now_ms >= 2_000 && session.is_handshaking());
                return;
            }
            Err(other) => panic!("handle_timeout gave {other}"),
        }
    }
    // Whatever state it ended in, closing yields bounded output.
    let mut wire = Vec::new();
    conn.session().close(&mut wire);
    assert!(wire.len() <= limits.max_ciphertext_out);
}

/// Seals and "sends" everything the connection has queued, the way a core's
/// `flush_tls` and send completions do, `step` bytes per completion.
fn send_all(outbox: &mut Outbox<Bytes>, conn: &mut TlsConn, step: usize, limits: TlsLimits) {
    if outbox.begin().is_err() {
        return;
    }
    loop {
        let max_plain = conn.max_plain();
        match outbox.seal(max_plain, |slices, _, out| conn.seal(slices, false, out)) {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(_) => {
                let _ = outbox.release();
                return;
            }
        }
        assert!(outbox.bytes_queued() <= limits.max_ciphertext_out);
        loop {
            match outbox.on_sent(step) {
                SendProgress::Partial => assert!(outbox.resume().is_some()),
                SendProgress::MoreToSeal => break,
                SendProgress::Complete => return,
                SendProgress::NotInFlight => panic!("a sealed send was in flight"),
            }
        }
    }
}
