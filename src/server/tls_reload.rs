//! SIGHUP reloads the TLS certificates. The signal handler only sets a flag
//! (`signals::take_reload`); this one thread polls it and calls
//! [`ServerTls::reload`], which reads the files and swaps the certificate set:
//! handshakes after it use the new certificates, established connections are
//! untouched, and a failed reload keeps the old set. File reads never happen on
//! a core.

use std::time::Duration;

use super::signals;
use crate::tls::ServerTls;

/// How often the reload flag is checked: a SIGHUP takes effect within this.
pub const POLL_EVERY: Duration = Duration::from_millis(100);

/// Starts the `ringcast-tls-reload` thread; it ends when shutdown is asked for.
/// Without `[tls]` a SIGHUP is logged and otherwise ignored.
pub fn spawn(tls: Option<ServerTls>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("ringcast-tls-reload".into())
        .spawn(move || {
            while !signals::requested() {
                std::thread::sleep(POLL_EVERY);
                if signals::take_reload() {
                    reload(tls.as_ref());
                }
            }
        })
        .map(|_| ())
}

/// One reload, logged (the file names and the error, never key material).
pub fn reload(tls: Option<&ServerTls>) {
    let Some(tls) = tls else {
        tracing::info!("SIGHUP: no [tls] certificates to reload");
        return;
    };
    match tls.reload() {
        // `ServerTls::reload` logs the names it now serves.
        Ok(()) => {}
        Err(error) => {
            tracing::error!(%error, "SIGHUP: TLS certificate reload failed; the previous certificates stay in use")
        }
    }
}
