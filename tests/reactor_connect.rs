//! `Reactor::connect` (IORING_OP_CONNECT) against real loopback sockets: a
//! successful connect that then carries data, and a refused one reported as
//! `-ECONNREFUSED` in the completion.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use ringcast::runtime::{Completion, Reactor, ReactorConfig};
use socket2::{Domain, SockAddr, Socket, Type};

const CONNECT: u64 = 7;

fn reactor() -> Reactor {
    Reactor::new(&ReactorConfig {
        entries: 16,
        recv_buffers: 8,
        recv_buffer_size: 4096,
        ..ReactorConfig::default()
    })
    .unwrap()
}

/// Connects `socket` to `addr` through the reactor and returns the completion.
fn connect(reactor: &mut Reactor, socket: &Socket, addr: SocketAddr) -> Completion {
    let addr = Box::new(SockAddr::from(addr));
    // SAFETY: `addr` lives until the completion is drained below.
    unsafe { reactor.connect(socket.as_raw_fd(), addr.as_ptr(), addr.len(), CONNECT) }.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut done = None;
    while done.is_none() {
        assert!(Instant::now() < deadline, "connect never completed");
        reactor
            .submit_and_wait(1, Some(Duration::from_millis(100)))
            .unwrap();
        reactor.drain_completions(|_, c| {
            if c.user_data == CONNECT {
                done = Some(c);
            }
        });
    }
    drop(addr);
    done.unwrap()
}

#[test]
fn connect_completes_and_the_socket_carries_data() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut reactor = reactor();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let done = connect(&mut reactor, &socket, addr);
    assert_eq!(done.result, 0, "connect failed: {:?}", done.error());
    let (mut accepted, peer) = listener.accept().unwrap();
    assert_eq!(Some(peer), socket.local_addr().unwrap().as_socket());
    socket.send(b"hello").unwrap();
    let mut buf = [0u8; 5];
    accepted.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
}

#[test]
fn refused_connect_reports_econnrefused() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut reactor = reactor();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let done = connect(&mut reactor, &socket, addr);
    assert_eq!(done.result, -libc::ECONNREFUSED);
}
