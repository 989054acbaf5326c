//! `[viewer]`: slow-viewer bounds and viewer socket options, with their
//! defaults and range checks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{check, ConfigError};

/// Slow-viewer bounds: past soft, skip to the next keyframe; past hard, close.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ViewerConfig {
    /// Lag behind live after which non-keyframe video is skipped.
    #[serde(with = "humantime_serde")]
    pub soft_lag: Duration,
    /// Lag behind live after which the viewer is closed.
    #[serde(with = "humantime_serde")]
    pub hard_lag: Duration,
    /// Bytes queued behind live after which non-keyframe video is skipped.
    pub soft_lag_bytes: usize,
    /// Bytes queued behind live after which the viewer is closed.
    pub hard_lag_bytes: usize,
    /// Kernel send buffer per viewer socket, bytes (0: kernel default).
    pub socket_send_buffer: usize,
    /// `TCP_NOTSENT_LOWAT` per accepted socket, bytes (0: kernel default): the
    /// most unsent bytes the kernel takes before a send waits for room.
    pub socket_notsent_lowat: u32,
}

impl Default for ViewerConfig {
    fn default() -> Self {
        ViewerConfig {
            soft_lag: Duration::from_secs(3),
            hard_lag: Duration::from_secs(10),
            soft_lag_bytes: 4 << 20,
            hard_lag_bytes: 16 << 20,
            socket_send_buffer: 0,
            socket_notsent_lowat: 0,
        }
    }
}

impl ViewerConfig {
    /// Checks that each soft bound does not exceed its hard bound.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let v = self;
        check(
            v.soft_lag <= v.hard_lag,
            "viewer.soft_lag",
            "must not exceed viewer.hard_lag",
        )?;
        check(
            v.soft_lag_bytes <= v.hard_lag_bytes,
            "viewer.soft_lag_bytes",
            "must not exceed viewer.hard_lag_bytes",
        )?;
        Ok(())
    }
}
