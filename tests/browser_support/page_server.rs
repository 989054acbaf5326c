//! The test's own web origin: a small HTTP/1.1 server on a loopback port of its
//! own that serves the test pages (`tests/browser/pages/`) and the player
//! libraries (`tests/browser/node_modules/`), and receives the pages' reports
//! (`POST /report`). Media comes from ringcast on another port, so every media
//! request the players make is cross-origin, as on a real site.
//!
//! Bounded: at most [`MAX_CONNECTIONS`] connections at once, request heads of
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

/// Connections served at once; more are answered 503.
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

/// A running page server; stopped (and its accept thread joined) on drop.
pub struct PageServer {
    /// Its loopback port.
    pub port: u16,
    /// Report bodies as the pages POSTed them, oldest first.
    pub reports: Receiver<String>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl PageServer {
    /// Binds `127.0.0.1:0` and starts serving.
    pub fn start() -> PageServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind page server");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("page server address").port();
        let (tx, reports) = sync_channel(MAX_QUEUED_REPORTS);
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let stop = stop.clone();
            std::thread::spawn(move || accept_loop(listener, tx, stop))
        };
        PageServer {
            port,
            reports,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT` (the pages' origin).
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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

fn accept_loop(listener: TcpListener, reports: SyncSender<String>, stop: Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    let _ = respond(&mut stream, 503, "text/plain", b"busy");
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (reports, active) = (reports.clone(), active.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &reports);
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

/// Answers one request on `stream`, then closes it.
fn serve(mut stream: TcpStream, reports: &SyncSender<String>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > MAX_HEAD {
            return respond(&mut stream, 431, "text/plain", b"head too large");
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
                return respond(&mut stream, 413, "text/plain", b"report too large");
            }
            let mut body = buf.split_off(head_end);
            body.truncate(length);
            let missing = length - body.len();
            let mut rest = vec![0u8; missing];
            stream.read_exact(&mut rest)?;
            body.extend_from_slice(&rest);
            // A full queue means the test stopped listening: drop the report.
            let _ = reports.try_send(String::from_utf8_lossy(&body).into_owned());
            respond(&mut stream, 204, "text/plain", b"")
        }
        ("GET", _) => match file_for(path) {
            Some(file) => match std::fs::read(&file) {
                Ok(bytes) => respond(&mut stream, 200, content_type(path), &bytes),
                Err(_) => respond(&mut stream, 404, "text/plain", b"missing file"),
            },
            None => respond(&mut stream, 404, "text/plain", b"not found"),
        },
        _ => respond(&mut stream, 405, "text/plain", b"method not allowed"),
    }
}

fn content_type(path: &str) -> &'static str {
    if path.ends_with(".html") {
        "text/html; charset=utf-8"
    } else {
        "text/javascript; charset=utf-8"
    }
}

fn respond(stream: &mut TcpStream, status: u16, kind: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}
