//! RTMP publishing on this core: `publish` (checks, hooks, the directory
//! claim, ingest), the publisher's frames, and its end.

use super::Publishing;
use crate::auth::hooks::HookAction;
use crate::auth::{Action, Refusal};
use crate::metrics::{CloseReason, IngestSource, RefuseReason};
use crate::protocol::flv::config::parse_video_sequence_header;
use crate::protocol::rtmp::session::server::PublishRejection;
use crate::protocol::{Frame, FrameKind};
use crate::server::access::Access;
use crate::server::conn::Proto;
use crate::server::failures::{claim_refusal, shard_refusal};
use crate::server::hooks::Resume;
use crate::server::send_queue::WakeKind;
use crate::server::worker::CoreState;
use crate::server::MeshMsg;
use crate::stream::{CoreMsg, PublishPolicy, Role, StreamId, StreamKey};

impl CoreState {
    pub(super) fn reject_publish(
        &mut self,
        slot: u32,
        msg_stream: u32,
        why: PublishRejection,
        text: &str,
    ) {
        if let Some(rc) = self.session(slot) {
            let _ = rc
                .session
                .reject_publish(msg_stream, why, text, &mut rc.out);
        }
        if let Some(conn) = self.conns.at(slot) {
            conn.close_after_flush = true;
            conn.close_reason = CloseReason::ProtocolError;
        }
    }

    pub(super) fn on_publish(
        &mut self,
        slot: u32,
        msg_stream: u32,
        app: &str,
        name: &str,
        query: Option<&str>,
    ) {
        if self.session(slot).is_some_and(|rc| rc.publishing.is_some()) {
            self.reject_publish(
                slot,
                msg_stream,
                PublishRejection::BadName,
                "already publishing",
            );
            return;
        }
        if let Err(e) = StreamKey::new(app, name) {
            self.reject_publish(slot, msg_stream, PublishRejection::BadName, &e.to_string());
            return;
        }
        let resume = || Resume::RtmpPublish {
            msg_stream,
            app: app.to_owned(),
            name: name.to_owned(),
        };
        match self.authorize(slot, Action::Publish, app, name, "", query, resume) {
            Access::Granted => {}
            // The session buffers input until the hook answers.
            Access::Held => return,
            Access::Refused(why) => {
                let text = format!("unauthorized: {why}");
                self.reject_publish(slot, msg_stream, PublishRejection::Unauthorized, &text);
                return;
            }
        }
        self.publish_authorized(slot, msg_stream, app, name);
    }

    /// Refuses a publish held for its hook, then closes once the refusal is sent.
    pub(in crate::server) fn refuse_rtmp_publish_unauthorized(
        &mut self,
        slot: u32,
        msg_stream: u32,
        why: Refusal,
    ) {
        let text = format!("unauthorized: {why}");
        self.reject_publish(slot, msg_stream, PublishRejection::Unauthorized, &text);
        self.flush_session_output(slot);
    }

    /// A publish `[auth]` allowed: the edge rule, the directory claim, the stream.
    pub(in crate::server) fn publish_authorized(
        &mut self,
        slot: u32,
        msg_stream: u32,
        app: &str,
        name: &str,
    ) {
        let now = self.now_ms();
        let Ok(key) = StreamKey::new(app, name) else {
            return;
        };
        if self.edge_enabled() && !self.shared.config.edge.allow_publish {
            self.metrics
                .connections_refused
                .inc(RefuseReason::PublishDisabled);
            tracing::info!(
                core = self.core,
                app,
                name,
                "publish refused: edge.allow_publish is false"
            );
            self.reject_publish(
                slot,
                msg_stream,
                PublishRejection::Unauthorized,
                "publishing is disabled on this edge (edge.allow_publish = false)",
            );
            return;
        }
        let policy = PublishPolicy {
            takeover: self.shared.config.stream.takeover,
        };
        let granted = match self.shared.directory.claim(&key, self.core, policy) {
            Ok(granted) => granted,
            Err(e) => {
                self.metrics.connections_refused.inc(claim_refusal(&e));
                tracing::info!(core = self.core, %key, error = %e, "publish refused");
                self.reject_publish(slot, msg_stream, PublishRejection::BadName, &e.to_string());
                return;
            }
        };
        let claim = granted.claim;
        let opened = match granted.previous {
            Some(prev) if prev.stream_id == claim.stream_id => {
                // Same core: a takeover or a return within the grace period keeps
                // the stream and its viewers.
                if let Some(old) = self.publishers.remove(&prev.stream_id) {
                    if old != slot {
                        if let Some(Proto::Rtmp(rc)) = self.conns.at(old).map(|c| &mut c.proto) {
                            rc.publishing = None;
                        }
                        self.conns.close_later(old, CloseReason::Kicked);
                    }
                }
                self.shard.resume(claim.stream_id, claim.generation)
            }
            previous => {
                if let Some(prev) = previous {
                    let kick = CoreMsg::Kick {
                        stream_id: prev.stream_id,
                        generation: prev.generation,
                    };
                    if prev.owner_core == self.core {
                        self.on_stream_msg(kick);
                    } else {
                        self.mesh
                            .send(&self.metrics, prev.owner_core, MeshMsg::Stream(kick));
                    }
                }
                self.shard
                    .open_stream(
                        key.clone(),
                        claim.stream_id,
                        Role::Owner {
                            generation: claim.generation,
                        },
                        now,
                    )
                    .map(|_| ())
            }
        };
        if let Err(e) = opened {
            self.metrics.connections_refused.inc(shard_refusal(&e));
            tracing::warn!(core = self.core, %key, error = %e, "cannot open stream");
            self.shared.directory.release(&key, &claim);
            self.reject_publish(slot, msg_stream, PublishRejection::Denied, &e.to_string());
            return;
        }
        self.publishers.insert(claim.stream_id, slot);
        self.metrics.publishers.inc();
        self.metrics.streams.set(self.shard.stream_count() as i64);
        let peer = self.conns.at(slot).and_then(|c| c.peer);
        self.report.publisher_started(claim.stream_id, peer);
        tracing::info!(core = self.core, %key, stream_id = %claim.stream_id, ?peer, "publishing");
        let now_ms = self.now_ms();
        self.relays.start(&key, now_ms);
        if self.hooks.configured(HookAction::Unpublish) {
            let who = self.hook_subject(slot, app, name, None);
            if let Some(conn) = self.conns.at(slot) {
                conn.hook_unpublish = Some(Box::new(who));
            }
        }
        if let Some(rc) = self.session(slot) {
            let _ = rc.session.accept_publish(msg_stream, &mut rc.out);
            rc.publishing = Some(Publishing {
                msg_stream,
                key,
                claim,
            });
        }
    }

    pub(super) fn on_publisher_frame(&mut self, slot: u32, frame: Frame, now: u64) {
        let Some(stream_id) = self
            .session(slot)
            .and_then(|rc| rc.publishing.as_ref())
            .map(|p| p.claim.stream_id)
        else {
            return;
        };
        self.metrics.frames_received.inc(IngestSource::Publisher);
        self.push_owned_frame(stream_id, frame, now);
    }

    /// Puts a frame of a stream owned here into the shard, wakes its viewers and
    /// forwards it to the cores replicating it.
    pub fn push_owned_frame(&mut self, stream_id: StreamId, frame: Frame, now: u64) {
        if frame.kind == FrameKind::Video && frame.sequence_header {
            if let Ok(config) = parse_video_sequence_header(&frame.payload) {
                let (width, height) = config.dimensions();
                self.shard.set_video_size(stream_id, width, height);
            }
        }
        let arrived_us = self.now_us();
        let kind = WakeKind::of(&frame);
        // The parts are borrowed separately, so the shard's list of viewers to
        // wake is read in place (no copy per frame).
        let pushed = match self.shard.push_frame_at(stream_id, frame, now, arrived_us) {
            Ok(pushed) => pushed,
            Err(e) => {
                tracing::debug!(core = self.core, error = %e, "frame refused");
                return;
            }
        };
        self.sends.wake_viewers(
            &mut self.conns,
            &self.viewer_conns,
            stream_id,
            pushed.wake,
            kind,
        );
        let entry = pushed.entry;
        if !pushed.replicate_to.is_empty() {
            let msg = CoreMsg::frame(stream_id, &entry);
            for core in pushed.replicate_to.iter() {
                self.mesh
                    .send(&self.metrics, core, MeshMsg::Stream(msg.clone()));
            }
        }
        self.hls_push(stream_id, &entry);
    }

    /// Ends the publishing on `slot` if it is on message stream `msg_stream`: an
    /// event about another stream of the same connection (one it plays) leaves it.
    pub(super) fn end_publishing_on(&mut self, slot: u32, msg_stream: u32, now: u64) {
        let on_it = self
            .session(slot)
            .and_then(|rc| rc.publishing.as_ref())
            .is_some_and(|p| p.msg_stream == msg_stream);
        if on_it {
            self.end_publishing(slot, now);
        }
    }

    /// The publisher on `slot` (if any) stopped: its stream ends, or waits for a
    /// new publisher during the grace period.
    pub fn end_publishing(&mut self, slot: u32, now: u64) {
        let Some(publishing) = self.session(slot).and_then(|rc| rc.publishing.take()) else {
            return;
        };
        if let Some(who) = self.conns.at(slot).and_then(|c| c.hook_unpublish.take()) {
            self.notify_hook(HookAction::Unpublish, &who);
        }
        let Publishing { key, claim, .. } = publishing;
        if self.publishers.get(&claim.stream_id) == Some(&slot) {
            self.publishers.remove(&claim.stream_id);
        }
        self.metrics.publishers.dec();
        self.report.publisher_stopped(claim.stream_id);
        tracing::info!(core = self.core, %key, "publisher left");
        self.relays.stop(&key, &mut self.conns);
        let grace = self.shared.config.stream.publisher_grace.as_millis() as u64;
        self.shared.directory.publisher_left(&key, &claim);
        if let Some(ended) =
            self.shard
                .publisher_left(claim.stream_id, claim.generation, now, grace)
        {
            self.stream_ended(ended);
        }
    }
}
