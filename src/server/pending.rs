//! Held viewers: nothing has been answered to them yet. They wait either for a
//! publisher (`stream.wait_for_publisher`, kept here and checked against the
//! directory on every 100 ms sweep) or, in edge mode, for an origin pull
//! (`edge::viewers`, released by the pull core's messages). Both end the same
//! way: started through the normal play path, or refused cleanly (404 /
//! NetStream.Play.StreamNotFound, 503 / NetStream.Play.Failed). Bounded by the
//! connection count.

use super::worker::CoreState;
use crate::protocol::http::response::ResponseContext;
use crate::protocol::rtmp::session::server::PlayRejection;
use crate::stream::StreamKey;

/// How a held viewer will be answered.
#[derive(Clone, Copy, Debug)]
pub enum WaitingPlay {
    /// An HTTP-FLV request; nothing of the response has been written.
    Flv(ResponseContext),
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

impl CoreState {
    /// Parks `slot` until `key` goes live, if the configuration allows waiting.
    /// False when it does not: answer "not found" now.
    pub(super) fn wait_for_stream(&mut self, slot: u32, key: StreamKey, play: WaitingPlay) -> bool {
        let wait = self.shared.config.stream.wait_for_publisher.as_millis() as u64;
        if wait == 0 {
            return false;
        }
        let deadline_ms = self.now_ms() + wait;
        // The session has no deadline while its request is held: this wait bounds it.
        let Some(conn) = self.conns.at(slot) else {
            return false;
        };
        let generation = conn.generation;
        self.pending.push(Pending {
            slot,
            generation,
            key,
            play,
            deadline_ms,
        });
        true
    }

    /// Starts waiting viewers whose stream went live; answers those out of time.
    pub(super) fn resolve_pending(&mut self, now_ms: u64) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        for p in pending {
            if self
                .conns
                .get_mut(p.slot, p.generation)
                .is_none_or(|c| c.closing)
            {
                continue;
            }
            let live = self.shared.directory.lookup(&p.key).is_some();
            if live {
                self.start_held_play(p.slot, p.play, &p.key);
            } else if p.deadline_ms <= now_ms {
                self.refuse_held_play(p.slot, p.play, Refusal::NotFound);
            } else {
                self.pending.push(p);
            }
        }
    }

    /// Starts a held viewer through the normal play path.
    pub(crate) fn start_held_play(&mut self, slot: u32, how: WaitingPlay, key: &StreamKey) {
        match how {
            WaitingPlay::Flv(ctx) => {
                self.start_flv_viewer(slot, ctx, key);
            }
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
