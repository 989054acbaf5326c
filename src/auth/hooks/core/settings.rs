//! [`HookSettings`]: the `[hooks]` values every core's [`HookCore`] is built
//! from (URLs, timeouts and fail policies by action, bounds).

#[cfg(doc)]
use super::HookCore;
use crate::auth::hooks::body::ServerIds;
use crate::auth::hooks::config::{HookUrl, HooksConfig, HooksConfigError};

/// The settings every core's [`HookCore`] is built from.
#[derive(Clone, Debug)]
pub struct HookSettings {
    pub(super) urls: [Option<HookUrl>; 4],
    pub(super) ids: ServerIds,
    pub(super) timeout_ms: [u64; 4],
    pub(super) fail_open: [bool; 4],
    pub(super) max_in_flight: usize,
    pub(super) cache_allow_ms: u64,
    pub(super) stop_retries: u32,
}

impl HookSettings {
    /// From `[hooks]`; `service_id` is unique per process start.
    pub fn new(config: &HooksConfig, service_id: String) -> Result<HookSettings, HooksConfigError> {
        let play = config.timeout_play.as_millis() as u64;
        let publish = config.timeout_publish.as_millis() as u64;
        Ok(HookSettings {
            urls: config.urls()?,
            ids: ServerIds {
                server_id: config.server_id.clone(),
                service_id,
            },
            // Index order: HookAction::ALL.
            timeout_ms: [publish, publish, play, play],
            fail_open: [
                config.fail_open_publish,
                false,
                config.fail_open_play,
                false,
            ],
            max_in_flight: config.max_in_flight_per_core.max(1),
            cache_allow_ms: config.cache_allow_for.as_millis() as u64,
            stop_retries: config.stop_retries,
        })
    }
}
