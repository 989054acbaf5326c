//! A stream's life on this core: opened (as owner or replica), its publisher
//! gone (a grace period, or the end at once), resumed by a new publisher,
//! expired by [`Shard::tick`], ended.

use crate::protocol::flv::frame::TimestampUnwrapper;

use super::{EndedStream, Liveness, Opened, Role, Shard, ShardError, Stream, Timing};
use crate::stream::directory::StreamId;
use crate::stream::key::StreamKey;
use crate::stream::replication::{CoreMsg, CoreSet};
use crate::stream::ring::Ring;
use crate::stream::stats::{RateMeter, StreamStats};
use crate::stream::timestamps::StreamClock;

impl Shard {
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
}
