//! An HTTP/1.x client of one TCP connection, for tests that keep it: keep-alive
//! and pipelined requests, a byte range, a response head read while the body
//! streams on (HTTP-FLV), a status line timed. Every failure names the request
//! and what failed; a write the server cut short (it answered early and closed)
//! is not a failure by itself: the answer is still read, and only when none
//! comes does the message carry the write's error too.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One HTTP/1.x response (Content-Length or chunked body).
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The head as received, up to its blank line (exclusive).
    pub head: String,
    /// (name, value) pairs, trimmed, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// A client connection to `127.0.0.1:port`.
pub struct Conn {
    s: TcpStream,
    pending: Vec<u8>,
    /// The first line of the last request, for messages.
    last: String,
    /// What writing the last request met, if it failed.
    write_error: Option<std::io::Error>,
}

impl Conn {
    /// Connects, reads bounded by `read_timeout`.
    pub fn connect(port: u16, read_timeout: Duration) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        s.set_read_timeout(Some(read_timeout))
            .unwrap_or_else(|e| panic!("set a read timeout on 127.0.0.1:{port}: {e}"));
        Conn {
            s,
            pending: Vec::new(),
            last: String::new(),
            write_error: None,
        }
    }

    /// Connects and sends `GET path HTTP/1.0` (the server closes after the
    /// response, or streams it to the end).
    pub fn get_1_0(port: u16, path: &str, read_timeout: Duration) -> Conn {
        let mut c = Conn::connect(port, read_timeout);
        c.send(&format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"));
        c
    }

    /// Writes `request` (one or more whole requests) in one piece. A failed
    /// write is remembered, not fatal: the server may have answered already.
    pub fn send(&mut self, request: &str) {
        self.last = request.lines().next().unwrap_or_default().to_owned();
        self.write_error = self.s.write_all(request.as_bytes()).err();
    }

    /// The socket, for a test that goes on with it itself.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.s
    }

    /// What has been read and not consumed yet.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// What a failed read means, with the write's error if it had one.
    fn failure(&self, what: &str) -> String {
        let mut msg = format!("{}: {what}", self.last);
        if let Some(e) = &self.write_error {
            msg.push_str(&format!(" (writing the request failed: {e})"));
        }
        msg
    }

    /// Reads more into `pending`; Err (a message) on close or a read error.
    pub fn try_fill(&mut self) -> Result<(), String> {
        let mut buf = [0u8; 65536];
        loop {
            match self.s.read(&mut buf) {
                Ok(0) => return Err(self.failure("connection closed mid-response")),
                Ok(n) => {
                    self.pending.extend_from_slice(&buf[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.failure(&format!("reading the response: {e}"))),
            }
        }
    }

    fn fill(&mut self) {
        if let Err(msg) = self.try_fill() {
            panic!("{msg}");
        }
    }

    /// The status of the next response, from its first 12 bytes
    /// (`HTTP/1.x NNN`), which stay unread; Err (a message) when they do not
    /// come or are not a status line.
    pub fn try_status(&mut self) -> Result<u16, String> {
        while self.pending.len() < 12 {
            self.try_fill()?;
        }
        std::str::from_utf8(&self.pending[9..12])
            .ok()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| {
                let got = String::from_utf8_lossy(&self.pending[..12]).to_string();
                self.failure(&format!("no status line: {got:?}"))
            })
    }

    /// Reads the next response head through its blank line (consumed) and
    /// returns it (blank line included); the body stays unread.
    pub fn read_head(&mut self) -> String {
        let end = loop {
            if let Some(i) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill();
        };
        let head: Vec<u8> = self.pending.drain(..end).collect();
        String::from_utf8_lossy(&head).to_string()
    }

    /// Reads exactly one response (Content-Length or chunked body), leaving
    /// whatever follows (a pipelined response) unread.
    pub fn read_response(&mut self) -> Response {
        let head = self.read_head();
        let head = head.trim_end_matches("\r\n").to_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("{}", self.failure(&format!("no status line: {head}"))));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let mut response = Response {
            status,
            head,
            headers,
            body: Vec::new(),
        };
        if response
            .header("transfer-encoding")
            .is_some_and(|v| v == "chunked")
        {
            response.body = self.read_chunked();
        } else {
            let len: usize = response.header("content-length").map_or(0, |v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{}", self.failure("bad Content-Length")))
            });
            while self.pending.len() < len {
                self.fill();
            }
            response.body = self.pending.drain(..len).collect();
        }
        response
    }

    /// A chunked body, de-chunked.
    fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = self.pending.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                self.fill();
            };
            let size_text = String::from_utf8_lossy(&self.pending[..line_end]).to_string();
            let size = usize::from_str_radix(size_text.trim(), 16).unwrap_or_else(|_| {
                panic!("{}", self.failure(&format!("bad chunk size {size_text:?}")))
            });
            self.pending.drain(..line_end + 2);
            while self.pending.len() < size + 2 {
                self.fill();
            }
            body.extend_from_slice(&self.pending[..size]);
            self.pending.drain(..size + 2);
            if size == 0 {
                return body;
            }
        }
    }

    /// `method path` as HTTP/1.1 on this (kept-alive) connection.
    pub fn request(&mut self, method: &str, path: &str) -> Response {
        self.send(&format!("{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        self.read_response()
    }
}
