//! RTMP connections: the server session of each, and what its events do to the
//! stream layer (publish, play, frames, unpublish).

mod play;
mod publish;
mod stream_msgs;

use bytes::BytesMut;
use rand::SeedableRng;

use super::conn::Proto;
use super::shared::Shared;
use super::worker::CoreState;
use crate::auth::hooks::HookAction;
use crate::metrics::CloseReason;
use crate::protocol::rtmp::chunk::ChunkLimits;
use crate::protocol::rtmp::session::server::{
    ServerEvent, ServerSession, ServerSessionConfig, ServerTimeouts,
};
use crate::stream::{Claim, StreamKey};

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
}
