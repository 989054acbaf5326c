//! The test's own web origin: a small HTTP/1.1 server on a loopback port of its
//! own that serves the test pages (`tests/browser/pages/`) and the player
//! libraries (`tests/browser/node_modules/`), and receives the pages' reports
//! (`POST /report`), over plain HTTP or over TLS with a test certificate.
//! Media comes from ringcast on another port, so every media request the
//! players make is cross-origin, as on a real site.
//!
//! Bounded: at most [`MAX_CONNECTIONS`] connections at once (more are closed), request heads of
//! [`MAX_HEAD`] bytes, bodies of [`MAX_BODY`] bytes, [`IO_TIMEOUT`] per read or
//! write, one response per connection, and a bounded report queue.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// Connections served at once; more are closed unanswered.
const MAX_CONNECTIONS: usize = 32;
/// Largest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// Largest request body read (a report is a few KiB).
const MAX_BODY: usize = 1024 * 1024;
/// Read/write timeout of a connection.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Reports queued and not yet taken by the test (the page sends one a second).
const MAX_QUEUED_REPORTS: usize = 256;

/// `tests/browser/` in the source tree.
pub fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// The files a page may load, by URL path: the pages themselves and each
/// player library's browser build inside its npm package.
fn file_for(path: &str) -> Option<PathBuf> {
    let dir = browser_dir();
    let file = match path {
        "/pages/probe.js" | "/pages/flv.html" | "/pages/hls.html" | "/pages/dash.html" => {
            dir.join(path.trim_start_matches('/'))
        }
        "/lib/mpegts.js" => dir.join(super::Library::Mpegts.file()),
        "/lib/hls.js" => dir.join(super::Library::Hls.file()),
        "/lib/dash.js" => dir.join(super::Library::Dash.file()),
        _ => return None,
    };
    Some(file)
}

/// What the server did, for failure messages.
#[derive(Default)]
struct Counts {
    answered: AtomicUsize,
    failed: AtomicUsize,
}

/// A running page server; stopped (and its accept thread joined) on drop.
pub struct PageServer {
    /// Its loopback port.
    pub port: u16,
    /// Report bodies as the pages POSTed them, oldest first.
    pub reports: Receiver<String>,
    tls: bool,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl PageServer {
    /// Binds `127.0.0.1:0` and starts serving: HTTPS with `tls`, else HTTP.
    pub fn start(tls: Option<Arc<ServerConfig>>) -> PageServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind page server");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("page server address").port();
        let (tx, reports) = sync_channel(MAX_QUEUED_REPORTS);
        let stop = Arc::new(AtomicBool::new(false));
        let https = tls.is_some();
        let counts = Arc::new(Counts::default());
        let accept = {
            let (stop, counts) = (stop.clone(), counts.clone());
            std::thread::spawn(move || accept_loop(listener, tls, tx, counts, stop))
        };
        PageServer {
            port,
            reports,
            tls: https,
            counts,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT` or `https://…` (the pages' origin).
    pub fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `N requests answered, M connections failed` (a failed TLS handshake, a
    /// client gone mid-request): says whether the browser reached the page.
    pub fn activity(&self) -> String {
        format!(
            "{} requests answered, {} connections failed",
            self.counts.answered.load(Ordering::Relaxed),
            self.counts.failed.load(Ordering::Relaxed)
        )
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    reports: SyncSender<String>,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    drop(stream); // over the cap: closed unanswered, the browser retries
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (reports, active, tls) = (reports.clone(), active.clone(), tls.clone());
                let counts = counts.clone();
                std::thread::spawn(move || {
                    // A failed handshake or a vanished client only ends this connection.
                    let outcome = match serve(stream, tls, &reports) {
                        Ok(()) => &counts.answered,
                        Err(_) => &counts.failed,
                    };
                    outcome.fetch_add(1, Ordering::Relaxed);
                    active.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Answers one request on `stream` (through TLS with `tls`), then closes it.
fn serve(
    stream: TcpStream,
    tls: Option<Arc<ServerConfig>>,
    reports: &SyncSender<String>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    match tls {
        Some(config) => {
            let conn = ServerConnection::new(config).map_err(std::io::Error::other)?;
            let mut tls = StreamOwned::new(conn, stream);
            answer(&mut tls, reports)?;
            tls.conn.send_close_notify();
            tls.flush()
        }
        None => answer(&mut { stream }, reports),
    }
}

/// Reads one request from `stream` and writes its response.
fn answer(stream: &mut impl ReadWrite, reports: &SyncSender<String>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > MAX_HEAD {
            return respond(stream, 431, "text/plain", b"head too large");
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk)? {
            0 => return Ok(()),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or(target);
    match (method, path) {
        ("POST", "/report") => {
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if length > MAX_BODY {
                return respond(stream, 413, "text/plain", b"report too large");
            }
            let mut body = buf.split_off(head_end);
            body.truncate(length);
            let missing = length - body.len();
            let mut rest = vec![0u8; missing];
            stream.read_exact(&mut rest)?;
            body.extend_from_slice(&rest);
            // A full queue means the test stopped listening: drop the report.
            let _ = reports.try_send(String::from_utf8_lossy(&body).into_owned());
            respond(stream, 204, "text/plain", b"")
        }
        ("GET", _) => match file_for(path) {
            Some(file) => match std::fs::read(&file) {
                Ok(bytes) => respond(stream, 200, content_type(path), &bytes),
                Err(_) => respond(stream, 404, "text/plain", b"missing file"),
            },
            None => respond(stream, 404, "text/plain", b"not found"),
        },
        _ => respond(stream, 405, "text/plain", b"method not allowed"),
    }
}

fn content_type(path: &str) -> &'static str {
    if path.ends_with(".html") {
        "text/html; charset=utf-8"
    } else {
        "text/javascript; charset=utf-8"
    }
}

/// A byte stream both ways: a socket, or TLS over one.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn respond(stream: &mut impl Write, status: u16, kind: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}
