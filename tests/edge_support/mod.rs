//! Helpers shared by the edge-mode end-to-end tests: edge configs, API and
//! metrics queries, polling.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use super::common::{FlvViewer, Server};
use ringcast::protocol::FrameKind;

/// `[edge]` TOML pulling from `origins`, closing idle pulls after `idle_close`.
pub fn edge_toml(origins: &[String], idle_close: &str) -> String {
    let list: Vec<String> = origins.iter().map(|o| format!("\"{o}\"")).collect();
    format!(
        "[edge]\norigins = [{}]\nidle_close = \"{idle_close}\"\n",
        list.join(", ")
    )
}

/// The origin URL of a ringcast server for edges: RTMP (`rtmp://…/live`) or HTTP-FLV.
pub fn rtmp_origin(server: &Server) -> String {
    format!("rtmp://127.0.0.1:{}/live", server.rtmp_port)
}

pub fn http_origin(server: &Server) -> String {
    format!("http://127.0.0.1:{}", server.http_port)
}

/// Total viewers of `app/name` on `server` per its API (None if not live).
pub fn viewers(server: &Server, app: &str, name: &str) -> Option<u64> {
    let (status, body) = server.http_get(&format!("/api/v1/streams/{app}/{name}"));
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let c = &v["viewers"];
    Some(c["http_flv"].as_u64()? + c["rtmp"].as_u64()? + c["hls"].as_u64().unwrap_or(0))
}

/// The stream's API snapshot as JSON.
pub fn stream_json(server: &Server, app: &str, name: &str) -> serde_json::Value {
    let (status, body) = server.http_get(&format!("/api/v1/streams/{app}/{name}"));
    assert_eq!(status, 200, "stream {app}/{name} not listed: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Sum of a Prometheus metric's samples (all label sets).
pub fn metric(server: &Server, name: &str) -> f64 {
    let (_, body) = server.http_get("/metrics");
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `f` until it returns true or `limit` passes.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// Reads video frames from an HTTP-FLV viewer until `n` pictures came (or the stream ends).
pub fn read_pictures(viewer: &mut FlvViewer, n: usize) -> usize {
    let mut got = 0;
    while got < n {
        match viewer.next_frame() {
            Some(f) if f.kind == FrameKind::Video && !f.sequence_header => got += 1,
            Some(_) => {}
            None => break,
        }
    }
    got
}

/// A metric's samples whose labels contain `label`, summed.
pub fn labeled_metric(server: &Server, name: &str, label: &str) -> f64 {
    let (_, body) = server.http_get("/metrics");
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{') && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Starts a ringcast edge on free loopback ports with the origins given as
/// `--origin` flags (the command line operators use), waiting until it listens.
pub fn start_edge_cli(cores: usize, origins: &[String]) -> Server {
    let (rtmp_port, http_port) = (super::common::free_port(), super::common::free_port());
    let admin_port = super::common::free_port();
    let dir = std::env::temp_dir().join(format!(
        "ringcast-edge-cli-{}-{rtmp_port}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast"));
    cmd.arg("serve")
        .args([
            "--rtmp",
            &format!("127.0.0.1:{rtmp_port}"),
            "--http",
            &format!("127.0.0.1:{http_port}"),
            "--admin",
            &format!("127.0.0.1:{admin_port}"),
        ])
        .args(["--cores", &cores.to_string()]);
    for origin in origins {
        cmd.args(["--origin", origin]);
    }
    let server = Server {
        proc: super::common::spawn_ringcast(&mut cmd, "ringcast edge"),
        rtmp_port,
        http_port,
        admin_port,
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    for port in [rtmp_port, http_port, admin_port] {
        super::common::wait_listening("127.0.0.1", port, deadline, "edge");
    }
    server
}

/// Starts a ringcast origin (one core, default config) with RTMP on
/// `rtmp_ip:rtmp_port` and HTTP on `127.0.0.1:http_port`, on ports the caller
/// chose so that a test can restart it in place; waits until both listen.
pub fn start_origin(
    rtmp_ip: &str,
    rtmp_port: u16,
    http_port: u16,
    admin_port: u16,
) -> super::common::Proc {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast"));
    cmd.args(["serve", "--cores", "1"])
        .args(["--rtmp", &format!("{rtmp_ip}:{rtmp_port}")])
        .args(["--http", &format!("127.0.0.1:{http_port}")])
        .args(["--admin", &format!("127.0.0.1:{admin_port}")]);
    let proc = super::common::spawn_ringcast(&mut cmd, format!("ringcast origin {rtmp_ip}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    super::common::wait_listening(rtmp_ip, rtmp_port, deadline, "origin");
    super::common::wait_listening("127.0.0.1", http_port, deadline, "origin");
    super::common::wait_listening("127.0.0.1", admin_port, deadline, "origin");
    proc
}
