//! The shard's public vocabulary: configuration, roles, ids, results and errors.

use std::rc::Rc;

use crate::stream::directory::StreamId;
use crate::stream::key::StreamKey;
use crate::stream::replication::{CoreMsg, CoreSet};
use crate::stream::ring::{RingEntry, RingLimits};
use crate::stream::timestamps::TimestampPolicy;
use crate::stream::viewer::ViewerCounters;

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
    pub(super) index: u32,
    pub(super) generation: u32,
}

/// Whether [`Shard::open_stream`](super::Shard::open_stream) created the stream.
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
    /// A frame a followed upstream repeats (see `StreamClock::is_replay`): dropped.
    #[error("stream {0}: frame repeats media already here")]
    Replayed(StreamId),
    /// The stream's publisher left (grace period); a new one must [`Shard::resume`](super::Shard::resume) it first.
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
    /// Cores to forward the frame to, as [`CoreMsg::frame`]`(stream_id, &entry)`.
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

/// What the server must do after [`Shard::handle`](super::Shard::handle).
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
