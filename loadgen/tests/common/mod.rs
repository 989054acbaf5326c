//! Shared helpers for loadgen's integration tests: media made by ffmpeg, counts
//! made by ffprobe, free ports, and running the loadgen binary for its JSON report.

#![allow(dead_code)]

// ringcast's std-only test helpers; a separate package, so included by path.
#[path = "../../../tests/common/plain.rs"]
mod plain;
#[allow(unused_imports)] // not every test binary uses both
pub use plain::{free_port, wait_until};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `GET path` on a loopback HTTP port (HTTP/1.0, body to EOF); (status, body),
/// status 0 (the body saying why) when no response arrived. The shared
/// [`plain::http_request`]: a server that answers early and closes is no panic.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    plain::http_request(port, "GET", path)
}

/// Established TCP connections whose local port is `port` (the server side of
/// each client), from /proc/net/tcp.
pub fn established_on(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3
                && f[3] == "01"
                && f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
        })
        .count()
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!("loadgen-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop (by its own pid).
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listening on port {port}");
}

/// Encodes `seconds` of 25 fps H.264 (keyframe every `gop` frames) + AAC into an FLV.
pub fn make_flv(path: &Path, seconds: u32, gop: u32) {
    let status = Command::new("ffmpeg")
        .args([
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            &seconds.to_string(),
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            &gop.to_string(),
            "-keyint_min",
            &gop.to_string(),
        ])
        .args([
            "-sc_threshold",
            "0",
            "-b:v",
            "300k",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
        ])
        .arg(path)
        .status()
        .expect("ffmpeg installed");
    assert!(status.success());
}

/// Video frames as ffprobe decodes them: one bool per frame, true for keyframes.
pub fn ffprobe_keyflags(input: &str, extra: &[&str]) -> Vec<bool> {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(extra)
        .args([
            "-select_streams",
            "v:0",
            "-show_frames",
            "-show_entries",
            "frame=key_frame",
            "-of",
            "csv=p=0",
        ])
        .arg(input)
        .output()
        .expect("ffprobe installed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| match l.split(',').next().unwrap_or("").trim() {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        })
        .collect()
}

/// Distances (in frames) between consecutive keyframes.
pub fn gop_lengths(keyflags: &[bool]) -> Vec<u64> {
    let keys: Vec<usize> = keyflags
        .iter()
        .enumerate()
        .filter(|(_, &k)| k)
        .map(|(i, _)| i)
        .collect();
    keys.windows(2).map(|w| (w[1] - w[0]) as u64).collect()
}

/// Runs `loadgen` with `args` plus `--json`, and returns the parsed report.
pub fn loadgen(args: &[&str], dir: &TempDir) -> serde_json::Value {
    let json = dir.path(&format!("report-{}.json", free_port()));
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .output()
        .expect("run loadgen");
    assert!(
        out.status.success(),
        "loadgen failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
}

/// Checks a play report against ffprobe's view of the same stream (`probe`: one
/// keyframe flag per video frame): all `viewers` played, each saw every frame and
/// keyframe ffprobe saw, every frame was stamped, none went missing.
pub fn assert_every_viewer_saw_every_frame(
    report: &serde_json::Value,
    probe: &[bool],
    viewers: u64,
) {
    assert_eq!(count(report, "viewers_playing"), viewers);
    assert_eq!(
        count(report, "video_frames"),
        viewers * probe.len() as u64,
        "each viewer saw every frame ffprobe saw"
    );
    assert_eq!(
        count(report, "keyframes"),
        viewers * probe.iter().filter(|&&k| k).count() as u64
    );
    assert_eq!(
        count(report, "stamped_frames"),
        count(report, "video_frames")
    );
    assert_eq!(count(report, "missing_frames"), 0);
}

pub fn count(report: &serde_json::Value, name: &str) -> u64 {
    report["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}"))
}

/// An RTMP server for a test: nginx-rtmp started in a temp dir, or the server named by
/// LOADGEN_TEST_RTMP_URL (e.g. `rtmp://127.0.0.1:1935/live`, an application URL)
/// with LOADGEN_TEST_SERVER_PID naming the process to SIGSTOP for stall tests.
pub struct RtmpServer {
    /// `rtmp://127.0.0.1:PORT/live`.
    pub app_url: String,
    /// The process that moves the media (nginx's worker).
    pub media_pid: Option<i32>,
    /// nginx's `rtmp_stat` HTTP port (None for an external server).
    stat_port: Option<u16>,
    _nginx: Option<Guard>,
    _dir: Option<TempDir>,
}

impl RtmpServer {
    /// Clients of stream `name` (players and publisher) per nginx's rtmp_stat; for
    /// an external server, established connections to its port (a weaker signal).
    pub fn clients(&self, name: &str) -> usize {
        let Some(stat) = self.stat_port else {
            let port = self
                .app_url
                .rsplit(':')
                .next()
                .and_then(|p| p.split('/').next()?.parse().ok())
                .unwrap_or(1935);
            return established_on(port);
        };
        stat_value(stat, name, "nclients") as usize
    }

    /// Bytes nginx has sent for stream `name` (rtmp_stat); None for an external server.
    pub fn bytes_out(&self, name: &str) -> Option<u64> {
        Some(stat_value(self.stat_port?, name, "bytes_out"))
    }

    pub fn start() -> RtmpServer {
        if let Ok(url) = std::env::var("LOADGEN_TEST_RTMP_URL") {
            let pid = std::env::var("LOADGEN_TEST_SERVER_PID")
                .ok()
                .and_then(|p| p.parse().ok());
            return RtmpServer {
                app_url: url,
                media_pid: pid,
                stat_port: None,
                _nginx: None,
                _dir: None,
            };
        }
        let module = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
        assert!(
            Path::new(module).exists(),
            "{module} missing: install the Debian package `libnginx-mod-rtmp` (./tests/run.sh does)"
        );
        let dir = TempDir::new("nginx");
        let port = free_port();
        let stat_port = free_port();
        // rtmp_stat tells when players have asked for a stream (tests wait on it).
        let conf = format!(
            "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\nworker_processes 1;\n\
             events {{ worker_connections 1024; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; }} }} }}\n\
             http {{ access_log off; client_body_temp_path body; \
             server {{ listen 127.0.0.1:{stat_port}; location /stat {{ rtmp_stat all; }} }} }}\n"
        );
        std::fs::write(dir.path("nginx.conf"), conf).unwrap();
        let prefix = dir.0.to_str().unwrap().to_string();
        let globals = format!("daemon off; pid {prefix}/nginx.pid; error_log {prefix}/err.log;");
        let child = Command::new("nginx")
            .args(["-p", &prefix, "-c", "nginx.conf", "-g", &globals])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx: install the Debian package `nginx` (./tests/run.sh does)");
        let master = child.id() as i32;
        let guard = Guard(child);
        wait_for_port(port);
        wait_for_port(stat_port);
        let worker = nginx_worker(master);
        RtmpServer {
            app_url: format!("rtmp://127.0.0.1:{port}/live"),
            media_pid: worker,
            stat_port: Some(stat_port),
            _nginx: Some(guard),
            _dir: Some(dir),
        }
    }
}

/// The first `<tag>` value inside stream `name` of nginx's rtmp_stat XML (0 if absent).
fn stat_value(stat_port: u16, name: &str, tag: &str) -> u64 {
    let (_, xml) = http_get(stat_port, "/stat");
    xml.split_once(&format!("<name>{name}</name>"))
        .and_then(|(_, rest)| rest.split_once(&format!("<{tag}>")))
        .and_then(|(_, rest)| rest.split_once('<'))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0)
}

/// The single worker process of the nginx master `master`.
fn nginx_worker(master: i32) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
            .unwrap_or_default();
        if let Some(pid) = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
        {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Starts loadgen in the background; its JSON report lands in `json`.
pub fn loadgen_bg(args: &[&str], json: &Path) -> Guard {
    let child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .arg("--json")
        .arg(json)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run loadgen");
    Guard(child)
}

/// Waits for a background loadgen to finish successfully and reads its report.
pub fn report_of(mut g: Guard, json: &Path) -> serde_json::Value {
    let status = g.0.wait().unwrap();
    assert!(status.success(), "loadgen exited with {status}");
    serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap()
}

pub fn failures(report: &serde_json::Value) -> Vec<(String, String, u64)> {
    report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["phase"].as_str().unwrap().to_string(),
                f["kind"].as_str().unwrap().to_string(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// ringcast itself, from the workspace's build (next to the loadgen binary), on
/// fresh ports and one core. Fails when the binary was not built
/// (`cargo test --workspace` builds it; `-p loadgen` alone does not).
pub struct Ringcast {
    /// `rtmp://127.0.0.1:PORT/live`.
    pub rtmp_app: String,
    /// `http://127.0.0.1:PORT/live`.
    pub http_app: String,
    /// The server process, to SIGSTOP.
    pub pid: i32,
    /// Its loopback admin port (API and /metrics; the HTTP port answers them 404).
    pub admin_port: u16,
    _child: Guard,
}

impl Ringcast {
    /// Seconds `live/name` has been live per the API (None while it is not).
    pub fn uptime_secs(&self, name: &str) -> Option<u64> {
        let (status, body) = http_get(self.admin_port, &format!("/api/v1/streams/live/{name}"));
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["uptime_secs"].as_u64()
    }

    /// Sum of a metric's samples (every label set), from /metrics.
    pub fn metric(&self, name: &str) -> f64 {
        let (_, body) = http_get(self.admin_port, "/metrics");
        body.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn start() -> Ringcast {
        Ringcast::start_with_config(None)
    }

    /// Like [`Ringcast::start`], with a TOML config file holding `config`.
    pub fn start_with_config(config: Option<&str>) -> Ringcast {
        Ringcast::start_with(config, &[], &[])
    }

    /// Like [`Ringcast::start_with_config`], with `extra` command-line arguments
    /// and the listeners on `ports` waited for too.
    pub fn start_with(config: Option<&str>, extra: &[&str], ports: &[u16]) -> Ringcast {
        let exe = Path::new(env!("CARGO_BIN_EXE_loadgen")).with_file_name("ringcast");
        assert!(
            exe.exists(),
            "{} not built: run `cargo build -p ringcast` (or test with --workspace)",
            exe.display()
        );
        let (rtmp, http, admin) = (free_port(), free_port(), free_port());
        let dir = TempDir::new("ringcast-config");
        let mut cmd = Command::new(exe);
        if let Some(toml) = config {
            let path = dir.path("ringcast.toml");
            std::fs::write(&path, toml).unwrap();
            cmd.arg("serve").arg("--config").arg(&path);
        } else {
            cmd.arg("serve");
        }
        let child = cmd
            .args([
                "--cores",
                "1",
                "--rtmp",
                &format!("127.0.0.1:{rtmp}"),
                "--http",
                &format!("127.0.0.1:{http}"),
                "--admin",
                &format!("127.0.0.1:{admin}"),
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ringcast");
        let pid = child.id() as i32;
        let guard = Guard(child);
        wait_for_port(rtmp);
        wait_for_port(http);
        wait_for_port(admin);
        for &port in ports {
            wait_for_port(port);
        }
        Ringcast {
            rtmp_app: format!("rtmp://127.0.0.1:{rtmp}/live"),
            http_app: format!("http://127.0.0.1:{http}/live"),
            pid,
            admin_port: admin,
            _child: guard,
        }
    }
}
