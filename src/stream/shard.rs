//! One core's streams and viewers.
//!
//! The shard is single-threaded and sans-IO: the server feeds it frames and
//! the time, and asks it, per viewer, what to send next. It tells the server
//! which viewers to wake (only those that had run dry), which cores to
//! forward frames to, and which streams ended.

use std::collections::HashMap;
use std::rc::Rc;

use crate::protocol::flv::frame::TimestampUnwrapper;
use crate::protocol::Frame;

use super::directory::StreamId;
use super::key::StreamKey;
use super::replication::{CoreMsg, CoreSet};
use super::ring::{Ring, RingEntry, RingLimits};
use super::stats::{note_codecs, RateMeter, ShardCounters, StreamStats};
use super::timestamps::{StreamClock, TimestampPolicy};
use super::viewer::{BatchRequest, BatchStatus, CloseReason, OutFrame, Viewer, ViewerCounters, ViewerOptions};

/// Shard-wide limits and policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardConfig {
    /// Caps of each stream's ring.
    pub ring: RingLimits,
    /// Timestamp correction of owned streams.
    pub timestamps: TimestampPolicy,
    /// Most streams (owned + replicas) on this core.
    pub max_streams: usize,
    /// Most viewers on this core.
    pub max_viewers: usize,
    /// Most frames in a snapshot applied to a replica.
    pub max_snapshot_frames: usize,
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            ring: RingLimits::default(),
            timestamps: TimestampPolicy::default(),
            max_streams: 10_000,
            max_viewers: 100_000,
            max_snapshot_frames: 4_096,
        }
    }
}

/// Whether this core owns a stream or mirrors it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The publisher is on this core; `generation` is its directory claim's.
    Owner {
        /// The claim generation of the current publisher.
        generation: u64,
    },
    /// Frames come from `owner_core` as [`CoreMsg`]s.
    Replica {
        /// The owner core.
        owner_core: usize,
    },
}

/// Identifies a viewer on one shard. Stale ids (of removed viewers) are
/// recognised, never confused with a newer viewer in the same slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ViewerId {
    index: u32,
    generation: u32,
}

/// Whether [`Shard::open_stream`] created the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Newly created. For a replica, send the returned `Subscribe` to its owner.
    New,
    /// A replica of it already existed (no new subscription needed).
    Existing,
}

/// Why a shard operation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// No such stream on this core.
    #[error("no stream {0} on this core")]
    UnknownStream(StreamId),
    /// The stream exists with another role, or as an owner already.
    #[error("stream {0} already open on this core")]
    AlreadyOpen(StreamId),
    /// Too many streams.
    #[error("too many streams on this core: limit {limit}")]
    TooManyStreams {
        /// The limit.
        limit: usize,
    },
    /// Too many viewers.
    #[error("too many viewers on this core: limit {limit}")]
    TooManyViewers {
        /// The limit.
        limit: usize,
    },
    /// The stream has ended; it takes no frames or viewers.
    #[error("stream {0} has ended")]
    Ended(StreamId),
    /// The stream's publisher left (grace period); a new one must [`Shard::resume`] it first.
    #[error("stream {0} has no publisher; resume it first")]
    NoPublisher(StreamId),
    /// The operation needs the other role (e.g. a publisher push on a replica).
    #[error("stream {0} is not {1} on this core")]
    WrongRole(StreamId, &'static str),
    /// A publisher whose claim was replaced.
    #[error("stream {stream_id}: generation {given} is not the current publisher's ({current})")]
    StaleGeneration {
        /// The stream.
        stream_id: StreamId,
        /// The generation given.
        given: u64,
        /// The current one.
        current: u64,
    },
}

/// The result of pushing a frame.
#[derive(Debug)]
pub struct Pushed<'a> {
    /// Viewers that had run dry and now have data: schedule a batch for each.
    pub wake: &'a [ViewerId],
    /// Cores to forward the frame to, as `CoreMsg::Frame { frame: entry.frame().clone() }`.
    pub replicate_to: CoreSet,
    /// The stored entry (its frame carries the corrected timestamp).
    pub entry: Rc<RingEntry>,
}

/// A stream that ended (or whose grace period expired).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndedStream {
    /// The stream.
    pub stream_id: StreamId,
    /// Its key (release the directory claim for it if owned).
    pub key: StreamKey,
    /// Its role on this core.
    pub role: Role,
    /// Idle viewers to wake so they see `Finished`; busy ones see it on their next batch.
    pub wake: Vec<ViewerId>,
    /// Replica cores to send `CoreMsg::StreamEnd` to.
    pub notify: CoreSet,
}

/// The result of removing a viewer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovedViewer {
    /// Its stream.
    pub stream_id: StreamId,
    /// What it had been sent.
    pub counters: ViewerCounters,
    /// Set when it was a replica's last viewer: the replica was dropped and
    /// this message must go to the owner core.
    pub unsubscribe: Option<(usize, CoreMsg)>,
}

/// What the server must do after [`Shard::handle`].
#[derive(Debug)]
pub enum Handled<'a> {
    /// Nothing further.
    Nothing,
    /// Send `msg` to `to_core`.
    Reply {
        /// Destination core.
        to_core: usize,
        /// The message.
        msg: CoreMsg,
    },
    /// Wake these viewers.
    Wake(&'a [ViewerId]),
    /// A replica stream ended.
    Ended(EndedStream),
    /// The publisher of this owned stream lost its key to another core: close its
    /// connection; the stream has been ended.
    Kick(EndedStream),
}

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
    viewers: usize,
    /// Viewers that returned `Idle`, to wake on the next frame.
    parked: Vec<ViewerId>,
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
    streams: HashMap<StreamId, Stream>,
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
            streams: HashMap::new(),
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
                (Role::Replica { .. }, Role::Replica { .. }) if existing.liveness != Liveness::Ended => {
                    Ok(Opened::Existing)
                }
                _ => Err(ShardError::AlreadyOpen(stream_id)),
            };
        }
        if self.streams.len() >= self.config.max_streams {
            return Err(ShardError::TooManyStreams { limit: self.config.max_streams });
        }
        let (timing, seeded) = match role {
            Role::Owner { .. } => (Timing::Owner(StreamClock::new(self.config.timestamps)), true),
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
                viewers: 0,
                parked: Vec::new(),
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
            Role::Replica { owner_core } => {
                Some((owner_core, CoreMsg::Subscribe { stream_id, key: s.key.clone(), from_core: self.core }))
            }
            Role::Owner { .. } => None,
        }
    }

    /// Adds a publisher's frame to an owned stream.
    pub fn push_frame(&mut self, stream_id: StreamId, mut frame: Frame, now_ms: u64) -> Result<Pushed<'_>, ShardError> {
        let s = self.streams.get_mut(&stream_id).ok_or(ShardError::UnknownStream(stream_id))?;
        match s.liveness {
            Liveness::Publishing => {}
            Liveness::Grace { .. } => return Err(ShardError::NoPublisher(stream_id)),
            Liveness::Ended => return Err(ShardError::Ended(stream_id)),
        }
        let Timing::Owner(clock) = &mut s.timing else {
            return Err(ShardError::WrongRole(stream_id, "owned"));
        };
        let stream_ts = clock.correct(frame.timestamp);
        s.stats.timestamp_rebases = clock.rebases();
        frame.timestamp = stream_ts as u32;
        let entry = Self::append(s, &mut self.counters, frame, stream_ts, now_ms);
        let replicate_to = s.subscribers;
        Self::drain_parked(s, &mut self.slots, &mut self.wake);
        Ok(Pushed { wake: &self.wake, replicate_to, entry })
    }

    fn append(
        s: &mut Stream,
        counters: &mut ShardCounters,
        frame: Frame,
        stream_ts: u64,
        now_ms: u64,
    ) -> Rc<RingEntry> {
        counters.frames_in += 1;
        counters.bytes_in += frame.payload.len() as u64;
        s.stats.frames_in += 1;
        s.stats.bytes_in += frame.payload.len() as u64;
        note_codecs(&mut s.stats, &frame);
        s.meter.record(&frame, now_ms);
        s.stats.bitrate_bps = s.meter.bitrate_bps;
        s.stats.fps_x100 = s.meter.fps_x100;
        let evicted_before = s.ring.evicted();
        let entry = s.ring.push(frame, stream_ts, now_ms);
        counters.ring_evictions += s.ring.evicted() - evicted_before;
        entry
    }

    /// Moves the stream's parked viewers into `wake` (cleared first) and unparks them.
    fn drain_parked(s: &mut Stream, slots: &mut [ViewerSlot], wake: &mut Vec<ViewerId>) {
        wake.clear();
        for id in s.parked.drain(..) {
            let Some(slot) = slots.get_mut(id.index as usize) else { continue };
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
            Role::Owner { generation: current } if current == generation => {}
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
        self.next_grace_deadline = Some(self.next_grace_deadline.map_or(deadline_ms, |d| d.min(deadline_ms)));
        tracing::debug!(key = %s.key, %stream_id, grace_ms, "publisher left, stream waiting");
        None
    }

    /// A new publisher (claim `generation`) continues an owned stream: its
    /// timestamps continue the stream timeline, and viewers stay.
    pub fn resume(&mut self, stream_id: StreamId, generation: u64) -> Result<(), ShardError> {
        let s = self.streams.get_mut(&stream_id).ok_or(ShardError::UnknownStream(stream_id))?;
        if s.liveness == Liveness::Ended {
            return Err(ShardError::Ended(stream_id));
        }
        let Timing::Owner(clock) = &mut s.timing else {
            return Err(ShardError::WrongRole(stream_id, "owned"));
        };
        clock.resume();
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
        expired.into_iter().filter_map(|id| self.end_stream(id)).collect()
    }

    /// Checks every positioned viewer against its hard bounds and appends those
    /// to close. Run it periodically (e.g. once a second): a viewer whose
    /// socket is stuck never asks for its next batch, so this is how it gets
    /// closed. O(viewers).
    pub fn sweep_slow(&mut self, now_ms: u64, out: &mut Vec<(ViewerId, CloseReason)>) {
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let Some((stream_id, viewer, _)) = slot.entry.as_mut() else { continue };
            let Some(s) = self.streams.get(stream_id) else { continue };
            if let Err(reason) = viewer.check_hard_bounds(&s.ring, now_ms) {
                let id = ViewerId { index: index as u32, generation: slot.generation };
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
        let ended = EndedStream { stream_id, key: s.key.clone(), role: s.role, wake: self.wake.clone(), notify };
        if s.viewers == 0 {
            self.streams.remove(&stream_id);
        }
        self.counters.streams_ended += 1;
        tracing::debug!(key = %ended.key, %stream_id, "stream ended");
        Some(ended)
    }

    /// Adds a viewer to a stream. It is positioned on its first
    /// [`Shard::next_batch`] (call it right away).
    pub fn add_viewer(&mut self, stream_id: StreamId, options: ViewerOptions) -> Result<ViewerId, ShardError> {
        if self.viewer_count >= self.config.max_viewers {
            return Err(ShardError::TooManyViewers { limit: self.config.max_viewers });
        }
        let s = self.streams.get_mut(&stream_id).ok_or(ShardError::UnknownStream(stream_id))?;
        if s.liveness == Liveness::Ended {
            return Err(ShardError::Ended(stream_id));
        }
        s.viewers += 1;
        s.stats.viewers = s.viewers;
        let viewer = Viewer::new(options);
        let id = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.entry = Some((stream_id, viewer, false));
                ViewerId { index, generation: slot.generation }
            }
            None => {
                let index = self.slots.len() as u32;
                self.slots.push(ViewerSlot { generation: 0, entry: Some((stream_id, viewer, false)) });
                ViewerId { index, generation: 0 }
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
        let mut removed = RemovedViewer { stream_id, counters: *viewer.counters(), unsubscribe: None };
        let Some(s) = self.streams.get_mut(&stream_id) else { return Some(removed) };
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
                removed.unsubscribe = Some((owner_core, CoreMsg::Unsubscribe { stream_id, from_core: self.core }));
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
        let Some(slot) = self.slots.get_mut(id.index as usize).filter(|s| s.generation == id.generation) else {
            return BatchStatus::Close(CloseReason::Gone);
        };
        let Some((stream_id, viewer, parked)) = slot.entry.as_mut() else {
            return BatchStatus::Close(CloseReason::Gone);
        };
        let Some(s) = self.streams.get_mut(stream_id) else {
            return BatchStatus::Close(CloseReason::Gone);
        };
        let request =
            BatchRequest { now_ms, max_frames, max_bytes, ended: s.liveness == Liveness::Ended, ready: s.seeded };
        let before = *viewer.counters();
        let status = viewer.next_batch(&s.ring, request, out);
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
        let slot = self.slots.get(id.index as usize).filter(|s| s.generation == id.generation)?;
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
        self.streams.get(&stream_id).map(|s| s.viewers + s.subscribers.len())
    }

    /// Frames and bytes held by a stream's ring (for tests and stats).
    pub fn ring_usage(&self, stream_id: StreamId) -> Option<(usize, usize)> {
        self.streams.get(&stream_id).map(|s| (s.ring.len(), s.ring.held_bytes()))
    }

    // ---- cross-core replication ----

    /// Owner side of `Subscribe`: records the subscriber and returns the
    /// `Snapshot` to send back, or `StreamEnd` if the stream is not (or no
    /// longer) here under that key.
    pub fn handle_subscribe(&mut self, stream_id: StreamId, key: &StreamKey, from_core: usize) -> CoreMsg {
        match self.streams.get_mut(&stream_id) {
            Some(s) if s.key == *key && s.liveness != Liveness::Ended && matches!(s.role, Role::Owner { .. }) => {
                s.subscribers.insert(from_core);
                CoreMsg::Snapshot { stream_id, frames: s.ring.snapshot(), has_video: s.ring.has_video() }
            }
            _ => CoreMsg::StreamEnd { stream_id },
        }
    }

    /// Owner side of `Unsubscribe`.
    pub fn handle_unsubscribe(&mut self, stream_id: StreamId, from_core: usize) {
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.subscribers.remove(from_core);
        }
    }

    /// Replica side of `Snapshot`: seeds the ring so viewers start at the
    /// owner's GOP keyframe. Returns viewers to wake.
    pub fn apply_snapshot(
        &mut self,
        stream_id: StreamId,
        frames: Vec<Frame>,
        has_video: bool,
        now_ms: u64,
    ) -> &[ViewerId] {
        self.wake.clear();
        let Some(s) = self.streams.get_mut(&stream_id) else { return &self.wake };
        if s.seeded || !matches!(s.role, Role::Replica { .. }) {
            return &self.wake;
        }
        let skip = frames.len().saturating_sub(self.config.max_snapshot_frames);
        for frame in frames.into_iter().skip(skip) {
            Self::append_replica(s, &mut self.counters, frame, now_ms);
        }
        if has_video {
            s.ring.mark_has_video();
        }
        s.seeded = true;
        Self::drain_parked(s, &mut self.slots, &mut self.wake);
        &self.wake
    }

    /// Replica side of `Frame`. Frames before the snapshot are ignored (the
    /// owner answers a subscription with the snapshot before any frame).
    pub fn apply_frame(&mut self, stream_id: StreamId, frame: Frame, now_ms: u64) -> &[ViewerId] {
        self.wake.clear();
        let Some(s) = self.streams.get_mut(&stream_id) else { return &self.wake };
        if !s.seeded || s.liveness == Liveness::Ended || !matches!(s.role, Role::Replica { .. }) {
            return &self.wake;
        }
        Self::append_replica(s, &mut self.counters, frame, now_ms);
        Self::drain_parked(s, &mut self.slots, &mut self.wake);
        &self.wake
    }

    fn append_replica(s: &mut Stream, counters: &mut ShardCounters, frame: Frame, now_ms: u64) {
        let stream_ts = match &mut s.timing {
            Timing::Replica(unwrapper) => u64::try_from(unwrapper.unwrap(frame.timestamp)).unwrap_or(0),
            Timing::Owner(_) => return,
        };
        Self::append(s, counters, frame, stream_ts, now_ms);
    }

    /// Replica side of `StreamEnd`.
    pub fn apply_stream_end(&mut self, stream_id: StreamId) -> Option<EndedStream> {
        match self.streams.get(&stream_id)?.role {
            Role::Replica { .. } => self.end_stream(stream_id),
            Role::Owner { .. } => None,
        }
    }

    /// Applies any message from another core.
    pub fn handle(&mut self, msg: CoreMsg, now_ms: u64) -> Handled<'_> {
        match msg {
            CoreMsg::Subscribe { stream_id, key, from_core } => {
                Handled::Reply { to_core: from_core, msg: self.handle_subscribe(stream_id, &key, from_core) }
            }
            CoreMsg::Unsubscribe { stream_id, from_core } => {
                self.handle_unsubscribe(stream_id, from_core);
                Handled::Nothing
            }
            CoreMsg::Snapshot { stream_id, frames, has_video } => {
                Handled::Wake(self.apply_snapshot(stream_id, frames, has_video, now_ms))
            }
            CoreMsg::Frame { stream_id, frame } => Handled::Wake(self.apply_frame(stream_id, frame, now_ms)),
            CoreMsg::StreamEnd { stream_id } => match self.apply_stream_end(stream_id) {
                Some(ended) => Handled::Ended(ended),
                None => Handled::Nothing,
            },
            CoreMsg::Kick { stream_id, generation } => {
                let current = match self.streams.get(&stream_id).map(|s| s.role) {
                    Some(Role::Owner { generation: g }) => g,
                    _ => return Handled::Nothing,
                };
                if current != generation {
                    return Handled::Nothing;
                }
                match self.end_stream(stream_id) {
                    Some(ended) => Handled::Kick(ended),
                    None => Handled::Nothing,
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "shard_tests.rs"]
mod tests;
