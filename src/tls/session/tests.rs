//! A rustls client (and the [`TlsSession`] client twin) talking to the server
//! session through in-memory buffers, with a CA and leaf certificates made by
//! rcgen at test time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore};

use super::*;
use crate::tls::{CertFiles, ClientTls, LoadError, ServerTls, TlsConfig, ALPN_HTTP11};

/// A test CA, the files of the leaves it signed, in a fresh temp directory.
struct Pki {
    dir: PathBuf,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ringcast-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Self { dir, ca, ca_key }
    }

    /// Writes `<file>.pem` (leaf then CA: a full chain) and `<file>.key`;
    /// returns (chain path, key path, leaf DER).
    fn leaf(&self, file: &str, names: &[&str]) -> (PathBuf, PathBuf, CertificateDer<'static>) {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.ca, &self.ca_key)
            .unwrap();
        let cert_path = self.dir.join(format!("{file}.pem"));
        let key_path = self.dir.join(format!("{file}.key"));
        std::fs::write(&cert_path, format!("{}{}", cert.pem(), self.ca.pem())).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path, cert.der().clone())
    }

    fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        roots
    }

    /// A plain rustls client config trusting the CA, limited to `versions`.
    fn client_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> Arc<ClientConfig> {
        let mut c = ClientConfig::builder_with_provider(crate::tls::certs::provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(self.roots())
            .with_no_client_auth();
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(c)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config(cert: &Path, key: &Path) -> TlsConfig {
    TlsConfig {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        sni: Vec::new(),
        ca: None,
    }
}

fn client_session(config: Arc<ClientConfig>, name: &str) -> TlsSession {
    TlsSession::client(
        config,
        ServerName::try_from(name.to_string()).unwrap(),
        TlsLimits::default(),
        0,
    )
    .unwrap()
}

/// Moves bytes both ways until neither side has anything to send; returns the
/// plaintext each side received (client's, server's).
fn pump(client: &mut TlsSession, server: &mut TlsSession) -> (Vec<u8>, Vec<u8>) {
    let (mut at_client, mut at_server) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let mut wire = Vec::new();
        client.poll_transmit(&mut wire);
        let c2s = !wire.is_empty();
        server.receive(&wire, &mut at_server).unwrap();
        wire.clear();
        server.poll_transmit(&mut wire);
        let s2c = !wire.is_empty();
        client.receive(&wire, &mut at_client).unwrap();
        if !c2s && !s2c {
            return (at_client, at_server);
        }
    }
    panic!("the handshake did not settle in 20 round trips");
}

#[test]
fn handshakes_with_tls13_and_tls12_and_carries_data_both_ways() {
    let pki = Pki::new("versions");
    let (cert, key, _) = pki.leaf("leaf", &["localhost"]);
    let server_tls = ServerTls::load(&config(&cert, &key)).unwrap();
    for (version, expected) in [
        (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
    ] {
        let mut client = client_session(pki.client_config(&[version], &[]), "localhost");
        let mut server = TlsSession::server(server_tls.rtmps(), TlsLimits::default(), 0).unwrap();
        pump(&mut client, &mut server);
        assert!(!client.is_handshaking() && !server.is_handshaking());
        assert_eq!(server.protocol_version(), Some(expected));
        assert_eq!(client.protocol_version(), Some(expected));

        let mut wire = Vec::new();
        client.send(&[b"hello ", b"server"], &mut wire).unwrap();
        let mut got = Vec::new();
        server.receive(&wire, &mut got).unwrap();
        assert_eq!(got, b"hello server");

        wire.clear();
        server.send(&[b"hello client"], &mut wire).unwrap();
        let mut got = Vec::new();
        client.receive(&wire, &mut got).unwrap();
        assert_eq!(got, b"hello client");
    }
}

#[test]
fn sni_picks_the_certificate_by_name_with_wildcards_and_a_default() {
    let pki = Pki::new("sni");
    let (cert, key, default_der) = pki.leaf("default", &["default.test"]);
    let (a_cert, a_key, a_der) = pki.leaf("a", &["a.test"]);
    let (w_cert, w_key, w_der) = pki.leaf("wild", &["*.wild.test"]);
    let mut cfg = config(&cert, &key);
    cfg.sni = vec![
        CertFiles {
            names: vec!["A.test".into()],
            cert: a_cert,
            key: a_key,
        },
        CertFiles {
            names: vec!["*.wild.test".into()],
            cert: w_cert,
            key: w_key,
        },
    ];
    let server_tls = ServerTls::load(&cfg).unwrap();
    let client_config = pki.client_config(&[&rustls::version::TLS13], &[]);
    for (name, expected) in [
        ("a.test", &a_der),
        ("x.wild.test", &w_der),
        ("default.test", &default_der),
    ] {
        let mut client = client_session(client_config.clone(), name);
        let mut server = TlsSession::server(server_tls.https(), TlsLimits::default(), 0).unwrap();
        pump(&mut client, &mut server);
        assert_eq!(server.server_name(), Some(name));
        assert_eq!(
            client.peer_certificates().unwrap().first(),
            Some(expected),
            "certificate served for {name}"
        );
    }
    // An unknown name gets the default, which the client then rejects.
    let set = server_tls.resolver().current();
    assert_eq!(
        set.pick(Some("other.test")).cert.first(),
        Some(&default_der)
    );
    assert_eq!(set.pick(None).cert.first(), Some(&default_der));
}

#[test]
fn alpn_is_http11_on_https_and_absent_on_rtmps() {
    let pki = Pki::new("alpn");
    let (cert, key, _) = pki.leaf("leaf", &["localhost"]);
    let server_tls = ServerTls::load(&config(&cert, &key)).unwrap();
    let offers = pki.client_config(&[&rustls::version::TLS13], &[ALPN_HTTP11]);

    let mut client = client_session(offers.clone(), "localhost");
    let mut server = TlsSession::server(server_tls.https(), TlsLimits::default(), 0).unwrap();
    pump(&mut client, &mut server);
    assert_eq!(server.alpn_protocol(), Some(ALPN_HTTP11));
    assert_eq!(client.alpn_protocol(), Some(ALPN_HTTP11));

    let mut client = client_session(offers, "localhost");
    let mut server = TlsSession::server(server_tls.rtmps(), TlsLimits::default(), 0).unwrap();
    pump(&mut client, &mut server);
    assert_eq!(server.alpn_protocol(), None);
    assert!(!server.is_handshaking());
}

/// An established pair on TLS 1.3 with default limits.
fn established(pki: &Pki, limits: TlsLimits) -> (TlsSession, TlsSession) {
    let (cert, key, _) = pki.leaf("leaf", &["localhost"]);
    let server_tls = ServerTls::load(&config(&cert, &key)).unwrap();
    let mut client = client_session(
        pki.client_config(&[&rustls::version::TLS13], &[]),
        "localhost",
    );
    let mut server = TlsSession::server(server_tls.https(), limits, 0).unwrap();
    pump(&mut client, &mut server);
    (client, server)
}

#[test]
fn a_gathered_send_is_encrypted_in_full_records_across_slices() {
    let pki = Pki::new("gather");
    let (mut client, mut server) = established(&pki, TlsLimits::default());
    // 64 "frames": a 15-byte per-viewer header and a shared body each.
    let bodies: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 100 + 37 * i as usize]).collect();
    let headers: Vec<[u8; 15]> = (0..64u8).map(|i| [0xF0 | (i & 0x0F); 15]).collect();
    let mut slices: Vec<&[u8]> = Vec::new();
    for (h, b) in headers.iter().zip(&bodies) {
        slices.push(h);
        slices.push(b);
    }
    let expected: Vec<u8> = slices.concat();

    let mut wire = Vec::new();
    let appended = server.send(&slices, &mut wire).unwrap();
    assert_eq!(appended, wire.len());
    // One record per 16 KiB, not one per slice or frame: 22 B (TLS 1.3) each.
    let records = expected.len().div_ceil(MAX_RECORD_PLAINTEXT);
    assert_eq!(wire.len(), expected.len() + records * 22);

    // The receiving side's bound is the caller's to choose; 64 KiB by default.
    client.limits.max_plaintext_in = 128 * 1024;
    let mut got = Vec::new();
    client.receive(&wire, &mut got).unwrap();
    assert_eq!(got, expected);
}

#[test]
fn past_the_bounds_sends_and_receives_fail_with_typed_errors() {
    let pki = Pki::new("bounds");
    let limits = TlsLimits {
        max_plaintext_in: 1000,
        max_ciphertext_out: 4096,
        ..TlsLimits::default()
    };
    let (mut client, mut server) = established(&pki, limits);

    // Send side: nothing is taken, the buffer is untouched.
    let big = vec![7u8; 5000];
    let mut wire = b"already queued".to_vec();
    match server.send(&[&big], &mut wire) {
        Err(TlsError::CiphertextOutFull {
            buffered: 14,
            adding,
            limit: 4096,
        }) => assert!(adding > 5000),
        other => panic!("expected CiphertextOutFull, got {other:?}"),
    }
    assert_eq!(wire, b"already queued");
    // A send within the bound still works afterwards.
    wire.clear();
    server.send(&[&big[..3000]], &mut wire).unwrap();
    let mut got = Vec::new();
    client.receive(&wire, &mut got).unwrap();
    assert_eq!(got.len(), 3000);

    // Receive side: the client sends more than the server's buffer may hold.
    wire.clear();
    client.send(&[&big[..1500]], &mut wire).unwrap();
    let mut got = Vec::new();
    match server.receive(&wire, &mut got) {
        Err(TlsError::PlaintextInFull {
            buffered: 1500,
            limit: 1000,
        }) => {}
        other => panic!("expected PlaintextInFull, got {other:?}"),
    }
}

#[test]
fn a_handshake_that_never_finishes_times_out() {
    let pki = Pki::new("timeout");
    let (cert, key, _) = pki.leaf("leaf", &["localhost"]);
    let server_tls = ServerTls::load(&config(&cert, &key)).unwrap();
    let limits = TlsLimits {
        handshake_timeout_ms: 5_000,
        ..TlsLimits::default()
    };
    let mut server = TlsSession::server(server_tls.https(), limits, 1_000).unwrap();
    assert_eq!(server.poll_timeout(), Some(6_000));
    // Half a ClientHello, then silence.
    let mut client = client_session(
        pki.client_config(&[&rustls::version::TLS13], &[]),
        "localhost",
    );
    let mut hello = Vec::new();
    client.poll_transmit(&mut hello);
    server
        .receive(&hello[..hello.len() / 2], &mut Vec::new())
        .unwrap();
    assert!(server.handle_timeout(5_999).is_ok());
    match server.handle_timeout(6_000) {
        Err(TlsError::HandshakeTimeout { limit_ms: 5_000 }) => {}
        other => panic!("expected HandshakeTimeout, got {other:?}"),
    }

    // A completed handshake has no deadline.
    let (_, server) = established(&pki, limits);
    assert_eq!(server.poll_timeout(), None);
}

#[test]
fn plaintext_and_garbage_on_a_tls_port_are_typed_errors() {
    let pki = Pki::new("garbage");
    let (cert, key, _) = pki.leaf("leaf", &["localhost"]);
    let server_tls = ServerTls::load(&config(&cert, &key)).unwrap();
    let new = || TlsSession::server(server_tls.https(), TlsLimits::default(), 0).unwrap();

    let mut rtmp_c0c1 = vec![0x03];
    rtmp_c0c1.extend_from_slice(&[0u8; 1536]);
    match new().receive(&rtmp_c0c1, &mut Vec::new()) {
        Err(TlsError::Plaintext(Plaintext::Rtmp)) => {}
        other => panic!("expected Plaintext(Rtmp), got {other:?}"),
    }
    match new().receive(b"GET /live/a.flv HTTP/1.1\r\n\r\n", &mut Vec::new()) {
        Err(TlsError::Plaintext(Plaintext::Http)) => {}
        other => panic!("expected Plaintext(Http), got {other:?}"),
    }
    // A handshake record whose body is not a ClientHello.
    let garbage = [0x16, 0x03, 0x01, 0x00, 0x08, 0xFF, 0, 0, 4, 1, 2, 3, 4];
    let mut server = new();
    match server.receive(&garbage, &mut Vec::new()) {
        Err(TlsError::Protocol(_)) => {}
        other => panic!("expected a Protocol error, got {other:?}"),
    }
    // rustls queued an alert for the peer; the caller may send it.
    assert!(server.poll_transmit(&mut Vec::new()) > 0);
    // Not a TLS record type at all.
    match new().receive(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x01], &mut Vec::new()) {
        Err(TlsError::Protocol(_)) => {}
        other => panic!("expected a Protocol error, got {other:?}"),
    }
    assert!(crate::tls::looks_like_tls(0x16) && !crate::tls::looks_like_tls(b'G'));
}

#[test]
fn after_reload_new_handshakes_see_the_new_cert_and_old_sessions_keep_working() {
    let pki = Pki::new("reload");
    let (cert, key, old_der) = pki.leaf("leaf", &["localhost"]);
    let server_tls = ServerTls::load(&config(&cert, &key)).unwrap();
    let client_config = pki.client_config(&[&rustls::version::TLS13], &[]);

    let mut old_client = client_session(client_config.clone(), "localhost");
    let mut old_server = TlsSession::server(server_tls.https(), TlsLimits::default(), 0).unwrap();
    pump(&mut old_client, &mut old_server);
    assert_eq!(
        old_client.peer_certificates().unwrap().first(),
        Some(&old_der)
    );

    // The files are replaced in place (same paths), then reloaded.
    let (_, _, new_der) = pki.leaf("leaf", &["localhost"]);
    assert_ne!(new_der, old_der);
    server_tls.reload().unwrap();

    // A fresh client (no session ticket to resume with) makes a full handshake.
    let fresh = pki.client_config(&[&rustls::version::TLS13], &[]);
    let mut client = client_session(fresh, "localhost");
    let mut server = TlsSession::server(server_tls.https(), TlsLimits::default(), 0).unwrap();
    pump(&mut client, &mut server);
    assert_eq!(client.peer_certificates().unwrap().first(), Some(&new_der));
    // The old client resumes its session (no certificate is sent then).
    let mut resumed = client_session(client_config, "localhost");
    let mut server = TlsSession::server(server_tls.https(), TlsLimits::default(), 0).unwrap();
    pump(&mut resumed, &mut server);
    assert!(!server.is_handshaking());

    let mut wire = Vec::new();
    old_server.send(&[b"still here"], &mut wire).unwrap();
    let mut got = Vec::new();
    old_client.receive(&wire, &mut got).unwrap();
    assert_eq!(got, b"still here");
    wire.clear();
    old_client.send(&[b"me too"], &mut wire).unwrap();
    let mut got = Vec::new();
    old_server.receive(&wire, &mut got).unwrap();
    assert_eq!(got, b"me too");

    // A reload that fails keeps the current set serving.
    std::fs::write(&key, "not a key").unwrap();
    assert!(matches!(server_tls.reload(), Err(LoadError::NoKey { .. })));
    assert_eq!(
        server_tls.resolver().current().pick(None).cert.first(),
        Some(&new_der)
    );
}

#[test]
fn close_notify_reaches_the_peer_and_later_sends_fail() {
    let pki = Pki::new("close");
    let (mut client, mut server) = established(&pki, TlsLimits::default());
    let mut wire = Vec::new();
    server.send(&[b"last words"], &mut wire).unwrap();
    server.close(&mut wire);
    let mut got = Vec::new();
    let received = client.receive(&wire, &mut got).unwrap();
    assert_eq!(got, b"last words");
    assert!(received.peer_closed);
    assert!(matches!(
        server.send(&[b"x"], &mut Vec::new()),
        Err(TlsError::Closed)
    ));
}

#[test]
fn the_client_twin_verifies_the_origin_against_a_ca_file() {
    let pki = Pki::new("client");
    let (cert, key, _) = pki.leaf("leaf", &["origin.test"]);
    let server_tls = ServerTls::load(&config(&cert, &key)).unwrap();
    let client_tls = ClientTls::load(Some(&pki.ca_path())).unwrap();

    let mut client = client_session(client_tls.https(), "origin.test");
    let mut server = TlsSession::server(server_tls.https(), TlsLimits::default(), 0).unwrap();
    let (_, at_server) = pump(&mut client, &mut server);
    assert!(at_server.is_empty());
    assert_eq!(client.alpn_protocol(), Some(ALPN_HTTP11));

    // Another CA: the server's certificate is refused.
    let other = Pki::new("client-other");
    let untrusting = ClientTls::load(Some(&other.ca_path())).unwrap();
    let mut client = client_session(untrusting.rtmps(), "origin.test");
    let mut server = TlsSession::server(server_tls.rtmps(), TlsLimits::default(), 0).unwrap();
    let mut wire = Vec::new();
    client.poll_transmit(&mut wire);
    server.receive(&wire, &mut Vec::new()).unwrap();
    wire.clear();
    server.poll_transmit(&mut wire);
    match client.receive(&wire, &mut Vec::new()) {
        Err(TlsError::Protocol(rustls::Error::InvalidCertificate(_))) => {}
        other => panic!("expected InvalidCertificate, got {other:?}"),
    }
}

#[test]
fn load_errors_name_the_file_and_what_is_wrong() {
    let pki = Pki::new("load");
    let (cert, key, _) = pki.leaf("leaf", &["localhost"]);
    let (_, other_key, _) = pki.leaf("other", &["localhost"]);
    let missing = pki.dir.join("missing.pem");

    let err = ServerTls::load(&config(&missing, &key)).unwrap_err();
    assert!(matches!(&err, LoadError::Unreadable { path, .. } if *path == missing));
    assert!(err.to_string().contains("missing.pem"), "{err}");

    // The key file holds no certificate.
    let err = ServerTls::load(&config(&key, &key)).unwrap_err();
    assert!(matches!(&err, LoadError::NoCertificate { path } if *path == key));
    // The certificate file holds no key.
    let err = ServerTls::load(&config(&cert, &cert)).unwrap_err();
    assert!(matches!(&err, LoadError::NoKey { path } if *path == cert));
    // Another leaf's key.
    let err = ServerTls::load(&config(&cert, &other_key)).unwrap_err();
    assert!(
        matches!(&err, LoadError::KeyMismatch { cert: c, key: k } if *c == cert && *k == other_key)
    );
    assert!(err.to_string().contains("does not match"), "{err}");
    // A CA file with nothing in it.
    let empty = pki.dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    assert!(matches!(
        ClientTls::load(Some(&empty)),
        Err(LoadError::NoCertificate { .. })
    ));
    // The same SNI name twice.
    let mut cfg = config(&cert, &key);
    let entry = CertFiles {
        names: vec!["a.test".into()],
        cert: cert.clone(),
        key: key.clone(),
    };
    cfg.sni = vec![entry.clone(), entry];
    assert!(matches!(
        ServerTls::load(&cfg),
        Err(LoadError::BadName { name, .. }) if name == "a.test"
    ));
}

#[test]
fn tls_config_parses_from_toml() {
    let cfg: TlsConfig = toml::from_str(
        r#"
        cert = "/etc/ringcast/default.pem"
        key = "/etc/ringcast/default.key"
        ca = "/etc/ringcast/origins-ca.pem"
        [[sni]]
        names = ["a.example", "*.b.example"]
        cert = "/etc/ringcast/a.pem"
        key = "/etc/ringcast/a.key"
        "#,
    )
    .unwrap();
    assert_eq!(cfg.sni.len(), 1);
    assert_eq!(cfg.sni[0].names, ["a.example", "*.b.example"]);
    assert!(toml::from_str::<TlsConfig>("cert = \"a\"\nkey = \"b\"\nbogus = 1").is_err());
}

#[test]
fn max_plaintext_per_send_fills_the_ciphertext_bound_and_no_more() {
    let pki = Pki::new("perseal");
    for limit in [4096usize, 64 * 1024, 256 * 1024, 300_001] {
        let limits = TlsLimits {
            max_ciphertext_out: limit,
            ..TlsLimits::default()
        };
        let (_client, mut server) = established(&pki, limits);
        let n = limits.max_plaintext_per_send();
        let body = vec![7u8; n];
        let mut wire = Vec::new();
        server.send(&[&body], &mut wire).unwrap();
        assert!(
            wire.len() <= limit,
            "{limit}: {} B of ciphertext",
            wire.len()
        );
        let more = vec![7u8; n + 1];
        let mut wire = Vec::new();
        assert!(
            matches!(
                server.send(&[&more], &mut wire),
                Err(TlsError::CiphertextOutFull { .. })
            ),
            "{limit}: one byte more must not fit"
        );
    }
}
