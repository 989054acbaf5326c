//! Closing segments into the window, and evicting them past the window
//! length and the byte cap.

use super::*;

impl Timeline {
    pub(super) fn close_segment(&mut self, end_ms: u64, events: &mut Vec<TimelineEvent>) {
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

    pub(super) fn evict(&mut self, events: &mut Vec<TimelineEvent>) {
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
