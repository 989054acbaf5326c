//! The owner side: one packager per stream owned by this core (a local
//! publisher or an edge pull), fed every owned frame with the stream's own
//! monotonic DTS (what the ring stores, [`RingEntry::stream_ts`]), so
//! numbering follows the stream's timeline, not a viewer's. Each packager
//! change (a new playlist version) becomes one new [`HlsView`], kept here
//! for this core's requests and sent once to every subscribed core.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::HlsMsg;
use crate::protocol::hls::{HlsView, Packager, PackagerEvent, Start};
use crate::server::worker::CoreState;
use crate::server::MeshMsg;
use crate::stream::{CoreSet, RingEntry, StreamId, StreamKey};

/// How long a finished packager is kept for a new publisher of the same key
/// (its numbers then continue after an `EXT-X-DISCONTINUITY`).
pub(crate) const LINGER_MS: u64 = 30_000;

/// One owned stream's packager and its current view.
pub(crate) struct Owned {
    pub(crate) key: StreamKey,
    packager: Packager,
    view: Arc<HlsView>,
    /// The packager's render count `view` was taken at.
    version: u64,
    subscribers: CoreSet,
    /// Subscribers a view was sent to and not yet applied: at most one view
    /// per core is on the mesh at a time.
    in_flight: CoreSet,
    /// Subscribers owed the current view once their view in flight is applied.
    owed: CoreSet,
    /// When the stream ended (the packager is finished), ms.
    ended_at_ms: Option<u64>,
    /// Added to the stream's DTS: non-zero only when a new publisher's
    /// stream took over a finished packager, so its DTS never goes back.
    dts_offset: u64,
    last_dts: Option<u64>,
    /// Last HLS request answered from this view on this core (ms).
    pub(crate) last_request_ms: Option<u64>,
}

impl Owned {
    /// The packager changed since the view was taken (or it finished and
    /// the view does not say so yet).
    fn is_stale(&self) -> bool {
        let finish_pending = self.ended_at_ms.is_some() && !self.view.is_finished();
        self.packager.rendered_versions() != self.version || finish_pending
    }

    /// The current view, taken now if the packager changed since the last one.
    pub(crate) fn view(&mut self) -> Arc<HlsView> {
        if self.is_stale() {
            self.version = self.packager.rendered_versions();
            self.view = Arc::new(self.packager.view());
        }
        self.view.clone()
    }
}

/// How a new packager starts. A local publisher's stream is seen from its
/// first frame (`Publish`). A pulled stream joins the origin's stream midway:
/// the pull asks for the origin's own timestamps and starts with the origin's
/// GOP cache, so its packager starts as a joining box (`GopCache`, grid origin
/// 0, no previous keyframe known): it publishes from the first keyframe it can
/// prove starts a segment, and then numbers every segment and part as the
/// origin does.
fn packager_start(pulled: bool) -> Start {
    if pulled {
        Start::GopCache {
            prev_keyframe_dts: None,
            grid_origin_ms: 0,
        }
    } else {
        Start::Publish
    }
}

/// Wall clock in Unix ms (PROGRAM-DATE-TIME, MPD times).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl CoreState {
    /// The packager of owned stream `stream_id`, created when missing (a
    /// finished one of the same key, still lingering, is taken over with a
    /// discontinuity). None when HLS is off or the stream is not owned here.
    fn hls_owned(&mut self, stream_id: StreamId) -> Option<&mut Owned> {
        if !self.shared.config.hls.enabled {
            return None;
        }
        if !self.hls.owned.contains_key(&stream_id) {
            let stats = self.shard.stats(stream_id)?;
            if !stats.owned {
                return None;
            }
            let key = stats.key.clone();
            let lingering = self
                .hls
                .owned
                .iter()
                .find(|(_, o)| o.key == key && o.ended_at_ms.is_some())
                .map(|(id, _)| *id);
            let mut old = lingering.and_then(|id| self.hls.owned.remove(&id).map(|o| (id, o)));
            let pulled = self.edge.pulls.contains_key(&key);
            if pulled {
                // A pull started again: continuing the old packager would
                // re-base its DTS away from the origin's; a fresh joining one
                // numbers as the origin does again.
                if let Some((old_id, o)) = old.take() {
                    for core in o.subscribers.iter() {
                        let msg = HlsMsg::Gone { stream_id: old_id };
                        self.mesh.send(&self.metrics, core, MeshMsg::Hls(msg));
                    }
                }
            }
            let owned = match old {
                Some((old_id, mut old)) => {
                    // The old stream's subscribers learn it is gone; the new
                    // stream gets its own subscriptions.
                    for core in old.subscribers.iter() {
                        let msg = HlsMsg::Gone { stream_id: old_id };
                        self.mesh.send(&self.metrics, core, MeshMsg::Hls(msg));
                    }
                    old.packager.new_publisher();
                    old.ended_at_ms = None;
                    old.subscribers = CoreSet::EMPTY;
                    old.in_flight = CoreSet::EMPTY;
                    old.owed = CoreSet::EMPTY;
                    old.dts_offset = old.last_dts.map_or(0, |d| d.saturating_add(1));
                    old.last_dts = None;
                    tracing::info!(core = self.core, %key, "HLS: new publisher continues the packager");
                    old
                }
                None => {
                    let config = self.shared.config.hls.packager_config();
                    let packager = match Packager::new(
                        key.app(),
                        key.name(),
                        config,
                        packager_start(pulled),
                    ) {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::warn!(core = self.core, %key, error = %e, "HLS: no packager");
                            return None;
                        }
                    };
                    Owned {
                        key,
                        view: Arc::new(packager.view()),
                        packager,
                        version: 0,
                        subscribers: CoreSet::EMPTY,
                        in_flight: CoreSet::EMPTY,
                        owed: CoreSet::EMPTY,
                        ended_at_ms: None,
                        dts_offset: 0,
                        last_dts: None,
                        last_request_ms: None,
                    }
                }
            };
            self.hls.owned.insert(stream_id, owned);
        }
        self.hls.owned.get_mut(&stream_id)
    }

    /// Feeds one frame of an owned stream (as the ring stored it) to its packager.
    pub(crate) fn hls_push(&mut self, stream_id: StreamId, entry: &Rc<RingEntry>) {
        let started = Instant::now();
        let core = self.core;
        let mut events = std::mem::take(&mut self.hls.events);
        events.clear();
        let Some(o) = self.hls_owned(stream_id) else {
            self.hls.events = events;
            return;
        };
        if o.ended_at_ms.is_some() {
            self.hls.events = events;
            return;
        }
        if o.last_dts.is_none() && o.dts_offset > 0 {
            // First frame of a new publisher on a continued packager: its
            // timeline starts after the old one's last frame.
            o.dts_offset = o.dts_offset.saturating_sub(entry.stream_ts());
        }
        let dts = entry.stream_ts().saturating_add(o.dts_offset);
        o.last_dts = Some(dts);
        // The packager keeps its frames for the whole HLS window (seconds, and
        // forever while a publisher sits idle), far longer than the ring: a
        // slice of the payload arena would pin the 4 MiB block it lies in, with
        // every other stream's frames in it. One copy per frame per stream
        // (not per viewer) keeps what HLS holds at its own size.
        let mut frame = entry.frame().clone();
        frame.payload = bytes::Bytes::copy_from_slice(&frame.payload);
        o.packager.push(&frame, dts, unix_ms(), &mut events);
        for ev in &events {
            if let PackagerEvent::Warning(w) = ev {
                // The packager reports each kind once per stream.
                tracing::warn!(core, key = %o.key, warning = %w, "HLS packaging");
            }
        }
        self.hls.events = events;
        self.metrics.hls.add_packager_time(started.elapsed());
        self.hls_publish(stream_id);
    }

    /// After a packager change: when another core or a waiter here wants
    /// it, a new view is taken at once, sent to subscribers and the waiters
    /// re-asked; otherwise it is taken on the next request ([`Owned::view`]),
    /// so a stream nobody watches over HLS costs no snapshots.
    fn hls_publish(&mut self, stream_id: StreamId) {
        let wanted = self.hls.waiters.has_stream(stream_id);
        let Some(o) = self.hls.owned.get_mut(&stream_id) else {
            return;
        };
        if !o.is_stale() || (o.subscribers.is_empty() && !wanted) {
            return;
        }
        let subscribers = o.subscribers;
        for core in subscribers.iter() {
            self.hls_send_view(stream_id, core);
        }
        self.hls_wake(stream_id);
    }

    /// Sends the current view to subscriber `core`, unless one is still in
    /// flight there: then it is owed, and sent when that one is applied
    /// (the latest at that time). So views on the mesh are bounded: one per
    /// stream per core, however slow that core is.
    fn hls_send_view(&mut self, stream_id: StreamId, core: usize) {
        let Some(o) = self.hls.owned.get_mut(&stream_id) else {
            return;
        };
        if o.in_flight.contains(core) {
            o.owed.insert(core);
            return;
        }
        o.in_flight.insert(core);
        let msg = HlsMsg::View {
            stream_id,
            view: o.view(),
        };
        self.mesh.send(&self.metrics, core, MeshMsg::Hls(msg));
    }

    /// Core `from_core` applied a view of `stream_id`: the next may go.
    pub(crate) fn hls_view_applied(&mut self, stream_id: StreamId, from_core: usize) {
        let Some(o) = self.hls.owned.get_mut(&stream_id) else {
            return;
        };
        o.in_flight.remove(from_core);
        if o.owed.remove(from_core) && o.subscribers.contains(from_core) {
            self.hls_send_view(stream_id, from_core);
        }
    }

    /// An owned stream ended: its packager closes the open part and segment
    /// and adds `EXT-X-ENDLIST`; kept [`LINGER_MS`] for a returning publisher.
    pub(crate) fn hls_stream_ended(&mut self, stream_id: StreamId) {
        let now = self.now_ms();
        let mut events = std::mem::take(&mut self.hls.events);
        events.clear();
        if let Some(o) = self.hls.owned.get_mut(&stream_id) {
            if o.ended_at_ms.is_none() {
                o.packager.finish(unix_ms(), &mut events);
                o.ended_at_ms = Some(now);
            }
        }
        self.hls.events = events;
        self.hls_publish(stream_id);
    }

    /// A core asks for an owned stream's views (or stops asking).
    pub(crate) fn hls_subscription(&mut self, stream_id: StreamId, from_core: usize, on: bool) {
        if !on {
            if let Some(o) = self.hls.owned.get_mut(&stream_id) {
                o.subscribers.remove(from_core);
                o.owed.remove(from_core);
                // It will not answer a view in flight now.
                o.in_flight.remove(from_core);
            }
            return;
        }
        match self.hls_owned(stream_id) {
            Some(o) => {
                // A (re)subscription starts afresh: it gets the view now.
                o.subscribers.insert(from_core);
                o.in_flight.remove(from_core);
                o.owed.remove(from_core);
                self.hls_send_view(stream_id, from_core);
            }
            None => {
                let msg = HlsMsg::Gone { stream_id };
                self.mesh.send(&self.metrics, from_core, MeshMsg::Hls(msg));
            }
        }
    }

    /// HLS audience of an owned stream, for an edge pull's idle close: the
    /// cores subscribed to its views, plus this core while it answered an
    /// HLS request within the last idle period.
    pub(crate) fn hls_audience(&self, stream_id: StreamId, now_ms: u64) -> usize {
        self.hls.owned.get(&stream_id).map_or(0, |o| {
            let local = o
                .last_request_ms
                .is_some_and(|t| now_ms.saturating_sub(t) < super::replica::IDLE_UNSUBSCRIBE_MS);
            o.subscribers.len() + usize::from(local)
        })
    }

    /// Drops finished packagers past [`LINGER_MS`]; their subscribers are told.
    pub(crate) fn hls_drop_finished(&mut self, now_ms: u64) {
        let gone: Vec<(StreamId, CoreSet)> = self
            .hls
            .owned
            .iter()
            .filter(|(_, o)| {
                o.ended_at_ms
                    .is_some_and(|t| now_ms.saturating_sub(t) >= LINGER_MS)
            })
            .map(|(id, o)| (*id, o.subscribers))
            .collect();
        for (stream_id, subscribers) in gone {
            self.hls.owned.remove(&stream_id);
            for core in subscribers.iter() {
                self.mesh.send(
                    &self.metrics,
                    core,
                    MeshMsg::Hls(HlsMsg::Gone { stream_id }),
                );
            }
            self.hls_wake(stream_id);
        }
    }
}
