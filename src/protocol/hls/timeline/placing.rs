//! Placing frames on the segment grid: which window a DTS falls in, cutting
//! parts, opening segments, and placing leading and other frames.

use super::*;

impl Timeline {
    pub(super) fn window_of(&self, dts: u64) -> u64 {
        let t = i128::from(self.timing.segment_target_ms);
        let rel = i128::from(dts) - i128::from(self.grid_origin) + t / 2;
        u64::try_from(rel.div_euclid(t)).unwrap_or(0)
    }

    /// DTS at which window `n` gives up waiting for a keyframe: its end.
    pub(super) fn fallback_point(&self, n: u64) -> i128 {
        let t = i128::from(self.timing.segment_target_ms);
        i128::from(self.grid_origin) + i128::from(n) * t + t / 2
    }

    /// Largest `k >= n` whose fallback point is at or before `dts`.
    pub(super) fn last_fallback_window(&self, n: u64, dts: u64) -> u64 {
        let t = i128::from(self.timing.segment_target_ms);
        let over = i128::from(dts) - self.fallback_point(n);
        n.saturating_add(u64::try_from(over.div_euclid(t)).unwrap_or(0))
    }

    pub(super) fn wallclock_at(&self, dts: u64) -> u64 {
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
    pub(super) fn media_end(&self) -> Option<u64> {
        self.current
            .as_ref()
            .map(|s| s.last_dts.saturating_add(s.last_delta.unwrap_or(0)))
    }

    /// Closes the current segment and opens `target` at `dts`, with GAP
    /// segments for the numbers `n..target` in between.
    pub(super) fn cut(
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

    pub(super) fn open_segment_at(
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
    pub(super) fn place_leading(&mut self, frame: FrameMeta) -> Placement {
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
    pub(super) fn place_in_current(
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
}
