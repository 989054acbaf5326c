//! A publisher's frames into an owned stream: timestamps corrected on the
//! stream's clock, the frame appended to the ring (and counted), and the
//! viewers that had run dry woken.

use std::rc::Rc;

use crate::protocol::{Frame, FrameKind};

use super::{Liveness, Pushed, Shard, ShardError, Stream, Timing, ViewerId, ViewerSlot};
use crate::stream::directory::StreamId;
use crate::stream::ring::RingEntry;
use crate::stream::stats::{note_codecs, ShardCounters};

impl Shard {
    /// Adds a publisher's frame to an owned stream.
    pub fn push_frame(
        &mut self,
        stream_id: StreamId,
        frame: Frame,
        now_ms: u64,
    ) -> Result<Pushed<'_>, ShardError> {
        self.push_frame_at(stream_id, frame, now_ms, now_ms.saturating_mul(1_000))
    }

    /// [`Shard::push_frame`] of a frame that reached the server at `arrived_us`
    /// (µs on the clock all cores share), for the latency histogram.
    pub fn push_frame_at(
        &mut self,
        stream_id: StreamId,
        mut frame: Frame,
        now_ms: u64,
        arrived_us: u64,
    ) -> Result<Pushed<'_>, ShardError> {
        let s = self
            .streams
            .get_mut(&stream_id)
            .ok_or(ShardError::UnknownStream(stream_id))?;
        match s.liveness {
            Liveness::Publishing => {}
            Liveness::Grace { .. } => return Err(ShardError::NoPublisher(stream_id)),
            Liveness::Ended => return Err(ShardError::Ended(stream_id)),
        }
        let Timing::Owner(clock) = &mut s.timing else {
            return Err(ShardError::WrongRole(stream_id, "owned"));
        };
        let stream_ts = match frame.kind {
            FrameKind::Script => clock.stamp_untimed(frame.timestamp),
            FrameKind::Audio | FrameKind::Video if clock.is_replay(frame.timestamp) => {
                return Err(ShardError::Replayed(stream_id));
            }
            FrameKind::Audio | FrameKind::Video => clock.correct(frame.timestamp),
        };
        if frame.kind == FrameKind::Video && frame.keyframe && !frame.sequence_header {
            clock.mark_keyframe(stream_ts);
        }
        s.stats.timestamp_rebases = clock.rebases();
        frame.timestamp = stream_ts as u32;
        let entry = Self::append(s, &mut self.counters, frame, stream_ts, now_ms, arrived_us);
        let replicate_to = s.subscribers;
        Self::drain_parked(s, &mut self.slots, &mut self.wake);
        Ok(Pushed {
            wake: &self.wake,
            replicate_to,
            entry,
        })
    }

    pub(super) fn append(
        s: &mut Stream,
        counters: &mut ShardCounters,
        frame: Frame,
        stream_ts: u64,
        now_ms: u64,
        arrived_us: u64,
    ) -> Rc<RingEntry> {
        counters.frames_in += 1;
        counters.bytes_in += frame.payload.len() as u64;
        s.stats.frames_in += 1;
        s.stats.bytes_in += frame.payload.len() as u64;
        note_codecs(&mut s.stats, &frame);
        s.meter.record(&frame, now_ms);
        s.stats.bitrate_bps = s.meter.bitrate_bps;
        s.stats.fps_x100 = s.meter.fps_x100;
        if s.viewers == 0 {
            // Nobody reads here: keep only the GOP cache for the next viewer or replica.
            s.ring.set_reader_floor(u64::MAX);
        }
        let evicted_before = s.ring.evicted();
        let entry = s.ring.push_arrived(frame, stream_ts, now_ms, arrived_us);
        counters.ring_evictions += s.ring.evicted() - evicted_before;
        entry
    }

    /// Moves the stream's parked viewers into `wake` (cleared first) and unparks them.
    pub(super) fn drain_parked(s: &mut Stream, slots: &mut [ViewerSlot], wake: &mut Vec<ViewerId>) {
        wake.clear();
        for id in s.parked.drain(..) {
            let Some(slot) = slots.get_mut(id.index as usize) else {
                continue;
            };
            if slot.generation != id.generation {
                continue;
            }
            if let Some((_, _, parked @ true)) = slot.entry.as_mut() {
                *parked = false;
                wake.push(id);
            }
        }
    }
}
