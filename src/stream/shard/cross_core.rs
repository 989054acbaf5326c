//! The replication side of a shard (DESIGN.md "Cross-core fan-out"): the
//! owner answering subscriptions, the replica applying snapshots and frames.

use crate::protocol::{Frame, FrameKind};
use crate::stream::directory::StreamId;
use crate::stream::key::StreamKey;
use crate::stream::replication::CoreMsg;
use crate::stream::stats::ShardCounters;

use super::{EndedStream, Handled, Liveness, Role, Shard, Stream, Timing, ViewerId};

impl Shard {
    /// Owner side of `Subscribe`: records the subscriber and returns the
    /// `Snapshot` to send back, or `StreamEnd` if the stream is not (or no
    /// longer) here under that key.
    pub fn handle_subscribe(
        &mut self,
        stream_id: StreamId,
        key: &StreamKey,
        from_core: usize,
    ) -> CoreMsg {
        match self.streams.get_mut(&stream_id) {
            Some(s)
                if s.key == *key
                    && s.liveness != Liveness::Ended
                    && matches!(s.role, Role::Owner { .. }) =>
            {
                s.subscribers.insert(from_core);
                CoreMsg::Snapshot {
                    stream_id,
                    frames: s.ring.snapshot(),
                    has_video: s.ring.has_video(),
                    next_seq: s.ring.next_seq(),
                }
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
    /// owner's GOP keyframe; `next_seq` is the sequence number of the first
    /// `Frame` to follow. Returns viewers to wake.
    pub fn apply_snapshot(
        &mut self,
        stream_id: StreamId,
        frames: Vec<Frame>,
        has_video: bool,
        next_seq: u64,
        now_ms: u64,
    ) -> &[ViewerId] {
        self.wake.clear();
        let Some(s) = self.streams.get_mut(&stream_id) else {
            return &self.wake;
        };
        if s.seeded || !matches!(s.role, Role::Replica { .. }) {
            return &self.wake;
        }
        let skip = frames.len().saturating_sub(self.config.max_snapshot_frames);
        for frame in frames.into_iter().skip(skip) {
            Self::append_replica(
                s,
                &mut self.counters,
                frame,
                now_ms,
                now_ms.saturating_mul(1_000),
            );
        }
        if has_video {
            s.ring.mark_has_video();
        }
        s.seeded = true;
        s.expect_seq = next_seq;
        Self::drain_parked(s, &mut self.slots, &mut self.wake);
        &self.wake
    }

    /// Replica side of `Frame` number `seq` of the owner's stream, which reached
    /// the server at `arrived_us`. Frames before the snapshot are ignored (the
    /// owner answers a subscription with the snapshot before any frame, and the
    /// mesh keeps that order). When `seq` jumps, the frames between were lost on
    /// the way (a full cross-core queue): they are counted, and the replica feeds
    /// its viewers nothing that needs them (only sequence headers and metadata)
    /// until the next video keyframe, so no decoder sees a hole. That keyframe's
    /// `start` (the headers current at the owner) replaces any header the gap lost.
    pub fn apply_frame(
        &mut self,
        stream_id: StreamId,
        seq: u64,
        arrived_us: u64,
        frame: Frame,
        start: Vec<Frame>,
        now_ms: u64,
    ) -> &[ViewerId] {
        self.wake.clear();
        let Some(s) = self.streams.get_mut(&stream_id) else {
            return &self.wake;
        };
        if !s.seeded || s.liveness == Liveness::Ended || !matches!(s.role, Role::Replica { .. }) {
            return &self.wake;
        }
        if seq < s.expect_seq {
            // Already in the snapshot.
            return &self.wake;
        }
        if seq > s.expect_seq {
            let missed = seq - s.expect_seq;
            self.counters.mesh_gap += missed;
            // Audio-only streams have no keyframe to wait for: each audio frame stands alone.
            s.resyncing |= s.ring.has_video();
            tracing::debug!(key = %s.key, %stream_id, missed, "replica missed frames; resyncing at a keyframe");
        }
        s.expect_seq = seq + 1;
        if s.resyncing {
            if frame.kind == FrameKind::Video && frame.keyframe && !frame.sequence_header {
                s.resyncing = false;
                Self::restore_context(
                    s,
                    &mut self.counters,
                    start,
                    frame.timestamp,
                    now_ms,
                    arrived_us,
                );
            } else if !frame.sequence_header && frame.kind != FrameKind::Script {
                self.counters.mesh_gap += 1;
                return &self.wake;
            }
        }
        Self::append_replica(s, &mut self.counters, frame, now_ms, arrived_us);
        Self::drain_parked(s, &mut self.slots, &mut self.wake);
        &self.wake
    }

    /// Appends the owner's start context of a keyframe, where it differs from
    /// the replica's, just before that keyframe: what a gap may have lost.
    fn restore_context(
        s: &mut Stream,
        counters: &mut ShardCounters,
        start: Vec<Frame>,
        timestamp: u32,
        now_ms: u64,
        arrived_us: u64,
    ) {
        for header in start {
            let current = s.ring.context().entries().any(|e| {
                let f = e.frame();
                f.kind == header.kind
                    && f.sequence_header == header.sequence_header
                    && f.payload == header.payload
            });
            if !current {
                // Sent "at" the keyframe, as in a snapshot: its own timestamp may be far older.
                Self::append_replica(
                    s,
                    counters,
                    Frame {
                        timestamp,
                        ..header
                    },
                    now_ms,
                    arrived_us,
                );
            }
        }
    }

    fn append_replica(
        s: &mut Stream,
        counters: &mut ShardCounters,
        frame: Frame,
        now_ms: u64,
        arrived_us: u64,
    ) {
        let stream_ts = match &mut s.timing {
            Timing::Replica(unwrapper) => {
                u64::try_from(unwrapper.unwrap(frame.timestamp)).unwrap_or(0)
            }
            Timing::Owner(_) => return,
        };
        Self::append(s, counters, frame, stream_ts, now_ms, arrived_us);
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
            CoreMsg::Subscribe {
                stream_id,
                key,
                from_core,
            } => Handled::Reply {
                to_core: from_core,
                msg: self.handle_subscribe(stream_id, &key, from_core),
            },
            CoreMsg::Unsubscribe {
                stream_id,
                from_core,
            } => {
                self.handle_unsubscribe(stream_id, from_core);
                Handled::Nothing
            }
            CoreMsg::Snapshot {
                stream_id,
                frames,
                has_video,
                next_seq,
            } => Handled::Wake(self.apply_snapshot(stream_id, frames, has_video, next_seq, now_ms)),
            CoreMsg::Frame {
                stream_id,
                seq,
                arrived_us,
                frame,
                start,
            } => Handled::Wake(self.apply_frame(stream_id, seq, arrived_us, frame, start, now_ms)),
            CoreMsg::StreamEnd { stream_id } => match self.apply_stream_end(stream_id) {
                Some(ended) => Handled::Ended(ended),
                None => Handled::Nothing,
            },
            CoreMsg::Kick {
                stream_id,
                generation,
            } => {
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
