//! RTMP playing on this core: `play` (checks, hooks, waiting for a
//! publisher), attaching the viewer, and its end.

use crate::auth::{Action, Refusal};
use crate::edge::origin::asks_source_timeline;
use crate::metrics::RefuseReason;
use crate::protocol::rtmp::session::server::PlayRejection;
use crate::server::access::Access;
use crate::server::conn::Egress;
use crate::server::egress_rtmp::RtmpEgress;
use crate::server::failures::play_refusal;
use crate::server::hooks::Resume;
use crate::server::pending::WaitingPlay;
use crate::server::viewer_send::PlayError;
use crate::server::worker::CoreState;
use crate::stream::StreamKey;

impl CoreState {
    pub(super) fn on_play(
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
    pub(in crate::server) fn refuse_rtmp_play_unauthorized(
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
    pub(in crate::server) fn play_authorized(
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
    pub(in crate::server) fn refuse_rtmp_play(
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
    pub(in crate::server) fn start_rtmp_play(
        &mut self,
        slot: u32,
        msg_stream: u32,
        key: &StreamKey,
    ) {
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
    pub(in crate::server) fn begin_rtmp_play(
        &mut self,
        slot: u32,
        msg_stream: u32,
        key: &StreamKey,
    ) {
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
}
