//! Shared harness for end-to-end tests: runs the real `ringcast` binary and real
//! `ffmpeg`/`ffprobe` on loopback. Every child process is bounded in time and is
//! killed when its handle drops.

#![allow(dead_code)]

pub mod hls_playlist;
pub mod hook_server;
pub mod http1;
pub mod media;
pub mod pki;
pub mod plain;
pub mod raw_rtmp;
pub mod require;

#[allow(unused_imports)] // not every test binary uses both
pub use plain::{free_port, http_exchange, http_request, try_http_request, wait_until, HttpError};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A child process killed on drop.
pub struct Proc {
    /// The process.
    pub child: Child,
    /// What it is, for messages.
    pub name: String,
}

impl Proc {
    /// Waits for exit up to `limit`; kills it past that and returns None.
    pub fn wait_for(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGKILL and reaps.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running ringcast server on loopback ports.
pub struct Server {
    /// The process.
    pub proc: Proc,
    /// RTMP port.
    pub rtmp_port: u16,
    /// HTTP port (media only: the admin routes answer 404 there by default).
    pub http_port: u16,
    /// Admin port on loopback (API, status page, /metrics).
    pub admin_port: u16,
    /// Temp dir holding its config.
    pub dir: PathBuf,
}

impl Server {
    /// Starts ringcast with `cores` reactors and extra TOML config, waits until both ports accept.
    pub fn start(cores: usize, extra_toml: &str) -> Server {
        Server::start_limited(cores, extra_toml, None)
    }

    /// As [`Server::start`], with the process's open-file limit set to `nofile`.
    pub fn start_limited(cores: usize, extra_toml: &str, nofile: Option<u64>) -> Server {
        let rtmp_port = free_port();
        let http_port = free_port();
        let admin_port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "ringcast-test-{}-{}",
            std::process::id(),
            rtmp_port
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("ringcast.toml");
        std::fs::write(&config, extra_toml).unwrap();
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg(env!("CARGO_BIN_EXE_ringcast"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_ringcast")),
        };
        cmd.arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--rtmp")
            .arg(format!("127.0.0.1:{rtmp_port}"))
            .arg("--http")
            .arg(format!("127.0.0.1:{http_port}"))
            .arg("--admin")
            .arg(format!("127.0.0.1:{admin_port}"))
            .arg("--cores")
            .arg(cores.to_string());
        let server = Server {
            proc: spawn_ringcast(&mut cmd, "ringcast"),
            rtmp_port,
            http_port,
            admin_port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in [rtmp_port, http_port, admin_port] {
            wait_listening("127.0.0.1", port, deadline, "ringcast");
        }
        server
    }

    /// `rtmp://127.0.0.1:PORT/app/name`.
    pub fn rtmp_url(&self, app: &str, name: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{app}/{name}", self.rtmp_port)
    }

    /// `http://127.0.0.1:PORT/app/name.flv`.
    pub fn flv_url(&self, app: &str, name: &str) -> String {
        format!("http://127.0.0.1:{}/{app}/{name}.flv", self.http_port)
    }

    /// GET a path; returns (status, body). Admin routes (`/`, `/api/...`,
    /// `/metrics`) go to the admin port, everything else to the public HTTP port.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        let port = if is_admin_path(path) {
            self.admin_port
        } else {
            self.http_port
        };
        http_request(port, "GET", path)
    }

    /// GET a path on the public HTTP port, whatever it is; returns (status, body).
    pub fn public_get(&self, path: &str) -> (u16, String) {
        http_request(self.http_port, "GET", path)
    }

    /// Resident set size of the server, bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.proc.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024
    }

    /// True while the server process is alive.
    pub fn alive(&mut self) -> bool {
        self.proc.child.try_wait().unwrap().is_none()
    }
}

/// Spawns `cmd` (a `ringcast serve …`, possibly behind a wrapper such as
/// `prlimit` or `unshare`) with `RUST_LOG` passed through (default `warn`) and
/// stdin closed; the process is killed when the returned handle drops.
pub fn spawn_ringcast(cmd: &mut Command, name: impl Into<String>) -> Proc {
    let name = name.into();
    let child = cmd
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name} ({:?}): {e}", cmd.get_program()));
    Proc { child, name }
}

/// Waits until something accepts TCP connections on `ip:port`; fails naming
/// `what` once `deadline` has passed.
pub fn wait_listening(ip: &str, port: u16, deadline: Instant, what: &str) {
    while TcpStream::connect((ip, port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {ip}:{port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The API's `viewers_by_core` for `app/name` on `server` (the API must
/// answer 200 with a number per core).
pub fn viewers_by_core(server: &Server, app: &str, name: &str) -> Vec<u64> {
    let (status, body) = server.http_get(&format!("/api/v1/streams/{app}/{name}"));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["viewers_by_core"]
        .as_array()
        .unwrap_or_else(|| panic!("no viewers_by_core in {body}"))
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect()
}

/// Whether `path` is one of the admin routes served on the admin port.
pub fn is_admin_path(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    path == "/" || path == "/metrics" || path.starts_with("/api/")
}

/// ffmpeg's H.264 encoder options for the test publishers: low-latency x264,
/// one GOP a second at 25 fps.
pub const X264: &[&str] = &[
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-tune",
    "zerolatency",
    "-g",
    "25",
    "-pix_fmt",
    "yuv420p",
];

/// Starts ffmpeg publishing a lavfi test source (H.264 320x240 25 fps, 1 s GOP, AAC)
/// in real time for `seconds`.
pub fn publish(url: &str, seconds: u32) -> Proc {
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(X264)
        .args(["-c:a", "aac", "-b:a", "64k"])
        .args(["-t", &seconds.to_string(), "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg (is it installed?)");
    Proc {
        child,
        name: format!("ffmpeg publish {url}"),
    }
}

/// ffmpeg publishing a lavfi test source to `url` in real time for `seconds`:
/// `video` is the video encoder options (none: no video), `audio` whether an
/// AAC track goes too.
pub fn publish_with(ffmpeg: &Path, url: &str, seconds: u32, video: &[&str], audio: bool) -> Proc {
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"]);
    if !video.is_empty() {
        cmd.args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"]);
    }
    if audio {
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]);
        cmd.args(["-c:a", "aac", "-b:a", "64k"]);
    }
    cmd.args(video)
        .args(["-t", &seconds.to_string(), "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Proc {
        child: cmd.spawn().expect("spawn ffmpeg"),
        name: format!("ffmpeg publish {url}"),
    }
}

/// Writes `toml` to `file` and runs `ringcast check-config` on it, as an operator
/// would (bounded: 20 s).
pub fn check_config(file: &Path, toml: &str) -> Output {
    std::fs::write(file, toml).expect("write the configuration file");
    run_bounded(
        Command::new(env!("CARGO_BIN_EXE_ringcast"))
            .arg("check-config")
            .arg(file),
        Duration::from_secs(20),
    )
}

/// A finished command's stderr then stdout, as text.
pub fn output_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout)
}

/// Runs a command to completion within `limit`, killing it past that.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let killer = std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            // The process is gone once /proc/PID is (the waiter has reaped it).
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    });
    let out = child.wait_with_output().expect("wait");
    let _ = killer.join();
    out
}

/// What ffmpeg decoded from a URL.
#[derive(Debug)]
pub struct Decoded {
    /// Video frames decoded.
    pub video_frames: u64,
    /// ffmpeg's stderr at `-v error` (decode errors land here).
    pub errors: String,
    /// Exit success.
    pub ok: bool,
}

/// Pulls `url` with ffmpeg, decoding `frames` video frames (bounded by `limit`).
pub fn pull_decode(url: &str, frames: u32, limit: Duration) -> Decoded {
    let out = run_bounded(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error", "-i", url])
            .args(["-map", "0:v:0", "-frames:v", &frames.to_string()])
            .args(["-f", "framemd5", "-"]),
        limit,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let video_frames = stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count() as u64;
    Decoded {
        video_frames,
        errors: String::from_utf8_lossy(&out.stderr).to_string(),
        ok: out.status.success(),
    }
}

/// ffprobe's view of a live URL: (video codec, width, height, audio codec).
pub fn probe(url: &str) -> (String, u32, u32, String) {
    let out = run_bounded(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_type,codec_name,width,height",
            ])
            .args(["-of", "json", url]),
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("no video stream");
    let audio = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .expect("no audio stream");
    (
        video["codec_name"].as_str().unwrap_or("").to_string(),
        video["width"].as_u64().unwrap_or(0) as u32,
        video["height"].as_u64().unwrap_or(0) as u32,
        audio["codec_name"].as_str().unwrap_or("").to_string(),
    )
}

/// Waits until the server's API lists `app/name` as live. `limit` is raised to at
/// least 30 s: ffmpeg's start (x264 init, RTMP handshake, first keyframe) takes
/// seconds on a loaded machine.
pub fn wait_live(server: &Server, app: &str, name: &str, limit: Duration) {
    wait_live_on(server.admin_port, app, name, limit);
}

/// [`wait_live`] for a server known only by its admin port.
pub fn wait_live_on(admin_port: u16, app: &str, name: &str, limit: Duration) {
    let path = format!("/api/v1/streams/{app}/{name}");
    wait_until(
        &format!("stream {app}/{name} live on :{admin_port}"),
        limit.max(Duration::from_secs(30)),
        || http_request(admin_port, "GET", &path).0 == 200,
    );
}

/// Sum of a Prometheus metric's samples (every label set) on the server whose admin
/// port is `admin_port`.
pub fn metric_on(admin_port: u16, name: &str) -> f64 {
    let (_, body) = http_request(admin_port, "GET", "/metrics");
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Number of descriptors process `pid` has open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A raw HTTP-FLV viewer: connects, sends the GET, parses the response head and
/// demuxes frames with ringcast's own FLV demuxer.
pub struct FlvViewer {
    /// The socket.
    pub stream: TcpStream,
    demux: ringcast::protocol::flv::demux::FlvDemuxer,
    pending: Vec<u8>,
    head_done: bool,
    chunked: bool,
    /// HTTP status of the response.
    pub status: u16,
    /// When the connection was opened.
    pub connected_at: Instant,
}

impl FlvViewer {
    /// Connects and sends `GET path HTTP/1.0` (identity body, close-delimited).
    pub fn connect(port: u16, path: &str) -> FlvViewer {
        let connected_at = Instant::now();
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("FLV viewer of {path}: connect to port {port}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("FLV viewer of {path}: set a read timeout: {e}"));
        let mut stream = stream;
        // One write, and its failure ignored: a server that refuses the request
        // (a 4xx) may answer and close before it is all in, making the write
        // fail with EPIPE/ECONNRESET; what it answered is still read by
        // `next_frame`, and no answer at all leaves `status` 0.
        let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
        let _ = stream.write_all(request.as_bytes());
        FlvViewer {
            stream,
            demux: ringcast::protocol::flv::demux::FlvDemuxer::new(Default::default()),
            pending: Vec::new(),
            head_done: false,
            chunked: false,
            status: 0,
            connected_at,
        }
    }

    /// Reads until the next frame; None at end of stream (or read timeout).
    pub fn next_frame(&mut self) -> Option<ringcast::protocol::Frame> {
        loop {
            if self.head_done {
                let mut input = &self.pending[..];
                let before = input.len();
                let frame = self
                    .demux
                    .decode(&mut input)
                    .expect("valid FLV from server");
                let used = before - input.len();
                self.pending.drain(..used);
                if frame.is_some() {
                    return frame;
                }
            } else if let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.pending[..end]).to_string();
                self.status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                self.chunked = head
                    .to_ascii_lowercase()
                    .contains("transfer-encoding: chunked");
                assert!(!self.chunked, "HTTP/1.0 request must get an identity body");
                self.pending.drain(..end + 4);
                self.head_done = true;
                if self.status != 200 {
                    return None;
                }
                continue;
            }
            let mut buf = [0u8; 65536];
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            }
        }
    }
}
