//! TLS listeners end to end, with real clients and a test CA made by rcgen:
//! ffmpeg publishes over `rtmps://` and plays over `https://` and `rtmps://`;
//! curl reads the admin routes over HTTPS (404 unless `[api] on_public_port`);
//! SNI picks the certificate by name (curl `--resolve`, `openssl s_client
//! -servername`); SIGHUP swaps the certificate while an HTTPS-FLV viewer keeps
//! receiving; plaintext on a TLS port, TLS on a plain port, garbage and stalled
//! handshakes are closed and counted, with nothing left behind.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pki::Pki;
use common::*;

/// A server with HTTPS and RTMPS listeners next to the plain ones, and the test
/// CA that signed its certificate.
struct TlsServer {
    server: Server,
    https_port: u16,
    rtmps_port: u16,
    /// The default certificate (`leaf.pem` in the CA's directory) and its key.
    cert: PathBuf,
    key: PathBuf,
    /// The CA's certificate, as clients' `--cacert`/`-ca_file` take it.
    ca: String,
    /// Last, so the server stops before the directory goes.
    pki: Pki,
}

/// A test CA (`tag` names its directory), the leaf it signs with common name
/// `cn` for `localhost` and `127.0.0.1` (`leaf.pem`/`leaf.key`), and ringcast
/// (1 core) with HTTPS and RTMPS on free ports and `[tls]` presenting that
/// leaf. Each of `sni_names` gets a leaf of its own (common name and only name
/// the same) in a `[[tls.sni]]` table; `extra` is more TOML.
fn start_tls(tag: &str, cn: &str, sni_names: &[&str], extra: &str) -> TlsServer {
    let pki = Pki::new(tag);
    let (cert, key) = pki.leaf("leaf", cn, &["localhost", "127.0.0.1"]);
    let mut sni = String::new();
    for name in sni_names {
        let (cert, key) = pki.leaf(name, name, &[name]);
        sni += &format!("[[tls.sni]]\nnames = [{name:?}]\ncert = {cert:?}\nkey = {key:?}\n");
    }
    let (https_port, rtmps_port) = (free_port(), free_port());
    let toml = format!(
        "{extra}\n[server]\nhttps_listen = \"127.0.0.1:{https_port}\"\n\
         rtmps_listen = \"127.0.0.1:{rtmps_port}\"\n\
         [tls]\ncert = {cert:?}\nkey = {key:?}\n{sni}\n"
    );
    let server = Server::start(1, &toml);
    let deadline = Instant::now() + Duration::from_secs(10);
    for port in [https_port, rtmps_port] {
        wait_listening("127.0.0.1", port, deadline, "ringcast TLS listener");
    }
    TlsServer {
        server,
        https_port,
        rtmps_port,
        cert,
        key,
        ca: pki.ca().display().to_string(),
        pki,
    }
}

fn curl() -> PathBuf {
    require::command("curl", "curl")
}

fn openssl() -> PathBuf {
    require::command("openssl", "openssl")
}

/// `curl -sS` with `args`; returns (HTTP status as curl saw it, body, stderr).
fn curl_get(args: &[&str]) -> (String, String, String) {
    let out = run_bounded(
        Command::new(curl())
            .args(["-sS", "-o", "-", "-w", "\n%{http_code}"])
            .args(args),
        Duration::from_secs(20),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    (
        code.to_string(),
        body.to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The subject line `openssl s_client` reports for the certificate the server at
/// `port` presents when asked for `server_name`.
fn presented_subject(port: u16, server_name: &str) -> String {
    let out = run_bounded(
        Command::new(openssl()).args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            server_name,
        ]),
        Duration::from_secs(20),
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_else(|| panic!("no subject from s_client: {text}"))
        .to_string()
}

/// Sum of `family`'s samples whose labels include `label` (e.g. `result="ok"`).
fn metric_with(admin_port: u16, family: &str, label: &str) -> f64 {
    let (status, body) = http_request(admin_port, "GET", "/metrics");
    assert_eq!(status, 200);
    body.lines()
        .filter(|l| l.starts_with(family) && l[family.len()..].starts_with('{'))
        .filter(|l| l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// ffmpeg decoding `frames` video frames of `url` with extra input options; the
/// number of frames it decoded and its stderr.
fn decode(input_opts: &[&str], url: &str, frames: u32) -> (usize, String) {
    let out = run_bounded(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error"])
            .args(input_opts)
            .args(["-i", url, "-map", "0:v:0", "-frames:v", &frames.to_string()])
            .args(["-f", "framemd5", "-"]),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let n = stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    (n, String::from_utf8_lossy(&out.stderr).to_string())
}

/// An ffmpeg publisher of `live/name` to `server` over plain RTMP for
/// `seconds`, once the stream is live (30 s at most).
fn publish_live(server: &Server, name: &str, seconds: u32) -> Proc {
    let publisher = publish(&server.rtmp_url("live", name), seconds);
    wait_live(server, "live", name, Duration::from_secs(30));
    publisher
}

#[test]
fn ffmpeg_publishes_over_rtmps_and_plays_over_https_and_rtmps() {
    require::command("ffmpeg", "ffmpeg");
    require::command("ffprobe", "ffmpeg");
    let s = start_tls("media", "localhost", &[], "");
    let rtmps = format!("rtmps://127.0.0.1:{}/live/x", s.rtmps_port);
    let _publisher = publish(&rtmps, 60);
    wait_live(&s.server, "live", "x", Duration::from_secs(30));

    // HTTPS-FLV, the server verified against the test CA.
    let https = format!("https://127.0.0.1:{}/live/x.flv", s.https_port);
    let ca = s.ca.as_str();
    let verify = ["-tls_verify", "1", "-ca_file", ca];
    let probed = run_bounded(
        Command::new("ffprobe")
            .args(["-v", "error"])
            .args(verify)
            .args(["-show_entries", "stream=codec_name,width,height"])
            .args(["-of", "csv=p=0", &https]),
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&probed.stdout).to_string();
    assert!(
        probed.status.success() && text.contains("h264,320,240") && text.contains("aac"),
        "ffprobe over https: {text} {}",
        String::from_utf8_lossy(&probed.stderr)
    );
    let (frames, errors) = decode(&verify, &https, 100);
    assert!(frames >= 100, "{frames} frames over https: {errors}");
    assert!(
        errors.trim().is_empty(),
        "decode errors over https: {errors}"
    );

    // RTMPS play.
    let (frames, errors) = decode(&[], &rtmps, 50);
    assert!(frames >= 50, "{frames} frames over rtmps: {errors}");

    let admin = s.server.admin_port;
    // Publisher, ffprobe, the https viewer and the rtmps viewer at least.
    assert!(metric_with(admin, "ringcast_tls_handshakes_total", "result=\"ok\"") >= 4.0);
    assert!(
        metric_with(
            admin,
            "ringcast_connections_accepted_total",
            "listener=\"rtmps\""
        ) >= 2.0
    );
    assert!(
        metric_with(
            admin,
            "ringcast_connections_accepted_total",
            "listener=\"https\""
        ) >= 2.0
    );
    assert!(metric_with(admin, "ringcast_sent_frames_total", "protocol=\"http_flv\"") >= 100.0);
}

#[test]
fn https_admin_routes_follow_on_public_port_and_sni_picks_the_certificate() {
    let s = start_tls(
        "admin",
        "localhost",
        &["other.test"],
        "[api]\non_public_port = true\n",
    );
    let ca = s.ca.as_str();
    let base = format!("https://127.0.0.1:{}", s.https_port);

    let (code, body, err) = curl_get(&["--cacert", ca, &format!("{base}/metrics")]);
    assert_eq!(code, "200", "{err}");
    assert!(body.contains("ringcast_tls_handshakes_total"), "{body}");
    let (code, body, _) = curl_get(&["--cacert", ca, &format!("{base}/api/v1/streams")]);
    assert_eq!(code, "200", "{body}");
    // HTTP/1.1 agreed by ALPN.
    let (code, _, err) = curl_get(&["-v", "--cacert", ca, &format!("{base}/metrics")]);
    assert_eq!(code, "200");
    assert!(err.contains("http/1.1"), "ALPN not reported: {err}");
    // Keep-alive over TLS: two requests on one connection.
    let (code, body, err) = curl_get(&[
        "--cacert",
        ca,
        &format!("{base}/api/v1/streams"),
        &format!("{base}/metrics"),
    ]);
    assert_eq!(code, "200", "{err}");
    assert!(body.contains("ringcast_tls_handshakes_total"));

    // SNI: curl verifies the name it asked for, so success means the right cert.
    let other = format!("https://other.test:{}/metrics", s.https_port);
    let resolve = format!("other.test:{}:127.0.0.1", s.https_port);
    let (code, _, err) = curl_get(&["--cacert", ca, "--resolve", &resolve, &other]);
    assert_eq!(code, "200", "{err}");
    assert!(presented_subject(s.https_port, "other.test").contains("other.test"));
    assert!(presented_subject(s.rtmps_port, "other.test").contains("other.test"));
    let default = presented_subject(s.https_port, "unknown.test");
    assert!(default.contains("localhost"), "{default}");

    // Without on_public_port the HTTPS port answers the admin routes with 404,
    // like the HTTP port. Set up from the command line this time.
    let https_port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcast"));
    let admin_port = free_port();
    cmd.args(["serve", "--cores", "1"])
        .args(["--rtmp", &format!("127.0.0.1:{}", free_port())])
        .args(["--http", &format!("127.0.0.1:{}", free_port())])
        .args(["--admin", &format!("127.0.0.1:{admin_port}")])
        .args(["--https", &format!("127.0.0.1:{https_port}")])
        .arg("--tls-cert")
        .arg(&s.cert)
        .arg("--tls-key")
        .arg(&s.key);
    let _plain_admin = spawn_ringcast(&mut cmd, "ringcast --https");
    wait_listening(
        "127.0.0.1",
        https_port,
        Instant::now() + Duration::from_secs(10),
        "ringcast --https",
    );
    for path in ["/metrics", "/api/v1/streams", "/"] {
        let url = format!("https://127.0.0.1:{https_port}{path}");
        let (code, _, err) = curl_get(&["--cacert", ca, &url]);
        assert_eq!(code, "404", "{path}: {err}");
    }
    assert_eq!(http_request(admin_port, "GET", "/metrics").0, 200);
}

#[test]
fn check_config_names_a_tls_listener_without_a_certificate_and_a_bad_file() {
    let pki = Pki::new("check");
    let check = |toml: &str| {
        let out = check_config(&pki.dir.join(format!("c{}.toml", free_port())), toml);
        (out.status.success(), output_text(&out))
    };
    let (ok, err) = check("[server]\nrtmps_listen = \"127.0.0.1:1936\"\n");
    assert!(
        !ok && err.contains("server.rtmps_listen") && err.contains("[tls]"),
        "{err}"
    );
    let missing = pki.dir.join("missing.pem");
    let (ok, err) = check(&format!(
        "[server]\nhttps_listen = \"127.0.0.1:8443\"\n[tls]\ncert = {missing:?}\nkey = {missing:?}\n"
    ));
    assert!(!ok && err.contains("missing.pem"), "{err}");
    let (cert, key) = pki.leaf("good", "localhost", &["localhost"]);
    let (ok, out) = check(&format!(
        "[server]\nhttps_listen = \"127.0.0.1:8443\"\n[tls]\ncert = {cert:?}\nkey = {key:?}\n"
    ));
    assert!(ok, "{out}");
    assert!(out.contains("# tls: https://127.0.0.1:8443"), "{out}");
}

#[test]
fn sighup_reloads_the_certificate_while_an_https_viewer_keeps_receiving() {
    require::command("ffmpeg", "ffmpeg");
    let s = start_tls("reload", "before-reload", &[], "");
    let _publisher = publish_live(&s.server, "r", 90);
    assert!(presented_subject(s.https_port, "localhost").contains("before-reload"));

    let out = s.pki.dir.join("viewer.flv");
    let ca = s.ca.as_str();
    let url = format!("https://127.0.0.1:{}/live/r.flv", s.https_port);
    let child = Command::new(curl())
        .args(["-sSN", "--cacert", ca, "-o"])
        .arg(&out)
        .arg(&url)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn curl");
    let mut viewer = Proc {
        child,
        name: "curl https viewer".into(),
    };
    let size = || std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    wait_until("the https viewer receives", Duration::from_secs(30), || {
        size() > 20_000
    });

    // New files in place, then SIGHUP: new handshakes get the new certificate.
    s.pki
        .leaf("leaf", "after-reload", &["localhost", "127.0.0.1"]);
    unsafe { libc::kill(s.server.proc.pid() as i32, libc::SIGHUP) };
    wait_until(
        "a new handshake sees the new certificate",
        Duration::from_secs(20),
        || presented_subject(s.https_port, "localhost").contains("after-reload"),
    );
    // ... and still verifies against the CA.
    let missing = format!("https://127.0.0.1:{}/live/none.flv", s.https_port);
    let (code, _, err) = curl_get(&["--cacert", ca, &missing]);
    assert_eq!(code, "404", "{err}");

    // The viewer opened before the reload is still the same connection, receiving.
    let before = size();
    wait_until(
        "the old viewer keeps receiving",
        Duration::from_secs(30),
        || size() > before + 50_000,
    );
    assert!(
        viewer.child.try_wait().unwrap().is_none(),
        "curl viewer ended"
    );
    assert!(s.server.proc.child.id() > 0);
    viewer.kill();
}

/// Whether `e` says the peer closed the connection (a reset, or a write after
/// its close).
fn is_closed_by_peer(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted)
}

/// Connects to `port`, writes `bytes` and reads until the server closes; panics
/// if it is still open after `limit`. Returns how long that took.
fn closed_after(port: u16, bytes: &[u8], limit: Duration) -> Duration {
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(limit)).unwrap();
    if !bytes.is_empty() {
        match s.write_all(bytes) {
            Ok(()) => {}
            // The server closed already (it refused what it had read): closed.
            Err(e) if is_closed_by_peer(&e) => return started.elapsed(),
            Err(e) => panic!("writing to port {port}: {e}"),
        }
    }
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(e) if is_closed_by_peer(&e) => return started.elapsed(),
            Err(e) => panic!("port {port} still open after {limit:?} ({e})"),
        }
        assert!(started.elapsed() < limit, "port {port} still open");
    }
}

#[test]
fn bad_input_on_tls_and_plain_ports_is_closed_and_counted() {
    let s = start_tls(
        "bad",
        "localhost",
        &[],
        "[limits]\nhandshake_timeout = \"1s\"\n",
    );
    let admin = s.server.admin_port;
    let tls = |result: &str| {
        metric_with(
            admin,
            "ringcast_tls_handshakes_total",
            &format!("result=\"{result}\""),
        )
    };
    let limit = Duration::from_secs(10);

    // Plaintext HTTP on the HTTPS port, an RTMP C0+C1 on the RTMPS port.
    closed_after(
        s.https_port,
        b"GET /live/x.flv HTTP/1.1\r\nHost: a\r\n\r\n",
        limit,
    );
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(0u8, 1536));
    closed_after(s.rtmps_port, &c0c1, limit);
    wait_until("plaintext counted", limit, || tls("plaintext") >= 2.0);
    // Plain HTTP is told, in plain HTTP, where it is (then closed).
    let (status, body) = http_request(s.https_port, "GET", "/live/x.flv");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("HTTPS port"), "{body}");
    // Also when the answer comes while the request is still being written: a
    // 4 MiB path cannot all be in before the server has read the first bytes,
    // answered and closed, so the write fails; the 400 is still read.
    let long = format!("/{}", "a".repeat(4 << 20));
    match try_http_request(s.https_port, "GET", &long) {
        Ok((status, body)) => {
            assert_eq!(status, 400, "{body}");
            assert!(body.contains("HTTPS port"), "{body}");
        }
        Err(e) => panic!("the 400 to a long plaintext request was lost: {e}"),
    }
    // On the RTMPS port the answer names that port's scheme.
    let (status, body) = http_request(s.rtmps_port, "GET", "/live/x.flv");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("RTMPS port"), "{body}");
    // The plain RTMP port closes on HTTP without a word: an error, not a panic.
    let silent = try_http_request(s.server.rtmp_port, "GET", "/live/x.flv");
    assert!(
        matches!(silent, Err(HttpError::NoResponse { .. })),
        "{silent:?}"
    );

    // Garbage: a handshake record header with junk inside, and bytes that are
    // no protocol at all.
    let mut junk = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    junk.extend((0..64u8).map(|i| i.wrapping_mul(37)));
    closed_after(s.https_port, &junk, limit);
    closed_after(s.rtmps_port, &[0u8, 1, 2, 3, 4, 5, 6, 7], limit);
    wait_until("garbage counted", limit, || tls("failed") >= 2.0);

    // Handshakes that never finish: silence, and half a ClientHello.
    let took = closed_after(s.https_port, b"", limit);
    assert!(
        took >= Duration::from_millis(900),
        "closed before the timeout: {took:?}"
    );
    closed_after(s.rtmps_port, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01], limit);
    wait_until("timeouts counted", limit, || tls("timeout") >= 2.0);

    // TLS on the plain ports: curl speaks https to the HTTP port, openssl to the RTMP port.
    let (code, _, _) = curl_get(&[
        "-k",
        "--max-time",
        "5",
        &format!("https://127.0.0.1:{}/", s.server.http_port),
    ]);
    assert_ne!(code, "200");
    run_bounded(
        Command::new(openssl()).args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", s.server.rtmp_port),
        ]),
        Duration::from_secs(15),
    );
    wait_until("TLS on plain ports counted", limit, || {
        metric_with(
            admin,
            "ringcast_connections_refused_total",
            "reason=\"tls_on_plain_port\"",
        ) >= 2.0
    });

    // No growth: many more bad connections, then nothing is left open.
    let pid = s.server.proc.pid();
    let fds_before = open_fds(pid);
    let started = Instant::now();
    for i in 0..100u8 {
        let port = if i % 2 == 0 {
            s.https_port
        } else {
            s.rtmps_port
        };
        // Each refused at once: plaintext, a fatal alert before any hello, junk.
        let bad: &[u8] = match i % 3 {
            0 => b"GET / HTTP/1.0\r\n\r\n",
            1 => &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28],
            _ => &[0x00, i, 0x01, 0x02, 0x03],
        };
        closed_after(port, bad, limit);
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bad clients should be closed at once, not at the handshake timeout: {:?}",
        started.elapsed()
    );
    wait_until("TLS connections all closed", limit, || {
        metric_with(admin, "ringcast_open_connections", "listener=\"https\"") == 0.0
            && metric_with(admin, "ringcast_open_connections", "listener=\"rtmps\"") == 0.0
    });
    wait_until("descriptors back to where they were", limit, || {
        open_fds(pid) <= fds_before + 1
    });
    // Still serving TLS.
    let (code, _, err) = curl_get(&[
        "--cacert",
        &s.ca,
        &format!("https://127.0.0.1:{}/nothing.flv", s.https_port),
    ]);
    assert_eq!(code, "404", "{err}");
}

#[test]
fn edges_pull_from_https_and_rtmps_origins_verified_against_the_ca() {
    require::command("ffmpeg", "ffmpeg");
    let origin = start_tls("edge", "origin", &[], "");
    let _publisher = publish_live(&origin.server, "e", 90);

    let (cert, key, ca) = (&origin.cert, &origin.key, origin.pki.ca());
    for url in [
        format!("https://127.0.0.1:{}", origin.https_port),
        format!("rtmps://127.0.0.1:{}/live", origin.rtmps_port),
    ] {
        let edge = Server::start(
            1,
            &format!(
                "[edge]\norigins = [\"{url}\"]\n[tls]\ncert = {cert:?}\nkey = {key:?}\nca = {ca:?}\n"
            ),
        );
        let (frames, errors) = decode(&[], &edge.flv_url("live", "e"), 50);
        assert!(
            frames >= 50,
            "{frames} frames through an edge of {url}: {errors}"
        );
        assert!(errors.trim().is_empty(), "{url}: {errors}");
    }
    // Both pulls were TLS handshakes on the origin's listeners.
    let admin = origin.server.admin_port;
    assert!(
        metric_with(
            admin,
            "ringcast_connections_accepted_total",
            "listener=\"https\""
        ) >= 1.0
    );
    assert!(
        metric_with(
            admin,
            "ringcast_connections_accepted_total",
            "listener=\"rtmps\""
        ) >= 1.0
    );
    assert!(metric_with(admin, "ringcast_tls_handshakes_total", "result=\"ok\"") >= 2.0);

    // An origin whose certificate the edge does not trust delivers nothing.
    let other = Pki::new("edge-untrusted");
    let untrusted = other.ca();
    let edge = Server::start(
        1,
        &format!(
            "[stream]\nwait_for_publisher = \"0s\"\n[edge]\norigins = [\"https://127.0.0.1:{}\"]\nstart_timeout = \"3s\"\n\
             [tls]\ncert = {cert:?}\nkey = {key:?}\nca = {untrusted:?}\n",
            origin.https_port
        ),
    );
    let (status, _) = edge.public_get("/live/e.flv");
    assert!(
        status == 503 || status == 404,
        "untrusted origin answered {status}"
    );
    assert!(
        metric_with(admin, "ringcast_tls_handshakes_total", "result=\"failed\"") >= 1.0,
        "the origin saw the edge abort the handshake"
    );
}

#[test]
fn frames_larger_than_the_record_buffer_are_sealed_in_parts_and_play() {
    require::command("ffmpeg", "ffmpeg");
    let s = start_tls("large", "localhost", &[], "");
    // Lossless noise: every frame ≈ 360 KB, above the 256 KiB record buffer, so
    // each HTTPS send is sealed and sent in parts (and RTMPS ingest carries it).
    let rtmps = format!("rtmps://127.0.0.1:{}/live/big", s.rtmps_port);
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "nullsrc=s=640x360:r=5,geq=random(1)*255:128:128",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            "0",
            "-g",
            "5",
        ])
        .args(["-pix_fmt", "yuv420p", "-t", "60", "-f", "flv", &rtmps])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ffmpeg");
    let _publisher = Proc {
        child,
        name: "ffmpeg publish noise".into(),
    };
    wait_live(&s.server, "live", "big", Duration::from_secs(30));
    let ca = s.ca.as_str();
    let https = format!("https://127.0.0.1:{}/live/big.flv", s.https_port);
    let (frames, errors) = decode(&["-tls_verify", "1", "-ca_file", ca], &https, 15);
    assert!(frames >= 15, "{frames} large frames over https: {errors}");
    assert!(errors.trim().is_empty(), "decode errors: {errors}");
    let admin = s.server.admin_port;
    assert!(
        metric_with(admin, "ringcast_sent_bytes_total", "protocol=\"http_flv\"") > 15.0 * 300_000.0
    );
}

#[test]
fn https_flv_plays_with_zero_copy_sends_on() {
    require::command("ffmpeg", "ffmpeg");
    // The record buffer is outside the registered region: plain SENDMSG_ZC, and
    // the buffer must stay untouched until the kernel's notification.
    let s = start_tls("zc", "localhost", &[], "[runtime]\nzero_copy_send = true\n");
    let _publisher = publish_live(&s.server, "z", 60);
    let ca = s.ca.as_str();
    let https = format!("https://127.0.0.1:{}/live/z.flv", s.https_port);
    let (frames, errors) = decode(&["-tls_verify", "1", "-ca_file", ca], &https, 100);
    assert!(frames >= 100, "{frames} frames: {errors}");
    assert!(errors.trim().is_empty(), "decode errors: {errors}");
}

#[test]
fn a_push_relay_publishes_over_rtmps() {
    require::command("ffmpeg", "ffmpeg");
    let target = start_tls("relay", "localhost", &[], "");
    let (cert, key, ca) = (&target.cert, &target.key, target.pki.ca());
    let source = Server::start(
        1,
        &format!(
            "[[relay.push]]\nurl = \"rtmps://127.0.0.1:{}/live\"\n\
             [tls]\ncert = {cert:?}\nkey = {key:?}\nca = {ca:?}\n",
            target.rtmps_port
        ),
    );
    let _publisher = publish(&source.rtmp_url("live", "p"), 60);
    wait_live(&target.server, "live", "p", Duration::from_secs(30));
    let (frames, errors) = decode(&[], &target.server.flv_url("live", "p"), 50);
    assert!(frames >= 50, "{frames} frames relayed over rtmps: {errors}");
    let admin = target.server.admin_port;
    assert!(
        metric_with(
            admin,
            "ringcast_connections_accepted_total",
            "listener=\"rtmps\""
        ) >= 1.0
    );
}

#[test]
fn wss_plays_websocket_flv_through_the_https_listener() {
    require::command("ffmpeg", "ffmpeg");
    require::command("ffprobe", "ffmpeg");
    let s = start_tls("wss", "localhost", &[], "");
    let _publisher = publish_live(&s.server, "w", 60);

    // tungstenite over a rustls client stream verified against the test CA.
    let config = ringcast::tls::ClientTls::load(Some(&s.pki.ca()))
        .unwrap()
        .https();
    let tcp = TcpStream::connect(("127.0.0.1", s.https_port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let url = format!("wss://localhost:{}/live/w.flv", s.https_port);
    let (mut ws, response) =
        match tungstenite::client(url.as_str(), rustls::StreamOwned::new(conn, tcp)) {
            Ok(pair) => pair,
            Err(e) => panic!("wss handshake: {e}"),
        };
    assert_eq!(response.status().as_u16(), 101);
    assert_eq!(ws.get_ref().conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(
        metric_on(s.server.admin_port, "ringcast_viewers{protocol=\"ws_flv\"}"),
        1.0
    );
    // The status page lists the TLS play URLs next to the plain ones.
    let (status, page) = http_request(s.server.admin_port, "GET", "/");
    assert_eq!(status, 200);
    for listed in [
        format!("https://localhost:{}/live/w.flv", s.https_port),
        url.clone(),
        format!("rtmps://localhost:{}/live/w", s.rtmps_port),
    ] {
        assert!(
            page.contains(&listed),
            "{listed} not on the status page: {page}"
        );
    }

    // The FLV header, then one tag per binary message, reassembled.
    let mut flv = Vec::new();
    let mut video = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while video < 110 {
        assert!(Instant::now() < deadline, "60 s: {video} video tags");
        match ws.read().expect("a message") {
            tungstenite::Message::Binary(m) if flv.is_empty() => {
                assert_eq!((m.len(), &m[..3]), (9, &b"FLV"[..]), "the FLV header first");
                flv.extend_from_slice(&m);
            }
            tungstenite::Message::Binary(m) => {
                assert!(m.len() >= 15, "a tag message of {} bytes", m.len());
                let size = u32::from_be_bytes([0, m[5], m[6], m[7]]) as usize;
                assert_eq!(m.len(), 15 + size, "one FLV tag per message");
                if m[4] == 9 {
                    video += 1;
                }
                flv.extend_from_slice(&m);
            }
            other => panic!("unexpected message {other:?}"),
        }
    }
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let dir = std::env::temp_dir().join(format!(
        "ringcast-e2e-wss-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wss.flv");
    std::fs::write(&path, &flv).unwrap();
    let probed = run_bounded(
        Command::new("ffprobe")
            .args(["-v", "error", "-count_frames"])
            .args(["-show_entries", "stream=codec_name,nb_read_frames"])
            .args(["-of", "csv=p=0"])
            .arg(&path),
        Duration::from_secs(30),
    );
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&probed.stdout).to_string();
    let h264_frames: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("h264,"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        probed.status.success() && h264_frames >= 100 && text.contains("aac"),
        "ffprobe of the wss stream: {text} {}",
        String::from_utf8_lossy(&probed.stderr)
    );
}
