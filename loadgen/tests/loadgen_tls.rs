//! loadgen over TLS against ringcast itself (the `ringcast` binary built beside
//! loadgen) with HTTPS and RTMPS listeners and a test CA made by rcgen: a loadgen
//! publisher over `rtmps://`, viewers over `https://` and `rtmps://` at once.
//! Every viewer plays, every frame it receives carries the publisher's stamp, none
//! go missing, latency is measured, and both sides count the same TLS handshakes.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256};

/// Writes a CA (`ca.pem`) and a leaf for `localhost` / 127.0.0.1 signed by it
/// (`leaf.pem` with the chain, `leaf.key`), all ECDSA P-256, into `dir`.
fn test_pki(dir: &TempDir) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "loadgen test CA");
    let ca = params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let (ca_path, cert_path, key_path) = (
        dir.path("ca.pem"),
        dir.path("leaf.pem"),
        dir.path("leaf.key"),
    );
    std::fs::write(&ca_path, ca.pem()).unwrap();
    std::fs::write(&cert_path, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (ca_path, cert_path, key_path)
}

struct TlsRingcast {
    server: Ringcast,
    https: u16,
    rtmps: u16,
}

fn start_tls(cert: &Path, key: &Path) -> TlsRingcast {
    let (https, rtmps) = (free_port(), free_port());
    let (https_addr, rtmps_addr) = (format!("127.0.0.1:{https}"), format!("127.0.0.1:{rtmps}"));
    let server = Ringcast::start_with(
        None,
        &[
            "--https",
            &https_addr,
            "--rtmps",
            &rtmps_addr,
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[https, rtmps],
    );
    TlsRingcast {
        server,
        https,
        rtmps,
    }
}

#[test]
fn https_and_rtmps_viewers_of_an_rtmps_publisher_get_every_stamped_frame() {
    let dir = TempDir::new("loadgen-tls");
    let (ca, cert, key) = test_pki(&dir);
    let tls = start_tls(&cert, &key);
    let name = format!("tls{}", free_port());
    // One URL each way: viewer k plays url[k mod 2], so half HTTPS-FLV, half RTMPS.
    let https_url = format!("https://localhost:{}/live/{name}.flv", tls.https);
    let rtmps_url = format!("rtmps://127.0.0.1:{}/live/{name}", tls.rtmps);
    let viewers = 16u64;
    let json = dir.path("run.json");
    let run = loadgen_bg(
        &[
            "run",
            "--publish-url",
            &format!("rtmps://localhost:{}/live/{name}", tls.rtmps),
            "--play-url",
            &format!("{https_url},{rtmps_url}"),
            "--ca",
            ca.to_str().unwrap(),
            "--viewers",
            &viewers.to_string(),
            "--ramp",
            "0",
            "--play-delay",
            "1s",
            "--duration",
            "6s",
            "--bitrate",
            "600k",
        ],
        &json,
    );
    wait_until("every TLS viewer to join", Duration::from_secs(60), || {
        tls.server.metric("ringcast_viewers") == viewers as f64
    });
    let report = report_of(run, &json);
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));
    assert_eq!(count(&report, "viewers_playing"), viewers);
    assert_eq!(report["peak_viewers"].as_u64(), Some(viewers));
    let frames = count(&report, "video_frames");
    // 5 s of 25 fps each, less the wait for the first keyframe.
    assert!(frames >= viewers * 75, "{frames} video frames");
    assert_eq!(
        count(&report, "stamped_frames"),
        frames,
        "every frame stamped"
    );
    assert_eq!(count(&report, "missing_frames"), 0, "no frame lost");
    // Nothing is lost; a loaded test machine may pause the (debug) server past the
    // 500 ms stall threshold now and then, which delays frames but drops none.
    assert!(
        count(&report, "stalls") <= viewers,
        "{}",
        report["stall_ms"]
    );
    assert!(count(&report, "audio_frames") > 0);
    let latency = &report["latency_ms"];
    assert_eq!(latency["count"].as_u64(), Some(frames), "{latency}");
    assert!(latency["p50"].as_f64().unwrap() < 1000.0, "{latency}");
    // The publisher's handshake and every viewer's, on both sides.
    assert_eq!(count(&report, "tls_handshakes"), viewers + 1);
    let handshake = &report["tls_handshake_ms"];
    assert_eq!(
        handshake["count"].as_u64(),
        Some(viewers + 1),
        "{handshake}"
    );
    assert!(handshake["max"].as_f64().unwrap() < 10_000.0, "{handshake}");
    assert_eq!(
        server_handshakes(&tls.server, "ok"),
        (viewers + 1) as f64,
        "server-side handshakes"
    );
}

#[test]
fn a_server_certificate_the_ca_does_not_vouch_for_fails_in_the_handshake() {
    let dir = TempDir::new("loadgen-tls-untrusted");
    let (_, cert, key) = test_pki(&dir);
    let other = TempDir::new("loadgen-tls-other-ca");
    let (other_ca, _, _) = test_pki(&other);
    let tls = start_tls(&cert, &key);
    let json = dir.path("play.json");
    let play = loadgen_bg(
        &[
            "play",
            "--url",
            &format!("https://localhost:{}/live/none.flv", tls.https),
            "--ca",
            other_ca.to_str().unwrap(),
            "--viewers",
            "4",
            "--ramp",
            "0",
            "--duration",
            "2s",
        ],
        &json,
    );
    let report = report_of(play, &json);
    assert_eq!(
        failures(&report),
        [("Handshake".to_string(), "Protocol".to_string(), 4)]
    );
    assert_eq!(count(&report, "tls_handshakes"), 0);
}

/// Sum of `ringcast_tls_handshakes_total` samples with `result="…"`.
fn server_handshakes(server: &Ringcast, result: &str) -> f64 {
    let (_, body) = http_get(server.admin_port, "/metrics");
    let label = format!("result=\"{result}\"");
    body.lines()
        .filter(|l| l.starts_with("ringcast_tls_handshakes_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn handshake_mode_cycles_full_handshakes_that_the_server_completes_too() {
    let dir = TempDir::new("loadgen-tls-handshakes");
    let (ca, cert, key) = test_pki(&dir);
    let tls = start_tls(&cert, &key);
    let connections = 8u64;
    for url in [
        format!("https://localhost:{}/", tls.https),
        format!("rtmps://localhost:{}/live/x", tls.rtmps),
    ] {
        let before = server_handshakes(&tls.server, "ok");
        let json = dir.path("handshakes.json");
        let run = loadgen_bg(
            &[
                "handshakes",
                "--url",
                &url,
                "--ca",
                ca.to_str().unwrap(),
                "--connections",
                &connections.to_string(),
                "--duration",
                "3s",
            ],
            &json,
        );
        let report = report_of(run, &json);
        assert!(
            failures(&report).is_empty(),
            "{url}: {:?}",
            failures(&report)
        );
        let done = count(&report, "tls_handshakes");
        assert!(done >= 10 * connections, "{url}: {done} handshakes in 3 s");
        assert_eq!(
            report["tls_handshake_ms"]["count"].as_u64(),
            Some(done),
            "{url}"
        );
        assert!(report["tls_handshakes_per_sec"].as_f64().unwrap() > 0.0);
        // The server completed the same handshakes, give or take the one cycle
        // per client in flight at the end: loadgen counts a handshake when the
        // server's Finished arrives, the server when the client's does (which
        // the run's end may cut off).
        let low = done.saturating_sub(connections) as f64;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut server = server_handshakes(&tls.server, "ok") - before;
        while server < low && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            server = server_handshakes(&tls.server, "ok") - before;
        }
        assert!(
            (low..=(done + connections) as f64).contains(&server),
            "{url}: server {server}, loadgen {done}"
        );
        assert_eq!(server_handshakes(&tls.server, "failed"), 0.0, "{url}");
    }
}
