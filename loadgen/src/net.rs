//! Opening client sockets the way loadgen needs them at scale.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{IntoRawFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

use crate::stats::FailureKind;

/// Starts a nonblocking connect to `server` from 127.0.0.`source_octet` and returns
/// the fd; the connect completes (or fails) under the first send on it.
///
/// One source address has ~28k ephemeral ports, so 100k connections to one server
/// port need several; `IP_BIND_ADDRESS_NO_PORT` defers the port choice to connect
/// time, letting the kernel reuse a port towards different destinations.
pub fn start_connect(server: SocketAddr, source_octet: u8) -> io::Result<RawFd> {
    let socket = Socket::new(
        Domain::for_address(server),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    if server.is_ipv4() && source_octet > 1 {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
        let one: libc::c_int = 1;
        // SAFETY: valid fd and a c_int option value of the right size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, source_octet)), 0);
        socket.bind(&source.into())?;
    }
    socket.set_nodelay(true)?;
    match socket.connect(&server.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into_raw_fd())
}

/// Which failure kind a socket errno stands for.
pub fn classify_errno(errno: i32) -> FailureKind {
    match errno {
        libc::ECONNREFUSED | libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EADDRNOTAVAIL => {
            FailureKind::Refused
        }
        libc::ETIMEDOUT => FailureKind::Timeout,
        _ => FailureKind::Io,
    }
}

/// Raises this process's open-file soft limit to its hard limit; returns the new limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit with a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn connects_from_a_spread_source_address() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = start_connect(listener.local_addr().unwrap(), 7).unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7)));
        // SAFETY: we own fd.
        unsafe { libc::close(fd) };
    }

    #[test]
    fn errno_classes() {
        assert_eq!(classify_errno(libc::ECONNREFUSED), FailureKind::Refused);
        assert_eq!(classify_errno(libc::ETIMEDOUT), FailureKind::Timeout);
        assert_eq!(classify_errno(libc::ECONNRESET), FailureKind::Io);
        assert!(raise_nofile_limit().unwrap() >= 1024);
    }
}
