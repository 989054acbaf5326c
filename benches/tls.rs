//! Cost of the TLS glue on one core: (1) the gathered encrypt of a viewer's
//! send, 64 KiB as 64 slices of 1 KiB, into one record buffer (bytes/s);
//! (2) full TLS 1.3 handshakes with an ECDSA P-256 certificate, no resumption,
//! client and server driven in the same thread through memory, timed whole
//! and for the server's calls alone. Run: `cargo bench --bench tls`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use ringcast::tls::{ServerTls, TlsConfig, TlsLimits, TlsSession};
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};

struct Setup {
    server: ServerTls,
    client: Arc<ClientConfig>,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A temp directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn setup() -> Setup {
    let dir = std::env::temp_dir().join(format!("ringcast-tls-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    std::fs::write(dir.join("c.pem"), cert.pem()).expect("write cert");
    std::fs::write(dir.join("c.key"), key.serialize_pem()).expect("write key");
    let server = ServerTls::load(&TlsConfig {
        cert: dir.join("c.pem"),
        key: dir.join("c.key"),
        sni: Vec::new(),
        ca: None,
    })
    .expect("server tls");
    let mut roots = RootCertStore::empty();
    roots.add(cert.der().clone()).expect("root");
    let mut client = ClientConfig::builder_with_provider(ringcast::tls::certs::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.resumption = Resumption::disabled();
    Setup {
        server,
        client: Arc::new(client),
        _dir: tempdir::Dir(dir),
    }
}

/// A full handshake; returns the sessions and the time spent in the server's
/// calls alone (creation, receive, transmit).
fn handshake_timed(setup: &Setup) -> (TlsSession, TlsSession, Duration) {
    let limits = TlsLimits::default();
    let name = ServerName::try_from("localhost").expect("name");
    let mut client =
        TlsSession::client(setup.client.clone(), name, limits, 0).expect("client session");
    let started = Instant::now();
    let mut server = TlsSession::server(setup.server.https(), limits, 0).expect("server session");
    let mut in_server = started.elapsed();
    let mut wire = Vec::with_capacity(4096);
    let mut sink = Vec::new();
    while client.is_handshaking() || server.is_handshaking() {
        wire.clear();
        client.poll_transmit(&mut wire);
        let started = Instant::now();
        server.receive(&wire, &mut sink).expect("server receive");
        wire.clear();
        server.poll_transmit(&mut wire);
        in_server += started.elapsed();
        client.receive(&wire, &mut sink).expect("client receive");
    }
    (client, server, in_server)
}

fn handshake(setup: &Setup) -> (TlsSession, TlsSession) {
    let (client, server, _) = handshake_timed(setup);
    (client, server)
}

fn bench(c: &mut Criterion) {
    let setup = setup();

    let (_client, mut server) = handshake(&setup);
    let bodies: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 1024]).collect();
    let slices: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
    let mut wire = Vec::with_capacity(128 * 1024);
    let mut group = c.benchmark_group("tls");
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(64 * 1024));
    group.bench_function("gathered_encrypt_64x1KiB", |b| {
        b.iter(|| {
            wire.clear();
            black_box(server.send(black_box(&slices), &mut wire).expect("send"));
        })
    });
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.bench_function("full_handshake_tls13_ecdsa_p256", |b| {
        b.iter(|| black_box(handshake(&setup)))
    });
    // The server's share of the same handshakes: only its own calls are timed.
    group.bench_function("full_handshake_tls13_ecdsa_p256_server_side", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| handshake_timed(&setup).2).sum())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
