//! Listening and connected TCP sockets configured for the per-core model.
//!
//! Every core binds its own `SO_REUSEPORT` listener on the same address, so the
//! kernel spreads incoming connections across cores without a shared accept queue.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// Default listen backlog, large enough for connection bursts at stream start.
pub const DEFAULT_BACKLOG: i32 = 4096;

/// Binds a nonblocking `SO_REUSEPORT` TCP listener on `addr` (IPv4 or IPv6).
/// IPv6 listeners are v6-only so a separate IPv4 listener can share the port.
pub fn reuseport_listener(addr: SocketAddr, backlog: i32) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.cloexec(),
        Some(Protocol::TCP),
    )?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket)
}

/// Turns off Nagle on an accepted socket: media is sent in already-batched writes,
/// so delaying small tails only adds latency.
pub fn set_nodelay(fd: RawFd) -> io::Result<()> {
    with_fd(fd, |s| s.set_nodelay(true))
}

/// Sets the kernel send buffer size of `fd` (the kernel doubles it for bookkeeping).
/// A bounded send buffer keeps slow viewers' backlog in our ring, where it is shared.
pub fn set_send_buffer(fd: RawFd, bytes: usize) -> io::Result<()> {
    with_fd(fd, |s| s.set_send_buffer_size(bytes))
}

/// Sets `TCP_NOTSENT_LOWAT` on `fd`: the kernel reports the socket writable (and
/// takes more bytes into it) only while fewer than `bytes` of it are unsent.
pub fn set_notsent_lowat(fd: RawFd, bytes: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `value` outlives the call and the length given is its size; the
    // kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads back the kernel send buffer size of `fd`.
pub fn send_buffer(fd: RawFd) -> io::Result<usize> {
    with_fd(fd, |s| s.send_buffer_size())
}

/// Sets the kernel receive buffer size of `fd`.
pub fn set_recv_buffer(fd: RawFd, bytes: usize) -> io::Result<()> {
    with_fd(fd, |s| s.set_recv_buffer_size(bytes))
}

/// The local address a listener is bound to (useful after binding port 0).
pub fn local_addr(socket: &Socket) -> io::Result<SocketAddr> {
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an inet socket"))
}

/// The raw fd of a socket, for handing to the reactor.
pub fn raw_fd(socket: &Socket) -> RawFd {
    socket.as_raw_fd()
}

fn with_fd<T>(fd: RawFd, f: impl FnOnce(&SockRef<'_>) -> io::Result<T>) -> io::Result<T> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the fd is borrowed for the duration of the call only; the caller owns it.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    f(&SockRef::from(&borrowed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn two_listeners_share_a_port() {
        let a = reuseport_listener("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = local_addr(&a).unwrap();
        let b = reuseport_listener(addr, 16).unwrap();
        assert_eq!(local_addr(&b).unwrap(), addr);
        assert!(a.nonblocking().unwrap());
        let client = TcpStream::connect(addr).unwrap();
        set_nodelay(client.as_raw_fd()).unwrap();
        set_send_buffer(client.as_raw_fd(), 64 * 1024).unwrap();
        assert!(send_buffer(client.as_raw_fd()).unwrap() >= 64 * 1024);
        set_notsent_lowat(client.as_raw_fd(), 16 * 1024).unwrap();
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` outlive the call and `len` is `value`'s size.
        let rc = unsafe {
            libc::getsockopt(
                client.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NOTSENT_LOWAT,
                std::ptr::from_mut(&mut value).cast(),
                &mut len,
            )
        };
        assert_eq!((rc, value), (0, 16 * 1024));
        assert!(set_notsent_lowat(-1, 1).is_err());
    }

    #[test]
    fn ipv6_listener_binds_when_available() {
        match reuseport_listener("[::1]:0".parse().unwrap(), 16) {
            Ok(l) => assert!(local_addr(&l).unwrap().is_ipv6()),
            // Some CI sandboxes have no IPv6 loopback.
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL)),
        }
    }

    #[test]
    fn bad_fd_is_an_error() {
        assert!(set_nodelay(-1).is_err());
    }
}
