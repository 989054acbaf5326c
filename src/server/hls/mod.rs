//! HLS / LL-HLS / LL-DASH serving (DESIGN.md "HLS serving").
//!
//! * `streams`: the owner core packages each owned stream once (one
//!   [`Packager`](crate::protocol::hls::Packager) per stream), keeps its
//!   current [`HlsView`] and ships every new view to the cores subscribed.
//! * `replica`: other cores keep the latest view they were sent, ask for it
//!   on the first request and let it go after an idle period.
//! * `waiters`: requests answered later (blocking reloads, preload hints,
//!   in-progress DASH segments, requests waiting for a view), bounded per core;
//!   `held`: holding them (timer wheel), re-asking them on a new view,
//!   answering them at their deadline.
//! * `routes`: the HTTP side: parse, authorize, find the view or wait for the
//!   stream; `answer`: the response from a view (bytes, hold, chunked stream).
//! * `sessions`: the API's HLS session estimate from request rates;
//!   `session_access`: `[auth]` and `on_play` once per viewer session.

mod answer;
mod held;
mod replica;
mod routes;
mod session_access;
mod sessions;
mod streams;
mod waiters;

use std::collections::HashMap;
use std::sync::Arc;

use crate::protocol::hls::HlsView;
use crate::stream::StreamId;

pub use routes::HlsRequest;
pub use waiters::Waiters;

/// What cores send each other about HLS (always on the control lane). A view
/// supersedes the one before; at most one is in flight per stream and core
/// (the next waits for `Applied`), so a slow core never piles them up.
#[derive(Debug)]
pub enum HlsMsg {
    /// Another core → owner: send me this stream's views.
    Subscribe {
        /// The stream.
        stream_id: StreamId,
        /// The asking core.
        from_core: usize,
    },
    /// Another core → owner: no HLS request here for a while; stop.
    Unsubscribe {
        /// The stream.
        stream_id: StreamId,
        /// The core.
        from_core: usize,
    },
    /// Owner → subscribed cores: the stream's packaged output now.
    View {
        /// The stream.
        stream_id: StreamId,
        /// The snapshot (shared handles, no media copied).
        view: Arc<HlsView>,
    },
    /// Subscribed core → owner: a view was applied (the next may be sent;
    /// at most one view per stream is in flight to a core).
    Applied {
        /// The stream.
        stream_id: StreamId,
        /// The core that applied it.
        from_core: usize,
    },
    /// Owner → subscribed cores: no packager for this stream (any more).
    Gone {
        /// The stream.
        stream_id: StreamId,
    },
}

/// One core's HLS state.
pub struct HlsCore {
    /// Packagers of the streams this core owns.
    pub(crate) owned: HashMap<StreamId, streams::Owned>,
    /// Views of streams owned by other cores.
    pub(crate) replicas: HashMap<StreamId, replica::Replica>,
    /// Requests answered later.
    pub(crate) waiters: Waiters,
    /// Requests held for a publisher or an edge pull, by connection slot.
    pub(crate) held: HashMap<u32, HlsRequest>,
    /// Session estimates from request rates (the API's `hls` viewers).
    pub(crate) sessions: sessions::Sessions,
    /// Scratch for packager events.
    pub(crate) events: Vec<crate::protocol::hls::PackagerEvent>,
}

impl HlsCore {
    /// Nothing packaged or held; at most `max_waiters` waiting requests.
    pub fn new(max_waiters: usize) -> HlsCore {
        HlsCore {
            owned: HashMap::new(),
            replicas: HashMap::new(),
            waiters: Waiters::new(max_waiters),
            held: HashMap::new(),
            sessions: sessions::Sessions::default(),
            events: Vec::new(),
        }
    }
}
