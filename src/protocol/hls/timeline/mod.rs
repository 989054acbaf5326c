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
mod closing;
mod events;
mod frames;
mod placing;
mod queries;
mod records;

use thiserror::Error;

use super::config::{ConfigError, HlsConfig, Timing};

pub use events::{Placement, TimelineEvent};
pub use frames::{FrameMeta, StartPoint, TrackKind, Tracks};
pub use records::{OpenSegmentSpan, PartInfo, SegmentInfo, TrackSpan};

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
}
