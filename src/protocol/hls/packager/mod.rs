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

mod events;
mod parts;
mod settings;
mod tracks;

use bytes::BytesMut;

use crate::protocol::flv::frame::{Frame, FrameKind};
use crate::protocol::fmp4::{sample::sample_from_frame, Track, TrackMedia};
use crate::protocol::ts::TsMuxer;

use super::playlist::InitRef;
use super::render::Rendered;
use super::store::{slot, Store};
use super::timeline::{
    FrameMeta, Placement, StartPoint, Timeline, TimelineEvent, TrackKind, Tracks,
};

/// Longest app or stream name a packager accepts (bytes), as [`super::urls`].
pub const MAX_NAME_LEN: usize = super::urls::MAX_NAME_LEN;

/// fMP4 track ids (fixed, so every box writes the same bytes).
const VIDEO_TRACK_ID: u32 = 1;
const AUDIO_TRACK_ID: u32 = 2;

pub use events::{PackagerEvent, PackagerWarning};
use parts::low32;
pub use settings::{PackagerConfig, PackagerError, Start};

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
}
