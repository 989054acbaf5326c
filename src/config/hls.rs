//! `[hls]`: the HLS / LL-HLS / LL-DASH section, its defaults, the packager
//! settings it maps to and its validation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[hls]`: HLS / LL-HLS / LL-DASH packaging and serving. The packaging
/// values are fixed when a stream's packager starts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HlsSection {
    /// Package every stream and serve `.m3u8`, `-ts.m3u8` and `.mpd`.
    pub enabled: bool,
    /// PART-TARGET: no part is longer.
    #[serde(with = "humantime_serde")]
    pub part_target: Duration,
    /// Nominal segment duration (the segment grid).
    #[serde(with = "humantime_serde")]
    pub segment_target: Duration,
    /// Closed segments kept and listed per stream.
    pub window_segments: usize,
    /// Bytes of packaged media kept per stream (half for the window's closed
    /// segments, half for the one being produced).
    pub max_bytes: u64,
    /// Most HLS requests held on one core (blocking reloads, preload hints,
    /// in-progress DASH segments, requests waiting for another core's copy);
    /// past it: 503.
    pub max_waiters_per_core: usize,
    /// Path of the clock the MPD's `UTCTiming` names (served by ringcast).
    pub utc_timing: String,
}

impl Default for HlsSection {
    fn default() -> Self {
        let p = crate::protocol::hls::HlsConfig::default();
        HlsSection {
            enabled: true,
            part_target: Duration::from_millis(u64::from(p.part_target_ms)),
            segment_target: Duration::from_millis(u64::from(p.segment_target_ms)),
            window_segments: p.window_segments,
            max_bytes: p.max_bytes,
            max_waiters_per_core: 10_000,
            utc_timing: "/time".to_owned(),
        }
    }
}

impl HlsSection {
    /// The packager settings these values give (not yet range-checked: see
    /// [`HlsSection::validate`]).
    pub fn packager_config(&self) -> crate::protocol::hls::PackagerConfig {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        crate::protocol::hls::PackagerConfig {
            hls: crate::protocol::hls::HlsConfig {
                part_target_ms: ms(self.part_target),
                segment_target_ms: ms(self.segment_target),
                window_segments: self.window_segments,
                max_bytes: self.max_bytes,
                ..crate::protocol::hls::HlsConfig::default()
            },
            utc_timing_url: self.utc_timing.clone(),
            ..crate::protocol::hls::PackagerConfig::default()
        }
    }

    /// Checks the values with the packager's own rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: String| ConfigError::Invalid { field, reason };
        self.packager_config()
            .timeline_config()
            .validate()
            .map_err(|e| invalid("hls", e.to_string()))?;
        if self.max_bytes < 1 << 20 {
            return Err(invalid("hls.max_bytes", "must be at least 1 MiB".into()));
        }
        if self.max_waiters_per_core == 0 {
            return Err(invalid(
                "hls.max_waiters_per_core",
                "must be at least 1".into(),
            ));
        }
        let path_ok = self.utc_timing.starts_with('/')
            && self.utc_timing.len() <= 256
            && self
                .utc_timing
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#');
        if !path_ok {
            return Err(invalid(
                "hls.utc_timing",
                "must be an absolute path (printable ASCII, no query)".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::*;

    #[test]
    fn hls_section_defaults_map_to_the_packager_and_bad_values_are_refused() {
        let c = Config::from_toml("").unwrap();
        assert!(c.hls.enabled);
        assert_eq!(c.limits.http_max_requests, 1000);
        let p = c.hls.packager_config();
        assert_eq!(p.hls, crate::protocol::hls::HlsConfig::default());
        assert_eq!(p.utc_timing_url, "/time");
        let c = Config::from_toml(
            "[hls]\npart_target = \"200ms\"\nsegment_target = \"1s\"\nwindow_segments = 8\n",
        )
        .unwrap();
        let p = c.hls.packager_config();
        assert_eq!(
            (
                p.hls.part_target_ms,
                p.hls.segment_target_ms,
                p.hls.window_segments
            ),
            (200, 1000, 8)
        );
        for (toml, field) in [
            ("[hls]\npart_target = \"10ms\"\n", "hls"),
            ("[hls]\nsegment_target = \"500ms\"\n", "hls"),
            ("[hls]\nwindow_segments = 1\n", "hls"),
            (
                "[hls]\nmax_waiters_per_core = 0\n",
                "hls.max_waiters_per_core",
            ),
            ("[hls]\nutc_timing = \"time\"\n", "hls.utc_timing"),
            (
                "[limits]\nhttp_max_requests = 0\n",
                "limits.http_max_requests",
            ),
        ] {
            let err = Config::from_toml(toml).unwrap_err().to_string();
            assert!(err.contains(field), "{toml}: {err}");
        }
        assert!(matches!(
            Config::from_toml("[hls]\nnope = 1\n"),
            Err(ConfigError::Parse(_))
        ));
    }
}
