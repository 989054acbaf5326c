//! The cross-core mesh: two bounded SPSC rings (lanes) per ordered pair of
//! cores, and a wake-up per core so a sleeping core notices new items.
//!
//! # Lanes
//!
//! Control items (subscriptions, snapshots, stream ends, kicks, edge decisions)
//! must never be lost; media items may be, when a peer falls hopelessly behind.
//! So each pair has a control ring and a media ring, each with a backlog behind
//! it on the sending core: the control backlog is never cut, the media backlog
//! is bounded and `send` refuses (drops) past it. Every item entering either
//! ring takes the pair's next stamp, and the receiver hands items out in stamp
//! order, so both lanes together behave as one FIFO per pair: a snapshot is
//! applied before the frames sent after it, a stream end after the frames sent
//! before it. The only reordering is on the sending core: a control item may
//! overtake media still in the media backlog (that is the point of the lane),
//! while media waits for any backed-up control item to go first.
//!
//! # Why an eventfd, not `IORING_OP_MSG_RING`
//!
//! Each core arms a read of its own eventfd on its reactor
//! ([`Reactor::read_eventfd`](super::Reactor::read_eventfd)); senders write it.
//! A per-target `notified` flag (set by the first sender, cleared by the target
//! right before it drains) means a write happens only when the target may be
//! asleep and has not been told yet: a busy core gets no wake-ups at all, and a
//! loop turn sends at most one per target core, however many items it queued.
//! So the syscall cost MSG_RING would save is paid rarely, and the eventfd keeps
//! the mesh independent of the reactors: it is built before the core threads
//! exist (rings must be created on their own thread for `SINGLE_ISSUER`), needs
//! no ring fds exchanged, and works the same with any ring setup.
//!
//! # Files
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the shapes and errors ([`Lane`], [`MeshConfig`], [`Refused`], [`MeshError`]) and building a mesh ([`Mesh::new`]) |
//! | `link.rs` | [`CoreLink`], one core's end: send with per-lane backlogs, drain, wake-ups |
//! | `pair.rs` | one ordered core pair's two lanes: stamping on the sending core, replay in stamp order on the receiving one |
//! | `waker.rs` | a core's eventfd wake-up and its `notified` flag |

mod link;
mod pair;
mod waker;

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use thiserror::Error;

use super::spsc::{self, SpscError};

pub use link::{CoreLink, DRAIN_BATCH};

use pair::{Inbound, Outbound};
use waker::Waker;

/// Most cores a mesh connects (n² rings).
pub const MAX_CORES: usize = 256;

/// Why a mesh could not be built.
#[derive(Debug, Error)]
pub enum MeshError {
    /// Core count outside `1..=MAX_CORES`.
    #[error("mesh of {cores} cores; limit is 1..={limit}")]
    TooManyCores {
        /// Requested cores.
        cores: usize,
        /// [`MAX_CORES`].
        limit: usize,
    },
    /// Bad ring capacity.
    #[error(transparent)]
    Ring(#[from] SpscError),
    /// The eventfd could not be created.
    #[error("eventfd: {0}")]
    EventFd(#[from] io::Error),
}

/// Which queue of a core pair an item takes (DESIGN.md "Cross-core fan-out").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Never dropped: a full control ring backs up into an unbounded per-target
    /// queue (its length is reported by [`CoreLink::backlog`] so the caller can
    /// push back on whatever generates control traffic).
    Control,
    /// May be dropped: a full media ring backs up into a per-target queue of at
    /// most [`MeshConfig::media_backlog`] items, past which `send` refuses.
    Media,
}

/// Sizes of a mesh's queues, per ordered core pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeshConfig {
    /// Media ring capacity, items (a power of two).
    pub media_ring: usize,
    /// Control ring capacity, items (a power of two).
    pub control_ring: usize,
    /// Most media items backed up behind a full media ring.
    pub media_backlog: usize,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            media_ring: 8192,
            control_ring: 1024,
            media_backlog: 1 << 16,
        }
    }
}

/// Why [`CoreLink::send`] handed an item back.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused<T> {
    /// No such peer: `to` is this core or out of range.
    NoRoute(T),
    /// A media item found its ring and its backlog full: it is dropped.
    Full(T),
}

/// Builds the mesh.
pub struct Mesh;

impl Mesh {
    /// Creates `n` links, one per core, with queues sized by `config`.
    /// Give link `i` to core `i`. (Named `new` because the mesh *is* its links.)
    #[allow(clippy::new_ret_no_self)]
    pub fn new<T: Send>(n: usize, config: MeshConfig) -> Result<Vec<CoreLink<T>>, MeshError> {
        if n == 0 || n > MAX_CORES {
            return Err(MeshError::TooManyCores {
                cores: n,
                limit: MAX_CORES,
            });
        }
        let wakers: Arc<[Waker]> = (0..n)
            .map(|_| Waker::new())
            .collect::<io::Result<Vec<_>>>()?
            .into();
        // pairs[from][to]
        let mut outbound: Vec<Vec<Option<Outbound<T>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut inbound: Vec<Vec<Option<Inbound<T>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        for from in 0..n {
            for to in 0..n {
                if from == to {
                    continue;
                }
                let (control_tx, control_rx) = spsc::channel(config.control_ring)?;
                let (media_tx, media_rx) = spsc::channel(config.media_ring)?;
                if let Some(slot) = outbound.get_mut(from).and_then(|row| row.get_mut(to)) {
                    *slot = Some(Outbound {
                        control: control_tx,
                        media: media_tx,
                        control_backlog: VecDeque::new(),
                        media_backlog: VecDeque::new(),
                        next_stamp: 0,
                        dirty: false,
                    });
                }
                if let Some(slot) = inbound.get_mut(to).and_then(|row| row.get_mut(from)) {
                    *slot = Some(Inbound {
                        control: control_rx,
                        media: media_rx,
                        next_stamp: 0,
                    });
                }
            }
        }
        Ok(outbound
            .into_iter()
            .zip(inbound)
            .enumerate()
            .map(|(core, (outbound, inbound))| CoreLink {
                core,
                outbound,
                inbound,
                wakers: Arc::clone(&wakers),
                media_backlog_cap: config.media_backlog,
                wakes_sent: 0,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn sized(
        media_ring: usize,
        control_ring: usize,
        media_backlog: usize,
    ) -> MeshConfig {
        MeshConfig {
            media_ring,
            control_ring,
            media_backlog,
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(matches!(
            Mesh::new::<u8>(0, MeshConfig::default()),
            Err(MeshError::TooManyCores { .. })
        ));
        assert!(matches!(
            Mesh::new::<u8>(2, sized(3, 4, 0)),
            Err(MeshError::Ring(_))
        ));
        assert!(matches!(
            Mesh::new::<u8>(2, sized(4, 3, 0)),
            Err(MeshError::Ring(_))
        ));
    }
}
