//! End to end: a real Prometheus server scrapes ringcast's `/metrics` over
//! loopback, and a `ringcast_` series is read back through Prometheus's HTTP API.
//!
//! By default the scrape target is a small in-test HTTP endpoint that answers
//! through `server::api::route` (the same code `ringcast serve` uses). Set
//! `RINGCAST_METRICS_TARGET=host:port` to point Prometheus at a running server
//! instead; the test then only requires `ringcast_build_info` to come back.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ringcast::metrics::{MetricsRegistry, Protocol};
use ringcast::server::api::{route, ApiConfig, ServerSnapshot};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const DEADLINE: Duration = Duration::from_secs(60);
const MAX_REQUEST_HEAD: usize = 8192;

/// Serves the registry over HTTP/1.0 on loopback until dropped.
struct MetricsEndpoint {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsEndpoint {
    fn start(registry: MetricsRegistry) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind metrics endpoint");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let config = ApiConfig::default();
            while !stop_flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => serve_one(conn, &config, &registry),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(mut conn: TcpStream, config: &ApiConfig, registry: &MetricsRegistry) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next().unwrap_or("").split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let resp = route(
        method,
        target,
        &[],
        config,
        registry,
        ServerSnapshot::default,
    );
    let mut out = format!(
        "HTTP/1.0 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        resp.status,
        resp.reason(),
        resp.content_type,
        resp.body.len()
    )
    .into_bytes();
    out.extend_from_slice(&resp.body);
    let _ = conn.write_all(&out);
}

/// A Prometheus server in a temp dir, killed and cleaned up on drop.
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
fn scrape_through_prometheus(target: &str, metrics_path: &str, promql: &str) -> f64 {
    let prom = PrometheusServer::start(target, metrics_path);
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < DEADLINE {
        match query(prom.addr, promql) {
            Ok(Some(v)) => return v,
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

#[test]
fn prometheus_scrapes_ringcast_and_returns_a_series() {
    if !Path::new(PROMETHEUS).exists() {
        eprintln!("SKIPPED: {PROMETHEUS} not installed (Debian package `prometheus`)");
        return;
    }
    if let Ok(target) = std::env::var("RINGCAST_METRICS_TARGET") {
        let v = scrape_through_prometheus(&target, "/metrics", "ringcast_build_info");
        assert_eq!(v, 1.0);
        return;
    }
    let registry = MetricsRegistry::new(2).expect("registry");
    registry
        .core(0)
        .expect("core 0")
        .frames_sent
        .add(Protocol::Rtmp, 40);
    registry
        .core(1)
        .expect("core 1")
        .frames_sent
        .add(Protocol::Rtmp, 2);
    let endpoint = MetricsEndpoint::start(registry);
    let v = scrape_through_prometheus(
        &endpoint.addr.to_string(),
        "/metrics",
        "ringcast_sent_frames_total{protocol=\"rtmp\",job=\"ringcast\"}",
    );
    assert_eq!(v, 42.0, "sum over both cores as stored by Prometheus");
}
