//! Certificates for browser tests over TLS: a self-signed certificate made in
//! the test (rcgen) for `127.0.0.1` and `localhost`, the rustls server config
//! the page server uses with it, and the pin Chromium is given so that it
//! trusts exactly these certificates (`--ignore-certificate-errors-spki-list`,
//! Chromium's switch for test certificates: only the listed public keys are
//! accepted, every other certificate error still fails).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// A self-signed test certificate and its key.
pub struct TestCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
    /// base64(SHA-256(SubjectPublicKeyInfo)): the pin Chromium is given.
    pub spki_pin: String,
}

impl TestCert {
    /// A fresh ECDSA P-256 certificate for `127.0.0.1` and `localhost`.
    pub fn new() -> TestCert {
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(names).expect("test certificate");
        TestCert {
            cert_pem: cert.pem(),
            key_pem: key_pair.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key_pair.serialize_der(),
            spki_pin: base64(&Sha256::digest(key_pair.public_key_der())),
        }
    }

    /// Writes `cert.pem` and `key.pem` into `dir` (for a server's
    /// `--tls-cert`/`--tls-key`); returns their paths.
    pub fn write_pem(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &self.cert_pem).expect("write cert.pem");
        std::fs::write(&key, &self.key_pem).expect("write key.pem");
        (cert, key)
    }

    /// A rustls server config presenting this certificate (TLS 1.2 and 1.3,
    /// ALPN `http/1.1`).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        // ringcast's own provider (ring, its key-exchange order).
        let provider = ringcast::tls::certs::provider();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(self.cert_der.clone())], key)
            .expect("test certificate and key match");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// Standard base64 with padding (RFC 4648), as Chromium reads the pins.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_matches_rfc_4648_vectors() {
    for (input, expected) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), expected);
    }
}
