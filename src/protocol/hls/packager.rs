//! The per-stream packager: joins the timeline, the fMP4 and MPEG-TS muxers,
//! the store and the playlist renderers. Sans-IO: frames in (each with its
//! DTS on the stream timeline and the wall clock passed in), events and
//! shared bytes out; [`Packager::answer`] (in `serve.rs`) answers requests.
//!
//! * Tracks are fixed when the first coded frame arrives: a track is carried
//!   when its sequence header came before it and the fMP4 muxer can carry
//!   it (H.264, HEVC, AV1, AAC). Anything else (MP3, Speex, a sequence header
//!   arriving after the start) is left out with one warning per stream.
//! * Each closed part gives one fMP4 chunk per track (one track per chunk: an
//!   LL-HLS part and an LL-DASH chunk at once). A closed segment's fMP4 body
//!   is its parts' chunks back to back (see `store.rs`): the same bytes as
//!   the parts, no second copy, and exactly what LL-DASH streams chunk by
//!   chunk for the open segment — one chunk over the whole segment would
//!   hold the media twice and make the segment differ from its parts.
//! * Each closed segment gives one muxed MPEG-TS segment, when every carried
//!   track is H.264/AAC; HEVC/AV1 video means no TS rendition (one warning).
//! * A chunk's last sample ends where its part ends for the leading track
//!   (video, else audio), so `tfdt` chains exactly; the other track's last
//!   sample gets that track's last frame step (its next frame is not known
//!   yet): a gap or overlap of at most about one millisecond, never
//!   accumulating because every `tfdt` is the frame's own DTS.
//! * A codec configuration change inside a publisher is treated like a new
//!   publisher (`EXT-X-DISCONTINUITY` with the new `EXT-X-MAP`).

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::protocol::flv::frame::{Frame, FrameKind};
use crate::protocol::fmp4::{
    sample::sample_from_frame, write_chunk, write_init, ChunkInput, ChunkLimits, Fmp4Codec,
    Fmp4Error, Track, TrackMedia,
};
use crate::protocol::ts::{self, TsError, TsLimits, TsMuxer, TsTracks};

use super::config::HlsConfig;
use super::playlist::InitRef;
use super::render::Rendered;
use super::store::{slot, Body, Store};
use super::timeline::{
    FrameMeta, Placement, StartPoint, Timeline, TimelineEvent, TrackKind, Tracks,
};
use super::urls::config_id;

/// Longest app or stream name a packager accepts (bytes), as [`super::urls`].
pub const MAX_NAME_LEN: usize = super::urls::MAX_NAME_LEN;

/// fMP4 track ids (fixed, so every box writes the same bytes).
const VIDEO_TRACK_ID: u32 = 1;
const AUDIO_TRACK_ID: u32 = 2;

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
    /// holds for it ([`store_cost`]: its fMP4 sample plus its TS packets), and
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
        /// The origin's grid origin ([`Timeline::grid_origin`]); 0 normally.
        grid_origin_ms: i64,
    },
}

/// Why a packager could not be built.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PackagerError {
    /// The settings are out of range.
    #[error("hls settings: {0}")]
    Config(#[from] super::config::ConfigError),
    /// The app or stream name is empty or too long.
    #[error("app or stream name empty or longer than {limit} bytes")]
    BadName {
        /// [`MAX_NAME_LEN`].
        limit: usize,
    },
}

/// Something the packager could not package; the stream goes on.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PackagerWarning {
    /// A track HLS/DASH cannot carry, or whose sequence header came after the
    /// stream's first frame; once per track per stream.
    #[error("{track:?} track left out of HLS/DASH: {reason}")]
    TrackLeftOut {
        /// The track.
        track: TrackKind,
        /// Why.
        reason: String,
    },
    /// No MPEG-TS rendition (HEVC/AV1 video); once per stream.
    #[error("no MPEG-TS rendition: {reason}")]
    NoTsRendition {
        /// Why.
        reason: String,
    },
    /// A part's chunk could not be written (a bound was hit); that part of
    /// that track answers 404.
    #[error("part {msn}.{part} of the {track:?} track not packaged: {error}")]
    Chunk {
        /// The track.
        track: TrackKind,
        /// Segment.
        msn: u64,
        /// Part.
        part: u32,
        /// The muxer's error.
        error: Fmp4Error,
    },
    /// A part already holds [`ChunkLimits::max_samples`] frames of a track
    /// and the frame does not advance time (timestamps that stop advancing
    /// never close a part): the frame is dropped.
    #[error("{track:?} frame dropped: the open part already holds {limit} frames")]
    PartFull {
        /// The track.
        track: TrackKind,
        /// [`ChunkLimits::max_samples`].
        limit: usize,
    },
    /// TS segment `msn` reached [`PackagerConfig::max_ts_segment_bytes`]: the
    /// frame is missing there.
    #[error("TS segment {msn} is full ({limit} bytes): frame left out")]
    TsSegmentFull {
        /// Segment.
        msn: u64,
        /// The limit.
        limit: usize,
    },
    /// A frame could not go into the TS segment `msn`; it is missing there.
    #[error("frame not written to TS segment {msn}: {error}")]
    Ts {
        /// Segment.
        msn: u64,
        /// The muxer's error.
        error: TsError,
    },
}

/// What the caller acts on after a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackagerEvent {
    /// Part `(msn, part)` is stored and listed: answer blocking reloads and
    /// preload-hint requests waiting for it (call [`Packager::answer`] again).
    PartReady {
        /// Segment.
        msn: u64,
        /// Part.
        part: u32,
    },
    /// Segment `msn` is complete (its fMP4 and TS bodies are stored, unless
    /// it is an `EXT-X-GAP` segment).
    SegmentReady {
        /// Segment.
        msn: u64,
    },
    /// Segment `msn` left the window: its URLs answer 404 from now on.
    Evicted {
        /// Segment.
        msn: u64,
    },
    /// Something was left out; see [`PackagerWarning`].
    Warning(PackagerWarning),
}

/// One carried track.
#[derive(Clone, Debug)]
pub(crate) struct TrackState {
    pub(crate) track: Track,
    /// The last sequence header (replayed into a new TS muxer).
    pub(crate) seq: Frame,
    /// Init segments by publisher epoch, oldest first.
    pub(crate) inits: Vec<InitRef>,
    /// Frames of the open part (re-stamped with their DTS, see `push`).
    open: Vec<Frame>,
    open_first_dts: u64,
    last_dts: Option<u64>,
    last_step_ms: u32,
}

impl TrackState {
    fn current_id(&self) -> u64 {
        self.inits.last().map_or(0, |i| i.id)
    }

    /// A frame's duration when the next one is not known yet.
    fn default_step_ms(&self) -> u32 {
        match self.track.media {
            // One AAC frame: 1024 samples, rounded up to whole milliseconds.
            TrackMedia::Audio { sample_rate, .. } => {
                1_024_000u32.div_ceil(sample_rate.max(1)).max(1)
            }
            TrackMedia::Video { .. } => 40,
        }
    }
}

struct TsState {
    muxer: TsMuxer,
    msn: Option<u64>,
    buf: BytesMut,
}

/// The packager of one stream.
pub struct Packager {
    pub(crate) app: String,
    pub(crate) stream: String,
    pub(crate) config: PackagerConfig,
    start: StartPoint,
    pub(crate) timeline: Option<Timeline>,
    pub(crate) tracks: [Option<TrackState>; 2],
    warned: [bool; 2],
    ts: Option<TsState>,
    ts_disabled: bool,
    /// A discontinuity has been asked for and its first segment not yet opened.
    pending_publisher: bool,
    pub(crate) store: Store,
    pub(crate) rendered: Rendered,
    events: Vec<TimelineEvent>,
    last_now_unix_ms: u64,
}

fn kind_of(frame: &Frame) -> Option<TrackKind> {
    match frame.kind {
        FrameKind::Video => Some(TrackKind::Video),
        FrameKind::Audio => Some(TrackKind::Audio),
        FrameKind::Script => None,
    }
}

/// What the store holds for one frame of `payload_len` bytes: the fMP4 sample
/// and its `trun` entry, and (with a TS rendition) its 188-byte packets, with
/// 64 bytes of PES/AUD/ADTS/PCR overhead and, on keyframes, the parameter
/// sets written before an IDR (`config_len`).
pub fn store_cost(payload_len: usize, config_len: usize, keyframe: bool, ts: bool) -> u32 {
    let fmp4 = payload_len.saturating_add(16);
    let ts = if ts {
        let es =
            payload_len
                .saturating_add(64)
                .saturating_add(if keyframe { config_len } else { 0 });
        es.div_ceil(184).saturating_mul(188)
    } else {
        0
    };
    u32::try_from(fmp4.saturating_add(ts)).unwrap_or(u32::MAX)
}

fn low32(ms: u64) -> u32 {
    u32::try_from(ms & 0xFFFF_FFFF).unwrap_or(0)
}

/// `mfhd.sequence_number` of part `(msn, part)`: from the timeline's numbers,
/// so every box writes the same; increasing (it wraps after 2^32 parts).
fn chunk_sequence(msn: u64, part: u32, max_parts: usize) -> u32 {
    let per = u64::try_from(max_parts).unwrap_or(u64::MAX).max(1);
    low32(
        msn.wrapping_mul(per)
            .wrapping_add(u64::from(part))
            .wrapping_add(1),
    )
}

impl Packager {
    /// A packager for `/{app}/{stream}`.
    pub fn new(
        app: &str,
        stream: &str,
        config: PackagerConfig,
        start: Start,
    ) -> Result<Self, PackagerError> {
        for n in [app, stream] {
            if n.is_empty() || n.len() > MAX_NAME_LEN {
                return Err(PackagerError::BadName {
                    limit: MAX_NAME_LEN,
                });
            }
        }
        config.timeline_config().validate()?;
        let start = match start {
            Start::Publish => StartPoint::PublishStart,
            Start::GopCache {
                prev_keyframe_dts,
                grid_origin_ms,
            } => StartPoint::Join {
                prev_keyframe_dts,
                grid_origin_ms,
            },
        };
        Ok(Packager {
            app: app.to_owned(),
            stream: stream.to_owned(),
            config,
            start,
            timeline: None,
            tracks: [None, None],
            warned: [false, false],
            ts: None,
            ts_disabled: false,
            pending_publisher: false,
            store: Store::default(),
            rendered: Rendered::default(),
            events: Vec::new(),
            last_now_unix_ms: 0,
        })
    }

    /// A packager started from the GOP cache: `start` is usually
    /// [`Start::GopCache`] and `cached` the cached frames with their DTS
    /// (sequence headers first), fed at once, so the first request finds a
    /// playlist with the cached GOP's parts.
    pub fn from_gop_cache<'a>(
        app: &str,
        stream: &str,
        config: PackagerConfig,
        start: Start,
        cached: impl IntoIterator<Item = (&'a Frame, u64)>,
        now_unix_ms: u64,
        out: &mut Vec<PackagerEvent>,
    ) -> Result<Self, PackagerError> {
        let mut p = Packager::new(app, stream, config, start)?;
        for (f, dts) in cached {
            p.push(f, dts, now_unix_ms, out);
        }
        Ok(p)
    }

    /// The app name.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The stream name.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The timeline, once the tracks are known.
    pub fn timeline(&self) -> Option<&Timeline> {
        self.timeline.as_ref()
    }

    /// The store (every URL's bytes).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether an MPEG-TS rendition exists.
    pub fn has_ts(&self) -> bool {
        self.ts.is_some()
    }

    /// The stream's tracks as carried (`None` before the first coded frame).
    pub fn tracks(&self) -> Option<Tracks> {
        self.timeline.as_ref().map(Timeline::tracks)
    }

    /// A new publisher took the stream after the grace period: its first
    /// keyframe starts a segment with `EXT-X-DISCONTINUITY` (a new DASH
    /// period, a new TS muxer); numbers continue.
    pub fn new_publisher(&mut self) {
        if let Some(tl) = &mut self.timeline {
            tl.new_publisher();
            self.pending_publisher = true;
        }
    }

    /// The stream ended for good: closes the open part and segment and
    /// marks the playlists ended (`EXT-X-ENDLIST`).
    pub fn finish(&mut self, now_unix_ms: u64, out: &mut Vec<PackagerEvent>) {
        let Some(tl) = &mut self.timeline else {
            return;
        };
        let leading = if tl.tracks().video { 0 } else { 1 };
        let end = self
            .tracks
            .get(leading)
            .and_then(Option::as_ref)
            .and_then(|t| {
                t.last_dts
                    .map(|d| d.saturating_add(u64::from(t.last_step_ms)))
            })
            .unwrap_or(0);
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        tl.finish(end, &mut events);
        self.handle(&events, now_unix_ms, out);
        self.events = events;
    }

    /// Feeds one frame of the stream, in order: `dts_ms` is its DTS on the
    /// stream's monotonic timeline, `now_unix_ms` the wall clock (fixes
    /// PROGRAM-DATE-TIME and the MPD's times). Events go to `out`.
    pub fn push(
        &mut self,
        frame: &Frame,
        dts_ms: u64,
        now_unix_ms: u64,
        out: &mut Vec<PackagerEvent>,
    ) {
        self.last_now_unix_ms = now_unix_ms;
        let Some(kind) = kind_of(frame) else {
            return;
        };
        if frame.sequence_header {
            self.on_sequence_header(kind, frame, out);
            return;
        }
        let s = slot(kind);
        if self.timeline.is_none() && !self.start_timeline(kind, frame, out) {
            return;
        }
        let Some(state) = self.tracks.get(s).and_then(Option::as_ref) else {
            self.left_out(kind, frame, out);
            return;
        };
        // Only frames that carry a sample (not an AVC end of sequence, not a
        // command frame) reach the timeline.
        if sample_from_frame(state.track.codec, frame, 0).is_err() {
            return;
        }
        // A full part takes no frame that does not advance time (checked
        // before the timeline sees it, so its counts and the chunk agree).
        // Frames that advance time close the part within PART-TARGET ms, so
        // the open part holds at most max_samples + PART-TARGET frames (a
        // chunk over max_samples is refused by the muxer, typed).
        let limit = self.config.chunk.max_samples;
        if state.open.len() >= limit && state.last_dts.is_some_and(|l| dts_ms <= l) {
            out.push(PackagerEvent::Warning(PackagerWarning::PartFull {
                track: kind,
                limit,
            }));
            return;
        }
        let meta = FrameMeta {
            track: kind,
            keyframe: frame.keyframe,
            dts_ms,
            size: store_cost(
                frame.payload.len(),
                state.track.config.len(),
                frame.keyframe,
                self.ts.is_some(),
            ),
        };
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        let placement = match &mut self.timeline {
            Some(tl) => tl.push(meta, now_unix_ms, &mut events),
            None => Placement::Dropped,
        };
        self.handle(&events, now_unix_ms, out);
        self.events = events;
        let Placement::Placed { msn, .. } = placement else {
            return;
        };
        if let Some(Some(st)) = self.tracks.get_mut(s) {
            if st.open.is_empty() {
                st.open_first_dts = dts_ms;
            }
            if let Some(prev) = st.last_dts {
                let step = u32::try_from(dts_ms.saturating_sub(prev)).unwrap_or(u32::MAX);
                if step > 0 {
                    st.last_step_ms = step;
                }
            }
            st.last_dts = Some(dts_ms);
            // Re-stamped with the DTS: the fMP4 muxer places samples by their
            // timestamps' distance, and the stream clock's DTS is the truth.
            let mut f = frame.clone();
            f.timestamp = low32(dts_ms);
            st.open.push(f);
        }
        if let Some(ts) = &mut self.ts {
            if ts.msn == Some(msn) {
                let dts = i64::try_from(dts_ms).unwrap_or(i64::MAX);
                let room = self
                    .config
                    .max_ts_segment_bytes
                    .saturating_sub(ts.buf.len());
                // A frame's packets: its payload plus PES/AUD/parameter-set
                // overhead, well under 1 KiB more.
                if frame.payload.len().saturating_add(1024) > room {
                    out.push(PackagerEvent::Warning(PackagerWarning::TsSegmentFull {
                        msn,
                        limit: self.config.max_ts_segment_bytes,
                    }));
                } else if let Err(error) = ts.muxer.write_frame(frame, dts, &mut ts.buf) {
                    out.push(PackagerEvent::Warning(PackagerWarning::Ts { msn, error }));
                }
            }
        }
    }

    fn left_out(&mut self, kind: TrackKind, frame: &Frame, out: &mut Vec<PackagerEvent>) {
        let s = slot(kind);
        if self.warned.get(s).copied().unwrap_or(true) {
            return;
        }
        if let Some(w) = self.warned.get_mut(s) {
            *w = true;
        }
        let reason = match (
            ts::track_support(frame),
            self.timeline.is_some() && frame.sequence_header,
        ) {
            (Err(e), _) => e.to_string(),
            (Ok(_), true) => "its sequence header came after the stream started".to_owned(),
            (Ok(_), false) => "no sequence header before its first frame".to_owned(),
        };
        out.push(PackagerEvent::Warning(PackagerWarning::TrackLeftOut {
            track: kind,
            reason,
        }));
    }

    fn warn_left_out(&mut self, kind: TrackKind, reason: String, out: &mut Vec<PackagerEvent>) {
        if let Some(w) = self.warned.get_mut(slot(kind)) {
            if !*w {
                *w = true;
                out.push(PackagerEvent::Warning(PackagerWarning::TrackLeftOut {
                    track: kind,
                    reason,
                }));
            }
        }
    }

    fn on_sequence_header(&mut self, kind: TrackKind, frame: &Frame, out: &mut Vec<PackagerEvent>) {
        let id = match kind {
            TrackKind::Video => VIDEO_TRACK_ID,
            TrackKind::Audio => AUDIO_TRACK_ID,
        };
        let track = match Track::from_sequence_header(id, frame) {
            Ok(t) => t,
            Err(e) => {
                self.warn_left_out(kind, e.to_string(), out);
                return;
            }
        };
        let cid = config_id(&track.config);
        let started = self.timeline.is_some();
        let s = slot(kind);
        let existing = self.tracks.get(s).and_then(Option::as_ref).map(|t| {
            (
                t.current_id(),
                t.track.codec.is_video() == track.codec.is_video(),
            )
        });
        match existing {
            None if started => {
                // The tracks are fixed for the packager's life.
                self.left_out(kind, frame, out);
                return;
            }
            None => {
                let init = match write_init(&track) {
                    Ok(b) => b,
                    Err(e) => {
                        self.warn_left_out(kind, e.to_string(), out);
                        return;
                    }
                };
                self.store.add_init(kind, cid, init);
                let step = match track.media {
                    TrackMedia::Audio { sample_rate, .. } => {
                        1_024_000u32.div_ceil(sample_rate.max(1)).max(1)
                    }
                    TrackMedia::Video { .. } => 40,
                };
                if let Some(t) = self.tracks.get_mut(s) {
                    *t = Some(TrackState {
                        track,
                        seq: frame.clone(),
                        inits: vec![InitRef {
                            from_epoch: 0,
                            id: cid,
                        }],
                        open: Vec::new(),
                        open_first_dts: 0,
                        last_dts: None,
                        last_step_ms: step,
                    });
                }
            }
            Some((current, _)) if current == cid => {
                if let Some(Some(t)) = self.tracks.get_mut(s) {
                    t.seq = frame.clone();
                }
            }
            Some(_) => {
                let init = match write_init(&track) {
                    Ok(b) => b,
                    Err(e) => {
                        self.warn_left_out(kind, e.to_string(), out);
                        return;
                    }
                };
                // A new configuration needs a new EXT-X-MAP: from the next
                // publisher epoch (a new publisher, or one we start here).
                let published = self
                    .timeline
                    .as_ref()
                    .is_some_and(|tl| tl.last_msn().is_some());
                let from_epoch = if published {
                    if !self.pending_publisher {
                        if let Some(tl) = &mut self.timeline {
                            tl.new_publisher();
                        }
                        self.pending_publisher = true;
                    }
                    self.current_epoch().saturating_add(1)
                } else {
                    0
                };
                self.store.add_init(kind, cid, init);
                if let Some(Some(t)) = self.tracks.get_mut(s) {
                    t.inits.retain(|i| i.from_epoch < from_epoch);
                    t.inits.push(InitRef {
                        from_epoch,
                        id: cid,
                    });
                    let excess = t
                        .inits
                        .len()
                        .saturating_sub(super::store::MAX_INITS_PER_TRACK);
                    t.inits.drain(..excess);
                    t.track = track;
                    t.seq = frame.clone();
                }
            }
        }
        if let Some(ts) = &mut self.ts {
            let mut scratch = BytesMut::new();
            let _ = ts.muxer.write_frame(frame, 0, &mut scratch);
        }
    }

    fn current_epoch(&self) -> u64 {
        self.timeline.as_ref().map_or(0, |tl| {
            tl.open_segment_flags()
                .map(|(_, e, _)| e)
                .or_else(|| tl.segments().back().map(|s| s.epoch))
                .unwrap_or(0)
        })
    }

    /// Fixes the tracks at the first coded frame; false when nothing can be
    /// packaged (yet).
    fn start_timeline(
        &mut self,
        kind: TrackKind,
        frame: &Frame,
        out: &mut Vec<PackagerEvent>,
    ) -> bool {
        let tracks = Tracks {
            video: self.tracks.first().is_some_and(Option::is_some),
            audio: self.tracks.get(1).is_some_and(Option::is_some),
        };
        if !(tracks.video || tracks.audio) {
            self.left_out(kind, frame, out);
            return false;
        }
        let Ok(tl) = Timeline::new(self.config.timeline_config(), tracks, self.start) else {
            return false;
        };
        self.timeline = Some(tl);
        // TS carries H.264 and AAC only: HEVC/AV1 video means no TS at all.
        let video_codec = self
            .tracks
            .first()
            .and_then(Option::as_ref)
            .map(|t| t.track.codec);
        if let Some(c) = video_codec.filter(|c| *c != Fmp4Codec::Avc) {
            self.ts_disabled = true;
            out.push(PackagerEvent::Warning(PackagerWarning::NoTsRendition {
                reason: format!("MPEG-TS here carries H.264 only, the video is {c:?}"),
            }));
        } else {
            self.ts = self.new_ts_muxer();
        }
        true
    }

    fn new_ts_muxer(&self) -> Option<TsState> {
        if self.ts_disabled {
            return None;
        }
        let tracks = TsTracks {
            video: self.tracks.first().is_some_and(Option::is_some),
            audio: self.tracks.get(1).is_some_and(Option::is_some),
        };
        let mut muxer = TsMuxer::new(tracks, self.config.ts).ok()?;
        let mut scratch = BytesMut::new();
        for t in self.tracks.iter().flatten() {
            let _ = muxer.write_frame(&t.seq, 0, &mut scratch);
        }
        Some(TsState {
            muxer,
            msn: None,
            buf: BytesMut::new(),
        })
    }

    fn handle(&mut self, events: &[TimelineEvent], now_unix_ms: u64, out: &mut Vec<PackagerEvent>) {
        if events.is_empty() {
            return;
        }
        let mut whole = false;
        for ev in events {
            match *ev {
                TimelineEvent::PartClosed { msn, part } => {
                    self.close_part(msn, part, out);
                    out.push(PackagerEvent::PartReady { msn, part });
                }
                TimelineEvent::SegmentClosed { msn } => {
                    self.close_segment(msn);
                    out.push(PackagerEvent::SegmentReady { msn });
                    whole = true;
                }
                TimelineEvent::Evicted { msn } => {
                    self.store.evict(msn);
                    out.push(PackagerEvent::Evicted { msn });
                    whole = true;
                }
                TimelineEvent::SegmentOpened { msn } => {
                    self.open_ts_segment(msn);
                    // The MPD lists the open segment.
                    whole = true;
                }
                TimelineEvent::PartOpened { .. } => {}
            }
        }
        self.render(whole, now_unix_ms);
    }

    fn open_ts_segment(&mut self, msn: u64) {
        let discontinuity = self
            .timeline
            .as_ref()
            .and_then(Timeline::open_segment_flags)
            .is_some_and(|(d, _, _)| d);
        if discontinuity {
            self.pending_publisher = false;
            // A new publisher takes a new muxer (its counters and clock restart).
            self.ts = self.new_ts_muxer();
        }
        if let Some(ts) = &mut self.ts {
            ts.buf = BytesMut::new();
            ts.muxer.start_segment(&mut ts.buf);
            ts.msn = Some(msn);
        }
    }

    /// Where part `(msn, part)` ends on the timeline.
    fn part_end(&self, msn: u64, part: u32) -> Option<u64> {
        let tl = self.timeline.as_ref()?;
        let parts = match tl.open_segment() {
            Some((m, parts)) if m == msn => parts,
            _ => tl.segment(msn)?.parts.as_slice(),
        };
        parts
            .iter()
            .find(|p| p.index == part)
            .map(|p| p.start_ms.saturating_add(p.duration_ms))
    }

    fn close_part(&mut self, msn: u64, part: u32, out: &mut Vec<PackagerEvent>) {
        let end = self.part_end(msn, part);
        let leading = if self.tracks.first().is_some_and(Option::is_some) {
            TrackKind::Video
        } else {
            TrackKind::Audio
        };
        let max_parts = self.config.hls.max_parts_per_segment;
        for kind in [TrackKind::Video, TrackKind::Audio] {
            let Some(Some(st)) = self.tracks.get_mut(slot(kind)) else {
                continue;
            };
            let frames = std::mem::take(&mut st.open);
            let Some(last) = frames.last() else {
                self.store.put_part(kind, msn, part, None);
                continue;
            };
            let last_dts = st.open_first_dts.saturating_add(u64::from(
                last.timestamp.wrapping_sub(low32(st.open_first_dts)),
            ));
            let to_end = end
                .filter(|_| kind == leading)
                .map(|e| e.saturating_sub(last_dts))
                .filter(|d| *d > 0)
                .and_then(|d| u32::try_from(d).ok());
            let last_duration_ms = to_end.unwrap_or(if st.last_step_ms > 0 {
                st.last_step_ms
            } else {
                st.default_step_ms()
            });
            let input = ChunkInput {
                sequence_number: chunk_sequence(msn, part, max_parts),
                frames: &frames,
                first_dts_ms: st.open_first_dts,
                last_duration_ms,
            };
            match write_chunk(&st.track, &input, &self.config.chunk) {
                Ok(chunk) => {
                    let mut pieces = Vec::with_capacity(chunk.samples.len().saturating_add(1));
                    pieces.push(chunk.header);
                    pieces.extend(chunk.samples);
                    self.store
                        .put_part(kind, msn, part, Some(Body::from_pieces(pieces)));
                }
                Err(error) => {
                    self.store.put_part(kind, msn, part, None);
                    out.push(PackagerEvent::Warning(PackagerWarning::Chunk {
                        track: kind,
                        msn,
                        part,
                        error,
                    }));
                }
            }
        }
    }

    fn close_segment(&mut self, msn: u64) {
        for kind in [TrackKind::Video, TrackKind::Audio] {
            self.store.seal_segment(kind, msn);
        }
        if let Some(ts) = &mut self.ts {
            if ts.msn == Some(msn) {
                ts.msn = None;
                let buf = std::mem::take(&mut ts.buf);
                // A growing buffer holds up to twice its length and the window
                // keeps segments for seconds: store them at their own size
                // (one copy per segment per stream).
                let bytes = if buf.capacity() > buf.len() + buf.len() / 8 {
                    Bytes::copy_from_slice(&buf)
                } else {
                    buf.freeze()
                };
                self.store.put_ts(msn, bytes);
            }
        }
    }

    fn render(&mut self, whole: bool, now_unix_ms: u64) {
        let Some(tl) = &self.timeline else {
            return;
        };
        self.rendered.render(
            tl,
            &self.store,
            &self.stream,
            &self.tracks,
            self.ts.is_some(),
            &self.config.utc_timing_url,
            whole,
            now_unix_ms,
        );
    }
}
