//! What a packager is built from ([`PackagerConfig`], [`Start`]) and why
//! building one fails ([`PackagerError`]).

use thiserror::Error;

use crate::protocol::fmp4::ChunkLimits;
use crate::protocol::ts::TsLimits;

use crate::protocol::hls::config::HlsConfig;

/// Settings of one stream's packager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackagerConfig {
    /// Parts, segments, window. Its `max_bytes` is the store's byte cap: the
    /// timeline is given a share of it (see [`PackagerConfig::timeline_config`]).
    pub hls: HlsConfig,
    /// Bounds of one fMP4 chunk.
    pub chunk: ChunkLimits,
    /// Bounds of the MPEG-TS muxer.
    pub ts: TsLimits,
    /// The clock URL the MPD's `UTCTiming` names (served by ringcast itself).
    pub utc_timing_url: String,
    /// Most bytes of one MPEG-TS segment being muxed (frames past it are
    /// left out of that segment with a warning; only a stream whose
    /// timestamps stop advancing gets there).
    pub max_ts_segment_bytes: usize,
}

impl Default for PackagerConfig {
    fn default() -> Self {
        PackagerConfig {
            hls: HlsConfig::default(),
            chunk: ChunkLimits::default(),
            ts: TsLimits::default(),
            utc_timing_url: "/time".to_owned(),
            max_ts_segment_bytes: 64 << 20,
        }
    }
}

impl PackagerConfig {
    /// The timeline's settings. Each frame is accounted at what the store
    /// holds for it ([`store_cost`](super::store_cost): its fMP4 sample plus its TS packets), and
    /// the timeline evicts closed segments past half the cap: the other half
    /// is for the open segment (at most TARGETDURATION of media).
    pub fn timeline_config(&self) -> HlsConfig {
        HlsConfig {
            max_bytes: self.hls.max_bytes / 2,
            ..self.hls
        }
    }
}

/// Where a packager starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// With the publisher's first frame.
    Publish,
    /// In a running stream, from the GOP cache: feed the cached frames first.
    /// `prev_keyframe_dts` is the keyframe before the first cached one (the
    /// GOP cache keeps it), so the first cached keyframe can start a segment
    /// and the first request gets a playable playlist at once.
    GopCache {
        /// DTS of the keyframe before the first cached frame, if known.
        prev_keyframe_dts: Option<u64>,
        /// The origin's grid origin ([`Timeline::grid_origin`](crate::protocol::hls::Timeline::grid_origin)); 0 normally.
        grid_origin_ms: i64,
    },
}

/// Why a packager could not be built.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PackagerError {
    /// The settings are out of range.
    #[error("hls settings: {0}")]
    Config(#[from] crate::protocol::hls::config::ConfigError),
    /// The app or stream name is empty or too long.
    #[error("app or stream name empty or longer than {limit} bytes")]
    BadName {
        /// [`MAX_NAME_LEN`](super::MAX_NAME_LEN).
        limit: usize,
    },
}
