//! What a page reports (`tests/browser/pages/probe.js` builds it): the player's
//! view of one bounded playback.

use serde::Deserialize;

/// One report, interim (`final_` false, sent each second) or final.
#[derive(Clone, Debug, Deserialize)]
pub struct Report {
    /// Player library (`mpegts.js`, `hls.js`, `dash.js`).
    pub player: String,
    /// Its version as it reports it.
    pub version: String,
    /// The last report of the run.
    #[serde(rename = "final")]
    pub final_: bool,
    /// Why the page stopped: `played`, `page deadline`, `fatal player error`.
    pub reason: Option<String>,
    /// Chromium's user agent.
    pub user_agent: String,
    /// The page's origin (the harness's page server).
    pub page_origin: String,
    /// The media URL the player was given.
    pub media_url: String,
    /// `MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f"')`.
    pub mse_h264: bool,
    /// `MediaSource.isTypeSupported('audio/mp4; codecs="mp4a.40.2"')`.
    pub mse_aac: bool,
    /// Milliseconds from the page asking the player to load to the first frame shown.
    pub first_frame_ms: Option<f64>,
    /// Milliseconds played since the first frame.
    pub played_ms: f64,
    /// `getVideoPlaybackQuality().totalVideoFrames`.
    pub frames_decoded: u64,
    /// `getVideoPlaybackQuality().droppedVideoFrames`.
    pub frames_dropped: u64,
    /// `waiting` events after the first frame, outside seeks (the element ran
    /// out of data while playing on).
    pub waiting_events: u64,
    /// When each of those came, ms after the first frame (the first 64).
    pub waiting_at_ms: Vec<f64>,
    /// Times the playhead stood still for 500 ms or more while playing.
    pub stalls: u64,
    /// When each stall began, ms after the first frame (the first 64).
    pub stall_at_ms: Vec<f64>,
    /// The player's own buffer-empty notices (hls.js `bufferStalledError`),
    /// each with its time after the first frame (the first 64).
    pub underrun_notices: Vec<String>,
    /// Total time the playhead stood still in those stalls.
    pub stalled_ms: f64,
    /// Latency behind live as the player computes it, seconds, sampled every
    /// 250 ms (newest 64); for mpegts.js the buffer ahead of the playhead.
    pub latency_s: Vec<f64>,
    /// Median of `latency_s`.
    pub latency_p50: Option<f64>,
    /// Largest of `latency_s`.
    pub latency_max: Option<f64>,
    /// This machine's clock minus the wall-clock time of the frame playing, from
    /// the stream's own timestamps (hls.js: `EXT-X-PROGRAM-DATE-TIME` through
    /// `hls.playingDate`), seconds (newest 64 samples); empty for other players.
    pub wall_latency_s: Vec<f64>,
    /// Median of `wall_latency_s`.
    pub wall_latency_p50: Option<f64>,
    /// Buffer ahead of the playhead, seconds (newest 64 samples).
    pub buffer_s: Vec<f64>,
    /// Median of `buffer_s`.
    pub buffer_p50: Option<f64>,
    /// `video.currentTime` at the report.
    pub current_time: f64,
    /// `video.videoWidth`.
    pub video_width: u32,
    /// `video.videoHeight`.
    pub video_height: u32,
    /// Every origin the page fetched from (Resource Timing).
    pub resource_origins: Vec<String>,
    /// Player, element and script errors (`fatal: ` first when fatal).
    pub errors: Vec<String>,
}

/// How long after its first frame a player is starting up: within it, one
/// underrun (a stall or a `waiting`) is tolerated, as a player that starts
/// close to the live edge on a loaded machine may hit one before it settles;
/// after it, none.
pub const START_UP_MS: f64 = 2000.0;

impl Report {
    /// Parses a report body.
    pub fn parse(body: &str) -> Result<Report, serde_json::Error> {
        serde_json::from_str(body)
    }

    /// The origin of the media URL (`scheme://host:port`).
    pub fn media_origin(&self) -> String {
        let (scheme, rest) = self.media_url.split_once("://").unwrap_or(("", ""));
        let authority = rest.split('/').next().unwrap_or("");
        format!("{scheme}://{authority}")
    }

    /// What every successful playback shows: the page played its whole time
    /// (`reason` is `played`) with no error, from another origin than the
    /// media's, fetching from no third origin (no outside time server, no CDN).
    pub fn assert_played_cleanly_cross_origin(&self) {
        let summary = self.summary();
        assert_eq!(self.reason.as_deref(), Some("played"), "{summary}");
        assert!(self.errors.is_empty(), "errors: {summary}");
        let media = self.media_origin();
        assert_ne!(
            self.page_origin, media,
            "the media must come from another origin than the page"
        );
        for origin in &self.resource_origins {
            assert!(
                *origin == self.page_origin || *origin == media,
                "the page fetched from {origin}, outside the page and media origins"
            );
        }
    }

    /// Playback was smooth: no stall and no `waiting` after [`START_UP_MS`], and
    /// at most one of each before.
    pub fn assert_smooth(&self) {
        let summary = self.summary();
        let late = |times: &[f64]| times.iter().filter(|&&t| t >= START_UP_MS).count();
        assert_eq!(
            late(&self.stall_at_ms),
            0,
            "stalls after start-up: {summary}"
        );
        assert_eq!(
            late(&self.waiting_at_ms),
            0,
            "waiting after start-up: {summary}"
        );
        assert!(self.stalls <= 1, "stalls: {summary}");
        assert!(self.waiting_events <= 1, "waiting events: {summary}");
    }

    /// One line for the test log (and the closing note).
    pub fn summary(&self) -> String {
        let ms = |x: Option<f64>| x.map_or("none".to_string(), |v| format!("{v:.0} ms"));
        let s = |x: Option<f64>| x.map_or("none".to_string(), |v| format!("{v:.2} s"));
        format!(
            "{} {}: first frame {} after asking, {} frames decoded ({} dropped) in {:.1} s, \
             {} stalls {:?} ms ({:.0} ms long), {} waiting events {:?} ms, underrun notices {:?}, latency p50 {} max {}, \
             wall-clock latency p50 {}, buffer p50 {}, {}x{}, errors {:?}",
            self.player,
            self.version,
            ms(self.first_frame_ms),
            self.frames_decoded,
            self.frames_dropped,
            self.played_ms / 1000.0,
            self.stalls,
            self.stall_at_ms,
            self.stalled_ms,
            self.waiting_events,
            self.waiting_at_ms,
            self.underrun_notices,
            s(self.latency_p50),
            s(self.latency_max),
            s(self.wall_latency_p50),
            s(self.buffer_p50),
            self.video_width,
            self.video_height,
            self.errors
        )
    }
}
