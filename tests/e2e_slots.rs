//! Connection slots are freed even when a connection closes while its receive is
//! parked for lack of receive buffers: the real server on a one-buffer ring,
//! hundreds of clients flooding it, every one of them closed by the server.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;

/// Clients, and the server's connection limit: one slot that never comes back makes
/// the second phase fail.
const CLIENTS: usize = 200;

/// Held HTTP-FLV viewers ignore further input, so each client can flood its socket
/// while the server keeps reading; with one receive buffer, nearly every receive is
/// parked (ENOBUFS) at any moment. When the wait for the publisher ends, the server
/// answers 404 and closes them, parked receives and all. Every slot must come back:
/// `CLIENTS` keep-alive requests then all get an answer (a leaked slot keeps the
/// connection count up, so the server refuses one), and SIGTERM ends the server
/// well before its shutdown deadline (it waits for every slot to be freed).
#[test]
fn slots_of_connections_closed_while_starved_are_freed() {
    let config = format!(
        "[server]\nmax_connections = {CLIENTS}\nshutdown_timeout = \"600s\"\n\
         [runtime]\nrecv_buffers = 1\nrecv_buffer_size = 1024\n\
         [stream]\nwait_for_publisher = \"2s\"\n"
    );
    let mut server = Server::start(1, &config);
    let port = server.http_port;

    // Phase 1: flood until the server has closed every socket.
    let mut socks: Vec<Option<TcpStream>> = (0..CLIENTS)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET /live/nobody.flv HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            s.set_nonblocking(true).unwrap();
            Some(s)
        })
        .collect();
    let junk = [b'x'; 4096];
    let mut written = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while socks.iter().any(Option::is_some) {
        assert!(
            Instant::now() < deadline,
            "{} of {CLIENTS} sockets still open after 60 s",
            socks.iter().filter(|s| s.is_some()).count()
        );
        let mut progressed = false;
        for slot in socks.iter_mut() {
            let Some(s) = slot else { continue };
            match s.write(&junk) {
                Ok(n) => {
                    written += n as u64;
                    progressed = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // Closed by the server (EPIPE / ECONNRESET).
                Err(_) => *slot = None,
            }
        }
        if !progressed {
            // Every socket is full: let the server read.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // Far more than one buffer's worth per socket: receives were parked throughout.
    assert!(
        written > (CLIENTS * 64 * 1024) as u64,
        "the clients flooded the server ({written} bytes)"
    );

    // Phase 2: the limit's worth of keep-alive connections, all answered. A slot is
    // freed only after the close completes, so retry (bounded) while closes finish.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answered = keep_alive_requests(server.admin_port, CLIENTS);
        if answered == CLIENTS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {answered} of {CLIENTS} connections answered: slots leaked"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Phase 3: a graceful stop waits for every slot; it must not need its deadline.
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(server.proc.pid() as i32, libc::SIGTERM) };
    let status = server
        .proc
        .wait_for(Duration::from_secs(120))
        .expect("server still waiting for slots after SIGTERM");
    assert!(status.success(), "{status:?}");
}

/// Opens `n` connections, sends each a keep-alive API request and reads its head;
/// returns how many got a 200 while all `n` were open at once.
fn keep_alive_requests(port: u16, n: usize) -> usize {
    let mut conns: Vec<TcpStream> = (0..n)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    for s in &mut conns {
        let _ = s.write_all(b"GET /api/v1/streams HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    conns
        .iter_mut()
        .map(|s| {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match s.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => return false,
                }
            }
            head.starts_with(b"HTTP/1.1 200")
        })
        .filter(|&ok| ok)
        .count()
}
