//! Packager settings, fixed when a stream's packager starts, and the playlist
//! parameters derived from them (which therefore never change either).

use thiserror::Error;

/// Why a set of HLS settings was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// PART-TARGET outside the range players cope with.
    #[error("part target {got_ms} ms is outside {min_ms}..={max_ms} ms")]
    PartTarget {
        /// The value asked for.
        got_ms: u32,
        /// Smallest allowed.
        min_ms: u32,
        /// Largest allowed.
        max_ms: u32,
    },
    /// The segment target must hold at least three parts and at most the limit.
    #[error(
        "segment target {got_ms} ms must be >= 3 x part target ({part_ms} ms) and <= {max_ms} ms"
    )]
    SegmentTarget {
        /// The value asked for.
        got_ms: u32,
        /// The part target it was checked against.
        part_ms: u32,
        /// Largest allowed.
        max_ms: u32,
    },
    /// The window must hold enough segments for players (and at least the
    /// three target durations the spec asks for).
    #[error("window of {got} segments is outside {min}..={max}")]
    Window {
        /// The value asked for.
        got: usize,
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
    },
}

/// Smallest part target accepted (ms); below this the request rate explodes.
pub const MIN_PART_TARGET_MS: u32 = 100;
/// Largest part target accepted (ms).
pub const MAX_PART_TARGET_MS: u32 = 2_000;
/// Largest segment target accepted (ms).
pub const MAX_SEGMENT_TARGET_MS: u32 = 20_000;
/// Fewest segments in the window.
pub const MIN_WINDOW: usize = 3;
/// Most segments in the window.
pub const MAX_WINDOW: usize = 64;

/// HLS packaging settings (the `[hls]` section).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HlsConfig {
    /// Nominal part duration: no part is longer (PART-TARGET).
    pub part_target_ms: u32,
    /// Nominal segment duration: the spacing of the segment grid.
    pub segment_target_ms: u32,
    /// Closed segments kept (and listed).
    pub window_segments: usize,
    /// Bytes of closed segments kept per stream; the oldest go first when over.
    pub max_bytes: u64,
    /// Most parts in one segment; past it a segment's last part grows instead
    /// of splitting (only an all-intra stream at a high frame rate gets there).
    pub max_parts_per_segment: usize,
}

impl Default for HlsConfig {
    fn default() -> Self {
        HlsConfig {
            part_target_ms: 334,
            segment_target_ms: 2_000,
            window_segments: 6,
            max_bytes: 64 * 1024 * 1024,
            max_parts_per_segment: 64,
        }
    }
}

impl HlsConfig {
    /// Checks the ranges and derives the fixed playlist parameters.
    pub fn validate(&self) -> Result<Timing, ConfigError> {
        let pt = self.part_target_ms;
        if !(MIN_PART_TARGET_MS..=MAX_PART_TARGET_MS).contains(&pt) {
            return Err(ConfigError::PartTarget {
                got_ms: pt,
                min_ms: MIN_PART_TARGET_MS,
                max_ms: MAX_PART_TARGET_MS,
            });
        }
        let st = self.segment_target_ms;
        if st < pt.saturating_mul(3) || st > MAX_SEGMENT_TARGET_MS {
            return Err(ConfigError::SegmentTarget {
                got_ms: st,
                part_ms: pt,
                max_ms: MAX_SEGMENT_TARGET_MS,
            });
        }
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&self.window_segments) {
            return Err(ConfigError::Window {
                got: self.window_segments,
                min: MIN_WINDOW,
                max: MAX_WINDOW,
            });
        }
        Ok(Timing::from_targets(pt, st))
    }
}

/// The playlist parameters, fixed for a packager's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// PART-TARGET (ms).
    pub part_target_ms: u32,
    /// The segment grid spacing (ms).
    pub segment_target_ms: u32,
    /// EXT-X-TARGETDURATION (whole seconds).
    ///
    /// The timeline's worst case segment is two grid spacings plus one part
    /// (a keyframe half a spacing early, the next cut half a spacing late, see
    /// `timeline`), so TARGETDURATION is the smallest whole number of seconds
    /// that this worst case still rounds to (the spec's rule: EXTINF rounded
    /// to the nearest integer must be <= TARGETDURATION). Typical segments
    /// are one grid spacing; only the bound is larger.
    pub target_duration_s: u32,
}

impl Timing {
    /// Derives TARGETDURATION from the two targets.
    pub fn from_targets(part_target_ms: u32, segment_target_ms: u32) -> Self {
        let worst = u64::from(segment_target_ms) * 2 + u64::from(part_target_ms);
        // Smallest integer TD with worst < TD + 0.5 s, i.e. worst rounds to <= TD.
        let td = (worst.saturating_sub(500) / 1000) + 1;
        Timing {
            part_target_ms,
            segment_target_ms,
            target_duration_s: u32::try_from(td).unwrap_or(u32::MAX),
        }
    }

    /// PART-HOLD-BACK: 3 x PART-TARGET (the spec's SHOULD; hls.js starts here).
    pub fn part_hold_back_ms(&self) -> u64 {
        u64::from(self.part_target_ms) * 3
    }

    /// CAN-SKIP-UNTIL: the spec's minimum, 6 x TARGETDURATION.
    pub fn can_skip_until_ms(&self) -> u64 {
        u64::from(self.target_duration_s) * 6_000
    }

    /// TARGETDURATION in ms.
    pub fn target_duration_ms(&self) -> u64 {
        u64::from(self.target_duration_s) * 1_000
    }

    /// How long a blocking reload may wait before 503 (3 x TARGETDURATION).
    pub fn block_limit_ms(&self) -> u64 {
        self.target_duration_ms() * 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_derive_a_target_duration_covering_the_worst_case() {
        let t = HlsConfig::default()
            .validate()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.target_duration_s, 4);
        // The worst case (2 x 2000 + 334 ms) rounds to 4 s.
        assert!((4_334u64 + 500) / 1000 <= u64::from(t.target_duration_s));
        assert_eq!(t.part_hold_back_ms(), 1_002);
        assert!(t.can_skip_until_ms() >= 6 * t.target_duration_ms());
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_limit() {
        let c = HlsConfig {
            part_target_ms: 50,
            ..HlsConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::PartTarget { got_ms: 50, .. })
        ));
        let c = HlsConfig {
            segment_target_ms: 500,
            ..HlsConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::SegmentTarget { .. })
        ));
        let c = HlsConfig {
            window_segments: 1,
            ..HlsConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Window { got: 1, .. })
        ));
    }

    #[test]
    fn target_duration_is_the_smallest_integer_the_worst_case_rounds_to() {
        for (pt, st) in [(200, 1000), (334, 2000), (500, 6000), (1000, 10_000)] {
            let t = Timing::from_targets(pt, st);
            let worst = 2 * st + pt;
            let rounded = (worst + 500) / 1000;
            assert!(rounded <= t.target_duration_s, "{pt} {st}");
            assert!(rounded + 1 > t.target_duration_s, "not minimal: {pt} {st}");
        }
    }
}
