//! Viewers waiting for a stream that is not live yet (`stream.wait_for_publisher`).
//!
//! Nothing has been answered to them: when the stream appears in the directory
//! (published on any core) they start like any viewer; at the deadline they get
//! a 404 or NetStream.Play.StreamNotFound. The list is checked on every sweep
//! (100 ms), and is bounded by the connection count.

use super::worker::CoreState;
use crate::protocol::http::response::ResponseContext;
use crate::stream::StreamKey;

/// How a waiting viewer will be answered.
#[derive(Clone, Copy, Debug)]
pub enum PendingPlay {
    /// An HTTP-FLV request.
    Http(ResponseContext),
    /// An RTMP `play` on message stream `msg_stream`.
    Rtmp {
        /// The message stream the play arrived on.
        msg_stream: u32,
    },
}

/// One waiting viewer.
#[derive(Debug)]
pub struct Pending {
    slot: u32,
    generation: u32,
    key: StreamKey,
    play: PendingPlay,
    deadline_ms: u64,
}

impl CoreState {
    /// Parks `slot` until `key` goes live, if the configuration allows waiting.
    /// False when it does not: answer "not found" now.
    pub(super) fn wait_for_stream(&mut self, slot: u32, key: StreamKey, play: PendingPlay) -> bool {
        let wait = self.shared.config.stream.wait_for_publisher.as_millis() as u64;
        if wait == 0 {
            return false;
        }
        let deadline_ms = self.now_ms() + wait;
        let Some(conn) = self.conns.at(slot) else { return false };
        // The connection's own deadline must not cut the wait short.
        conn.deadline_ms = conn.deadline_ms.max(deadline_ms + 1_000);
        let generation = conn.generation;
        self.pending.push(Pending { slot, generation, key, play, deadline_ms });
        true
    }

    /// Starts waiting viewers whose stream went live; answers those out of time.
    pub(super) fn resolve_pending(&mut self, now_ms: u64) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        for p in pending {
            if self.conns.get_mut(p.slot, p.generation).is_none_or(|c| c.closing) {
                continue;
            }
            let live = self.shared.directory.lookup(&p.key).is_some();
            match (live, p.deadline_ms <= now_ms, p.play) {
                (true, _, PendingPlay::Http(ctx)) => {
                    self.begin_flv_play(p.slot, ctx, &p.key);
                }
                (true, _, PendingPlay::Rtmp { msg_stream }) => {
                    self.begin_rtmp_play(p.slot, msg_stream, &p.key);
                    self.after_decision(p.slot);
                }
                (false, true, PendingPlay::Http(ctx)) => {
                    self.http_not_found(p.slot, ctx);
                }
                (false, true, PendingPlay::Rtmp { msg_stream }) => {
                    self.rtmp_not_found(p.slot, msg_stream);
                    self.after_decision(p.slot);
                }
                (false, false, _) => self.pending.push(p),
            }
        }
    }
}
