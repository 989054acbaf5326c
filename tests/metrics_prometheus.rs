//! End to end: a real Prometheus server scrapes ringcast's `/metrics` over
//! loopback, and a `ringcast_` series is read back through Prometheus's HTTP API.
//!
//! The scrape target is a real `ringcast serve` with a real ffmpeg publisher; the
//! test reads back the publisher gauge and the ingest frame counter.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

mod common;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const DEADLINE: Duration = Duration::from_secs(60);

struct PrometheusServer {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl PrometheusServer {
    fn start(target: &str, metrics_path: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ringcast-prom-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(dir.join("data")).expect("temp dir");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: ringcast\n    metrics_path: {metrics_path}\n\
             \x20   static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("write config");
        let addr = free_loopback_port();
        let child = Command::new(PROMETHEUS)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).expect("log file"))
            .spawn()
            .expect("spawn prometheus");
        Self { child, dir, addr }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_loopback_port() -> SocketAddr {
    // Bind-and-release: the port stays free long enough for Prometheus to take it.
    let l = TcpListener::bind("127.0.0.1:0").expect("probe bind");
    l.local_addr().expect("probe addr")
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One instant query against Prometheus's HTTP API; the first sample's value.
fn query(prom: SocketAddr, promql: &str) -> Result<Option<f64>, String> {
    let mut conn =
        TcpStream::connect_timeout(&prom, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "GET /api/v1/query?query={} HTTP/1.0\r\nHost: {prom}\r\n\r\n",
        percent_encode(promql)
    );
    conn.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = String::new();
    conn.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or("no HTTP body")?;
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
    if v["status"] != "success" {
        return Err(format!("query failed: {body}"));
    }
    Ok(v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok()))
}

/// Starts Prometheus against `target` and polls `promql` until it returns a value.
#[test]
fn prometheus_scrapes_ringcast_and_returns_a_series() {
    common::require::file(PROMETHEUS, "prometheus");
    let server = common::Server::start(1, "");
    let mut publisher = common::publish(&server.rtmp_url("live", "prom"), 60);
    common::wait_live(&server, "live", "prom", Duration::from_secs(10));
    let target = format!("127.0.0.1:{}", server.admin_port);
    let prom = PrometheusServer::start(&target, "/metrics");
    let publishers = wait_for_value(&prom, "ringcast_publishers{job=\"ringcast\"}", |v| v == 1.0);
    assert_eq!(publishers, 1.0);
    let frames = wait_for_value(
        &prom,
        "ringcast_received_frames_total{source=\"publisher\",job=\"ringcast\"}",
        |v| v > 0.0,
    );
    assert!(frames > 0.0, "ingest frames counted: {frames}");

    // The live exposition passes promtool's linter too.
    let (status, body) = server.http_get("/metrics");
    assert_eq!(status, 200);
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics on ringcast's live /metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    publisher.kill();
}

/// Polls Prometheus until `promql` has a sample accepted by `ok`.
fn wait_for_value(prom: &PrometheusServer, promql: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < DEADLINE {
        match query(prom.addr, promql) {
            Ok(Some(v)) if ok(v) => return v,
            Ok(Some(v)) => last = format!("value {v}"),
            Ok(None) => last = "no sample yet".to_owned(),
            Err(e) => last = e,
        }
        thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "{promql} never came back through Prometheus in {DEADLINE:?}: {last}\nprometheus log:\n{}",
        prom.log()
    );
}
