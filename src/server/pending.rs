//! Held viewers: nothing has been answered to them yet. They wait either for a
//! publisher (`stream.wait_for_publisher`, kept here and checked against the
//! directory on every 100 ms sweep) or, in edge mode, for an origin pull
//! (`edge::viewers`, released by the pull core's messages). Both end the same
//! way: started through the normal play path, or refused cleanly (404 /
//! NetStream.Play.StreamNotFound, 503 / NetStream.Play.Failed). Bounded by the
//! connection count.

use std::time::Duration;

use super::connections::Connections;
use super::worker::CoreState;
use crate::protocol::http::response::ResponseContext;
use crate::protocol::rtmp::session::server::PlayRejection;
use crate::stream::StreamKey;

/// How a held viewer will be answered.
#[derive(Clone, Copy, Debug)]
pub enum WaitingPlay {
    /// An HTTP-FLV request; nothing of the response has been written.
    Flv(ResponseContext),
    /// An HLS/DASH request (kept by `server::hls` by connection slot).
    Hls(ResponseContext),
    /// An RTMP `play` on message stream `msg_stream`, not yet accepted.
    Rtmp {
        /// The message stream.
        msg_stream: u32,
    },
}

/// How a wait ended badly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The stream does not exist (404 / StreamNotFound).
    NotFound,
    /// It could not be fetched in time (503 / Play.Failed).
    Unavailable,
}

/// One waiting viewer.
#[derive(Debug)]
pub struct Pending {
    slot: u32,
    generation: u32,
    key: StreamKey,
    play: WaitingPlay,
    deadline_ms: u64,
}

/// A held viewer whose wait is over: start it (`refusal` is `None`) or refuse it.
#[derive(Debug)]
pub struct Settled {
    /// Its connection.
    pub slot: u32,
    /// How it asked to play.
    pub play: WaitingPlay,
    /// The stream it asked for.
    pub key: StreamKey,
    /// Why it is refused, if it is.
    pub refusal: Option<Refusal>,
}

/// The viewers of one core waiting for a publisher (`stream.wait_for_publisher`).
pub struct PendingPlays {
    /// How long a viewer may wait (ms); zero answers "not found" at once.
    wait_ms: u64,
    held: Vec<Pending>,
}

impl PendingPlays {
    /// No one waiting; each future wait lasts at most `wait`.
    pub fn new(wait: Duration) -> PendingPlays {
        PendingPlays {
            wait_ms: wait.as_millis() as u64,
            held: Vec::new(),
        }
    }

    /// Parks `slot` until `key` goes live, if the configuration allows waiting.
    /// False when it does not: answer "not found" now.
    pub fn hold(
        &mut self,
        conns: &mut Connections,
        slot: u32,
        key: StreamKey,
        play: WaitingPlay,
        now_ms: u64,
    ) -> bool {
        if self.wait_ms == 0 {
            return false;
        }
        // The session has no deadline while its request is held: this wait bounds it.
        let Some(conn) = conns.at(slot) else {
            return false;
        };
        self.held.push(Pending {
            slot,
            generation: conn.generation,
            key,
            play,
            deadline_ms: now_ms + self.wait_ms,
        });
        true
    }

    /// Takes every held viewer to be looked at by [`PendingPlays::settle`].
    pub fn take(&mut self) -> Vec<Pending> {
        std::mem::take(&mut self.held)
    }

    /// Decides a taken viewer's fate at `now_ms`: forgotten if its connection is
    /// gone or closing, kept if its stream is still not `live` and time remains,
    /// else settled (started when live, refused as not found when out of time).
    pub fn settle(
        &mut self,
        p: Pending,
        conns: &mut Connections,
        live: impl FnOnce(&StreamKey) -> bool,
        now_ms: u64,
    ) -> Option<Settled> {
        if conns
            .get_mut(p.slot, p.generation)
            .is_none_or(|c| c.closing)
        {
            return None;
        }
        let refusal = if live(&p.key) {
            None
        } else if p.deadline_ms <= now_ms {
            Some(Refusal::NotFound)
        } else {
            self.held.push(p);
            return None;
        };
        Some(Settled {
            slot: p.slot,
            play: p.play,
            key: p.key,
            refusal,
        })
    }
}

impl CoreState {
    /// Starts waiting viewers whose stream went live; answers those out of time.
    pub(super) fn resolve_pending(&mut self, now_ms: u64) {
        for p in self.pending.take() {
            let directory = &self.shared.directory;
            let live = |key: &StreamKey| directory.lookup(key).is_some();
            let Some(done) = self.pending.settle(p, &mut self.conns, live, now_ms) else {
                continue;
            };
            match done.refusal {
                None => self.start_held_play(done.slot, done.play, &done.key),
                Some(refusal) => self.refuse_held_play(done.slot, done.play, refusal),
            }
        }
    }

    /// Starts a held viewer through the normal play path.
    pub(crate) fn start_held_play(&mut self, slot: u32, how: WaitingPlay, key: &StreamKey) {
        match how {
            WaitingPlay::Flv(ctx) => {
                self.start_flv_viewer(slot, ctx, key);
            }
            WaitingPlay::Hls(_) => self.hls_resume_held(slot, None),
            WaitingPlay::Rtmp { msg_stream } => {
                self.start_rtmp_play(slot, msg_stream, key);
                // Input that arrived while the play was held is processed now.
                self.on_rtmp_data(slot, &[]);
            }
        }
    }

    /// Refuses a held viewer cleanly.
    pub(crate) fn refuse_held_play(&mut self, slot: u32, how: WaitingPlay, refusal: Refusal) {
        match how {
            WaitingPlay::Flv(ctx) => {
                let status = match refusal {
                    Refusal::NotFound => 404,
                    Refusal::Unavailable => 503,
                };
                self.refuse_flv(slot, ctx, status);
            }
            WaitingPlay::Hls(_) => {
                let status = match refusal {
                    Refusal::NotFound => 404,
                    Refusal::Unavailable => 503,
                };
                self.hls_resume_held(slot, Some(status));
            }
            WaitingPlay::Rtmp { msg_stream } => {
                let (why, text) = match refusal {
                    Refusal::NotFound => (PlayRejection::StreamNotFound, "stream not found"),
                    Refusal::Unavailable => (PlayRejection::Failed, "origin unavailable"),
                };
                self.refuse_rtmp_play(slot, msg_stream, why, text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::connections::test_conn;

    fn rtmp_play() -> WaitingPlay {
        WaitingPlay::Rtmp { msg_stream: 1 }
    }

    #[test]
    fn no_wait_configured_holds_no_one() {
        let mut conns = Connections::new(0, 8);
        let a = conns.insert(test_conn);
        let key = StreamKey::new("live", "a").unwrap();
        assert!(!PendingPlays::new(Duration::ZERO).hold(&mut conns, a, key, rtmp_play(), 0));
    }

    #[test]
    fn held_viewers_start_when_live_and_are_refused_when_out_of_time() {
        let mut conns = Connections::new(0, 8);
        let (a, b, c) = (
            conns.insert(test_conn),
            conns.insert(test_conn),
            conns.insert(test_conn),
        );
        let mut plays = PendingPlays::new(Duration::from_millis(1_000));
        let live_key = StreamKey::new("live", "on").unwrap();
        let dead_key = StreamKey::new("live", "off").unwrap();
        assert!(plays.hold(&mut conns, a, live_key.clone(), rtmp_play(), 0));
        assert!(plays.hold(&mut conns, b, dead_key.clone(), rtmp_play(), 0));
        assert!(plays.hold(&mut conns, c, dead_key.clone(), rtmp_play(), 0));
        conns.remove(c);
        let live = |k: &StreamKey| *k == live_key;

        // Before the deadline: a starts, b keeps waiting, c (closed) is forgotten.
        let settled: Vec<Settled> = plays
            .take()
            .into_iter()
            .filter_map(|p| plays.settle(p, &mut conns, live, 999))
            .collect();
        assert_eq!(settled.len(), 1);
        assert_eq!((settled[0].slot, settled[0].refusal), (a, None));

        // At the deadline: b is refused and nobody is left.
        let settled: Vec<Settled> = plays
            .take()
            .into_iter()
            .filter_map(|p| plays.settle(p, &mut conns, live, 1_000))
            .collect();
        assert_eq!(settled.len(), 1);
        assert_eq!(
            (settled[0].slot, settled[0].refusal),
            (b, Some(Refusal::NotFound))
        );
        assert!(plays.take().is_empty());
    }
}
