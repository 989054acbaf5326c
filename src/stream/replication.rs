//! Cross-core fan-out as plain data (DESIGN.md "Cross-core fan-out").
//!
//! A stream lives on its owner core. Another core with viewers for it keeps a
//! replica: it sends [`CoreMsg::Subscribe`], the owner answers with a
//! [`CoreMsg::Snapshot`] (start context + GOP cache) and then forwards every
//! frame once per subscribed core. The runtime moves these messages over its
//! SPSC rings; [`crate::stream::Shard`] produces and applies them, keeping the
//! subscriber set of each owned stream in a [`CoreSet`].

use crate::protocol::Frame;

use super::ring::RingEntry;

use super::directory::StreamId;
use super::key::StreamKey;

/// Most cores a [`CoreSet`] can name.
pub const MAX_CORES: usize = 64;

/// A message from one core's shard to another's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreMsg {
    /// Replica → owner: start sending me this stream.
    Subscribe {
        /// The stream, as found in the directory.
        stream_id: StreamId,
        /// Its key, so the owner can check the id still means that key.
        key: StreamKey,
        /// The subscribing core.
        from_core: usize,
    },
    /// Replica → owner: my last viewer left; stop sending.
    Unsubscribe {
        /// The stream.
        stream_id: StreamId,
        /// The unsubscribing core.
        from_core: usize,
    },
    /// Owner → replica, answering `Subscribe`: start context and GOP cache,
    /// in order, with stream-time timestamps.
    Snapshot {
        /// The stream.
        stream_id: StreamId,
        /// The frames to seed the replica ring with.
        frames: Vec<Frame>,
        /// The stream has had video (so replica viewers wait for a keyframe
        /// even if `frames` holds none).
        has_video: bool,
        /// Sequence number of the first `Frame` that follows the snapshot.
        next_seq: u64,
    },
    /// Owner → replica: a new frame (stream-time timestamp). The only message
    /// the mesh may drop (see [`CoreMsg::is_media`]).
    Frame {
        /// The stream.
        stream_id: StreamId,
        /// Per-stream sequence number (the owner ring's): a replica that sees
        /// it jump knows it missed frames and resyncs at the next keyframe.
        seq: u64,
        /// When the frame reached the server, µs on the clock all cores share,
        /// so the replica's latency histogram includes the hop.
        arrived_us: u64,
        /// The frame.
        frame: Frame,
        /// For a keyframe: the metadata and sequence headers current when it
        /// arrived (empty otherwise), so a replica resyncing at it after a gap
        /// has them even if the frames that carried them were lost.
        start: Vec<Frame>,
    },
    /// Owner → replica: the stream ended (or was never there).
    StreamEnd {
        /// The stream.
        stream_id: StreamId,
    },
    /// New owner → old owner: the key was taken over by a publisher on
    /// another core; end this stream and kick its publisher.
    Kick {
        /// The old owner's stream.
        stream_id: StreamId,
        /// The claim generation that was replaced.
        generation: u64,
    },
}

impl CoreMsg {
    /// The `Frame` message forwarding an owner's ring entry.
    pub fn frame(stream_id: StreamId, entry: &RingEntry) -> CoreMsg {
        let start = entry
            .start_context()
            .map(|c| c.entries().map(|e| e.frame().clone()).collect())
            .unwrap_or_default();
        CoreMsg::Frame {
            stream_id,
            seq: entry.seq(),
            arrived_us: entry.arrived_us(),
            frame: entry.frame().clone(),
            start,
        }
    }

    /// True for media (`Frame`), which the mesh may drop when a core falls
    /// hopelessly behind; every other message is control and must arrive.
    pub fn is_media(&self) -> bool {
        matches!(self, CoreMsg::Frame { .. })
    }
}

/// A set of core indices below [`MAX_CORES`], one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreSet(u64);

impl CoreSet {
    /// The empty set.
    pub const EMPTY: CoreSet = CoreSet(0);

    /// Adds `core`; false if it is out of range or already present.
    pub fn insert(&mut self, core: usize) -> bool {
        let Some(bit) = Self::bit(core) else {
            return false;
        };
        let added = self.0 & bit == 0;
        self.0 |= bit;
        added
    }

    /// Removes `core`; false if it was not present.
    pub fn remove(&mut self, core: usize) -> bool {
        let Some(bit) = Self::bit(core) else {
            return false;
        };
        let had = self.0 & bit != 0;
        self.0 &= !bit;
        had
    }

    /// True if `core` is present.
    pub fn contains(&self, core: usize) -> bool {
        Self::bit(core).is_some_and(|bit| self.0 & bit != 0)
    }

    /// True if no core is present.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Number of cores present.
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// The cores present, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> {
        let bits = self.0;
        (0..MAX_CORES).filter(move |c| bits & (1u64 << c) != 0)
    }

    fn bit(core: usize) -> Option<u64> {
        (core < MAX_CORES).then(|| 1u64 << core)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_set_basics() {
        let mut s = CoreSet::EMPTY;
        assert!(s.insert(3));
        assert!(!s.insert(3));
        assert!(s.insert(0));
        assert!(!s.insert(MAX_CORES), "out of range is refused, not a panic");
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 3]);
        assert_eq!(s.len(), 2);
        assert!(s.remove(3));
        assert!(!s.remove(3));
        assert!(s.contains(0) && !s.contains(3) && !s.contains(1000));
    }
}
