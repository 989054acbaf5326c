//! Read-only views of the timeline: its settings, the window's segments,
//! the open segment and part, and the numbers playlists are built from.

use std::collections::VecDeque;

use crate::protocol::hls::config::{HlsConfig, Timing};

use super::*;

impl Timeline {
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
}
