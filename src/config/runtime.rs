//! `[runtime]`: io_uring reactor settings, with their defaults and range
//! checks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{check, ConfigError};

/// io_uring reactor settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Submission queue entries per core.
    pub ring_entries: u32,
    /// Receive buffers in the provided-buffer ring per core (power of two).
    pub recv_buffers: u16,
    /// Size of each receive buffer, bytes.
    pub recv_buffer_size: u32,
    /// Ask for SINGLE_ISSUER + DEFER_TASKRUN (falls back when the kernel refuses).
    pub defer_taskrun: bool,
    /// Most frames one viewer send gathers.
    pub max_frames_per_send: usize,
    /// Most bytes one viewer send gathers.
    pub max_bytes_per_send: usize,
    /// Most connections one loop turn sends to before it collects completions
    /// again: with more ready (a busy core), frames that arrive meanwhile still
    /// reach the viewers not yet sent to, and replies to sessions (handshakes,
    /// requests, joins) go at the next turn instead of after every viewer.
    pub max_sends_per_turn: usize,
    /// Capacity of each cross-core media ring (one per ordered core pair), messages; a power of two.
    pub cross_core_queue: usize,
    /// Capacity of each cross-core control ring, messages; a power of two. Control
    /// messages are never dropped: past the ring they wait in an unbounded queue.
    pub cross_core_control_queue: usize,
    /// Most media messages waiting behind a full media ring, per target core; past
    /// it frames are dropped (counted as `queue_cap`) and the replica resyncs.
    pub cross_core_backlog: usize,
    /// Viewers woken by new frames are sent to once per window, so frames that
    /// arrive within it leave in one gathered send. Adds at most this much latency.
    /// Off by default: measured at 10k viewers of a 600 kb/s stream, 20 ms saved no
    /// CPU (frames already coalesce while sends are in flight); `benches/system/ab.sh`.
    #[serde(with = "humantime_serde")]
    pub send_merge_window: Duration,
    /// A viewer woken by an audio frame alone may wait this long for a video frame
    /// to share its send (video, sequence headers and metadata never wait), so
    /// audio rides with video: fewer, larger sends per viewer. At most one frame
    /// interval of the stream is sensible; 0 sends audio at once.
    #[serde(with = "humantime_serde")]
    pub audio_flush_delay: Duration,
    /// Send with `SENDMSG_ZC` (zero-copy) instead of copying `sendmsg`. Off by
    /// default: on loopback the kernel copies anyway and zero-copy costs more CPU
    /// (see the fan-out benchmark); worth measuring on a real NIC with large frames.
    /// With it on, each core registers a send region (below) with its ring and
    /// sends from it with fixed-buffer `SENDMSG_ZC` when a send's bytes all lie in it.
    pub zero_copy_send: bool,
    /// Zero-copy only: viewers per core whose prefix scratch lives in the registered
    /// region (`max_frames_per_send * 32` bytes each); further viewers send without
    /// fixed buffers. 0 disables the region.
    pub registered_viewers: usize,
    /// Zero-copy only: bytes of the registered region per core holding the copy of
    /// each frame body its viewers send (made once per core, in 1 MiB blocks). The
    /// region (this plus the viewers' scratch) is pinned memory: see README. 0
    /// disables the region.
    pub registered_staging_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            ring_entries: 4096,
            recv_buffers: 1024,
            recv_buffer_size: 16 << 10,
            defer_taskrun: true,
            max_frames_per_send: 64,
            max_bytes_per_send: 128 << 10,
            max_sends_per_turn: 1024,
            cross_core_queue: 8192,
            cross_core_control_queue: 1024,
            cross_core_backlog: 1 << 16,
            send_merge_window: Duration::ZERO,
            audio_flush_delay: Duration::from_millis(30),
            zero_copy_send: false,
            registered_viewers: 8192,
            registered_staging_bytes: 32 << 20,
        }
    }
}

impl RuntimeConfig {
    /// Checks the ranges serde cannot express.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let r = self;
        check(
            r.recv_buffers.is_power_of_two(),
            "runtime.recv_buffers",
            "must be a power of two",
        )?;
        check(
            r.recv_buffer_size >= 1024,
            "runtime.recv_buffer_size",
            "must be at least 1024",
        )?;
        check(
            (1..=512).contains(&r.max_frames_per_send),
            "runtime.max_frames_per_send",
            "must be 1..=512",
        )?;
        check(
            r.max_sends_per_turn >= 1,
            "runtime.max_sends_per_turn",
            "must be at least 1",
        )?;
        check(
            r.cross_core_queue >= 64,
            "runtime.cross_core_queue",
            "must be at least 64",
        )?;
        check(
            r.cross_core_queue.is_power_of_two(),
            "runtime.cross_core_queue",
            "must be a power of two",
        )?;
        check(
            r.cross_core_control_queue.is_power_of_two(),
            "runtime.cross_core_control_queue",
            "must be a power of two",
        )?;
        check(
            r.audio_flush_delay <= Duration::from_millis(100),
            "runtime.audio_flush_delay",
            "must be at most 100ms",
        )?;
        check(
            r.send_merge_window <= Duration::from_millis(500),
            "runtime.send_merge_window",
            "must be at most 500ms",
        )?;
        Ok(())
    }
}
