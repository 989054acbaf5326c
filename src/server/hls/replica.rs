//! Views of streams owned by other cores: the first HLS request for such a
//! stream subscribes (and waits for the view); every later view replaces the
//! one before; after [`IDLE_UNSUBSCRIBE_MS`] without an HLS request the core
//! unsubscribes and forgets the view.

use std::sync::Arc;

use super::HlsMsg;
use crate::protocol::hls::HlsView;
use crate::server::worker::CoreState;
use crate::server::MeshMsg;
use crate::stream::StreamId;

/// A core with no HLS request for a stream this long lets its view go.
pub(crate) const IDLE_UNSUBSCRIBE_MS: u64 = 30_000;

/// This core's copy of another core's stream.
pub(crate) struct Replica {
    owner: usize,
    /// The latest view (None until the first arrives).
    pub(crate) view: Option<Arc<HlsView>>,
    last_request_ms: u64,
}

impl CoreState {
    /// The view to answer a request for `stream_id` (owned by `owner`) from,
    /// if this core has one; otherwise the subscription is sent (once) and
    /// the request must wait for the view.
    pub(crate) fn hls_view(&mut self, stream_id: StreamId, owner: usize) -> Option<Arc<HlsView>> {
        let now = self.now_ms();
        if owner == self.core {
            return self.hls.owned.get_mut(&stream_id).map(|o| {
                o.last_request_ms = Some(now);
                o.view()
            });
        }
        if let Some(r) = self.hls.replicas.get_mut(&stream_id) {
            r.last_request_ms = now;
            return r.view.clone();
        }
        self.hls.replicas.insert(
            stream_id,
            Replica {
                owner,
                view: None,
                last_request_ms: now,
            },
        );
        self.metrics.hls.copies.set(self.hls.replicas.len() as i64);
        let msg = HlsMsg::Subscribe {
            stream_id,
            from_core: self.core,
        };
        self.mesh.send(&self.metrics, owner, MeshMsg::Hls(msg));
        None
    }

    /// The view of `stream_id` this core answers from now, if any (owned or copied).
    pub(crate) fn hls_current_view(&mut self, stream_id: StreamId) -> Option<Arc<HlsView>> {
        if let Some(o) = self.hls.owned.get_mut(&stream_id) {
            return Some(o.view());
        }
        self.hls
            .replicas
            .get(&stream_id)
            .and_then(|r| r.view.clone())
    }

    /// An HLS message from another core.
    pub fn on_hls_msg(&mut self, msg: HlsMsg) {
        match msg {
            HlsMsg::Subscribe {
                stream_id,
                from_core,
            } => self.hls_subscription(stream_id, from_core, true),
            HlsMsg::Unsubscribe {
                stream_id,
                from_core,
            } => self.hls_subscription(stream_id, from_core, false),
            HlsMsg::View { stream_id, view } => {
                let owner = self.hls.replicas.get(&stream_id).map(|r| r.owner);
                if let Some(r) = self.hls.replicas.get_mut(&stream_id) {
                    r.view = Some(view);
                    self.hls_wake(stream_id);
                }
                if let Some(owner) = owner {
                    let msg = HlsMsg::Applied {
                        stream_id,
                        from_core: self.core,
                    };
                    self.mesh.send(&self.metrics, owner, MeshMsg::Hls(msg));
                }
            }
            HlsMsg::Applied {
                stream_id,
                from_core,
            } => self.hls_view_applied(stream_id, from_core),
            HlsMsg::Gone { stream_id } => {
                if self.hls.replicas.remove(&stream_id).is_some() {
                    self.metrics.hls.copies.set(self.hls.replicas.len() as i64);
                    self.hls_wake(stream_id);
                }
            }
        }
    }

    /// Unsubscribes from streams with no HLS request for a while.
    pub(crate) fn hls_drop_idle(&mut self, now_ms: u64) {
        let idle: Vec<(StreamId, usize)> = self
            .hls
            .replicas
            .iter()
            .filter(|(_, r)| now_ms.saturating_sub(r.last_request_ms) >= IDLE_UNSUBSCRIBE_MS)
            .map(|(id, r)| (*id, r.owner))
            .collect();
        for (stream_id, owner) in idle {
            self.hls.replicas.remove(&stream_id);
            self.metrics.hls.copies.set(self.hls.replicas.len() as i64);
            let msg = HlsMsg::Unsubscribe {
                stream_id,
                from_core: self.core,
            };
            self.mesh.send(&self.metrics, owner, MeshMsg::Hls(msg));
            // Waiters for it (if any) are answered from nothing now.
            self.hls_wake(stream_id);
        }
    }
}
