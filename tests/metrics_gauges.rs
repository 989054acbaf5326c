//! The reactor gauges an operator sizes a box with agree with the CPU the core
//! thread really uses: under a fixed load (ffmpeg publishing, a few hundred
//! HTTP-FLV viewers reading on loopback) `ringcast_reactor_busy_ratio` and the
//! busy/idle counters match the thread's CPU share read from
//! `/proc/<pid>/task/<tid>/stat` over the same window, and the send counters
//! read non-zero.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const VIEWERS: usize = 800;
/// The sampling window: several gauge windows (one second each) long.
const WINDOW: Duration = Duration::from_secs(6);
/// Relative tolerance between a ratio the server reports and the `/proc` share
/// (the old, wall-clock gauge read a third of the truth).
const TOLERANCE: f64 = 0.10;
/// Name the server gives its first core thread (`runtime::cores`).
const CORE_THREAD: &str = "ringcast-core-0";

/// One scrape of `/metrics` (through the helper, which knows the admin address).
fn scrape(server: &Server) -> String {
    let (status, body) = server.http_get("/metrics");
    assert_eq!(status, 200, "/metrics answered {status}");
    body
}

/// The value of the sample whose name-and-labels are exactly `series`.
fn value(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} not in /metrics"))
}

/// The thread of process `pid` whose name is `name`.
fn thread_by_name(pid: u32, name: &str) -> u32 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("/proc task dir")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|tid| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
                .is_ok_and(|c| c.trim_end() == name)
        })
        .unwrap_or_else(|| panic!("no thread named {name} in process {pid}"))
}

/// utime + stime of a thread, in clock ticks.
fn cpu_ticks(pid: u32, tid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).expect("stat");
    // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields[11].parse().expect("utime");
    let stime: u64 = fields[12].parse().expect("stime");
    utime + stime
}

/// Viewers that read and discard everything, all polled by one thread.
struct Readers {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Readers {
    fn start(port: u16, path: &str, n: usize) -> Readers {
        let streams: Vec<TcpStream> = (0..n)
            .map(|i| {
                let mut s = TcpStream::connect(("127.0.0.1", port))
                    .unwrap_or_else(|e| panic!("viewer {i}: connect to port {port}: {e}"));
                write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")
                    .unwrap_or_else(|e| panic!("viewer {i}: writing GET {path}: {e}"));
                s.set_nonblocking(true)
                    .unwrap_or_else(|e| panic!("viewer {i}: set nonblocking: {e}"));
                s
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut streams = streams;
            let mut buf = vec![0u8; 256 << 10];
            let mut fds: Vec<libc::pollfd> = streams
                .iter()
                .map(|s| libc::pollfd {
                    fd: s.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            while !flag.load(Ordering::Relaxed) {
                // SAFETY: `fds` is a valid array of `fds.len()` pollfds.
                let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, 100) };
                if n <= 0 {
                    continue;
                }
                for (pfd, s) in fds.iter_mut().zip(streams.iter_mut()) {
                    if pfd.revents != 0 {
                        if let Ok(0) = s.read(&mut buf) {
                            pfd.fd = -1; // closed by the server: stop polling it
                        }
                    }
                }
            }
        });
        Readers {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn busy_ratio_matches_the_core_threads_cpu_share() {
    require::command("ffmpeg", "ffmpeg");
    let server = Server::start(1, "");
    let pid = server.proc.pid();
    let tid = thread_by_name(pid, CORE_THREAD);
    let _publisher = publish(&server.rtmp_url("live", "load"), 180);
    wait_live(&server, "live", "load", Duration::from_secs(60));
    let _readers = Readers::start(server.http_port, "/live/load.flv", VIEWERS);
    wait_until("all viewers attached", Duration::from_secs(60), || {
        let body = scrape(&server);
        value(&body, "ringcast_viewers{protocol=\"http_flv\"}") >= VIEWERS as f64
    });
    // Let a full gauge window pass with every viewer attached and fed.
    let settled = value(
        &scrape(&server),
        "ringcast_reactor_submits_total{core=\"0\"}",
    );
    wait_until("two more gauge windows", Duration::from_secs(30), || {
        let body = scrape(&server);
        value(&body, "ringcast_reactor_submits_total{core=\"0\"}") > settled
            && value(
                &body,
                "ringcast_reactor_sends_per_viewer_per_second{core=\"0\"}",
            ) > 0.0
    });

    // SAFETY: sysconf has no preconditions.
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let before = scrape(&server);
    let (t0, ticks0) = (Instant::now(), cpu_ticks(pid, tid));
    let mut gauges = Vec::new();
    // The sampling window, on the same clock the shares are computed with.
    while t0.elapsed() < WINDOW {
        std::thread::sleep(Duration::from_secs(1));
        gauges.push(value(
            &scrape(&server),
            "ringcast_reactor_busy_ratio{core=\"0\"}",
        ));
    }
    let (ticks1, wall) = (cpu_ticks(pid, tid), t0.elapsed());
    let after = scrape(&server);

    let proc_share = (ticks1 - ticks0) as f64 / ticks_per_sec / wall.as_secs_f64();
    let gauge = gauges.iter().sum::<f64>() / gauges.len() as f64;
    let delta = |series: &str| value(&after, series) - value(&before, series);
    let busy = delta("ringcast_reactor_busy_seconds_total{core=\"0\"}");
    let idle = delta("ringcast_reactor_idle_seconds_total{core=\"0\"}");
    let counters = busy / (busy + idle);
    eprintln!(
        "core thread CPU share from /proc {proc_share:.3}; busy_ratio gauge {gauge:.3} \
         (samples {gauges:?}); busy/(busy+idle) {counters:.3}"
    );
    assert!(
        proc_share >= 0.05,
        "the load kept the core only {proc_share:.3} busy: nothing to compare"
    );
    assert!(
        (gauge - proc_share).abs() <= TOLERANCE * proc_share,
        "busy_ratio {gauge:.3} vs /proc CPU share {proc_share:.3}"
    );
    assert!(
        (counters - proc_share).abs() <= TOLERANCE * proc_share,
        "busy/(busy+idle) {counters:.3} vs /proc CPU share {proc_share:.3}"
    );

    let sends = delta("ringcast_reactor_sends_total{core=\"0\"}");
    let submits = delta("ringcast_reactor_submits_total{core=\"0\"}");
    let shaped = delta("ringcast_reactor_send_frames_count{core=\"0\"}");
    let frames = delta("ringcast_reactor_send_frames_sum{core=\"0\"}");
    let per_viewer = value(
        &after,
        "ringcast_reactor_sends_per_viewer_per_second{core=\"0\"}",
    );
    let per_submit = value(&after, "ringcast_reactor_sends_per_submit{core=\"0\"}");
    eprintln!(
        "sends {sends}, submits {submits}, frames per send {:.2}, \
         sends per viewer per second {per_viewer:.1}, sends per submit {per_submit:.1}",
        frames / shaped
    );
    assert!(sends > 0.0 && submits > 0.0 && shaped > 0.0 && frames >= shaped);
    assert!(per_submit > 0.0, "sends_per_submit read 0 under load");
    // Each viewer is owed ~68 frames a second (25 video + ~43 AAC); it gets them
    // in at least one send a second and at most one send per frame (plus
    // remainders of partial sends).
    assert!(
        per_viewer > 0.5 && per_viewer < 200.0,
        "sends per viewer per second {per_viewer}"
    );
}
