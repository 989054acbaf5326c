//! A viewer: a cursor into its stream's ring, its output timeline, and the
//! slow-viewer policy.
//!
//! A viewer never holds frames: whatever its lag, its state is a sequence
//! number, a few counters and at most one `Rc` to the start-up context, so
//! memory per viewer is constant. Its lag is measured in bytes and in time
//! since the frame at its cursor arrived; what it was given to catch up with
//! when it joined (the GOP cache) is an allowance that only shrinks, so a new
//! viewer is not punished for starting one GOP behind live.

use std::rc::Rc;

use super::ring::{Ring, RingEntry, StartContext};
use super::timestamps::{TimelineMode, ViewerTimeline};

/// Slow-viewer bounds, measured beyond the viewer's start-up allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewerLimits {
    /// Past this lag (ms since its oldest unsent frame arrived), skip non-key video.
    pub soft_lag_ms: u64,
    /// Past this many unsent bytes, skip non-key video.
    pub soft_lag_bytes: u64,
    /// Past this lag, close the viewer.
    pub hard_lag_ms: u64,
    /// Past this many unsent bytes, close the viewer.
    pub hard_lag_bytes: u64,
}

impl Default for ViewerLimits {
    fn default() -> Self {
        ViewerLimits {
            soft_lag_ms: 3_000,
            soft_lag_bytes: 8 << 20,
            hard_lag_ms: 10_000,
            hard_lag_bytes: 32 << 20,
        }
    }
}

/// How a viewer starts and what timeline it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewerOptions {
    /// Start at the cached GOP's keyframe (fast start) rather than waiting for the next one.
    pub gop_cache: bool,
    /// Output timestamps from 0 or from the stream timeline.
    pub timeline: TimelineMode,
    /// Slow-viewer bounds.
    pub limits: ViewerLimits,
}

impl Default for ViewerOptions {
    fn default() -> Self {
        ViewerOptions {
            gop_cache: true,
            timeline: TimelineMode::ZeroBased,
            limits: ViewerLimits::default(),
        }
    }
}

/// A frame to send to one viewer. The server keeps it until the send completes;
/// the shared `entry` keeps the payload (and its cached encodings) alive.
#[derive(Clone, Debug)]
pub struct OutFrame {
    /// The shared frame.
    pub entry: Rc<RingEntry>,
    /// This viewer's timestamp for it.
    pub timestamp: u32,
}

/// Why a viewer must be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// Too far behind live in time.
    #[error("slow viewer: {lag_ms} ms behind, limit {limit_ms} ms")]
    LagTime {
        /// The lag beyond the start-up allowance.
        lag_ms: u64,
        /// The hard bound.
        limit_ms: u64,
    },
    /// Too many unsent bytes.
    #[error("slow viewer: {lag_bytes} bytes behind, limit {limit_bytes}")]
    LagBytes {
        /// The lag beyond the start-up allowance.
        lag_bytes: u64,
        /// The hard bound.
        limit_bytes: u64,
    },
    /// The ring dropped frames the viewer had not been sent yet.
    #[error("slow viewer: ring evicted frames from seq {needed} (oldest held {oldest})")]
    Evicted {
        /// The first sequence number it still needed.
        needed: u64,
        /// The oldest sequence number still held.
        oldest: u64,
    },
    /// The viewer id or its stream does not exist (already removed).
    #[error("no such viewer or stream")]
    Gone,
}

impl CloseReason {
    /// True for the slow-viewer reasons (counted by metrics).
    pub fn is_slow(&self) -> bool {
        !matches!(self, CloseReason::Gone)
    }
}

/// The outcome of [`crate::stream::Shard::next_batch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchStatus {
    /// Frames were appended to `out`; there may be more.
    Ready,
    /// Nothing to send now; the viewer is woken by a later push.
    Idle,
    /// The stream ended and everything was delivered.
    Finished,
    /// The viewer must be closed (and removed).
    Close(CloseReason),
}

/// What one viewer has been sent and skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewerCounters {
    /// Frames handed out.
    pub frames_sent: u64,
    /// Payload bytes handed out.
    pub bytes_sent: u64,
    /// Non-key video dropped because the viewer was past its soft bound.
    pub dropped_slow: u64,
    /// Frames passed over before the first keyframe.
    pub skipped_before_start: u64,
}

#[derive(Clone, Debug)]
enum Phase {
    /// Not positioned yet (the stream may have no frames or, for a replica, no snapshot).
    Starting,
    /// Scanning from `cursor` for a frame to start at: a keyframe if the
    /// stream has video, else any frame.
    Waiting { keyframe_only: bool },
    /// Delivering from `cursor`.
    Live,
}

/// Per-batch caps and clock, bundled to keep signatures short.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchRequest {
    pub now_ms: u64,
    pub max_frames: usize,
    pub max_bytes: usize,
    /// The stream will get no more frames.
    pub ended: bool,
    /// The ring can position a viewer (false for a replica awaiting its snapshot).
    pub ready: bool,
}

/// One viewer's cursor, timeline and policy state.
#[derive(Debug)]
pub struct Viewer {
    options: ViewerOptions,
    phase: Phase,
    cursor: u64,
    /// Start-up context still to send, and how many of its entries were sent.
    preamble: Option<(Rc<StartContext>, usize)>,
    timeline: Option<ViewerTimeline>,
    allowance_ms: u64,
    allowance_bytes: u64,
    skipping: bool,
    video_started: bool,
    counters: ViewerCounters,
}

impl Viewer {
    /// A viewer that positions itself on its first batch.
    pub fn new(options: ViewerOptions) -> Self {
        Viewer {
            options,
            phase: Phase::Starting,
            cursor: 0,
            preamble: None,
            timeline: None,
            allowance_ms: 0,
            allowance_bytes: 0,
            skipping: false,
            video_started: false,
            counters: ViewerCounters::default(),
        }
    }

    /// Its counters.
    pub fn counters(&self) -> &ViewerCounters {
        &self.counters
    }

    /// Its options.
    pub fn options(&self) -> &ViewerOptions {
        &self.options
    }

    /// Skipping non-key video because it is past its soft bound.
    pub fn is_skipping(&self) -> bool {
        self.skipping
    }

    /// The oldest sequence number this viewer may still need, if it is
    /// positioned (an unpositioned viewer will start at the GOP cache or at a
    /// future frame, so it needs no history).
    pub(crate) fn needs_from(&self) -> Option<u64> {
        match self.phase {
            Phase::Starting => None,
            Phase::Waiting { .. } | Phase::Live => Some(self.cursor),
        }
    }

    /// Appends up to the caps' worth of frames to `out`.
    pub(crate) fn next_batch(
        &mut self,
        ring: &Ring,
        req: BatchRequest,
        out: &mut Vec<OutFrame>,
    ) -> BatchStatus {
        if matches!(self.phase, Phase::Starting) {
            if !req.ready {
                return if req.ended {
                    BatchStatus::Finished
                } else {
                    BatchStatus::Idle
                };
            }
            self.position(ring, req.now_ms);
        }
        if let Phase::Waiting { keyframe_only } = self.phase {
            if !self.find_start(ring, keyframe_only, req.now_ms) {
                return if req.ended {
                    BatchStatus::Finished
                } else {
                    BatchStatus::Idle
                };
            }
        }
        if let Err(reason) = self.check_lag(ring, req.now_ms) {
            return BatchStatus::Close(reason);
        }
        let mut bytes = 0usize;
        let start_len = out.len();
        self.send_preamble(req, out, &mut bytes, start_len);
        if self.preamble.is_some() {
            // The batch is full; the rest of the context must still precede any frame.
            return BatchStatus::Ready;
        }
        while self.cursor < ring.next_seq() && out.len() - start_len < req.max_frames {
            let Some(entry) = ring.get(self.cursor) else {
                return BatchStatus::Close(CloseReason::Evicted {
                    needed: self.cursor,
                    oldest: ring.first_seq(),
                });
            };
            let frame = entry.frame();
            if frame.is_droppable() && (self.skipping || !self.video_started) {
                if self.skipping {
                    self.counters.dropped_slow += 1;
                } else {
                    self.counters.skipped_before_start += 1;
                }
                self.cursor += 1;
                continue;
            }
            let len = frame.payload.len();
            if out.len() > start_len && bytes + len > req.max_bytes {
                break;
            }
            if frame.keyframe {
                self.skipping = false;
                self.video_started = true;
            }
            self.emit(entry, out, &mut bytes);
            self.cursor += 1;
        }
        if out.len() > start_len {
            BatchStatus::Ready
        } else if req.ended && self.cursor >= ring.next_seq() {
            BatchStatus::Finished
        } else {
            BatchStatus::Idle
        }
    }

    /// Picks where a new viewer starts: the GOP cache's keyframe, else the
    /// next keyframe, or the next frame of any kind if the stream has no video.
    fn position(&mut self, ring: &Ring, now_ms: u64) {
        if self.options.gop_cache {
            if let Some(k) = ring.gop_start().cloned() {
                self.start_at(&k, ring, now_ms);
                return;
            }
        }
        self.cursor = ring.next_seq();
        self.phase = Phase::Waiting {
            keyframe_only: ring.has_video(),
        };
    }

    /// Starts at `entry`, sending first the metadata and headers current then
    /// (those not already due in-band from `entry` on).
    fn start_at(&mut self, entry: &Rc<RingEntry>, ring: &Ring, now_ms: u64) {
        let context = entry
            .start_context()
            .cloned()
            .unwrap_or_else(|| ring.context().clone());
        self.cursor = entry.seq();
        self.timeline = Some(ViewerTimeline::new(
            self.options.timeline,
            entry.stream_ts(),
        ));
        self.preamble = Some((context, 0));
        self.allowance_ms = now_ms.saturating_sub(entry.arrival_ms());
        self.allowance_bytes = ring.bytes_from(entry.seq());
        self.phase = Phase::Live;
    }

    /// Moves the cursor to a start frame; false if none is held yet.
    fn find_start(&mut self, ring: &Ring, keyframe_only: bool, now_ms: u64) -> bool {
        // Frames before the oldest held were not needed yet: nothing was missed.
        self.cursor = self.cursor.max(ring.first_seq());
        while let Some(entry) = ring.get(self.cursor) {
            let frame = entry.frame();
            if frame.keyframe || (!keyframe_only && !frame.is_droppable()) {
                let entry = entry.clone();
                self.start_at(&entry, ring, now_ms);
                return true;
            }
            self.counters.skipped_before_start += 1;
            self.cursor += 1;
        }
        false
    }

    /// The hard-bound part of the lag check, for viewers that are not asking
    /// for batches (stuck sockets). Only positioned viewers can lag.
    pub(crate) fn check_hard_bounds(
        &mut self,
        ring: &Ring,
        now_ms: u64,
    ) -> Result<(), CloseReason> {
        if !matches!(self.phase, Phase::Live) {
            return Ok(());
        }
        let was_skipping = self.skipping;
        let verdict = self.check_lag(ring, now_ms);
        // Entering the skip mode is decided when frames are actually taken.
        self.skipping = was_skipping;
        verdict
    }

    fn check_lag(&mut self, ring: &Ring, now_ms: u64) -> Result<(), CloseReason> {
        if self.cursor >= ring.next_seq() {
            // Caught up: any later lag is the viewer's own.
            self.allowance_ms = 0;
            self.allowance_bytes = 0;
            return Ok(());
        }
        let Some(entry) = ring.get(self.cursor) else {
            return Err(CloseReason::Evicted {
                needed: self.cursor,
                oldest: ring.first_seq(),
            });
        };
        let lag_ms = now_ms.saturating_sub(entry.arrival_ms());
        let lag_bytes = ring.bytes_from(self.cursor);
        self.allowance_ms = self.allowance_ms.min(lag_ms);
        self.allowance_bytes = self.allowance_bytes.min(lag_bytes);
        let over_ms = lag_ms - self.allowance_ms;
        let over_bytes = lag_bytes - self.allowance_bytes;
        let limits = &self.options.limits;
        if over_ms > limits.hard_lag_ms {
            return Err(CloseReason::LagTime {
                lag_ms: over_ms,
                limit_ms: limits.hard_lag_ms,
            });
        }
        if over_bytes > limits.hard_lag_bytes {
            return Err(CloseReason::LagBytes {
                lag_bytes: over_bytes,
                limit_bytes: limits.hard_lag_bytes,
            });
        }
        if !self.skipping && (over_ms > limits.soft_lag_ms || over_bytes > limits.soft_lag_bytes) {
            tracing::debug!(
                over_ms,
                over_bytes,
                "viewer past soft bound, skipping to next keyframe"
            );
            self.skipping = true;
        }
        Ok(())
    }

    fn send_preamble(
        &mut self,
        req: BatchRequest,
        out: &mut Vec<OutFrame>,
        bytes: &mut usize,
        start_len: usize,
    ) {
        while let Some((context, sent)) = self.preamble.take() {
            let Some(entry) = context.get(sent).cloned() else {
                break;
            };
            if entry.seq() >= self.cursor {
                // It comes in-band at its own place.
                self.preamble = Some((context, sent + 1));
                continue;
            }
            if out.len() - start_len >= req.max_frames
                || (out.len() > start_len && *bytes + entry.frame().payload.len() > req.max_bytes)
            {
                self.preamble = Some((context, sent));
                break;
            }
            self.emit(&entry, out, bytes);
            self.preamble = Some((context, sent + 1));
        }
    }

    fn emit(&mut self, entry: &Rc<RingEntry>, out: &mut Vec<OutFrame>, bytes: &mut usize) {
        let len = entry.frame().payload.len();
        let timeline = self
            .timeline
            .get_or_insert_with(|| ViewerTimeline::new(self.options.timeline, entry.stream_ts()));
        let timestamp = timeline.map(entry.stream_ts());
        *bytes += len;
        self.counters.frames_sent += 1;
        self.counters.bytes_sent += len as u64;
        out.push(OutFrame {
            entry: entry.clone(),
            timestamp,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_is_small_and_fixed_size() {
        // Lag is a cursor distance, never a queue: this size is all a viewer costs.
        assert!(
            std::mem::size_of::<Viewer>() <= 192,
            "{} bytes",
            std::mem::size_of::<Viewer>()
        );
    }

    #[test]
    fn unpositioned_viewer_needs_no_history() {
        let v = Viewer::new(ViewerOptions::default());
        assert_eq!(v.needs_from(), None);
        assert!(!v.is_skipping());
        assert_eq!(v.counters(), &ViewerCounters::default());
    }
}
