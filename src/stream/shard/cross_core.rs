//! The replication side of a shard (DESIGN.md "Cross-core fan-out"): the
//! owner answering subscriptions, the replica applying snapshots and frames.

use crate::protocol::Frame;
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
    /// owner's GOP keyframe. Returns viewers to wake.
    pub fn apply_snapshot(
        &mut self,
        stream_id: StreamId,
        frames: Vec<Frame>,
        has_video: bool,
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
        let Some(s) = self.streams.get_mut(&stream_id) else {
            return &self.wake;
        };
        if !s.seeded || s.liveness == Liveness::Ended || !matches!(s.role, Role::Replica { .. }) {
            return &self.wake;
        }
        Self::append_replica(s, &mut self.counters, frame, now_ms);
        Self::drain_parked(s, &mut self.slots, &mut self.wake);
        &self.wake
    }

    fn append_replica(s: &mut Stream, counters: &mut ShardCounters, frame: Frame, now_ms: u64) {
        let stream_ts = match &mut s.timing {
            Timing::Replica(unwrapper) => {
                u64::try_from(unwrapper.unwrap(frame.timestamp)).unwrap_or(0)
            }
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
            } => Handled::Wake(self.apply_snapshot(stream_id, frames, has_video, now_ms)),
            CoreMsg::Frame { stream_id, frame } => {
                Handled::Wake(self.apply_frame(stream_id, frame, now_ms))
            }
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
