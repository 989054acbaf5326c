//! One core's streams and viewers.
//!
//! The shard is single-threaded and sans-IO: the server feeds it frames and
//! the time, and asks it, per viewer, what to send next. It tells the server
//! which viewers to wake (only those that had run dry), which cores to
//! forward frames to, and which streams ended.
//!
//! # Files
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the [`Shard`] and its per-stream and per-viewer state; read-only views (stats, counts) |
//! | `types.rs` | the public vocabulary: ids, roles, config, errors, what calls return |
//! | `lifecycle.rs` | a stream's life here: opened (owner or replica), publisher gone (grace), resumed, expired, ended |
//! | `ingest.rs` | a publisher's frames into an owned stream: timestamps corrected, ring appended, parked viewers woken |
//! | `viewers.rs` | viewers: added, removed, served their next batch, swept when stuck |
//! | `cross_core.rs` | the replication side: the owner answering subscriptions, the replica applying snapshots and frames |

mod cross_core;
mod ingest;
mod lifecycle;
mod types;
mod viewers;

use crate::protocol::flv::frame::TimestampUnwrapper;
use crate::runtime::int_hash::IntHashMap;

use super::directory::StreamId;
use super::key::StreamKey;
use super::replication::CoreSet;
use super::ring::Ring;
use super::stats::{RateMeter, ShardCounters, StreamStats};
use super::timestamps::StreamClock;
use super::viewer::Viewer;

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
