//! What stream-layer messages do on this core: a stream's end, a kicked
//! publisher, and frames or snapshots that wake viewers.

use crate::metrics::CloseReason;
use crate::server::send_queue::WakeKind;
use crate::server::worker::CoreState;
use crate::server::MeshMsg;
use crate::stream::{Claim, CoreMsg, EndedStream, Role, StreamKey};

impl CoreState {
    /// A stream ended on this core: release its key if owned, wake its viewers so
    /// they finish, and tell replicas.
    pub fn stream_ended(&mut self, ended: EndedStream) {
        if let Role::Owner { .. } = ended.role {
            self.hls_stream_ended(ended.stream_id);
        }
        if let Role::Owner { generation } = ended.role {
            let claim = Claim {
                stream_id: ended.stream_id,
                owner_core: self.core,
                generation,
            };
            self.shared.directory.release(&ended.key, &claim);
        }
        self.sends
            .ready_viewers(&mut self.conns, &self.viewer_conns, &ended.wake);
        for core in ended.notify.iter() {
            self.mesh.send(
                &self.metrics,
                core,
                MeshMsg::Stream(CoreMsg::StreamEnd {
                    stream_id: ended.stream_id,
                }),
            );
        }
        self.metrics.streams.set(self.shard.stream_count() as i64);
    }

    /// Kicks the publisher of `app/name` (API `DELETE`), wherever it runs.
    pub fn kick_publisher(&mut self, app: &str, name: &str) {
        let Ok(key) = StreamKey::new(app, name) else {
            return;
        };
        let Some(listing) = self
            .shared
            .directory
            .list()
            .into_iter()
            .find(|l| l.key == key)
        else {
            return;
        };
        let kick = CoreMsg::Kick {
            stream_id: listing.claim.stream_id,
            generation: listing.claim.generation,
        };
        if listing.claim.owner_core == self.core {
            self.on_stream_msg(kick);
        } else {
            self.mesh.send(
                &self.metrics,
                listing.claim.owner_core,
                MeshMsg::Stream(kick),
            );
        }
    }

    /// Applies a stream-layer message (from another core, or addressed to this one).
    pub fn on_stream_msg(&mut self, msg: CoreMsg) {
        let now = self.now_ms();
        enum Next {
            Nothing,
            Reply(usize, CoreMsg),
            Wake(Vec<crate::stream::ViewerId>),
            Ended(EndedStream),
            Kick(EndedStream),
        }
        let gaps_before = self.shard.counters().mesh_gap;
        // Which stream's viewers a `Wake` is for, and how soon they send.
        let (stream, kind) = match &msg {
            CoreMsg::Frame {
                stream_id, frame, ..
            } => (Some(*stream_id), WakeKind::of(frame)),
            CoreMsg::Snapshot { stream_id, .. } => (Some(*stream_id), WakeKind::Now),
            _ => (None, WakeKind::Now),
        };
        let next = match self.shard.handle(msg, now) {
            crate::stream::Handled::Nothing => Next::Nothing,
            crate::stream::Handled::Reply { to_core, msg } => Next::Reply(to_core, msg),
            crate::stream::Handled::Wake(ids) => Next::Wake(ids.to_vec()),
            crate::stream::Handled::Ended(ended) => Next::Ended(ended),
            crate::stream::Handled::Kick(ended) => Next::Kick(ended),
        };
        let gap = self.shard.counters().mesh_gap - gaps_before;
        if gap > 0 {
            self.metrics
                .frames_dropped
                .add(crate::metrics::DropReason::MeshGap, gap);
        }
        match next {
            Next::Nothing => {}
            Next::Reply(to, msg) => self.mesh.send(&self.metrics, to, MeshMsg::Stream(msg)),
            Next::Wake(ids) => match stream {
                Some(stream) => {
                    self.sends
                        .wake_viewers(&mut self.conns, &self.viewer_conns, stream, &ids, kind)
                }
                None => self
                    .sends
                    .ready_viewers(&mut self.conns, &self.viewer_conns, &ids),
            },
            Next::Ended(ended) => self.stream_ended(ended),
            Next::Kick(ended) => {
                if let Some(slot) = self.publishers.remove(&ended.stream_id) {
                    if let Some(rc) = self.session(slot) {
                        if rc.publishing.take().is_some() {
                            self.metrics.publishers.dec();
                        }
                    }
                    self.report.publisher_stopped(ended.stream_id);
                    self.conns.close_later(slot, CloseReason::Kicked);
                    self.relays.stop(&ended.key, &mut self.conns);
                }
                self.stream_ended(ended);
            }
        }
    }
}
