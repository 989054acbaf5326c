//! A core's listening sockets and their multishot accepts: arming them, pausing
//! them (after an accept error such as EMFILE, or while cross-core control backs
//! up) and re-arming them once the pause has passed.
//!
//! What an accepted socket becomes is `CoreState::on_accept`'s; this type only
//! owns the listeners and when each may accept again.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::token::{Op, Token};
use crate::metrics::Listener;
use crate::runtime::Reactor;

/// After an accept error (EMFILE...), accepting pauses this long.
pub(super) const ACCEPT_PAUSE: Duration = Duration::from_millis(200);
/// Shortest time between two warnings about paused accepts.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// A listening socket of this core.
pub struct CoreListener {
    /// The socket (SO_REUSEPORT: one per core per port).
    pub socket: socket2::Socket,
    /// Which port it is.
    pub kind: Listener,
    paused_until: Option<Instant>,
}

impl CoreListener {
    /// Wraps a bound, listening socket.
    pub fn new(socket: socket2::Socket, kind: Listener) -> Self {
        CoreListener {
            socket,
            kind,
            paused_until: None,
        }
    }
}

/// The listeners of one core.
pub struct Accepts {
    /// This core's index, for logs.
    core: usize,
    listeners: Vec<CoreListener>,
    /// When a paused-accepts warning was last logged.
    last_warning: Option<Instant>,
}

impl Accepts {
    /// The core's listeners, none armed yet.
    pub fn new(core: usize, listeners: Vec<CoreListener>) -> Accepts {
        Accepts {
            core,
            listeners,
            last_warning: None,
        }
    }

    /// Which port listener `index` is.
    pub fn kind(&self, index: usize) -> Option<Listener> {
        self.listeners.get(index).map(|l| l.kind)
    }

    /// Arms every listener's multishot accept.
    pub fn arm_all(&mut self, r: &mut Reactor) {
        for index in 0..self.listeners.len() {
            self.arm(r, index);
        }
    }

    /// Arms listener `index`'s multishot accept; if that fails it is paused, so
    /// the sweep retries it ([`Accepts::resume_due`]).
    pub fn arm(&mut self, r: &mut Reactor, index: usize) {
        let Some(l) = self.listeners.get_mut(index) else {
            return;
        };
        let token = Token::new(Op::Accept, index as u32, 0).pack();
        if let Err(e) = r.accept_multishot(l.socket.as_raw_fd(), token) {
            tracing::error!(core = self.core, error = %e, "cannot arm accept; retrying after a pause");
            // The sweep re-arms paused listeners, so a full backlog cannot stop accepts for good.
            l.paused_until = Some(Instant::now() + ACCEPT_PAUSE);
        }
    }

    /// Cancels every listener's accept (shutdown).
    pub fn cancel_all(&mut self, r: &mut Reactor) {
        for l in &self.listeners {
            let _ = r.cancel_fd(l.socket.as_raw_fd(), Token::new(Op::Ignore, 0, 0).pack());
        }
    }

    /// Stops accepting on every listener for `ACCEPT_PAUSE` from `now` (the
    /// pause is extended on those already paused).
    pub fn pause_all(&mut self, r: &mut Reactor, now: Instant) {
        for l in &mut self.listeners {
            if l.paused_until.is_none() {
                let _ = r.cancel_fd(l.socket.as_raw_fd(), Token::new(Op::Ignore, 0, 0).pack());
            }
            l.paused_until = Some(now + ACCEPT_PAUSE);
        }
    }

    /// Listener `index`'s accept ended with an error at `now`: it pauses.
    pub fn pause(&mut self, index: usize, now: Instant) {
        if let Some(l) = self.listeners.get_mut(index) {
            l.paused_until = Some(now + ACCEPT_PAUSE);
        }
    }

    /// Re-arms the listeners whose pause has passed at `now`.
    pub fn resume_due(&mut self, r: &mut Reactor, now: Instant) {
        for index in 0..self.listeners.len() {
            if self.listeners[index].paused_until.is_some_and(|t| t <= now) {
                self.listeners[index].paused_until = None;
                self.arm(r, index);
            }
        }
    }

    /// Whether a warning about paused accepts may be logged at `now` (at most
    /// one a second); true also records it as logged.
    pub fn warn_now(&mut self, now: Instant) -> bool {
        if self.last_warning.is_none_or(|t| now - t >= WARN_EVERY) {
            self.last_warning = Some(now);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ReactorConfig;
    use std::net::{SocketAddr, TcpStream};

    fn listener() -> (CoreListener, SocketAddr) {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any.into()).expect("bind");
        socket.listen(16).expect("listen");
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        (CoreListener::new(socket, Listener::Http), addr)
    }

    /// Accepted sockets (closed at once) seen within a few seconds; stops at the first.
    fn accepted(r: &mut Reactor) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut n = 0;
        while n == 0 && Instant::now() < deadline {
            r.submit_and_wait(1, Some(Duration::from_millis(50)))
                .expect("submit");
            r.drain_completions(|_, c| {
                let accept = Token::unpack(c.user_data).is_some_and(|t| t.op == Op::Accept);
                if accept && c.result >= 0 {
                    // SAFETY: a socket the kernel just accepted for this test.
                    unsafe { libc::close(c.result) };
                    n += 1;
                }
            });
        }
        n
    }

    #[test]
    fn a_paused_listener_is_rearmed_once_its_pause_passes() {
        let mut r = Reactor::new(&ReactorConfig {
            entries: 32,
            recv_buffers: 2,
            recv_buffer_size: 64,
            ..ReactorConfig::default()
        })
        .expect("reactor");
        let (l, addr) = listener();
        let mut accepts = Accepts::new(0, vec![l]);
        accepts.arm_all(&mut r);
        let _a = TcpStream::connect(addr).unwrap();
        assert_eq!(accepted(&mut r), 1);

        let now = Instant::now();
        accepts.pause_all(&mut r, now);
        accepts.resume_due(&mut r, now + ACCEPT_PAUSE - Duration::from_millis(1));
        assert!(accepts.listeners[0].paused_until.is_some());
        accepts.resume_due(&mut r, now + ACCEPT_PAUSE);
        assert!(accepts.listeners[0].paused_until.is_none());
        let _b = TcpStream::connect(addr).unwrap();
        assert_eq!(accepted(&mut r), 1);
    }

    #[test]
    fn warnings_are_rate_limited() {
        let (l, _) = listener();
        let mut accepts = Accepts::new(0, vec![l]);
        let now = Instant::now();
        assert!(accepts.warn_now(now));
        assert!(!accepts.warn_now(now + WARN_EVERY - Duration::from_millis(1)));
        assert!(accepts.warn_now(now + WARN_EVERY));
    }
}
