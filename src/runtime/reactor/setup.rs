//! How a reactor's ring is set up: the configuration, the features the kernel
//! accepted, and building the ring with fallbacks (`SQPOLL` when asked, then
//! `SINGLE_ISSUER | DEFER_TASKRUN`, then `COOP_TASKRUN`, then a plain ring).

use std::io;

use io_uring::IoUring;

/// How the reactor's ring is set up.
#[derive(Clone, Debug)]
pub struct ReactorConfig {
    /// Submission queue size (the kernel rounds up to a power of two).
    pub entries: u32,
    /// Number of receive buffers in the provided-buffer ring; a power of two, at most 32768.
    pub recv_buffers: u16,
    /// Size of each receive buffer in bytes.
    pub recv_buffer_size: u32,
    /// Ask for `SINGLE_ISSUER | DEFER_TASKRUN`: completions are only produced when we
    /// ask for them, which batches task work and avoids IPIs. Falls back if refused.
    pub defer_taskrun: bool,
    /// Ask for a kernel SQ polling thread (exclusive with `defer_taskrun`).
    pub sqpoll: bool,
    /// Bound on operations queued while the submission queue is full.
    pub backlog_limit: usize,
}

impl Default for ReactorConfig {
    fn default() -> Self {
        ReactorConfig {
            entries: 4096,
            recv_buffers: 4096,
            recv_buffer_size: 16 * 1024,
            defer_taskrun: true,
            sqpoll: false,
            backlog_limit: 65536,
        }
    }
}

/// Which ring features the kernel accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReactorFeatures {
    /// `IORING_SETUP_SINGLE_ISSUER`.
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN`.
    pub defer_taskrun: bool,
    /// `IORING_SETUP_COOP_TASKRUN`.
    pub coop_taskrun: bool,
    /// `IORING_SETUP_SQPOLL`.
    pub sqpoll: bool,
    /// `IORING_FEAT_EXT_ARG`: waits with a timeout need no extra SQE.
    pub ext_arg: bool,
    /// `IORING_FEAT_NODROP`: completions are never dropped on CQ overflow.
    pub nodrop: bool,
}

pub(super) fn build_ring(cfg: &ReactorConfig) -> io::Result<(IoUring, ReactorFeatures)> {
    let cq_entries = cfg.entries.saturating_mul(4);
    let attempts: &[(&str, bool, bool, bool)] = &[
        // (name, single_issuer+defer_taskrun, coop_taskrun, sqpoll)
        ("sqpoll", false, false, true),
        ("single_issuer+defer_taskrun", true, false, false),
        ("coop_taskrun", false, true, false),
        ("plain", false, false, false),
    ];
    let mut last_err = None;
    for &(name, defer, coop, sqpoll) in attempts {
        if (sqpoll && !cfg.sqpoll) || (defer && (!cfg.defer_taskrun || cfg.sqpoll)) {
            continue;
        }
        let mut builder = IoUring::builder();
        builder.setup_cqsize(cq_entries).setup_submit_all();
        if defer {
            builder.setup_single_issuer().setup_defer_taskrun();
        }
        if coop {
            builder.setup_coop_taskrun().setup_taskrun_flag();
        }
        if sqpoll {
            builder.setup_sqpoll(1000);
        }
        match builder.build(cfg.entries) {
            Ok(ring) => {
                let params = ring.params();
                let features = ReactorFeatures {
                    single_issuer: defer,
                    defer_taskrun: defer,
                    coop_taskrun: coop,
                    sqpoll,
                    ext_arg: params.is_feature_ext_arg(),
                    nodrop: params.is_feature_nodrop(),
                };
                tracing::info!(mode = name, ?features, "io_uring reactor ready");
                return Ok((ring, features));
            }
            Err(e) => {
                tracing::warn!(mode = name, error = %e, "io_uring setup refused, falling back");
                last_err = Some(e);
            }
        }
    }
    Err(last_err
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no io_uring mode tried")))
}
