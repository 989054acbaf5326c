//! The segmenter: decides part and segment boundaries and their numbers from
//! frame metadata alone (track, keyframe flag, DTS on the stream's timeline,
//! size). The muxers turn the same frames into bytes; this module only says
//! which `(msn, part)` each frame belongs to and when parts and segments close.
//!
//! # The segment grid (numbers identical on every box)
//!
//! Media sequence numbers come from the stream's own timeline, never from a
//! counter started with the box: the timeline is cut into *windows* of one
//! segment target `T`, centred on the grid points `B(n) = origin + n*T`:
//! window `n` holds the DTS range `[B(n) - T/2, B(n) + T/2)`.
//!
//! * Segment `n` starts at the first keyframe (of the leading track: video,
//!   or audio for audio-only streams) in window `n`.
//! * A window with no keyframe (a GOP longer than the target) still gets its
//!   segment: it starts at
//!   the first frame at or after the window's end, is marked not independent
//!   (no `INDEPENDENT=YES`; DASH `startWithSAP` absent) and continues the
//!   previous GOP. So a 4 s GOP with 2 s segments gives segments alternating
//!   3 s (with a keyframe) and 1 s (without). If that first frame is itself a
//!   keyframe, it starts its own window's segment and the empty window is an
//!   `EXT-X-GAP` segment (of about zero duration).
//! * Windows the leading track skipped entirely (a stall of a whole segment)
//!   also become `EXT-X-GAP` segments, so numbers never slip against the grid.
//!   A shorter stall (over a part target) at a segment's end ends that segment
//!   with its last frame, leaving a hole in the timeline before the next one
//!   (DASH lists exact `S@t`; HLS players jump small holes), so no segment
//!   outgrows TARGETDURATION. A stall inside a part lengthens that part: the
//!   media is simply not there.
//! * A keyframe in a window whose segment has already started starts a new
//!   independent part inside that segment.
//!
//! Hence a segment lasts at most two targets plus one frame, and
//! TARGETDURATION is fixed from that bound ([`super::config::Timing`]). It is
//! not derived from the first GOP because a later, longer GOP (an encoder
//! restart, a scene-cut setting) would then break it, and the spec forbids
//! changing it; HLS lets a segment start without a keyframe as long as the
//! playlist does not declare `EXT-X-INDEPENDENT-SEGMENTS` (ours does not),
//! and its parts then carry no `INDEPENDENT=YES`. A keyframe
//! drifting across a window edge (29.97 fps with a 60-frame GOP, once every
//! ~1000 segments) leaves one window without one: an `EXT-X-GAP` of about zero
//! duration.
//! Keyframes at a steady GOP that drifts against the grid stay
//! keyframe-aligned otherwise, because every keyframe lies in some window.
//!
//! Two boxes fed the same frames (the same DTS) agree on every segment both
//! hold: a box that joins mid-stream publishes nothing until it reaches a
//! keyframe it can *prove* starts a segment, i.e. one whose previous keyframe
//! lies in an earlier window (the previous keyframe's DTS is either passed in
//! as [`StartPoint::Join`]'s hint, from the GOP cache, or seen by the box).
//! With every window having its own keyframe (GOP <= T) the first cached
//! keyframe qualifies as soon as its predecessor is known.
//!
//! Assumptions: every box sees the origin's stream timeline (the same DTS for
//! the same frame, as the stream layer's `StreamClock` produces it at the
//! origin); the grid origin is 0 until a new publisher arrives. A new
//! publisher re-anchors the grid at its first keyframe (`EXT-X-DISCONTINUITY`,
//! a new DASH period) so numbers continue `+1`; a box that joins after that
//! needs the new origin ([`Timeline::grid_origin`]) passed in to agree. A
//! publisher returning inside the grace period continues the timeline, so
//! nothing changes.
//!
//! # Parts
//!
//! A part starts at every segment start and every keyframe, and is closed
//! before the frame that would take it past PART-TARGET: frame `F` is judged
//! to end at `F.dts + the largest of its last three DTS steps` (within the
//! segment), which is exact for steady frame rates and covers the 33, 33, 34 ms
//! pattern of millisecond timestamps at 30 fps. Part indices restart at 0 in each
//! segment, so they too depend only on the segment's own frames. Frames of the
//! other track (audio beside video) go into the part open when they arrive.

use std::collections::VecDeque;

use thiserror::Error;

use super::config::{ConfigError, HlsConfig, Timing};

/// Which track a frame belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// The video track.
    Video,
    /// The audio track.
    Audio,
}

/// What the timeline needs to know about one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    /// The frame's track.
    pub track: TrackKind,
    /// A random access point (ignored for audio: every audio frame is one).
    pub keyframe: bool,
    /// Decode timestamp on the stream's monotonic timeline (ms).
    pub dts_ms: u64,
    /// Bytes of media the frame contributes.
    pub size: u32,
}

/// Where the first frame fed to a timeline sits in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartPoint {
    /// The publisher's very first frame: its first keyframe starts a segment.
    PublishStart,
    /// Somewhere in a running stream (a packager started from the GOP cache,
    /// an edge). `prev_keyframe_dts` is the DTS of the keyframe before the
    /// first one fed, if known; `grid_origin_ms` the origin's grid origin
    /// (0 unless a new publisher has re-anchored it).
    Join {
        /// DTS of the keyframe preceding the first fed keyframe.
        prev_keyframe_dts: Option<u64>,
        /// The origin's grid origin (see [`Timeline::grid_origin`]).
        grid_origin_ms: i64,
    },
}

/// Which tracks the stream has; the leading track drives the boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracks {
    /// A video track is present.
    pub video: bool,
    /// An audio track is present.
    pub audio: bool,
}

impl Tracks {
    fn leading(self) -> Option<TrackKind> {
        if self.video {
            Some(TrackKind::Video)
        } else if self.audio {
            Some(TrackKind::Audio)
        } else {
            None
        }
    }
}

/// Why a timeline could not be built.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TimelineError {
    /// The settings are out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A stream with neither audio nor video has nothing to package.
    #[error("a stream needs at least one audio or video track")]
    NoTracks,
}

/// Frames and bytes of one track inside a part or segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackSpan {
    /// Frames.
    pub frames: u32,
    /// Bytes.
    pub bytes: u64,
}

impl TrackSpan {
    fn add(&mut self, size: u32) {
        self.frames = self.frames.saturating_add(1);
        self.bytes = self.bytes.saturating_add(u64::from(size));
    }
}

/// A closed part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartInfo {
    /// Media sequence number of its segment.
    pub msn: u64,
    /// Index within the segment, from 0.
    pub index: u32,
    /// DTS of its first leading frame (ms).
    pub start_ms: u64,
    /// Duration (ms): to the next part's start.
    pub duration_ms: u64,
    /// Starts with a keyframe.
    pub independent: bool,
    /// Video frames and bytes.
    pub video: TrackSpan,
    /// Audio frames and bytes.
    pub audio: TrackSpan,
}

/// A closed segment (or a GAP standing for a window with no media).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Media sequence number (the grid window's number).
    pub msn: u64,
    /// DTS of its first leading frame (ms); the window's nominal start for a GAP.
    pub start_ms: u64,
    /// Duration (ms).
    pub duration_ms: u64,
    /// Starts with a keyframe.
    pub independent: bool,
    /// No media: listed with `EXT-X-GAP`.
    pub gap: bool,
    /// The first segment of a new publisher (`EXT-X-DISCONTINUITY`).
    pub discontinuity: bool,
    /// How many discontinuities precede or start this segment (its
    /// discontinuity sequence number; also its DASH period number).
    pub epoch: u64,
    /// Wall-clock time of its start (Unix ms), for PROGRAM-DATE-TIME.
    pub wallclock_ms: u64,
    /// Its parts, in order (empty for a GAP).
    pub parts: Vec<PartInfo>,
}

impl SegmentInfo {
    /// Bytes of media it holds.
    pub fn bytes(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| p.video.bytes.saturating_add(p.audio.bytes))
            .sum()
    }
}

/// The open segment as [`Timeline::open_segment_nominal`] describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenSegmentSpan {
    /// Its number.
    pub msn: u64,
    /// DTS of its first leading frame (ms).
    pub start_ms: u64,
    /// Nominal duration (ms): to the end of its grid window.
    pub duration_ms: u64,
    /// Its publisher epoch (DASH period).
    pub epoch: u64,
}

/// Where a pushed frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Into part `(msn, part)`.
    Placed {
        /// Segment.
        msn: u64,
        /// Part within it.
        part: u32,
    },
    /// Not packaged: before the first provable segment start (or a track the
    /// stream was not declared with).
    Dropped,
}

/// Something the caller (muxers, waiters, the mesh) must act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimelineEvent {
    /// A segment opened (its first part opened with it).
    SegmentOpened {
        /// Its number.
        msn: u64,
    },
    /// A part completed: blocking reloads waiting for it can be answered.
    PartClosed {
        /// Segment.
        msn: u64,
        /// Part.
        part: u32,
    },
    /// A part opened (the next preload hint).
    PartOpened {
        /// Segment.
        msn: u64,
        /// Part.
        part: u32,
    },
    /// A segment completed (also emitted for GAP segments).
    SegmentClosed {
        /// Its number.
        msn: u64,
    },
    /// A segment left the window; its bytes can go (requests for it now 404).
    Evicted {
        /// Its number.
        msn: u64,
    },
}

#[derive(Clone, Debug)]
struct OpenPart {
    index: u32,
    start_ms: u64,
    independent: bool,
    video: TrackSpan,
    audio: TrackSpan,
}

#[derive(Clone, Debug)]
struct OpenSegment {
    msn: u64,
    start_ms: u64,
    independent: bool,
    discontinuity: bool,
    epoch: u64,
    wallclock_ms: u64,
    parts: Vec<PartInfo>,
    part: OpenPart,
    /// Last leading frame's DTS, and the deltas between the last leading
    /// frames (newest first) within this segment.
    last_dts: u64,
    last_delta: Option<u64>,
    recent_deltas: [u64; 3],
}

/// The segmenter for one stream (see the module doc for the rules).
#[derive(Clone, Debug)]
pub struct Timeline {
    config: HlsConfig,
    timing: Timing,
    leading: TrackKind,
    tracks: Tracks,
    grid_origin: i64,
    start: StartPoint,
    /// A segment has been opened at least once (numbers now follow the rules).
    anchored: bool,
    /// DTS of the last leading keyframe seen (anchored or not).
    last_keyframe: Option<u64>,
    /// DTS step between the last two leading keyframes (the GOP), once seen.
    keyframe_interval: Option<u64>,
    /// Wall clock at a DTS, fixed by the first frame (for PROGRAM-DATE-TIME).
    wall_anchor: Option<(u64, u64)>,
    current: Option<OpenSegment>,
    /// Numbers below this are taken.
    next_msn_floor: u64,
    pending_discontinuity: bool,
    epoch: u64,
    window: VecDeque<SegmentInfo>,
    window_bytes: u64,
    finished: bool,
    /// Where each publisher epoch after the first began (DTS ms), for the
    /// DASH periods' fixed start; pruned with the window.
    epoch_starts: VecDeque<(u64, u64)>,
}

impl Timeline {
    /// A timeline for a stream with `tracks`, starting at `start`.
    pub fn new(
        config: HlsConfig,
        tracks: Tracks,
        start: StartPoint,
    ) -> Result<Self, TimelineError> {
        let timing = config.validate()?;
        let leading = tracks.leading().ok_or(TimelineError::NoTracks)?;
        let grid_origin = match start {
            StartPoint::PublishStart => 0,
            StartPoint::Join { grid_origin_ms, .. } => grid_origin_ms,
        };
        Ok(Timeline {
            config,
            timing,
            leading,
            tracks,
            grid_origin,
            start,
            anchored: false,
            last_keyframe: None,
            keyframe_interval: None,
            wall_anchor: None,
            current: None,
            next_msn_floor: 0,
            pending_discontinuity: false,
            epoch: 0,
            window: VecDeque::new(),
            window_bytes: 0,
            finished: false,
            epoch_starts: VecDeque::new(),
        })
    }

    /// The fixed playlist parameters.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// The settings.
    pub fn config(&self) -> &HlsConfig {
        &self.config
    }

    /// The tracks the stream was declared with.
    pub fn tracks(&self) -> Tracks {
        self.tracks
    }

    /// The grid origin (ms): 0 until a new publisher re-anchors it. A box
    /// joining later passes it in [`StartPoint::Join`] to number alike.
    pub fn grid_origin(&self) -> i64 {
        self.grid_origin
    }

    /// The closed segments in the window, oldest first.
    pub fn segments(&self) -> &VecDeque<SegmentInfo> {
        &self.window
    }

    /// A closed segment in the window.
    pub fn segment(&self, msn: u64) -> Option<&SegmentInfo> {
        let first = self.window.front()?.msn;
        let idx = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.window.get(idx)
    }

    /// The open segment's number and closed parts.
    pub fn open_segment(&self) -> Option<(u64, &[PartInfo])> {
        self.current.as_ref().map(|s| (s.msn, s.parts.as_slice()))
    }

    /// The part being filled (the preload hint), as `(msn, part)`.
    pub fn open_part(&self) -> Option<(u64, u32)> {
        self.current.as_ref().map(|s| (s.msn, s.part.index))
    }

    /// The open segment as a manifest can announce it before it closes: its
    /// number, start, epoch and *nominal* duration, to where the next segment
    /// is due: the first keyframe expected (last keyframe + whole GOPs) at or
    /// after the end of the segment's grid window, or that window's end plus
    /// one target if no keyframe comes (the fallback start); with the GOP not
    /// known yet, one target. Exact for a steady GOP; at least one part target.
    pub fn open_segment_nominal(&self) -> Option<OpenSegmentSpan> {
        let s = self.current.as_ref()?;
        let start = i128::from(s.start_ms);
        let t = i128::from(self.timing.segment_target_ms);
        // A segment that started without a keyframe (a window with none)
        // started at its window's end, i.e. in the next window's range.
        let window = self.window_of(s.start_ms);
        let window = if s.independent {
            window
        } else {
            window.saturating_sub(1)
        };
        let window_end = self.fallback_point(window);
        let end = match (self.keyframe_interval, self.last_keyframe) {
            (Some(g), Some(k)) => {
                let (g, k) = (i128::from(g), i128::from(k));
                let steps = (window_end - k)
                    .max(0)
                    .saturating_add(g - 1)
                    .div_euclid(g)
                    .max(1);
                k.saturating_add(steps.saturating_mul(g))
                    .min(window_end.saturating_add(t))
            }
            _ => start
                .saturating_add(t)
                .clamp(window_end, window_end.saturating_add(t)),
        };
        let nominal = u64::try_from(end - start).unwrap_or(0);
        Some(OpenSegmentSpan {
            msn: s.msn,
            start_ms: s.start_ms,
            duration_ms: nominal.max(u64::from(self.timing.part_target_ms)),
            epoch: s.epoch,
        })
    }

    /// The open segment's discontinuity flag and epoch.
    pub fn open_segment_flags(&self) -> Option<(bool, u64, u64)> {
        self.current
            .as_ref()
            .map(|s| (s.discontinuity, s.epoch, s.wallclock_ms))
    }

    /// The latest completed part, as `(msn, part)`.
    pub fn last_part(&self) -> Option<(u64, u32)> {
        if let Some(s) = &self.current {
            if let Some(p) = s.parts.last() {
                return Some((p.msn, p.index));
            }
        }
        self.window
            .iter()
            .rev()
            .find_map(|s| s.parts.last().map(|p| (p.msn, p.index)))
    }

    /// The highest number listed: the open segment's, else the last closed one's.
    pub fn last_msn(&self) -> Option<u64> {
        self.current
            .as_ref()
            .map(|s| s.msn)
            .or_else(|| self.window.back().map(|s| s.msn))
    }

    /// The last closed segment's number.
    pub fn last_closed_msn(&self) -> Option<u64> {
        self.window.back().map(|s| s.msn)
    }

    /// Bytes held by closed segments.
    pub fn window_bytes(&self) -> u64 {
        self.window_bytes
    }

    /// Where publisher epoch `epoch` began on the stream timeline (ms): 0 for
    /// the first, the first keyframe of each new publisher after that. Fixed
    /// for the epoch's life, so a DASH period's `start` never moves.
    pub fn epoch_start(&self, epoch: u64) -> Option<u64> {
        if epoch == 0 {
            return Some(0);
        }
        self.epoch_starts
            .iter()
            .find(|(e, _)| *e == epoch)
            .map(|(_, s)| *s)
    }

    /// The stream ended for good (`EXT-X-ENDLIST`).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// A new publisher took the stream (after the grace period): its first
    /// keyframe starts a segment with `EXT-X-DISCONTINUITY` (a new DASH
    /// period), the grid is re-anchored there and numbers continue. A
    /// publisher returning within the grace period needs no call at all.
    pub fn new_publisher(&mut self) {
        self.pending_discontinuity = true;
        self.finished = false;
    }

    /// Closes the open part and segment: the stream ended. `end_dts_ms` is
    /// where its last frame ends (its DTS plus its duration).
    pub fn finish(&mut self, end_dts_ms: u64, events: &mut Vec<TimelineEvent>) {
        self.close_segment(end_dts_ms, events);
        self.finished = true;
        self.evict(events);
    }

    fn window_of(&self, dts: u64) -> u64 {
        let t = i128::from(self.timing.segment_target_ms);
        let rel = i128::from(dts) - i128::from(self.grid_origin) + t / 2;
        u64::try_from(rel.div_euclid(t)).unwrap_or(0)
    }

    /// DTS at which window `n` gives up waiting for a keyframe: its end.
    fn fallback_point(&self, n: u64) -> i128 {
        let t = i128::from(self.timing.segment_target_ms);
        i128::from(self.grid_origin) + i128::from(n) * t + t / 2
    }

    /// Largest `k >= n` whose fallback point is at or before `dts`.
    fn last_fallback_window(&self, n: u64, dts: u64) -> u64 {
        let t = i128::from(self.timing.segment_target_ms);
        let over = i128::from(dts) - self.fallback_point(n);
        n.saturating_add(u64::try_from(over.div_euclid(t)).unwrap_or(0))
    }

    fn wallclock_at(&self, dts: u64) -> u64 {
        match self.wall_anchor {
            Some((adts, wall)) => {
                let delta = i128::from(dts) - i128::from(adts) + i128::from(wall);
                u64::try_from(delta).unwrap_or(0)
            }
            None => 0,
        }
    }

    /// Where the open segment's media ends: its last leading frame plus
    /// that frame's expected duration.
    fn media_end(&self) -> Option<u64> {
        self.current
            .as_ref()
            .map(|s| s.last_dts.saturating_add(s.last_delta.unwrap_or(0)))
    }

    /// Places one frame. `now_unix_ms` (wall clock, passed in) fixes the
    /// PROGRAM-DATE-TIME mapping on the first frame. Frames must come in DTS
    /// order per track (the stream clock guarantees it).
    pub fn push(
        &mut self,
        frame: FrameMeta,
        now_unix_ms: u64,
        events: &mut Vec<TimelineEvent>,
    ) -> Placement {
        let declared = match frame.track {
            TrackKind::Video => self.tracks.video,
            TrackKind::Audio => self.tracks.audio,
        };
        if !declared || self.finished {
            return Placement::Dropped;
        }
        if self.wall_anchor.is_none() {
            self.wall_anchor = Some((frame.dts_ms, now_unix_ms));
        }
        if frame.track != self.leading {
            if self.pending_discontinuity {
                return Placement::Dropped;
            }
            return match &mut self.current {
                Some(seg) => {
                    seg.part.audio.add(frame.size);
                    Placement::Placed {
                        msn: seg.msn,
                        part: seg.part.index,
                    }
                }
                None => Placement::Dropped,
            };
        }
        let key = frame.keyframe || frame.track == TrackKind::Audio;
        let dts = frame.dts_ms;
        let prev_key = if key {
            self.last_keyframe.replace(dts)
        } else {
            self.last_keyframe
        };
        if key {
            if let Some(step) = prev_key.and_then(|p| dts.checked_sub(p)).filter(|s| *s > 0) {
                self.keyframe_interval = Some(step);
            }
        }

        if self.pending_discontinuity && self.anchored {
            if !key {
                // The new publisher's frames before its first keyframe cannot
                // be decoded and do not belong to the old publisher's segment.
                return Placement::Dropped;
            }
            let msn = self
                .next_msn_floor
                .max(self.current.as_ref().map_or(0, |s| s.msn.saturating_add(1)));
            let t = i64::from(self.timing.segment_target_ms);
            let dts_i = i64::try_from(dts).unwrap_or(i64::MAX);
            let msn_i = i64::try_from(msn).unwrap_or(i64::MAX);
            self.grid_origin = dts_i.saturating_sub(msn_i.saturating_mul(t));
            self.pending_discontinuity = false;
            self.epoch = self.epoch.saturating_add(1);
            // The old publisher's media ends with its last frame; the pause
            // before the new one is not part of it.
            let end = self.media_end().unwrap_or(dts).min(dts);
            self.close_segment(end, events);
            self.epoch_starts.push_back((self.epoch, dts));
            self.open_segment_at(msn, dts, true, true, events);
            return self.place_leading(frame);
        }
        // Nothing published yet: nothing to be discontinuous with.
        self.pending_discontinuity = false;

        if !self.anchored {
            if !key {
                return Placement::Dropped;
            }
            let proven = match self.start {
                StartPoint::PublishStart => true,
                StartPoint::Join {
                    prev_keyframe_dts, ..
                } => prev_key
                    .or(prev_keyframe_dts)
                    .is_some_and(|p| self.window_of(p) < self.window_of(dts)),
            };
            if !proven {
                return Placement::Dropped;
            }
            let msn = self.window_of(dts);
            self.anchored = true;
            self.open_segment_at(msn, dts, true, false, events);
            return self.place_leading(frame);
        }

        let Some(cur) = self.current.as_ref().map(|s| s.msn) else {
            // Anchored but closed (after `finish`, then frames again without
            // a new publisher): continue on the grid at the next keyframe.
            if !key {
                return Placement::Dropped;
            }
            let msn = self.window_of(dts).max(self.next_msn_floor);
            self.open_segment_at(msn, dts, true, false, events);
            return self.place_leading(frame);
        };
        let n = cur.saturating_add(1);
        let w = self.window_of(dts);
        if key && w >= n {
            self.cut(n, w, dts, true, events);
            return self.place_leading(frame);
        }
        if i128::from(dts) >= self.fallback_point(n) {
            let m = self.last_fallback_window(n, dts);
            self.cut(n, m, dts, key, events);
            return self.place_leading(frame);
        }
        // Audio frames are all "keyframes"; only video keyframes start parts.
        let split_key = key && frame.track == TrackKind::Video;
        self.place_in_current(frame, dts, split_key, events)
    }

    /// Closes the current segment and opens `target` at `dts`, with GAP
    /// segments for the numbers `n..target` in between.
    fn cut(
        &mut self,
        n: u64,
        target: u64,
        dts: u64,
        independent: bool,
        events: &mut Vec<TimelineEvent>,
    ) {
        let gaps = target.saturating_sub(n);
        let media_end = self.media_end().unwrap_or(dts).min(dts);
        let stalled = dts.saturating_sub(media_end) > u64::from(self.timing.part_target_ms);
        let end = if gaps == 0 && !stalled {
            dts
        } else {
            // The media ends where its last frame ends: a gap segment fills
            // the rest, or (a stall shorter than a window) the timeline has a
            // hole, so the closing segment never outgrows TARGETDURATION.
            media_end
        };
        self.close_segment(end, events);
        if gaps > 0 {
            // The hole is shared among the gap segments, none longer than a
            // segment target (what is left is a hole in the timeline).
            let total = dts.saturating_sub(end);
            let each = total.checked_div(gaps).unwrap_or(0);
            let t = u64::from(self.timing.segment_target_ms);
            let mut start = end;
            for i in 0..gaps {
                let dur = if i + 1 == gaps {
                    dts.saturating_sub(start)
                } else {
                    each
                }
                .min(t);
                let seg = SegmentInfo {
                    msn: n + i,
                    start_ms: start,
                    duration_ms: dur,
                    independent: false,
                    gap: true,
                    discontinuity: false,
                    epoch: self.epoch,
                    wallclock_ms: self.wallclock_at(start),
                    parts: Vec::new(),
                };
                start = start.saturating_add(dur);
                events.push(TimelineEvent::SegmentClosed { msn: seg.msn });
                self.window.push_back(seg);
            }
            self.next_msn_floor = target;
            self.evict(events);
        }
        self.open_segment_at(target, dts, independent, false, events);
    }

    fn open_segment_at(
        &mut self,
        msn: u64,
        dts: u64,
        independent: bool,
        discontinuity: bool,
        events: &mut Vec<TimelineEvent>,
    ) {
        self.current = Some(OpenSegment {
            msn,
            start_ms: dts,
            independent,
            discontinuity,
            epoch: self.epoch,
            wallclock_ms: self.wallclock_at(dts),
            parts: Vec::new(),
            part: OpenPart {
                index: 0,
                start_ms: dts,
                independent,
                video: TrackSpan::default(),
                audio: TrackSpan::default(),
            },
            last_dts: dts,
            last_delta: None,
            recent_deltas: [0; 3],
        });
        self.next_msn_floor = msn.saturating_add(1);
        events.push(TimelineEvent::SegmentOpened { msn });
        events.push(TimelineEvent::PartOpened { msn, part: 0 });
    }

    /// Adds a leading frame to the open part (which was just opened for it).
    fn place_leading(&mut self, frame: FrameMeta) -> Placement {
        match &mut self.current {
            Some(seg) => {
                match frame.track {
                    TrackKind::Video => seg.part.video.add(frame.size),
                    TrackKind::Audio => seg.part.audio.add(frame.size),
                }
                Placement::Placed {
                    msn: seg.msn,
                    part: seg.part.index,
                }
            }
            None => Placement::Dropped,
        }
    }

    /// A leading frame inside the open segment: maybe start a new part first.
    fn place_in_current(
        &mut self,
        frame: FrameMeta,
        dts: u64,
        key: bool,
        events: &mut Vec<TimelineEvent>,
    ) -> Placement {
        let pt = u64::from(self.timing.part_target_ms);
        let max_parts = self.config.max_parts_per_segment;
        let Some(seg) = self.current.as_mut() else {
            return Placement::Dropped;
        };
        let delta = dts.saturating_sub(seg.last_dts);
        // Millisecond timestamps of 30 or 29.97 fps step 33, 33, 34: the
        // largest of the last three steps is this frame's expected duration.
        let [d1, d2, _] = seg.recent_deltas;
        let est = delta.max(d1).max(d2);
        let has_frames = seg.part.video.frames > 0 || seg.part.audio.frames > 0;
        let over = dts.saturating_add(est).saturating_sub(seg.part.start_ms) > pt;
        let room = seg.parts.len().saturating_add(1) < max_parts;
        if has_frames && room && (key || over) && dts > seg.part.start_ms {
            let closed = PartInfo {
                msn: seg.msn,
                index: seg.part.index,
                start_ms: seg.part.start_ms,
                duration_ms: dts - seg.part.start_ms,
                independent: seg.part.independent,
                video: seg.part.video,
                audio: seg.part.audio,
            };
            seg.parts.push(closed);
            seg.part = OpenPart {
                index: seg.part.index.saturating_add(1),
                start_ms: dts,
                independent: key,
                video: TrackSpan::default(),
                audio: TrackSpan::default(),
            };
            events.push(TimelineEvent::PartClosed {
                msn: seg.msn,
                part: closed.index,
            });
            events.push(TimelineEvent::PartOpened {
                msn: seg.msn,
                part: seg.part.index,
            });
        }
        if delta > 0 {
            seg.last_delta = Some(delta);
            seg.recent_deltas = [delta, d1, d2];
        }
        seg.last_dts = dts;
        self.place_leading(frame)
    }

    fn close_segment(&mut self, end_ms: u64, events: &mut Vec<TimelineEvent>) {
        let Some(mut seg) = self.current.take() else {
            return;
        };
        let end = end_ms.max(seg.part.start_ms);
        let last = PartInfo {
            msn: seg.msn,
            index: seg.part.index,
            start_ms: seg.part.start_ms,
            duration_ms: end - seg.part.start_ms,
            independent: seg.part.independent,
            video: seg.part.video,
            audio: seg.part.audio,
        };
        seg.parts.push(last);
        events.push(TimelineEvent::PartClosed {
            msn: seg.msn,
            part: last.index,
        });
        let info = SegmentInfo {
            msn: seg.msn,
            start_ms: seg.start_ms,
            duration_ms: end.saturating_sub(seg.start_ms),
            independent: seg.independent,
            gap: false,
            discontinuity: seg.discontinuity,
            epoch: seg.epoch,
            wallclock_ms: seg.wallclock_ms,
            parts: seg.parts,
        };
        self.window_bytes = self.window_bytes.saturating_add(info.bytes());
        events.push(TimelineEvent::SegmentClosed { msn: info.msn });
        self.window.push_back(info);
        self.evict(events);
    }

    fn evict(&mut self, events: &mut Vec<TimelineEvent>) {
        while self.window.len() > self.config.window_segments
            || (self.window_bytes > self.config.max_bytes && self.window.len() > 1)
        {
            let Some(old) = self.window.pop_front() else {
                break;
            };
            self.window_bytes = self.window_bytes.saturating_sub(old.bytes());
            events.push(TimelineEvent::Evicted { msn: old.msn });
        }
        let oldest = self.window.front().map_or(self.epoch, |s| s.epoch);
        while self.epoch_starts.front().is_some_and(|(e, _)| *e < oldest) {
            self.epoch_starts.pop_front();
        }
    }
}
