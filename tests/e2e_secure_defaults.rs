//! Secure defaults: out of the box the public HTTP port neither lists streams nor
//! changes state (the API, the status page and `/metrics` live on the loopback
//! admin port), admin routes off loopback need `[api] token` (ringcast refuses
//! to start without one), and an edge with origins refuses local publishers
//! unless `edge.allow_publish = true`. A second server cannot share a taken admin
//! address through SO_REUSEPORT.

mod common;
mod edge_support;

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use edge_support::*;

const ADMIN_ROUTES: [&str; 3] = ["/api/v1/streams", "/metrics", "/"];

#[test]
fn admin_routes_answer_on_the_loopback_admin_port_and_404_on_the_public_port() {
    let server = Server::start(1, "");
    for path in ADMIN_ROUTES {
        assert_eq!(
            http_request(server.http_port, "GET", path).0,
            404,
            "{path} on the public port"
        );
        assert_eq!(
            http_request(server.admin_port, "GET", path).0,
            200,
            "{path} on the admin port"
        );
    }
    let kick = "/api/v1/streams/live/anything";
    assert_eq!(http_request(server.http_port, "DELETE", kick).0, 404);
    assert_eq!(http_request(server.http_port, "OPTIONS", kick).0, 404);
}

#[test]
fn on_public_port_puts_the_admin_routes_on_the_public_port_too() {
    let server = Server::start(1, "[api]\non_public_port = true\n");
    for path in ADMIN_ROUTES {
        assert_eq!(
            http_request(server.http_port, "GET", path).0,
            200,
            "{path} on the public port"
        );
        assert_eq!(http_request(server.admin_port, "GET", path).0, 200);
    }
}

/// Runs `ringcast serve` with `args` and a config holding `toml`; returns the process.
fn serve(toml: &str, args: &[String]) -> Proc {
    let dir = std::env::temp_dir().join(format!(
        "ringcast-secure-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("ringcast.toml");
    std::fs::write(&config, toml).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args(["serve", "--cores", "1", "--config"])
        .arg(&config)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringcast");
    Proc {
        child,
        name: "ringcast".into(),
    }
}

/// Waits up to `limit` for `server` to exit, asserts it exited with a failure
/// (panicking with `still_running` if it did not exit), and returns its stderr.
fn refused_stderr(server: &mut Proc, limit: Duration, still_running: &str) -> String {
    let status = server.wait_for(limit).expect(still_running);
    assert!(!status.success(), "{status:?}");
    let mut stderr = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

fn ports_args(http: &str, admin: &str) -> Vec<String> {
    vec![
        "--rtmp".into(),
        format!("127.0.0.1:{}", free_port()),
        "--http".into(),
        format!("{http}:{}", free_port()),
        "--admin".into(),
        admin.to_owned(),
    ]
}

#[test]
fn admin_routes_off_loopback_without_a_token_refuse_to_start() {
    let cases = [
        (
            "",
            ports_args("127.0.0.1", &format!("0.0.0.0:{}", free_port())),
        ),
        (
            "[api]\non_public_port = true\n",
            ports_args("0.0.0.0", &format!("127.0.0.1:{}", free_port())),
        ),
    ];
    for (toml, args) in cases {
        let mut server = serve(toml, &args);
        let stderr = refused_stderr(
            &mut server,
            Duration::from_secs(20),
            "ringcast started with admin routes off loopback and no token",
        );
        assert!(
            stderr.contains("api.token"),
            "names the missing key: {stderr}"
        );
    }
}

/// One request with an optional bearer token; returns the status.
fn request_with_token(port: u16, method: &str, path: &str, token: Option<&str>) -> u16 {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!("{method} {path} HTTP/1.0\r\nHost: t\r\n{auth}\r\n");
    // A refusal may come back before the request is all written: still read.
    match http_exchange(port, request.as_bytes(), Duration::from_secs(15)) {
        Ok(raw) => plain::parse_http_response(&raw).0,
        Err(HttpError::Connect(e)) => panic!("connect to :{port}: {e}"),
        Err(_) => 0,
    }
}

#[test]
fn admin_routes_off_loopback_need_the_token_for_reads_and_changes() {
    let admin_port = free_port();
    let mut server = serve(
        "[api]\ntoken = \"t0ken-secure\"\n",
        &ports_args("127.0.0.1", &format!("0.0.0.0:{admin_port}")),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", admin_port)).is_err() {
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "ringcast exited"
        );
        assert!(Instant::now() < deadline, "ringcast did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let kick = "/api/v1/streams/live/anything";
    assert_eq!(request_with_token(admin_port, "DELETE", kick, None), 401);
    assert_eq!(
        request_with_token(admin_port, "DELETE", kick, Some("wrong")),
        401
    );
    for path in ADMIN_ROUTES {
        assert_eq!(
            request_with_token(admin_port, "GET", path, None),
            401,
            "{path}"
        );
    }
    let token = Some("t0ken-secure");
    assert_eq!(
        request_with_token(admin_port, "GET", "/api/v1/streams", token),
        200
    );
    assert_eq!(
        request_with_token(admin_port, "GET", "/metrics", token),
        200
    );
    // Authorised: the kick is carried out (no such stream here).
    assert_eq!(request_with_token(admin_port, "DELETE", kick, token), 404);
    server.kill();
}

#[test]
fn an_edge_with_origins_refuses_local_publishers_by_default() {
    let origin = Server::start(1, "");
    let edge = Server::start(1, &edge_toml(&[rtmp_origin(&origin)], "30s"));
    let mut refused = publish(&edge.rtmp_url("live", "local"), 5);
    let status = refused.wait_for(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| !s.success()),
        "ffmpeg's publish to the edge failed: {status:?}"
    );
    assert!(
        metric(
            &edge,
            "ringcast_connections_refused_total{reason=\"publish_disabled\"}"
        ) >= 1.0,
        "the refusal is counted"
    );
    assert_eq!(edge.http_get("/api/v1/streams/live/local").0, 404);
}

#[test]
fn an_edge_with_allow_publish_accepts_local_publishers() {
    let origin = Server::start(1, "");
    let edge = Server::start(
        1,
        &format!(
            "{}allow_publish = true\n",
            edge_toml(&[rtmp_origin(&origin)], "30s")
        ),
    );
    let mut publisher = publish(&edge.rtmp_url("live", "local"), 30);
    wait_live(&edge, "live", "local", Duration::from_secs(30));
    assert_eq!(
        metric(
            &edge,
            "ringcast_connections_refused_total{reason=\"publish_disabled\"}"
        ),
        0.0
    );
    publisher.kill();
}

#[test]
fn a_second_server_on_a_taken_admin_address_refuses_to_start() {
    let first = Server::start(1, "");
    let taken = format!("127.0.0.1:{}", first.admin_port);
    let mut second = serve("", &ports_args("127.0.0.1", &taken));
    let stderr = refused_stderr(
        &mut second,
        Duration::from_secs(30),
        "a second ringcast shared the admin address",
    );
    assert!(stderr.contains(&taken), "names the address: {stderr}");
    assert_eq!(first.http_get("/api/v1/streams").0, 200);
}
