//! Start-up check of the process resource limits that decide how many viewers
//! this box can hold: RLIMIT_NOFILE (one descriptor per connection) and
//! RLIMIT_MEMLOCK (io_uring rings and registered buffers are locked memory).

use std::io;

/// Why a resource limit could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    /// `getrlimit`/`setrlimit` failed.
    #[error("{call}({resource}) failed: {source}")]
    Syscall {
        /// Which call.
        call: &'static str,
        /// Which resource.
        resource: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

/// `(soft, hard)` limits of `resource`; `None` means unlimited.
fn get(
    resource: libc::__rlimit_resource_t,
    name: &'static str,
) -> Result<(Option<u64>, Option<u64>), RlimitError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    let rc = unsafe { libc::getrlimit(resource, &mut lim) };
    if rc != 0 {
        return Err(RlimitError::Syscall {
            call: "getrlimit",
            resource: name,
            source: io::Error::last_os_error(),
        });
    }
    // rlim_t is u32 on some 32-bit targets, hence the cast.
    #[allow(clippy::unnecessary_cast)]
    let finite = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v as u64);
    Ok((finite(lim.rlim_cur), finite(lim.rlim_max)))
}

fn describe(v: Option<u64>) -> String {
    v.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
}

/// Warnings, one per limit, when RLIMIT_NOFILE is below `wanted_fds` or
/// RLIMIT_MEMLOCK is below `wanted_memlock` bytes. Empty when both suffice. The
/// server logs each with `tracing::warn!` at start; a limit that cannot even be
/// read is reported as a warning too, since starting anyway is the right call.
pub fn check_rlimits(wanted_fds: u64, wanted_memlock: u64) -> Vec<String> {
    let mut warnings = Vec::new();
    match get(libc::RLIMIT_NOFILE, "RLIMIT_NOFILE") {
        Ok((soft, hard)) => {
            if soft.is_some_and(|s| s < wanted_fds) {
                let fix = if !matches!(hard, Some(h) if h < wanted_fds) {
                    "the hard limit allows more: raise the soft limit (ringcast does this itself unless it failed)"
                } else {
                    "raise LimitNOFILE in ringcast.service or nofile in /etc/security/limits.d (see tuning/)"
                };
                warnings.push(format!(
                    "RLIMIT_NOFILE soft limit {} (hard {}) is below the {} descriptors the configured \
                     connection limit needs: accepts will fail with EMFILE; {}",
                    describe(soft),
                    describe(hard),
                    wanted_fds,
                    fix
                ));
            }
        }
        Err(e) => warnings.push(format!("cannot check descriptor limit: {e}")),
    }
    match get(libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK") {
        Ok((soft, hard)) => {
            if soft.is_some_and(|s| s < wanted_memlock) {
                warnings.push(format!(
                    "RLIMIT_MEMLOCK soft limit {} bytes (hard {}) is below the {} bytes io_uring rings \
                     and registered buffers need: ring setup or buffer registration may fail with \
                     ENOMEM; set LimitMEMLOCK=infinity in ringcast.service or memlock in limits.d",
                    describe(soft),
                    describe(hard),
                    wanted_memlock
                ));
            }
        }
        Err(e) => warnings.push(format!("cannot check locked-memory limit: {e}")),
    }
    warnings
}

/// Raises the soft RLIMIT_NOFILE towards `wanted` (never above the hard limit,
/// never lowering it) and returns the resulting soft limit. Processes start with a
/// soft limit of 1024 even when the hard limit allows a million, and raising soft
/// up to hard needs no privilege.
pub fn raise_nofile_limit(wanted: u64) -> Result<u64, RlimitError> {
    let (soft, hard) = get(libc::RLIMIT_NOFILE, "RLIMIT_NOFILE")?;
    let Some(soft) = soft else {
        return Ok(u64::MAX);
    };
    let target = hard.map_or(wanted, |h| wanted.min(h));
    if target <= soft {
        return Ok(soft);
    }
    let lim = libc::rlimit {
        rlim_cur: target as libc::rlim_t,
        rlim_max: hard.map_or(libc::RLIM_INFINITY, |h| h as libc::rlim_t),
    };
    // SAFETY: `lim` is a valid rlimit for the duration of the call.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    if rc != 0 {
        return Err(RlimitError::Syscall {
            call: "setrlimit",
            resource: "RLIMIT_NOFILE",
            source: io::Error::last_os_error(),
        });
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modest_needs_produce_no_warning() {
        // Every Linux process may open 16 descriptors and lock 0 bytes.
        assert!(check_rlimits(16, 0).is_empty());
    }

    #[test]
    fn impossible_needs_name_the_limit_and_the_numbers() {
        let (soft_fd, _) = get(libc::RLIMIT_NOFILE, "RLIMIT_NOFILE").unwrap();
        let (soft_mem, _) = get(libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK").unwrap();
        let w = check_rlimits(u64::MAX, u64::MAX);
        let expected = usize::from(soft_fd.is_some()) + usize::from(soft_mem.is_some());
        assert_eq!(w.len(), expected, "{w:?}");
        if soft_fd.is_some() {
            assert!(w
                .iter()
                .any(|m| m.contains("RLIMIT_NOFILE") && m.contains(&u64::MAX.to_string())));
        }
        if soft_mem.is_some() {
            assert!(w
                .iter()
                .any(|m| m.contains("RLIMIT_MEMLOCK") && m.contains("LimitMEMLOCK")));
        }
    }

    #[test]
    fn raising_nofile_never_exceeds_hard_or_lowers() {
        let (soft, hard) = get(libc::RLIMIT_NOFILE, "RLIMIT_NOFILE").unwrap();
        // Asking for less than we have keeps the current limit.
        let now = raise_nofile_limit(1).unwrap();
        assert_eq!(Some(now), soft.or(Some(u64::MAX)));
        // Asking for the hard limit reaches it (allowed without privilege).
        if let (Some(_), Some(h)) = (soft, hard) {
            assert_eq!(raise_nofile_limit(h).unwrap(), h);
            assert_eq!(
                get(libc::RLIMIT_NOFILE, "RLIMIT_NOFILE").unwrap().0,
                Some(h)
            );
        }
    }
}
