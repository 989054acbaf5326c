//! The server session's deadlines: the handshake (until `connect` is answered),
//! the first media after a publish request, and idleness (no media, no play)
//! after that. A stream that plays, or a publish/play request awaiting the
//! caller's decision, suspends them: a viewer's liveness is the stream layer's
//! (slow-viewer bounds), and a held request is bounded by whoever holds it.

use super::{ServerEvent, ServerSession, StreamState};
use crate::protocol::rtmp::session::deadline::Wait;
use crate::protocol::rtmp::session::SessionError;

/// Deadlines of a server session, in ms (`[limits]` in the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerTimeouts {
    /// From the first byte until `connect` is answered.
    pub handshake_ms: u64,
    /// From a publish request until its first frame.
    pub first_media_ms: u64,
    /// From the last frame (or `connect`, or the end of a play) with nothing new.
    pub idle_ms: u64,
}

impl Default for ServerTimeouts {
    fn default() -> Self {
        ServerTimeouts {
            handshake_ms: 10_000,
            first_media_ms: 20_000,
            idle_ms: 30_000,
        }
    }
}

impl ServerSession {
    /// When the session next needs [`ServerSession::handle_timeout`]: `None` while
    /// a stream plays or a request awaits a decision.
    pub fn poll_timeout(&self) -> Option<u64> {
        let suspended = self
            .streams
            .iter()
            .any(|(_, s)| s.pending() || matches!(s, StreamState::Playing(_)));
        (!suspended).then(|| self.wait.deadline())
    }

    /// Checks the deadline at `now_ms`: [`SessionError::TimedOut`] (naming the
    /// phase and its limit) once it passed; then the connection must be closed.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Result<(), SessionError> {
        match self.poll_timeout() {
            Some(_) => self.wait.check(now_ms),
            None => Ok(()),
        }
    }

    /// Moves the deadline for what `events` (just produced at `now_ms`) say.
    pub(super) fn track(&mut self, events: &[ServerEvent], now_ms: u64) {
        let t = self.config.timeouts;
        for event in events {
            self.wait = match event {
                ServerEvent::Connected(_)
                | ServerEvent::Media { .. }
                | ServerEvent::PlayStopped { .. } => Wait::new("idle", now_ms, t.idle_ms),
                ServerEvent::PublishRequested { .. } => {
                    Wait::new("first media", now_ms, t.first_media_ms)
                }
                ServerEvent::PlayRequested { .. }
                | ServerEvent::Unpublished { .. }
                | ServerEvent::StreamDeleted { .. } => continue,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    use super::*;
    use crate::protocol::flv::frame::{Frame, FrameKind};
    use crate::protocol::rtmp::session::client::{
        ClientEvent, ClientMode, ClientSession, ClientSessionConfig,
    };
    use crate::protocol::rtmp::session::server::ServerSessionConfig;

    /// A fake clock: every instant is this base plus an offset.
    const BASE: u64 = 1_000_000;
    const T: ServerTimeouts = ServerTimeouts {
        handshake_ms: 10_000,
        first_media_ms: 20_000,
        idle_ms: 30_000,
    };

    fn server(now: u64) -> ServerSession {
        let config = ServerSessionConfig {
            timeouts: T,
            ..ServerSessionConfig::default()
        };
        ServerSession::new(config, &mut SmallRng::seed_from_u64(1), now)
    }

    fn client(mode: ClientMode) -> ClientSession {
        let config = ClientSessionConfig::new("live", "rtmp://h/live", "cam", mode);
        ClientSession::new(config, &mut SmallRng::seed_from_u64(2), BASE)
    }

    /// Pumps bytes both ways at `now` until quiet; the server's requests are
    /// answered by `decide`.
    fn pump(
        c: &mut ClientSession,
        s: &mut ServerSession,
        to_server: &mut BytesMut,
        now: u64,
        decide: bool,
    ) -> Vec<ServerEvent> {
        let mut seen = Vec::new();
        for _ in 0..32 {
            let (mut to_client, mut events) = (BytesMut::new(), Vec::new());
            s.handle_input(to_server, now, &mut to_client, &mut events)
                .unwrap();
            to_server.clear();
            for e in &events {
                match *e {
                    ServerEvent::PublishRequested { stream_id, .. } if decide => {
                        s.accept_publish(stream_id, &mut to_client).unwrap()
                    }
                    ServerEvent::PlayRequested { stream_id, .. } if decide => {
                        s.accept_play(stream_id, &mut to_client).unwrap()
                    }
                    _ => {}
                }
            }
            seen.extend(events);
            let mut client_events: Vec<ClientEvent> = Vec::new();
            c.handle_input(&to_client, now, to_server, &mut client_events)
                .unwrap();
            if to_client.is_empty() && to_server.is_empty() {
                break;
            }
        }
        seen
    }

    fn expect_timeout(s: &mut ServerSession, at: u64, phase: &str, limit_ms: u64) {
        assert_eq!(s.poll_timeout(), Some(at));
        assert_eq!(s.handle_timeout(at - 1), Ok(()), "not before the deadline");
        match s.handle_timeout(at) {
            Err(SessionError::TimedOut {
                phase: p,
                limit_ms: l,
            }) => assert_eq!((p, l), (phase, limit_ms)),
            other => panic!("expected a {phase} timeout, got {other:?}"),
        }
    }

    #[test]
    fn a_silent_peer_times_out_at_the_handshake_deadline() {
        let mut s = server(BASE);
        expect_timeout(&mut s, BASE + 10_000, "handshake", 10_000);
        // Half a handshake does not push the deadline.
        let mut s = server(BASE);
        let mut out = BytesMut::new();
        s.handle_input(&[3u8; 200], BASE + 9_000, &mut out, &mut Vec::new())
            .unwrap();
        expect_timeout(&mut s, BASE + 10_000, "handshake", 10_000);
    }

    #[test]
    fn connect_then_idle_publish_then_first_media_then_idle() {
        let (mut c, mut s) = (client(ClientMode::Publish), server(BASE));
        let mut to_server = BytesMut::new();
        c.start(&mut to_server).unwrap();
        // The whole negotiation happens at +1 s; the publish request restarts the
        // clock with the first-media limit.
        let events = pump(&mut c, &mut s, &mut to_server, BASE + 1_000, true);
        assert!(events
            .iter()
            .any(|e| matches!(e, ServerEvent::PublishRequested { .. })));
        expect_timeout(&mut s, BASE + 1_000 + 20_000, "first media", 20_000);
        // A frame at +5 s makes it an idle wait from there.
        let frame = Frame::new(
            FrameKind::Video,
            0,
            bytes::Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]),
        );
        c.send_frame(&frame, &mut to_server).unwrap();
        let events = pump(&mut c, &mut s, &mut to_server, BASE + 5_000, true);
        assert!(events
            .iter()
            .any(|e| matches!(e, ServerEvent::Media { .. })));
        expect_timeout(&mut s, BASE + 5_000 + 30_000, "idle", 30_000);
    }

    #[test]
    fn playing_and_pending_decisions_suspend_the_deadline_and_a_stop_restarts_it() {
        let (mut c, mut s) = (client(ClientMode::Play), server(BASE));
        let mut to_server = BytesMut::new();
        c.start(&mut to_server).unwrap();
        // Undecided: the caller holds the request, the session has no deadline.
        let events = pump(&mut c, &mut s, &mut to_server, BASE + 2_000, false);
        let stream_id = events
            .iter()
            .find_map(|e| match e {
                ServerEvent::PlayRequested { stream_id, .. } => Some(*stream_id),
                _ => None,
            })
            .unwrap();
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(s.handle_timeout(BASE + 1_000_000), Ok(()));
        let mut out = BytesMut::new();
        s.accept_play(stream_id, &mut out).unwrap();
        assert_eq!(
            s.poll_timeout(),
            None,
            "a player's liveness is the stream layer's"
        );
        // The player deletes its stream at +50 s: idle from there.
        c.close(&mut to_server).unwrap();
        let events = pump(&mut c, &mut s, &mut to_server, BASE + 50_000, true);
        assert!(events
            .iter()
            .any(|e| matches!(e, ServerEvent::PlayStopped { .. })));
        expect_timeout(&mut s, BASE + 80_000, "idle", 30_000);
    }
}
