//! TLS: the server side of a connection's TLS glue fed arbitrary bytes.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::tls::{TlsError, TlsLimits, TlsSession, ALPN_HTTP11};

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

/// A server `TlsSession` fed arbitrary bytes at arbitrary split points, with
/// the clock advancing 250 ms per piece. Input: `[split seed][bytes...]`.
/// Checks: the plaintext handed out stays within the bound, the handshake
/// deadline holds, and after an error nothing more is accepted.
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
    let mut session = TlsSession::server(server_config(), limits, 0).expect("server session");
    let mut plaintext = Vec::new();
    let mut wire = Vec::new();
    let mut now_ms = 0u64;
    for piece in input.chunks(step) {
        let result = session.receive(piece, &mut plaintext);
        session.poll_transmit(&mut wire);
        assert!(plaintext.len() <= limits.max_plaintext_in);
        match result {
            Ok(received) => {
                if received.peer_closed {
                    break;
                }
            }
            Err(TlsError::Plaintext(_)) => {
                assert!(now_ms == 0, "plaintext is detected on the first bytes only");
                return;
            }
            Err(_) => break,
        }
        // The protocol layer consumes what it got.
        plaintext.clear();
        wire.clear();
        now_ms += 250;
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
    wire.clear();
    session.close(&mut wire);
    assert!(wire.len() <= limits.max_ciphertext_out);
}
