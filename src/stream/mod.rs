//! Streams: the registry of live streams, per-core GOP rings, viewer cursors with
//! slow-viewer policy, and timestamp normalisation. It routes frames and knows
//! nothing of sockets or wire formats.
//!
//! How the server drives it (one [`Shard`] per core, one shared [`Directory`]):
//!
//! * **Publish**: validate a [`StreamKey`], [`Directory::claim`] it. If the grant's
//!   `previous` claim had the same stream id (same core: takeover or grace resume),
//!   kick the old publisher and [`Shard::resume`]; if it was on another core, send
//!   it [`CoreMsg::Kick`]; else [`Shard::open_stream`] with [`Role::Owner`]. Each
//!   frame goes to [`Shard::push_frame`]: copy the returned `wake` ids into your
//!   own reusable buffer (the slice borrows the shard), wake those viewers, and
//!   forward [`CoreMsg::frame`] to the `replicate_to` cores (the only message the
//!   mesh may drop: [`CoreMsg::is_media`]). When the publisher leaves,
//!   [`Directory::publisher_left`] + [`Shard::publisher_left`] (grace), and
//!   [`Shard::tick`] ends expired streams (then [`Directory::release`] and send
//!   `StreamEnd` to `notify`).
//! * **Play**: [`Directory::lookup`]; on another core, [`Shard::open_stream`] with
//!   [`Role::Replica`] and, if [`Opened::New`], send [`Shard::subscribe_msg`].
//!   [`Shard::add_viewer`], then call [`Shard::next_batch`] whenever the viewer
//!   can send (right away, after each completed send, and when woken). Keep each
//!   [`OutFrame`] until its send completes. On `Close`/`Finished` or disconnect,
//!   [`Shard::remove_viewer`] (and send its `unsubscribe` message if any).
//! * **Cross-core**: pass every received [`CoreMsg`] to [`Shard::handle`].
//! * **Housekeeping**: [`Shard::tick`] every loop turn (O(1) when nothing is
//!   due); [`Shard::sweep_slow`] about once a second to close viewers whose
//!   sockets are stuck (they never ask for a batch, so nothing else notices).
//!
//! Encodings: each [`RingEntry`] caches up to [`ring::ENCODING_SLOTS`] per-format
//! serialisations ([`RingEntry::encoding`]); the server assigns the slots.
//!
//! Time is always passed in as `now_ms` (any monotonic millisecond clock).
//!
//! Memory: a viewer is a cursor (constant size whatever its lag). A ring holds
//! the GOP cache plus whatever its slowest viewer still needs, capped by
//! [`RingLimits`] (frames, bytes, age); streams with no viewers on a core keep
//! only the GOP cache there.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod directory;
pub mod key;
pub mod replication;
pub mod ring;
pub mod shard;
pub mod stats;
pub mod timestamps;
pub mod viewer;

pub use directory::{Claim, Directory, DirectoryError, Granted, Listing, PublishPolicy, StreamId};
pub use key::{KeyError, StreamKey};
pub use replication::{CoreMsg, CoreSet};
pub use ring::{EncodingSlot, RingEntry, RingLimits, StartContext};
pub use shard::{
    EndedStream, Handled, Opened, Pushed, RemovedViewer, Role, Shard, ShardConfig, ShardError,
    ViewerId,
};
pub use stats::{ShardCounters, StreamStats};
pub use timestamps::{StreamClock, TimelineMode, TimestampPolicy, ViewerTimeline};
pub use viewer::{BatchStatus, CloseReason, OutFrame, ViewerCounters, ViewerLimits, ViewerOptions};
