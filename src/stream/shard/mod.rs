//! One core's streams and viewers.
//!
//! The shard is single-threaded and sans-IO: the server feeds it frames and
//! the time, and asks it, per viewer, what to send next. It tells the server
//! which viewers to wake (only those that had run dry), which cores to
//! forward frames to, and which streams ended.

//!
//! `types` holds the public vocabulary, `cross_core` the replication side
//! (owner answering subscriptions, replica applying snapshots and frames).

mod cross_core;
mod types;

use std::rc::Rc;

use crate::protocol::flv::frame::TimestampUnwrapper;
use crate::protocol::{Frame, FrameKind};
use crate::runtime::int_hash::IntHashMap;

use super::directory::StreamId;
use super::key::StreamKey;
use super::replication::{CoreMsg, CoreSet};
use super::ring::{Ring, RingEntry};
use super::stats::{note_codecs, RateMeter, ShardCounters, StreamStats};
use super::timestamps::StreamClock;
use super::viewer::{
    BatchRequest, BatchStatus, CloseReason, OutFrame, Viewer, ViewerCounters, ViewerOptions,
};

pub use types::{
    EndedStream, Handled, Opened, Pushed, RemovedViewer, Role, ShardConfig, ShardError, ViewerId,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Liveness {
    Publishing,
    /// Publisher gone; expires at the deadline unless resumed.
    Grace {
        deadline_ms: u64,
    },
    Ended,
}

enum Timing {
    Owner(StreamClock),
    Replica(TimestampUnwrapper),
}

struct Stream {
    key: StreamKey,
    role: Role,
    ring: Ring,
    timing: Timing,
    liveness: Liveness,
    /// A replica has received its snapshot; until then viewers cannot be positioned.
    seeded: bool,
    /// Replica: the owner's sequence number of the next `Frame` expected.
    expect_seq: u64,
    /// Replica: frames were missed; feed nothing that needs them until a keyframe.
    resyncing: bool,
    viewers: usize,
    /// Viewers that returned `Idle`, to wake on the next frame.
    parked: Vec<ViewerId>,
    /// Scratch for `sweep_slow`: the lowest sequence number any viewer needs.
    floor_scratch: u64,
    subscribers: CoreSet,
    stats: StreamStats,
    meter: RateMeter,
}

struct ViewerSlot {
    generation: u32,
    entry: Option<(StreamId, Viewer, bool)>,
}

/// All streams and viewers of one core.
pub struct Shard {
    core: usize,
    config: ShardConfig,
    /// Streams by id; ids are handed out sequentially by the directory, never chosen
    /// by peers, so the cheap hasher is safe.
    streams: IntHashMap<StreamId, Stream>,
    slots: Vec<ViewerSlot>,
    free: Vec<u32>,
    viewer_count: usize,
    wake: Vec<ViewerId>,
    counters: ShardCounters,
    /// Earliest grace deadline of any stream, so `tick` can return at once.
    next_grace_deadline: Option<u64>,
}

impl Shard {
    /// An empty shard for core `core`.
    pub fn new(core: usize, config: ShardConfig) -> Self {
        Shard {
            core,
            config,
            streams: IntHashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            viewer_count: 0,
            wake: Vec::new(),
            counters: ShardCounters::default(),
            next_grace_deadline: None,
        }
    }

    /// This shard's core index.
    pub fn core(&self) -> usize {
        self.core
    }

    /// Opens a stream: as owner when its publisher claimed it here, as replica
    /// when a viewer here wants a stream owned elsewhere. Opening an existing
    /// replica again is fine (returns [`Opened::Existing`]).
    pub fn open_stream(
        &mut self,
        key: StreamKey,
        stream_id: StreamId,
        role: Role,
        now_ms: u64,
    ) -> Result<Opened, ShardError> {
        if let Some(existing) = self.streams.get(&stream_id) {
            return match (existing.role, role) {
                (Role::Replica { .. }, Role::Replica { .. })
                    if existing.liveness != Liveness::Ended =>
                {
                    Ok(Opened::Existing)
                }
                _ => Err(ShardError::AlreadyOpen(stream_id)),
            };
        }
        if self.streams.len() >= self.config.max_streams {
            return Err(ShardError::TooManyStreams {
                limit: self.config.max_streams,
            });
        }
        if matches!(role, Role::Replica { .. }) && self.viewer_count >= self.config.max_viewers {
            // A replica exists only for a viewer about to be added; refusing now
            // avoids a subscribed replica left with no viewer to ever remove it.
            return Err(ShardError::TooManyViewers {
                limit: self.config.max_viewers,
            });
        }
        let (timing, seeded) = match role {
            Role::Owner { .. } => (
                Timing::Owner(StreamClock::new(self.config.timestamps)),
                true,
            ),
            Role::Replica { .. } => (Timing::Replica(TimestampUnwrapper::default()), false),
        };
        let stats = StreamStats {
            key: key.clone(),
            stream_id,
            owned: matches!(role, Role::Owner { .. }),
            publishing: true,
            created_at_ms: now_ms,
            frames_in: 0,
            bytes_in: 0,
            bitrate_bps: 0,
            fps_x100: 0,
            video_codec: None,
            audio_codec: None,
            width: None,
            height: None,
            viewers: 0,
            timestamp_rebases: 0,
        };
        tracing::debug!(%key, %stream_id, ?role, core = self.core, "stream opened");
        self.streams.insert(
            stream_id,
            Stream {
                key,
                role,
                ring: Ring::new(self.config.ring),
                timing,
                liveness: Liveness::Publishing,
                seeded,
                expect_seq: 0,
                resyncing: false,
                viewers: 0,
                parked: Vec::new(),
                floor_scratch: u64::MAX,
                subscribers: CoreSet::EMPTY,
                stats,
                meter: RateMeter::default(),
            },
        );
        self.counters.streams_opened += 1;
        Ok(Opened::New)
    }

    /// The `Subscribe` message a new replica sends to its owner.
    pub fn subscribe_msg(&self, stream_id: StreamId) -> Option<(usize, CoreMsg)> {
        let s = self.streams.get(&stream_id)?;
        match s.role {
            Role::Replica { owner_core } => Some((
                owner_core,
                CoreMsg::Subscribe {
                    stream_id,
                    key: s.key.clone(),
                    from_core: self.core,
                },
            )),
            Role::Owner { .. } => None,
        }
    }

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

    fn append(
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
    fn drain_parked(s: &mut Stream, slots: &mut [ViewerSlot], wake: &mut Vec<ViewerId>) {
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

    /// The publisher left. With `grace_ms > 0` the stream and its viewers wait
    /// for a new publisher ([`Shard::resume`]) until [`Shard::tick`] expires it;
    /// otherwise it ends now. A stale `generation` (a publisher already
    /// replaced) is ignored and returns `None`.
    pub fn publisher_left(
        &mut self,
        stream_id: StreamId,
        generation: u64,
        now_ms: u64,
        grace_ms: u64,
    ) -> Option<EndedStream> {
        let s = self.streams.get_mut(&stream_id)?;
        match s.role {
            Role::Owner {
                generation: current,
            } if current == generation => {}
            _ => return None,
        }
        if s.liveness != Liveness::Publishing {
            return None;
        }
        s.stats.publishing = false;
        if grace_ms == 0 {
            return self.end_stream(stream_id);
        }
        let deadline_ms = now_ms.saturating_add(grace_ms);
        s.liveness = Liveness::Grace { deadline_ms };
        self.next_grace_deadline = Some(
            self.next_grace_deadline
                .map_or(deadline_ms, |d| d.min(deadline_ms)),
        );
        tracing::debug!(key = %s.key, %stream_id, grace_ms, "publisher left, stream waiting");
        None
    }

    /// A new publisher (claim `generation`) continues an owned stream: its
    /// timestamps continue the stream timeline, and viewers stay.
    pub fn resume(&mut self, stream_id: StreamId, generation: u64) -> Result<(), ShardError> {
        self.resume_with(stream_id, generation, false)
    }

    /// [`Shard::resume`] by an upstream that carries the stream's own
    /// timeline (an edge's pull reconnecting to a ringcast origin): the
    /// timeline follows it (`StreamClock::resume_following`), and the frames it
    /// repeats are refused with [`ShardError::Replayed`].
    pub fn resume_following(
        &mut self,
        stream_id: StreamId,
        generation: u64,
    ) -> Result<(), ShardError> {
        self.resume_with(stream_id, generation, true)
    }

    fn resume_with(
        &mut self,
        stream_id: StreamId,
        generation: u64,
        following: bool,
    ) -> Result<(), ShardError> {
        let s = self
            .streams
            .get_mut(&stream_id)
            .ok_or(ShardError::UnknownStream(stream_id))?;
        if s.liveness == Liveness::Ended {
            return Err(ShardError::Ended(stream_id));
        }
        let Timing::Owner(clock) = &mut s.timing else {
            return Err(ShardError::WrongRole(stream_id, "owned"));
        };
        if following {
            clock.resume_following();
        } else {
            clock.resume();
        }
        s.role = Role::Owner { generation };
        s.liveness = Liveness::Publishing;
        s.stats.publishing = true;
        tracing::debug!(key = %s.key, %stream_id, generation, "publisher resumed stream");
        Ok(())
    }

    /// Ends streams whose grace period expired by `now_ms`.
    ///
    /// Cheap when nothing is due (one comparison), so it can run every loop turn.
    pub fn tick(&mut self, now_ms: u64) -> Vec<EndedStream> {
        if !matches!(self.next_grace_deadline, Some(d) if d <= now_ms) {
            return Vec::new();
        }
        let mut expired = Vec::new();
        let mut next = None::<u64>;
        for (id, s) in &self.streams {
            if let Liveness::Grace { deadline_ms } = s.liveness {
                if deadline_ms <= now_ms {
                    expired.push(*id);
                } else {
                    next = Some(next.map_or(deadline_ms, |n| n.min(deadline_ms)));
                }
            }
        }
        self.next_grace_deadline = next;
        expired
            .into_iter()
            .filter_map(|id| self.end_stream(id))
            .collect()
    }

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

    /// Ends a stream: no more frames; viewers finish what they have, then get
    /// `Finished`. The stream is dropped when its last viewer is removed.
    pub fn end_stream(&mut self, stream_id: StreamId) -> Option<EndedStream> {
        let s = self.streams.get_mut(&stream_id)?;
        if s.liveness == Liveness::Ended {
            return None;
        }
        s.liveness = Liveness::Ended;
        s.stats.publishing = false;
        let notify = std::mem::take(&mut s.subscribers);
        Self::drain_parked(s, &mut self.slots, &mut self.wake);
        let ended = EndedStream {
            stream_id,
            key: s.key.clone(),
            role: s.role,
            wake: self.wake.clone(),
            notify,
        };
        if s.viewers == 0 {
            self.streams.remove(&stream_id);
        }
        self.counters.streams_ended += 1;
        tracing::debug!(key = %ended.key, %stream_id, "stream ended");
        Some(ended)
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

    /// The viewer's counters.
    pub fn viewer_counters(&self, id: ViewerId) -> Option<ViewerCounters> {
        let slot = self
            .slots
            .get(id.index as usize)
            .filter(|s| s.generation == id.generation)?;
        slot.entry.as_ref().map(|(_, v, _)| *v.counters())
    }

    /// Records the picture size the server learnt (from metadata or a sequence header).
    pub fn set_video_size(&mut self, stream_id: StreamId, width: u32, height: u32) {
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.stats.width = Some(width);
            s.stats.height = Some(height);
        }
    }

    /// Statistics of one stream.
    pub fn stats(&self, stream_id: StreamId) -> Option<&StreamStats> {
        self.streams.get(&stream_id).map(|s| &s.stats)
    }

    /// Statistics of every stream on this core.
    pub fn all_stats(&self) -> impl Iterator<Item = &StreamStats> {
        self.streams.values().map(|s| &s.stats)
    }

    /// The shard's counters.
    pub fn counters(&self) -> &ShardCounters {
        &self.counters
    }

    /// Number of viewers on this core.
    pub fn viewer_count(&self) -> usize {
        self.viewer_count
    }

    /// Number of streams on this core.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Who still watches a stream this core owns: its viewers here plus the
    /// cores replicating it (each has at least one viewer). `None` if unknown.
    pub fn audience(&self, stream_id: StreamId) -> Option<usize> {
        self.streams
            .get(&stream_id)
            .map(|s| s.viewers + s.subscribers.len())
    }

    /// Frames and bytes held by a stream's ring (for tests and stats).
    pub fn ring_usage(&self, stream_id: StreamId) -> Option<(usize, usize)> {
        self.streams
            .get(&stream_id)
            .map(|s| (s.ring.len(), s.ring.held_bytes()))
    }
}

#[cfg(test)]
mod tests;
