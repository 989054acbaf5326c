//! RTMP connections: the server session of each, and what its events do to the
//! stream layer (publish, play, frames, unpublish).

use bytes::BytesMut;
use rand::SeedableRng;

use super::access::Access;
use super::conn::{Egress, Proto};
use super::egress_rtmp::RtmpEgress;
use super::failures::{claim_refusal, play_refusal, shard_refusal};
use super::hooks::Resume;
use super::pending::WaitingPlay;
use super::send_queue::WakeKind;
use super::shared::Shared;
use super::viewer_send::PlayError;
use super::worker::CoreState;
use super::MeshMsg;
use crate::auth::hooks::HookAction;
use crate::auth::{Action, Refusal};
use crate::edge::origin::asks_source_timeline;
use crate::metrics::{CloseReason, IngestSource, RefuseReason};
use crate::protocol::flv::config::parse_video_sequence_header;
use crate::protocol::rtmp::chunk::ChunkLimits;
use crate::protocol::rtmp::session::server::{
    PlayRejection, PublishRejection, ServerEvent, ServerSession, ServerSessionConfig,
    ServerTimeouts,
};
use crate::protocol::{Frame, FrameKind};
use crate::stream::{Claim, CoreMsg, EndedStream, PublishPolicy, Role, StreamId, StreamKey};

/// A publisher's hold on its stream.
pub struct Publishing {
    /// The RTMP message stream it publishes on.
    pub msg_stream: u32,
    /// The key.
    pub key: StreamKey,
    /// Its directory claim.
    pub claim: Claim,
}

/// One RTMP connection's protocol state.
pub struct RtmpConn {
    session: ServerSession,
    out: BytesMut,
    events: Vec<ServerEvent>,
    /// Set while this connection publishes.
    pub publishing: Option<Publishing>,
    /// The message stream it plays on, while it plays.
    pub playing: Option<u32>,
    /// `connect`'s `tcUrl` and `pageUrl` (for hook calls).
    connect_urls: Option<Box<(String, String)>>,
}

impl RtmpConn {
    /// A fresh connection, before the handshake.
    pub fn new(shared: &Shared, now_ms: u64) -> Self {
        let limits = &shared.config.limits;
        let config = ServerSessionConfig {
            chunk_limits: ChunkLimits {
                max_chunk_size: limits.max_chunk_size,
                max_message_len: limits.max_message_size,
                ..ChunkLimits::default()
            },
            out_chunk_size: limits.out_chunk_size,
            timeouts: ServerTimeouts {
                handshake_ms: limits.handshake_timeout.as_millis() as u64,
                first_media_ms: limits.first_media_timeout.as_millis() as u64,
                idle_ms: limits.idle_timeout.as_millis() as u64,
            },
            ..ServerSessionConfig::default()
        };
        let mut rng = rand::rngs::SmallRng::from_entropy();
        RtmpConn {
            session: ServerSession::new(config, &mut rng, now_ms),
            out: BytesMut::new(),
            events: Vec::new(),
            publishing: None,
            playing: None,
            connect_urls: None,
        }
    }

    /// `connect`'s `tcUrl` and `pageUrl` (empty if not sent).
    pub(crate) fn connect_urls(&self) -> (String, String) {
        self.connect_urls.as_deref().cloned().unwrap_or_default()
    }

    /// The session's next deadline (handshake, first media, idle).
    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        self.session.poll_timeout()
    }

    /// Checks the session's deadline at `now_ms`; why it must close, if it passed.
    pub(crate) fn handle_timeout(&mut self, now_ms: u64) -> Result<(), String> {
        self.session
            .handle_timeout(now_ms)
            .map_err(|e| e.to_string())
    }
}

impl CoreState {
    /// Bytes from an RTMP peer.
    pub(super) fn on_rtmp_data(&mut self, slot: u32, data: &[u8]) {
        let now = self.now_ms();
        let mut input = data;
        loop {
            let Some(conn) = self.conns.at(slot) else {
                return;
            };
            let Proto::Rtmp(rc) = &mut conn.proto else {
                return;
            };
            // Published frames are written once, into this core's aligned arena.
            let result = rc.session.handle_input_in(
                input,
                now,
                &mut self.arena,
                &mut rc.out,
                &mut rc.events,
            );
            input = &[];
            if let Err(e) = result {
                tracing::debug!(core = self.core, peer = ?conn.peer, error = %e, "closing RTMP connection");
                self.conns.close_later(slot, CloseReason::ProtocolError);
                return;
            }
            let events = std::mem::take(&mut rc.events);
            for event in events {
                self.on_rtmp_event(slot, event, now);
            }
            let Some(conn) = self.conns.at(slot) else {
                return;
            };
            let Proto::Rtmp(rc) = &mut conn.proto else {
                return;
            };
            // A publish/play decision may have left input buffered in the session.
            if !rc.session.has_backlog() || rc.session.awaiting_decision() {
                break;
            }
        }
        self.flush_session_output(slot);
    }

    /// Moves what the session wrote into the connection's outbox (and re-arms
    /// its deadline, which what the session just did may have moved).
    pub(super) fn flush_session_output(&mut self, slot: u32) {
        self.conns.arm_timer(slot);
        let Some(conn) = self.conns.at(slot) else {
            return;
        };
        let Proto::Rtmp(rc) = &mut conn.proto else {
            return;
        };
        if rc.out.is_empty() {
            return;
        }
        let out = rc.out.split();
        if conn.outbox.queue_control(&out).is_err() {
            self.conns.close_later(slot, CloseReason::ProtocolError);
            return;
        }
        self.sends.mark_ready(&mut self.conns, slot);
    }

    fn on_rtmp_event(&mut self, slot: u32, event: ServerEvent, now: u64) {
        match event {
            ServerEvent::Connected(connect) => {
                if let Some(rc) = self.session(slot) {
                    let urls = (
                        connect.tc_url.unwrap_or_default(),
                        connect.page_url.unwrap_or_default(),
                    );
                    rc.connect_urls = Some(Box::new(urls));
                }
            }
            ServerEvent::PublishRequested {
                stream_id,
                app,
                name,
                query,
            } => self.on_publish(slot, stream_id, &app, &name, query.as_deref()),
            ServerEvent::PlayRequested {
                stream_id,
                app,
                name,
                query,
                ..
            } => self.on_play(slot, stream_id, &app, &name, query),
            ServerEvent::Media { frame, .. } => self.on_publisher_frame(slot, frame, now),
            ServerEvent::Unpublished { stream_id } => self.end_publishing_on(slot, stream_id, now),
            ServerEvent::PlayStopped { stream_id } | ServerEvent::StreamDeleted { stream_id } => {
                let Some(conn) = self.conns.at(slot) else {
                    return;
                };
                let Proto::Rtmp(rc) = &mut conn.proto else {
                    return;
                };
                if rc.playing == Some(stream_id) {
                    rc.playing = None;
                    if let Some(who) = conn.hook_stop.take() {
                        self.notify_hook(HookAction::Stop, &who);
                    }
                    let Some(conn) = self.conns.at(slot) else {
                        return;
                    };
                    if let Some(viewer) = conn.viewer.take() {
                        let protocol = viewer.egress.protocol();
                        self.remove_viewer(viewer.id, protocol);
                    }
                }
                self.end_publishing_on(slot, stream_id, now);
            }
        }
    }

    fn session(&mut self, slot: u32) -> Option<&mut RtmpConn> {
        match &mut self.conns.at(slot)?.proto {
            Proto::Rtmp(rc) => Some(rc),
            Proto::Http(_) | Proto::Origin(_) | Proto::Relay(_) | Proto::Hook(_) => None,
        }
    }

    fn reject_publish(&mut self, slot: u32, msg_stream: u32, why: PublishRejection, text: &str) {
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

    fn on_publish(
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
    pub(super) fn refuse_rtmp_publish_unauthorized(
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
    pub(super) fn publish_authorized(&mut self, slot: u32, msg_stream: u32, app: &str, name: &str) {
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

    fn on_publisher_frame(&mut self, slot: u32, frame: Frame, now: u64) {
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
    fn end_publishing_on(&mut self, slot: u32, msg_stream: u32, now: u64) {
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

    fn on_play(
        &mut self,
        slot: u32,
        msg_stream: u32,
        app: &str,
        name: &str,
        query: Option<String>,
    ) {
        let resume = || Resume::RtmpPlay {
            msg_stream,
            app: app.to_owned(),
            name: name.to_owned(),
            query: query.clone(),
        };
        match self.authorize(slot, Action::Play, app, name, "", query.as_deref(), resume) {
            Access::Granted => self.play_authorized(slot, msg_stream, app, name, query),
            // The session buffers input until the hook answers.
            Access::Held => {}
            Access::Refused(why) => self.refuse_rtmp_play_unauthorized(slot, msg_stream, why),
        }
    }

    /// Refuses a play `[auth]` turned down, then closes once the refusal is sent.
    pub(super) fn refuse_rtmp_play_unauthorized(
        &mut self,
        slot: u32,
        msg_stream: u32,
        why: Refusal,
    ) {
        if let Some(rc) = self.session(slot) {
            let text = format!("unauthorized: {why}");
            let _ = rc
                .session
                .reject_play(msg_stream, PlayRejection::Failed, &text, &mut rc.out);
        }
        if let Some(conn) = self.conns.at(slot) {
            conn.close_after_flush = true;
        }
        self.flush_session_output(slot);
    }

    /// A play `[auth]` allowed: held for an edge pull, started, or refused as not found.
    pub(super) fn play_authorized(
        &mut self,
        slot: u32,
        msg_stream: u32,
        app: &str,
        name: &str,
        query: Option<String>,
    ) {
        self.arm_stop_hook(slot, app, name, query.as_deref());
        if let Some(conn) = self.conns.at(slot) {
            conn.source_timeline = query.as_deref().is_some_and(asks_source_timeline);
        }
        match StreamKey::new(app, name) {
            Ok(key) if self.edge_enabled() => {
                // Held until the key's pull core answers (the session buffers input meanwhile).
                self.edge_hold_viewer(slot, key, query, WaitingPlay::Rtmp { msg_stream });
            }
            Ok(key) => self.start_rtmp_play(slot, msg_stream, &key),
            Err(_) => self.refuse_rtmp_play(
                slot,
                msg_stream,
                PlayRejection::StreamNotFound,
                "stream not found",
            ),
        }
    }

    /// Refuses a play request, then closes once the refusal is sent.
    pub(super) fn refuse_rtmp_play(
        &mut self,
        slot: u32,
        msg_stream: u32,
        why: PlayRejection,
        text: &str,
    ) {
        if let Some(rc) = self.session(slot) {
            let _ = rc.session.reject_play(msg_stream, why, text, &mut rc.out);
        }
        let reason = match why {
            PlayRejection::Failed => RefuseReason::OriginUnavailable,
            _ => RefuseReason::StreamNotFound,
        };
        self.metrics.connections_refused.inc(reason);
        if let Some(conn) = self.conns.at(slot) {
            conn.close_after_flush = true;
        }
        self.flush_session_output(slot);
    }

    /// Plays `key` if it is live; otherwise waits for a publisher (when
    /// configured) or answers StreamNotFound.
    pub(super) fn start_rtmp_play(&mut self, slot: u32, msg_stream: u32, key: &StreamKey) {
        if self.shared.directory.lookup(key).is_some() {
            return self.begin_rtmp_play(slot, msg_stream, key);
        }
        let now_ms = self.now_ms();
        let play = WaitingPlay::Rtmp { msg_stream };
        if !self
            .pending
            .hold(&mut self.conns, slot, key.clone(), play, now_ms)
        {
            self.refuse_rtmp_play(
                slot,
                msg_stream,
                PlayRejection::StreamNotFound,
                "stream not found",
            );
        }
    }

    /// Accepts the play of a live stream and starts the viewer.
    pub(super) fn begin_rtmp_play(&mut self, slot: u32, msg_stream: u32, key: &StreamKey) {
        let Some(rc) = self.session(slot) else { return };
        let _ = rc.session.accept_play(msg_stream, &mut rc.out);
        rc.playing = Some(msg_stream);
        let egress = RtmpEgress::new(msg_stream, rc.session.out_chunk_size(), rc.session.csids());
        // Play.Start must precede the first frame: queue the session's output now.
        self.flush_session_output(slot);
        if let Err(e) = self.start_viewer(slot, key, Egress::Rtmp(egress)) {
            tracing::info!(core = self.core, error = %e, "play failed");
            self.metrics.connections_refused.inc(play_refusal(&e));
            if let (PlayError::NotFound(_) | PlayError::Refused(_), Some(rc)) =
                (e, self.session(slot))
            {
                rc.playing = None;
                let _ = rc.session.send_unpublish_notify(msg_stream, &mut rc.out);
            }
            if let Some(conn) = self.conns.at(slot) {
                conn.close_after_flush = true;
            }
        }
    }

    /// The stream an RTMP viewer watched ended: StreamEOF + UnpublishNotify, then close.
    pub fn rtmp_play_ended(&mut self, slot: u32) {
        let Some(rc) = self.session(slot) else { return };
        if let Some(msg_stream) = rc.playing.take() {
            let _ = rc.session.send_unpublish_notify(msg_stream, &mut rc.out);
        }
        if let Some(conn) = self.conns.at(slot) {
            conn.close_after_flush = true;
        }
        self.flush_session_output(slot);
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
