//! `[limits]`: protocol limits and timeouts, with their defaults and range
//! checks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{check, ConfigError};

/// Protocol limits and timeouts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// A connection must finish the RTMP handshake (or send an HTTP head) within this.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// A publisher must send its first media within this after `publish`.
    #[serde(with = "humantime_serde")]
    pub first_media_timeout: Duration,
    /// A publisher silent for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Most requests served on one keep-alive HTTP connection; the last one
    /// is answered with `Connection: close`.
    pub http_max_requests: u32,
    /// Largest RTMP message accepted, bytes.
    pub max_message_size: u32,
    /// Largest RTMP chunk size a peer may set, bytes.
    pub max_chunk_size: u32,
    /// Chunk size ringcast sends with, bytes.
    pub out_chunk_size: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            handshake_timeout: Duration::from_secs(10),
            first_media_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(30),
            http_max_requests: 1000,
            max_message_size: 4 << 20,
            max_chunk_size: 16 << 20,
            out_chunk_size: 4096,
        }
    }
}

impl LimitsConfig {
    /// Checks the ranges serde cannot express.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let l = self;
        check(
            l.http_max_requests >= 1,
            "limits.http_max_requests",
            "must be at least 1",
        )?;
        check(
            l.max_chunk_size >= 128 && l.max_chunk_size <= 0x7fff_ffff,
            "limits.max_chunk_size",
            "must be 128..=2147483647",
        )?;
        check(
            (128..=65536).contains(&l.out_chunk_size),
            "limits.out_chunk_size",
            "must be 128..=65536",
        )?;
        check(
            l.max_message_size >= 1024 && l.max_message_size <= 64 << 20,
            "limits.max_message_size",
            "must be 1 KiB..=64 MiB",
        )?;
        check(
            !l.handshake_timeout.is_zero(),
            "limits.handshake_timeout",
            "must be above zero",
        )?;
        check(
            !l.idle_timeout.is_zero(),
            "limits.idle_timeout",
            "must be above zero",
        )?;
        Ok(())
    }
}
