//! SIGTERM/SIGINT → a shutdown flag the core loops poll every turn; SIGHUP → a
//! reload flag the TLS reload thread polls (`server::tls_reload`).

use std::sync::atomic::{AtomicBool, Ordering};

static SHUTDOWN: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    SHUTDOWN.store(true, Ordering::Relaxed);
}

extern "C" fn on_hangup(_: libc::c_int) {
    // Only an atomic store: async-signal-safe. The reload itself reads files
    // and takes a lock, so it runs on the reload thread.
    RELOAD.store(true, Ordering::Relaxed);
}

/// Installs the handlers for SIGTERM and SIGINT (shutdown) and SIGHUP (reload the
/// TLS certificates; no longer the default "terminate"), and ignores SIGPIPE (a
/// viewer closing mid-send must give EPIPE, not kill the process).
pub fn install() -> std::io::Result<()> {
    // SAFETY: installing a handler that only stores an atomic.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        for sig in [libc::SIGTERM, libc::SIGINT] {
            if libc::signal(sig, handler) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
        }
        let hangup = on_hangup as extern "C" fn(libc::c_int) as libc::sighandler_t;
        if libc::signal(libc::SIGHUP, hangup) == libc::SIG_ERR {
            return Err(std::io::Error::last_os_error());
        }
        if libc::signal(libc::SIGPIPE, libc::SIG_IGN) == libc::SIG_ERR {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// True once a shutdown was asked for (by signal or [`request`]).
pub fn requested() -> bool {
    SHUTDOWN.load(Ordering::Relaxed)
}

/// Asks for shutdown from code (tests, fatal errors).
pub fn request() {
    SHUTDOWN.store(true, Ordering::Relaxed);
}

/// Whether a reload was asked for (SIGHUP) since the last call; clears the flag.
pub fn take_reload() -> bool {
    RELOAD.swap(false, Ordering::Relaxed)
}
