//! Viewers of this core's streams: added to a slot (ids carry a generation, so
//! a reused slot never answers to an old id), removed, served their next batch
//! (and parked when they ran dry), and swept when stuck.

use super::{Liveness, RemovedViewer, Role, Shard, ShardError, ViewerId, ViewerSlot};
use crate::stream::directory::StreamId;
use crate::stream::replication::CoreMsg;
use crate::stream::viewer::{
    BatchRequest, BatchStatus, CloseReason, OutFrame, Viewer, ViewerCounters, ViewerOptions,
};

impl Shard {
    /// Checks every positioned viewer against its hard bounds and appends those
    /// to close. Run it periodically (e.g. once a second): a viewer whose
    /// socket is stuck never asks for its next batch, so this is how it gets
    /// closed. It also tells each ring how far back its remaining viewers
    /// read, so history nobody needs is freed early. O(streams + viewers).
    pub fn sweep_slow(&mut self, now_ms: u64, out: &mut Vec<(ViewerId, CloseReason)>) {
        for s in self.streams.values_mut() {
            s.floor_scratch = u64::MAX;
        }
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let Some((stream_id, viewer, _)) = slot.entry.as_mut() else {
                continue;
            };
            let Some(s) = self.streams.get_mut(stream_id) else {
                continue;
            };
            let verdict = viewer.check_hard_bounds(&s.ring, now_ms);
            if verdict.is_ok() {
                if let Some(seq) = viewer.needs_from() {
                    s.floor_scratch = s.floor_scratch.min(seq);
                }
            }
            if let Err(reason) = verdict {
                let id = ViewerId {
                    index: index as u32,
                    generation: slot.generation,
                };
                match reason {
                    CloseReason::LagTime { .. } => self.counters.closed_lag_time += 1,
                    CloseReason::LagBytes { .. } => self.counters.closed_lag_bytes += 1,
                    CloseReason::Evicted { .. } => self.counters.closed_evicted += 1,
                    CloseReason::Gone => {}
                }
                tracing::debug!(key = %s.key, %reason, "closing stuck viewer");
                out.push((id, reason));
            }
        }
        for s in self.streams.values_mut() {
            s.ring.set_reader_floor(s.floor_scratch);
        }
    }

    /// Adds a viewer to a stream. It is positioned on its first
    /// [`Shard::next_batch`] (call it right away).
    pub fn add_viewer(
        &mut self,
        stream_id: StreamId,
        options: ViewerOptions,
    ) -> Result<ViewerId, ShardError> {
        if self.viewer_count >= self.config.max_viewers {
            return Err(ShardError::TooManyViewers {
                limit: self.config.max_viewers,
            });
        }
        let s = self
            .streams
            .get_mut(&stream_id)
            .ok_or(ShardError::UnknownStream(stream_id))?;
        if s.liveness == Liveness::Ended {
            return Err(ShardError::Ended(stream_id));
        }
        s.viewers += 1;
        s.stats.viewers = s.viewers;
        let viewer = Viewer::new(options);
        let reusable = self
            .free
            .pop()
            .and_then(|index| Some((index, self.slots.get_mut(index as usize)?)));
        let id = match reusable {
            Some((index, slot)) => {
                slot.entry = Some((stream_id, viewer, false));
                ViewerId {
                    index,
                    generation: slot.generation,
                }
            }
            None => {
                let index = self.slots.len() as u32;
                self.slots.push(ViewerSlot {
                    generation: 0,
                    entry: Some((stream_id, viewer, false)),
                });
                ViewerId {
                    index,
                    generation: 0,
                }
            }
        };
        self.viewer_count += 1;
        self.counters.viewers_added += 1;
        Ok(id)
    }

    /// Removes a viewer (closed connection, slow close, finished). Returns
    /// `None` for an unknown or stale id.
    pub fn remove_viewer(&mut self, id: ViewerId) -> Option<RemovedViewer> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let (stream_id, viewer, _) = slot.entry.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.viewer_count -= 1;
        self.counters.viewers_removed += 1;
        let mut removed = RemovedViewer {
            stream_id,
            counters: *viewer.counters(),
            unsubscribe: None,
        };
        let Some(s) = self.streams.get_mut(&stream_id) else {
            return Some(removed);
        };
        s.viewers = s.viewers.saturating_sub(1);
        s.stats.viewers = s.viewers;
        if s.viewers > 0 {
            return Some(removed);
        }
        match (s.liveness, s.role) {
            (Liveness::Ended, _) => {
                self.streams.remove(&stream_id);
            }
            (_, Role::Replica { owner_core }) => {
                self.streams.remove(&stream_id);
                removed.unsubscribe = Some((
                    owner_core,
                    CoreMsg::Unsubscribe {
                        stream_id,
                        from_core: self.core,
                    },
                ));
            }
            _ => {}
        }
        Some(removed)
    }

    /// Appends the viewer's next frames (at most `max_frames`, and at most
    /// `max_bytes` unless the first frame alone is bigger) to `out`.
    pub fn next_batch(
        &mut self,
        id: ViewerId,
        now_ms: u64,
        max_frames: usize,
        max_bytes: usize,
        out: &mut Vec<OutFrame>,
    ) -> BatchStatus {
        let Some(slot) = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)
        else {
            return BatchStatus::Close(CloseReason::Gone);
        };
        let Some((stream_id, viewer, parked)) = slot.entry.as_mut() else {
            return BatchStatus::Close(CloseReason::Gone);
        };
        let Some(s) = self.streams.get_mut(stream_id) else {
            return BatchStatus::Close(CloseReason::Gone);
        };
        let request = BatchRequest {
            now_ms,
            // A batch always makes progress when a frame is due.
            max_frames: max_frames.max(1),
            max_bytes,
            ended: s.liveness == Liveness::Ended,
            ready: s.seeded,
        };
        let before = *viewer.counters();
        let status = viewer.next_batch(&s.ring, request, out);
        if let Some(seq) = viewer.needs_from() {
            s.ring.lower_reader_floor(seq);
        }
        let after = *viewer.counters();
        let c = &mut self.counters;
        c.frames_out += after.frames_sent - before.frames_sent;
        c.bytes_out += after.bytes_sent - before.bytes_sent;
        c.dropped_slow += after.dropped_slow - before.dropped_slow;
        c.skipped_before_start += after.skipped_before_start - before.skipped_before_start;
        match status {
            BatchStatus::Idle if !*parked => {
                *parked = true;
                s.parked.push(id);
                // Ids of viewers removed while parked linger until the next push;
                // bound them by compacting when they outnumber the viewers.
                if s.parked.len() > 2 * s.viewers + 16 {
                    let slots = &self.slots;
                    s.parked.retain(|p| {
                        slots
                            .get(p.index as usize)
                            .is_some_and(|sl| sl.generation == p.generation && sl.entry.is_some())
                    });
                }
            }
            BatchStatus::Close(reason) => {
                match reason {
                    CloseReason::LagTime { .. } => c.closed_lag_time += 1,
                    CloseReason::LagBytes { .. } => c.closed_lag_bytes += 1,
                    CloseReason::Evicted { .. } => c.closed_evicted += 1,
                    CloseReason::Gone => {}
                }
                tracing::debug!(key = %s.key, %reason, "closing viewer");
            }
            _ => {}
        }
        status
    }

    /// The viewer caught up with its stream (its last batch found nothing more) and
    /// waits to be woken by the stream's next frame. False for an unknown id.
    pub fn is_parked(&self, id: ViewerId) -> bool {
        self.slots
            .get(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.entry.as_ref())
            .is_some_and(|(_, _, parked)| *parked)
    }

    /// The viewer's counters.
    pub fn viewer_counters(&self, id: ViewerId) -> Option<ViewerCounters> {
        let slot = self
            .slots
            .get(id.index as usize)
            .filter(|s| s.generation == id.generation)?;
        slot.entry.as_ref().map(|(_, v, _)| *v.counters())
    }
}
