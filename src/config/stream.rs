//! `[stream]`: stream behaviour (GOP cache, takeover, timestamps, publisher
//! grace), with its defaults and range checks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{check, ConfigError};

/// How viewers' timestamps are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampMode {
    /// Each viewer's output starts at 0 (what players expect).
    #[default]
    ZeroBased,
    /// Keep the (corrected, monotonic) source timeline.
    Source,
}

/// Stream behaviour.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Keep the frames since the last keyframe so new viewers start at once.
    pub gop_cache: bool,
    /// Most frames kept per stream per core (GOP cache and slow-viewer retention).
    pub ring_max_frames: usize,
    /// Most bytes kept per stream per core.
    pub ring_max_bytes: usize,
    /// A second publisher on a taken key replaces the first instead of being refused.
    pub takeover: bool,
    /// After the publisher leaves, keep viewers waiting this long for it to return.
    #[serde(with = "humantime_serde")]
    pub publisher_grace: Duration,
    /// Viewer timestamps start at zero or keep the source's.
    pub timestamps: TimestampMode,
    /// A viewer asking for an unknown stream waits this long for a publisher (0: 404 at once).
    #[serde(with = "humantime_serde")]
    pub wait_for_publisher: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            gop_cache: true,
            ring_max_frames: 4096,
            ring_max_bytes: 32 << 20,
            takeover: false,
            publisher_grace: Duration::ZERO,
            timestamps: TimestampMode::ZeroBased,
            wait_for_publisher: Duration::ZERO,
        }
    }
}

impl StreamConfig {
    /// Checks the per-stream retention bounds.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let s = self;
        check(
            s.ring_max_frames >= 16,
            "stream.ring_max_frames",
            "must be at least 16",
        )?;
        check(
            s.ring_max_bytes >= 1 << 20,
            "stream.ring_max_bytes",
            "must be at least 1 MiB",
        )?;
        Ok(())
    }
}
