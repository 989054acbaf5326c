//! The reactor against real loopback sockets: multishot accept and recv, gathered
//! sendmsg, and recovery when the provided-buffer ring runs dry.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcast::runtime::outbox::SendProgress;
use ringcast::runtime::region::{RegionConfig, SendRegion};
use ringcast::runtime::socket::{local_addr, raw_fd, reuseport_listener};
use ringcast::runtime::{Outbox, Reactor, ReactorConfig};

const ACCEPT: u64 = 1 << 32;
const RECV: u64 = 2 << 32;
const SEND: u64 = 3 << 32;

fn config(recv_buffers: u16, recv_buffer_size: u32) -> ReactorConfig {
    ReactorConfig {
        entries: 64,
        recv_buffers,
        recv_buffer_size,
        ..ReactorConfig::default()
    }
}

#[test]
fn echo_with_multishot_accept_recv_and_gathered_sendmsg() {
    let listener = reuseport_listener("127.0.0.1:0".parse().unwrap(), 64).unwrap();
    let addr = local_addr(&listener).unwrap();
    let mut reactor = Reactor::new(&config(16, 4096)).unwrap();
    reactor.accept_multishot(raw_fd(&listener), ACCEPT).unwrap();
    reactor.submit_and_wait(0, None).unwrap();

    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut echoed = Vec::new();
        for round in 0..50u8 {
            let msg = vec![round; 1000 + usize::from(round) * 37];
            s.write_all(&msg).unwrap();
            let mut got = 0;
            while got < msg.len() {
                let mut hdr = [0u8; 4];
                s.read_exact(&mut hdr).unwrap();
                let mut body = vec![0u8; u32::from_be_bytes(hdr) as usize];
                s.read_exact(&mut body).unwrap();
                assert!(body.iter().all(|&b| b == round));
                got += body.len();
            }
            echoed.push(got);
        }
        echoed
    });

    let mut conn: Option<RawFd> = None;
    let mut reply: Outbox<Bytes> = Outbox::new(4, 64);
    let mut in_flight = false;
    let mut pending: Vec<u8> = Vec::new();
    let mut eof = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !eof && Instant::now() < deadline {
        reactor
            .submit_and_wait(1, Some(Duration::from_millis(100)))
            .unwrap();
        let mut events = Vec::new();
        reactor.drain_completions(|r, c| {
            if c.user_data == RECV {
                if let Some(id) = c.buffer_id() {
                    let data = r.recv_buffer(id, c.result as usize).unwrap().to_vec();
                    r.recycle_buffer(id);
                    events.push((c, data));
                    return;
                }
            }
            events.push((c, Vec::new()));
        });
        for (c, data) in events {
            match c.user_data {
                ACCEPT => {
                    assert!(c.result >= 0, "accept failed: {:?}", c.error());
                    assert!(c.more(), "multishot accept stays armed");
                    conn = Some(c.result);
                    reactor.recv_multishot(c.result, RECV).unwrap();
                }
                RECV if c.result == 0 => eof = true,
                RECV => {
                    assert!(c.result > 0, "recv failed: {:?}", c.error());
                    assert!(c.more());
                    pending.extend_from_slice(&data);
                }
                SEND => {
                    assert!(c.result > 0, "send failed: {:?}", c.error());
                    if reply.on_sent(c.result as usize) == SendProgress::Complete {
                        in_flight = false;
                    } else {
                        // Short send: submit the remainder.
                        // SAFETY: `reply` stays put until this send completes.
                        unsafe {
                            reactor
                                .sendmsg(conn.unwrap(), reply.resume().unwrap(), SEND)
                                .unwrap()
                        };
                    }
                }
                other => panic!("unexpected completion {other:#x}"),
            }
        }
        if !in_flight && !pending.is_empty() {
            let body = Bytes::from(std::mem::take(&mut pending));
            let len = (body.len() as u32).to_be_bytes();
            reply.begin().unwrap();
            assert!(reply.push_frame(
                |scratch| {
                    scratch[..4].copy_from_slice(&len);
                    4
                },
                body,
            ));
            let msg = reply.finish().expect("bytes to send");
            // SAFETY: `reply` is not touched until this send completes.
            unsafe { reactor.sendmsg(conn.unwrap(), msg, SEND).unwrap() };
            in_flight = true;
        }
    }
    let echoed = client.join().unwrap();
    assert_eq!(echoed.len(), 50);
    assert!(eof, "saw the client's EOF");
    let stats = reactor.stats();
    assert!(stats.sends > 0 && stats.completions > stats.sends);
    reactor.close(conn.unwrap(), 99).unwrap();
    reactor
        .submit_and_wait(1, Some(Duration::from_secs(1)))
        .unwrap();
    let mut closed = false;
    reactor.drain_completions(|_, c| closed |= c.user_data == 99 && c.result == 0);
    assert!(closed);
}

#[test]
fn recv_recovers_after_the_buffer_ring_runs_dry() {
    let listener = reuseport_listener("127.0.0.1:0".parse().unwrap(), 64).unwrap();
    let addr = local_addr(&listener).unwrap();
    // Two tiny buffers: any real stream exhausts them while we hold them.
    let mut reactor = Reactor::new(&config(2, 64)).unwrap();
    reactor.accept_multishot(raw_fd(&listener), ACCEPT).unwrap();
    let total = 64 * 1024;
    let writer = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        s.write_all(&data).unwrap();
    });

    let mut received = Vec::with_capacity(total);
    let mut held: Vec<u16> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut eof = false;
    while !eof && Instant::now() < deadline {
        reactor
            .submit_and_wait(1, Some(Duration::from_millis(500)))
            .unwrap();
        reactor.drain_completions(|r, c| match c.user_data {
            ACCEPT => r.recv_multishot(c.result, RECV).unwrap(),
            RECV => {
                assert!(
                    c.result >= 0,
                    "ENOBUFS must not reach the caller: {:?}",
                    c.error()
                );
                if c.result == 0 {
                    eof = true;
                } else {
                    let id = c.buffer_id().unwrap();
                    received.extend_from_slice(r.recv_buffer(id, c.result as usize).unwrap());
                    held.push(id);
                }
            }
            _ => {}
        });
        // Buffers were held across the wait, so the ring ran dry; give them all back.
        for id in held.drain(..) {
            reactor.recycle_buffer(id);
        }
    }
    writer.join().unwrap();
    assert!(
        eof,
        "no EOF after {} bytes: {:?}",
        received.len(),
        reactor.stats()
    );
    assert_eq!(received.len(), total);
    assert!(
        received
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 251) as u8),
        "bytes in order"
    );
    let stats = reactor.stats();
    assert!(stats.enobufs > 0, "the ring did run dry: {stats:?}");
    assert!(stats.rearms >= stats.enobufs);
}

/// Many connections on a tiny ring: every turn the caller holds all buffers across
/// the wait, so most receives starve. Re-arming is bounded by the free buffers, so a
/// turn never re-arms (or earns ENOBUFS for) more receives than the ring has buffers,
/// however many sockets wait; and every byte still arrives, in order, on every socket.
#[test]
fn starved_receives_are_rearmed_no_faster_than_buffers_free_up() {
    const CONNS: usize = 32;
    const BUFFERS: u16 = 4;
    const PER_CONN: usize = 2048;
    let listener = reuseport_listener("127.0.0.1:0".parse().unwrap(), 64).unwrap();
    let addr = local_addr(&listener).unwrap();
    let mut reactor = Reactor::new(&config(BUFFERS, 64)).unwrap();
    reactor.accept_multishot(raw_fd(&listener), ACCEPT).unwrap();
    let writer = std::thread::spawn(move || {
        let mut socks: Vec<TcpStream> = (0..CONNS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        let data: Vec<u8> = (0..PER_CONN).map(|i| (i % 251) as u8).collect();
        for s in &mut socks {
            s.write_all(&data).unwrap();
        }
    });

    let mut received: std::collections::HashMap<u64, Vec<u8>> = std::collections::HashMap::new();
    let mut eofs = 0;
    let mut held: Vec<u16> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    // A turn runs from giving buffers back to draining the next completions.
    let mut turn_start = reactor.stats();
    while eofs < CONNS && Instant::now() < deadline {
        reactor
            .submit_and_wait(1, Some(Duration::from_millis(200)))
            .unwrap();
        reactor.drain_completions(|r, c| match c.user_data {
            ACCEPT => r.recv_multishot(c.result, RECV | c.result as u64).unwrap(),
            ud if ud & RECV == RECV => {
                assert!(
                    c.result >= 0,
                    "ENOBUFS must not reach the caller: {:?}",
                    c.error()
                );
                if c.result == 0 {
                    eofs += 1;
                } else {
                    let id = c.buffer_id().unwrap();
                    let bytes = r.recv_buffer(id, c.result as usize).unwrap();
                    received.entry(ud).or_default().extend_from_slice(bytes);
                    held.push(id);
                }
            }
            _ => {}
        });
        let rearms = reactor.stats().rearms - turn_start.rearms;
        assert!(
            rearms <= u64::from(BUFFERS),
            "{rearms} re-arms in one turn with {BUFFERS} buffers"
        );
        turn_start = reactor.stats();
        for id in held.drain(..) {
            reactor.recycle_buffer(id);
        }
    }
    writer.join().unwrap();
    let stats = reactor.stats();
    assert_eq!(eofs, CONNS, "EOF on every socket: {stats:?}");
    assert_eq!(received.len(), CONNS);
    for bytes in received.values() {
        assert_eq!(bytes.len(), PER_CONN);
        assert!(
            bytes.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8),
            "bytes in order"
        );
    }
    assert!(stats.enobufs > 0, "the ring did run dry: {stats:?}");
    // Each re-arm is paid for by a free buffer: at most one ENOBUFS per re-arm beyond the
    // first arming of each socket.
    assert!(stats.enobufs <= stats.rearms + CONNS as u64, "{stats:?}");
}

/// Hundreds of connections with data waiting on a one-buffer ring whose buffer the
/// caller keeps, so every receive but one is parked (ENOBUFS); then every socket is
/// shut down and closed the way the server closes a connection. Each receive armed
/// must still end with exactly one final completion (a parked one with a synthetic
/// `-ECANCELED`), so a caller counting operations in flight per connection reaches
/// zero on every one of them.
#[test]
fn receives_parked_when_their_socket_closes_still_complete() {
    const CONNS: usize = 300;
    const CLOSE: u64 = 4 << 32;
    let listener = reuseport_listener("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
    let addr = local_addr(&listener).unwrap();
    // A CQ with room for every completion, so no multishot is stopped (and re-armed)
    // for CQ pressure and the re-arm count is the receives' alone.
    let mut reactor = Reactor::new(&ReactorConfig {
        entries: 1024,
        ..config(1, 64)
    })
    .unwrap();
    reactor.accept_multishot(raw_fd(&listener), ACCEPT).unwrap();
    // Every client has bytes waiting before its receive is armed.
    let clients: Vec<TcpStream> = (0..CONNS)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(&[7u8; 32]).unwrap();
            s
        })
        .collect();

    let mut fds: Vec<RawFd> = Vec::new();
    // Operations in flight per connection, as the server counts them.
    let mut inflight = vec![0u32; CONNS];
    let mut held: Vec<u16> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Parked now: each ENOBUFS parks a receive, each re-arm takes one back.
    let parked = |r: &Reactor| r.stats().enobufs.saturating_sub(r.stats().rearms);
    while (fds.len() < CONNS || parked(&reactor) < (CONNS - 1) as u64) && Instant::now() < deadline
    {
        reactor
            .submit_and_wait(1, Some(Duration::from_millis(100)))
            .unwrap();
        reactor.drain_completions(|r, c| match c.user_data {
            ACCEPT => {
                assert!(c.result >= 0, "accept failed: {:?}", c.error());
                let index = fds.len();
                fds.push(c.result);
                r.recv_multishot(c.result, RECV | index as u64).unwrap();
                inflight[index] += 1;
            }
            ud if ud & RECV == RECV => {
                assert!(
                    c.more() && c.result > 0,
                    "no receive ends before its socket closes: {c:?}"
                );
                // Kept, never recycled: nothing parked can be re-armed.
                held.push(c.buffer_id().unwrap());
            }
            other => panic!("unexpected {other:#x}"),
        });
    }
    let stats = reactor.stats();
    assert_eq!(fds.len(), CONNS, "{stats:?}");
    assert_eq!(
        parked(&reactor),
        (CONNS - 1) as u64,
        "all but one receive parked: {stats:?}"
    );
    assert_eq!(held.len(), 1);

    for (index, &fd) in fds.iter().enumerate() {
        // SAFETY: shutting down a socket this test accepted and still owns.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        reactor.close(fd, CLOSE | index as u64).unwrap();
        inflight[index] += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while inflight.iter().any(|&n| n > 0) && Instant::now() < deadline {
        reactor
            .submit_and_wait(1, Some(Duration::from_millis(100)))
            .unwrap();
        reactor.drain_completions(|_, c| {
            let index = (c.user_data & 0xffff_ffff) as usize;
            match c.user_data & !0xffff_ffff {
                CLOSE => assert_eq!(c.result, 0, "close failed: {:?}", c.error()),
                RECV if c.more() => return,
                // EOF from the shutdown, a parked receive dropped (ECANCELED), or the
                // kernel's last try finding no buffer after the close (ENOBUFS).
                RECV => assert!(
                    [0, -libc::ECANCELED, -libc::ENOBUFS].contains(&c.result),
                    "a receive ends with EOF, cancelled or out of buffers: {c:?}"
                ),
                other => panic!("unexpected {other:#x}"),
            }
            assert!(
                inflight[index] > 0,
                "a second final completion for connection {index}: {c:?}"
            );
            inflight[index] -= 1;
        });
    }
    let left: Vec<usize> = (0..CONNS).filter(|&i| inflight[i] > 0).collect();
    assert!(
        left.is_empty(),
        "{} connections never finished: {left:?}",
        left.len()
    );
    drop(clients);
}

/// A reactor with a 4-entry SQ (16-entry CQ) and two 64-byte receive buffers,
/// so a test can overrun its rings; `backlog_limit` bounds what waits for SQ room.
fn tiny_reactor(backlog_limit: usize) -> Reactor {
    Reactor::new(&ReactorConfig {
        entries: 4,
        recv_buffers: 2,
        recv_buffer_size: 64,
        backlog_limit,
        ..ReactorConfig::default()
    })
    .unwrap()
}

/// Queues `n` closes of an invalid fd, user data `0..n`: each completes at once
/// with -EBADF, a cheap way to make many completions.
fn queue_bad_closes(reactor: &mut Reactor, n: u64) {
    for ud in 0..n {
        reactor.close(-1, ud).unwrap();
    }
}

/// Drains the completions there are, each an -EBADF close, into `seen` by user data.
fn drain_bad_closes(reactor: &mut Reactor, seen: &mut Vec<u64>) {
    reactor.drain_completions(|_, c| {
        assert_eq!(c.result, -libc::EBADF);
        seen.push(c.user_data);
    });
}

#[test]
fn a_full_submission_queue_drops_nothing() {
    let mut reactor = tiny_reactor(8);
    // Far more operations than SQ (4) and CQ (16) slots; closing an invalid fd
    // completes at once with -EBADF, so every one must come back exactly once.
    let queued: u64 = 1000;
    queue_bad_closes(&mut reactor, queued);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.len() < queued as usize && Instant::now() < deadline {
        reactor
            .submit_and_wait(1, Some(Duration::from_millis(100)))
            .unwrap();
        drain_bad_closes(&mut reactor, &mut seen);
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..queued).collect::<Vec<_>>(),
        "nothing dropped or duplicated"
    );
    assert_eq!(reactor.backlog_len(), 0);
}

/// Far more completions at once than the CQ ring holds (16 here): the kernel parks
/// the rest in its overflow list. One drain must still hand every one of them over,
/// so nothing (like the final completion of a multishot accept that CQ pressure
/// stopped) waits behind a backlog that a busy loop could never catch up with.
#[test]
fn one_drain_delivers_completions_that_overflowed_the_cq() {
    let mut reactor = tiny_reactor(1024);
    let queued: u64 = 300;
    queue_bad_closes(&mut reactor, queued);
    reactor.submit_and_wait(0, None).unwrap();
    let mut seen = Vec::new();
    drain_bad_closes(&mut reactor, &mut seen);
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..queued).collect::<Vec<_>>(),
        "all in one drain: {:?}",
        reactor.stats()
    );
    assert!(
        reactor.stats().overflow_flushes > 0,
        "the CQ did overflow: {:?}",
        reactor.stats()
    );
}

/// A server whose every loop turn produces more completions than its CQ holds (a
/// frame fanned out to more viewers than the ring has entries) must keep accepting.
/// While completions wait in the kernel's overflow list, a multishot accept cannot
/// post and stops after each connection; it is re-armed only once its final
/// completion is drained. Left in the overflow list, that took turns and accepted one
/// connection per re-arm; drained each turn, the backlog of connections is taken in
/// a few turns.
#[test]
fn accepts_keep_up_while_every_turn_overflows_the_cq() {
    const CLIENTS: usize = 60;
    const TURNS: usize = 12;
    let listener = reuseport_listener("127.0.0.1:0".parse().unwrap(), 256).unwrap();
    let addr = local_addr(&listener).unwrap();
    let mut reactor = tiny_reactor(4096);
    // Connected before the first accept: all wait in the listen queue.
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    reactor.accept_multishot(raw_fd(&listener), ACCEPT).unwrap();
    let mut accepted: Vec<RawFd> = Vec::new();
    for turn in 0..TURNS {
        // This turn's "sends": more completions than the 16-entry CQ.
        for i in 0..40u64 {
            reactor.close(-1, (turn as u64) << 16 | i).unwrap();
        }
        reactor.submit_and_wait(0, None).unwrap();
        reactor.drain_completions(|_, c| {
            if c.user_data == ACCEPT {
                assert!(c.result >= 0, "accept failed: {:?}", c.error());
                accepted.push(c.result);
            }
        });
        if accepted.len() == CLIENTS {
            break;
        }
    }
    assert_eq!(
        accepted.len(),
        CLIENTS,
        "accepted in {TURNS} turns: {:?}",
        reactor.stats()
    );
    for fd in accepted {
        // SAFETY: closing fds this test accepted.
        unsafe { libc::close(fd) };
    }
    drop(clients);
}

#[test]
fn cancel_fd_ends_a_multishot_recv_and_eof_is_final() {
    let listener = reuseport_listener("127.0.0.1:0".parse().unwrap(), 64).unwrap();
    let addr = local_addr(&listener).unwrap();
    let mut reactor = Reactor::new(&config(4, 256)).unwrap();
    reactor.accept_multishot(raw_fd(&listener), ACCEPT).unwrap();
    let first = TcpStream::connect(addr).unwrap();
    let second = TcpStream::connect(addr).unwrap();
    let mut accepted = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while accepted.len() < 2 && Instant::now() < deadline {
        reactor
            .submit_and_wait(1, Some(Duration::from_millis(100)))
            .unwrap();
        reactor.drain_completions(|_, c| {
            assert_eq!(c.user_data, ACCEPT);
            accepted.push(c.result);
        });
    }
    assert_eq!(accepted.len(), 2);
    reactor.recv_multishot(accepted[0], RECV).unwrap();
    reactor.recv_multishot(accepted[1], RECV + 1).unwrap();
    reactor.submit_and_wait(0, None).unwrap();
    reactor.cancel_fd(accepted[0], 50).unwrap();
    drop(second);
    let (mut cancelled, mut cancel_done, mut eof) = (false, false, false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(cancelled && cancel_done && eof) && Instant::now() < deadline {
        reactor
            .submit_and_wait(1, Some(Duration::from_millis(100)))
            .unwrap();
        reactor.drain_completions(|_, c| match c.user_data {
            RECV => {
                assert_eq!(c.result, -libc::ECANCELED);
                assert!(!c.more(), "a cancelled multishot is over");
                cancelled = true;
            }
            50 => {
                assert_eq!(c.result, 1, "one operation cancelled");
                cancel_done = true;
            }
            u if u == RECV + 1 => {
                assert_eq!(c.result, 0, "peer closed");
                assert!(!c.more(), "EOF is final, not re-armed");
                eof = true;
            }
            other => panic!("unexpected {other:#x}"),
        });
    }
    assert!(cancelled && cancel_done && eof);
    assert_eq!(reactor.stats().rearms, 0);
    drop(first);
}

#[test]
fn every_ring_mode_submits_waits_and_times_out() {
    let modes = [
        (
            "defer_taskrun",
            ReactorConfig {
                defer_taskrun: true,
                ..config(2, 64)
            },
        ),
        (
            "coop_taskrun",
            ReactorConfig {
                defer_taskrun: false,
                ..config(2, 64)
            },
        ),
        (
            "sqpoll",
            ReactorConfig {
                sqpoll: true,
                ..config(2, 64)
            },
        ),
    ];
    for (name, cfg) in modes {
        let mut reactor = Reactor::new(&cfg).unwrap();
        let f = reactor.features();
        match name {
            "defer_taskrun" => assert!(f.defer_taskrun && f.single_issuer, "{f:?}"),
            "coop_taskrun" => assert!(f.coop_taskrun && !f.defer_taskrun, "{f:?}"),
            // SQPOLL may be refused (privileges); then a fallback mode is used.
            _ => assert!(f.sqpoll || f.coop_taskrun || f.defer_taskrun, "{f:?}"),
        }
        // An empty wait returns at the timeout rather than hanging.
        let started = Instant::now();
        reactor
            .submit_and_wait(1, Some(Duration::from_millis(20)))
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{name}: wait honoured the timeout"
        );
        reactor.close(-1, 5).unwrap();
        let mut got = None;
        let deadline = Instant::now() + Duration::from_secs(2);
        while got.is_none() && Instant::now() < deadline {
            reactor
                .submit_and_wait(1, Some(Duration::from_millis(50)))
                .unwrap();
            reactor.drain_completions(|_, c| got = Some((c.user_data, c.result)));
        }
        assert_eq!(got, Some((5, -libc::EBADF)), "{name}");
    }
}

/// A connected loopback TCP pair: (our raw fd, kept alive by the stream; the peer).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    (a, b)
}

/// Waits for the send's final completion (for zero-copy: the notification) and
/// returns the byte count of its result CQE.
fn wait_send(reactor: &mut Reactor, user_data: u64) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut result = None;
    while Instant::now() < deadline {
        reactor
            .submit_and_wait(1, Some(Duration::from_millis(100)))
            .unwrap();
        let mut done = false;
        reactor.drain_completions(|_, c| {
            assert_eq!(c.user_data, user_data);
            if c.is_notification() {
                done = true;
            } else {
                result = Some(c.result);
                done |= !c.more();
            }
        });
        if done {
            return result.expect("a result before the notification");
        }
    }
    panic!("no completion for the send within 10 s");
}

#[test]
fn fixed_buffer_zero_copy_sends_from_the_registered_region() {
    let mut reactor = Reactor::new(&config(2, 64)).unwrap();
    let cfg = RegionConfig {
        scratch_slots: 4,
        scratch_slot_size: 4 * 32,
        staging_bytes: 1 << 20,
        block_size: 1 << 20,
    };
    let mut region = SendRegion::new(cfg).unwrap();
    reactor.register_region(region.mem()).unwrap();
    let (ours, mut peer) = tcp_pair();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&ours);

    // Prefixes in the region's scratch, bodies staged into it: the fixed path.
    let mut outbox: Outbox<Bytes> = Outbox::with_region_scratch(4, 64, region.scratch().unwrap());
    outbox.begin().unwrap();
    let mut expected = Vec::new();
    for i in 0..3u8 {
        let body = region.stage(&vec![b'a' + i; 5000]).unwrap();
        expected.extend_from_slice(&[b'<', i, b'>']);
        expected.extend_from_slice(&body);
        assert!(outbox.push_frame(
            |s| {
                s[..3].copy_from_slice(&[b'<', i, b'>']);
                3
            },
            body,
        ));
    }
    let msg = outbox.finish().unwrap();
    // SAFETY: the outbox is in flight until the notification below.
    let fixed = unsafe { reactor.sendmsg_zc_registered(fd, msg, SEND).unwrap() };
    assert!(fixed, "every iovec lies in the region");
    let n = wait_send(&mut reactor, SEND);
    assert_eq!(
        n as usize,
        expected.len(),
        "the kernel accepted the fixed-buffer send"
    );
    assert_eq!(outbox.on_sent(n as usize), SendProgress::Complete);

    // A heap body: the same call takes the non-fixed path, which still works.
    outbox.begin().unwrap();
    assert!(outbox.push_frame(|_| 0, Bytes::from_static(b"heap body")));
    let msg = outbox.finish().unwrap();
    // SAFETY: as above.
    let fixed = unsafe { reactor.sendmsg_zc_registered(fd, msg, SEND + 1).unwrap() };
    assert!(!fixed, "a body outside the region cannot go fixed");
    assert_eq!(wait_send(&mut reactor, SEND + 1), 9);
    assert_eq!(outbox.on_sent(9), SendProgress::Complete);
    expected.extend_from_slice(b"heap body");
    assert_eq!(reactor.stats().fixed_sends, 1);

    let mut got = vec![0u8; expected.len()];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(got, expected);

    // The ring's registration keeps the region's memory alive until the ring is gone.
    let mem = region.mem().clone();
    drop(outbox);
    drop(region);
    assert_eq!(
        std::sync::Arc::strong_count(&mem),
        2,
        "ours and the reactor's"
    );
    drop(reactor);
    assert_eq!(
        std::sync::Arc::strong_count(&mem),
        1,
        "released once the ring is closed"
    );
}

#[test]
fn quiesce_cancels_and_waits_for_a_send_the_peer_never_reads() {
    let mut reactor = Reactor::new(&config(2, 64)).unwrap();
    let (ours, _peer) = tcp_pair();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&ours);
    let body = Bytes::from(vec![7u8; 64 << 20]);
    let mut outbox: Outbox<Bytes> = Outbox::new(1, 0);
    outbox.begin().unwrap();
    assert!(outbox.push_frame(|_| 0, body.clone()));
    let msg = outbox.finish().unwrap();
    // SAFETY: the outbox is in flight until its completion below.
    unsafe { reactor.sendmsg(fd, msg, SEND).unwrap() };
    reactor.submit_and_wait(0, None).unwrap();
    // 64 MiB cannot fit the socket buffers of a peer that never reads.
    assert!(reactor.in_kernel() >= 1);
    let mut results = Vec::new();
    assert!(
        reactor.quiesce(Duration::from_secs(10), |_, c| results.push(c)),
        "the kernel let go in time"
    );
    assert_eq!(reactor.in_kernel(), 0);
    let send = results
        .iter()
        .find(|c| c.user_data == SEND)
        .expect("the send's completion was handed over");
    if send.result < 0 {
        outbox.on_failed();
    } else {
        // A partial send that completed before the cancel reached it.
        assert!((send.result as usize) < body.len());
        assert_eq!(outbox.on_sent(send.result as usize), SendProgress::Partial);
        outbox.release().unwrap();
    }
    assert!(
        body.is_unique(),
        "the outbox let go of the body after the completion"
    );
    assert_eq!(
        reactor.accept_multishot(fd, ACCEPT),
        Err(ringcast::runtime::SubmitError::Quiescing)
    );
}
