//! Held HLS requests: holding one (the connection parks, the core's timer
//! wheel is armed at its deadline), re-asking a stream's waiters when its
//! view changes, and answering those past their deadline.

use super::routes::HlsRequest;
use super::waiters::{Streaming, Waiter};
use crate::metrics::{CloseReason, Protocol};
use crate::server::conn::Proto;
use crate::server::worker::CoreState;
use crate::stream::StreamId;

impl CoreState {
    /// Holds a request until `deadline_ms` (503 when the core holds too many).
    pub(super) fn hls_wait(
        &mut self,
        slot: u32,
        stream_id: StreamId,
        req: HlsRequest,
        deadline_ms: u64,
        streaming: Option<Streaming>,
    ) -> bool {
        let ctx = req.ctx;
        let w = Waiter {
            slot,
            stream_id,
            req,
            deadline_ms,
            streaming,
        };
        if self.hls.waiters.add(w).is_err() {
            if streaming.is_some() {
                self.conns.close_later(slot, CloseReason::ProtocolError);
                return false;
            }
            return self.hls_error(slot, ctx, 503);
        }
        self.metrics.hls.waiters.set(self.hls.waiters.len() as i64);
        self.park(slot);
        // The core's timer wheel answers it at its deadline.
        if let Some(Proto::Http(http)) = self.conns.at(slot).map(|c| &mut c.proto) {
            http.park_until(deadline_ms);
        }
        self.conns.arm_timer(slot);
        false
    }

    /// The timer wheel fired for the request held on `slot`: 503 (a
    /// streamed segment that stalled is closed instead).
    pub(crate) fn hls_held_due(&mut self, slot: u32) {
        let Some(w) = self.hls.waiters.take_slot(slot) else {
            return;
        };
        self.metrics.hls.waiters.set(self.hls.waiters.len() as i64);
        self.hls_expired(w);
    }

    /// Answers a waiter whose deadline passed.
    fn hls_expired(&mut self, w: Waiter) {
        if self
            .conns
            .get_mut(w.slot, w.req.generation)
            .is_none_or(|c| c.closing)
        {
            return;
        }
        if w.streaming.is_some() {
            self.conns.close_later(w.slot, CloseReason::StreamEnded);
            return;
        }
        if self.hls_error(w.slot, w.req.ctx, 503) {
            self.process_http(w.slot);
        }
    }

    /// No further request is read on `slot` until this one is answered.
    pub(super) fn park(&mut self, slot: u32) {
        if let Some(Proto::Http(http)) = self.conns.at(slot).map(|c| &mut c.proto) {
            http.park();
        }
    }

    /// Re-asks every waiter of `stream_id` against this core's current view.
    pub(crate) fn hls_wake(&mut self, stream_id: StreamId) {
        let waiters = self.hls.waiters.take_stream(stream_id);
        if waiters.is_empty() {
            return;
        }
        let view = self.hls_current_view(stream_id);
        for w in waiters {
            if self
                .conns
                .get_mut(w.slot, w.req.generation)
                .is_none_or(|c| c.closing)
            {
                continue;
            }
            let slot = w.slot;
            let keep = match &view {
                Some(v) => self.hls_answer(slot, stream_id, w.req, v, w.streaming),
                None if w.streaming.is_some() => {
                    self.conns.close_later(slot, CloseReason::StreamEnded);
                    false
                }
                None => self.hls_error(slot, w.req.ctx, 404),
            };
            if keep {
                self.process_http(slot);
            }
        }
        self.metrics.hls.waiters.set(self.hls.waiters.len() as i64);
    }

    /// The 100 ms sweep: a backstop for waiters past their deadline (the
    /// timer wheel answers them first), session estimates; idle copies and
    /// finished packagers go.
    pub(crate) fn hls_sweep(&mut self, now_ms: u64) {
        for w in self.hls.waiters.take_due(now_ms) {
            self.hls_expired(w);
        }
        self.metrics.hls.waiters.set(self.hls.waiters.len() as i64);
        let mut sessions = std::mem::take(&mut self.hls.sessions);
        let estimates = sessions.estimates(now_ms, |id| {
            let view = self.hls_current_view(id)?;
            let closed = view.state().and_then(|s| s.last_closed_msn).unwrap_or(0);
            Some((view.version(), closed))
        });
        self.hls.sessions = sessions;
        if let Some(estimates) = estimates {
            let mut total = 0u64;
            for (stream_id, n) in estimates {
                total = total.saturating_add(n);
                self.report.set_hls_sessions(stream_id, n);
            }
            // `ringcast_viewers{protocol="hls"}`: this core's estimate.
            let was = self.metrics.viewers.get(Protocol::Hls);
            let now = i64::try_from(total).unwrap_or(i64::MAX);
            self.metrics
                .viewers
                .add(Protocol::Hls, now.saturating_sub(was));
        }
        self.hls_drop_idle(now_ms);
        self.hls_drop_finished(now_ms);
        // Requests held for a publisher or a pull whose connection went away.
        let conns = &mut self.conns;
        self.hls.held.retain(|slot, r| {
            conns
                .get_mut(*slot, r.generation)
                .is_some_and(|c| !c.closing)
        });
    }
}
