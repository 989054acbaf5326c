//! Connection deadlines, driven from the core's one [`TimerWheel`](crate::runtime::TimerWheel).
//!
//! The deadlines themselves live in the sans-IO sessions (`poll_timeout` /
//! `handle_timeout`: handshake, first media, idle, origin start...); only the
//! TCP connect of an outbound connection has one of the server's own. Each
//! connection has at most one wheel entry, at its next deadline. A deadline that
//! moves later leaves the entry alone: when it fires, the connection is asked
//! again and re-armed at its new deadline, so a publisher's stream of frames
//! touches the wheel once per idle period, not once per frame. A deadline that
//! moves earlier (or appears) re-arms at once; `Connections::arm_timer` is
//! called wherever a session may have moved it.

use super::conn::{Conn, Proto};
use super::connections::Connections;
use super::worker::CoreState;
use crate::metrics::CloseReason;
use crate::runtime::Reactor;

impl Conn {
    /// The connection's next deadline (ms on the core clock), if any.
    pub(super) fn next_deadline(&self) -> Option<u64> {
        let session = match &self.proto {
            Proto::Rtmp(rc) => rc.poll_timeout(),
            Proto::Http(http) => http.poll_timeout(),
            Proto::Origin(oc) => oc.poll_timeout(),
            Proto::Relay(rc) => rc.poll_timeout(),
            Proto::Hook(hc) => hc.poll_timeout(),
        };
        let tls = self.tls.as_ref().and_then(|t| t.poll_timeout());
        [self.connect_deadline_ms, session, tls]
            .into_iter()
            .flatten()
            .min()
    }

    /// Hands `now_ms` to the connection's deadlines: why it must close, if one passed.
    fn handle_timeout(&mut self, now_ms: u64) -> Result<(), String> {
        if self.connect_deadline_ms.is_some_and(|d| now_ms >= d) {
            return Err("connect timeout".to_owned());
        }
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.handle_timeout(now_ms)?;
        }
        match &mut self.proto {
            Proto::Rtmp(rc) => rc.handle_timeout(now_ms),
            Proto::Http(http) => http.handle_timeout(now_ms),
            Proto::Origin(oc) => oc.handle_timeout(now_ms),
            Proto::Relay(rc) => rc.handle_timeout(now_ms),
            Proto::Hook(hc) => hc.handle_timeout(now_ms),
        }
    }
}

/// The wheel key of a connection: its slot and generation, so an entry left by
/// a closed connection never fires on the slot's next one.
fn key(slot: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(slot)
}

impl Connections {
    /// Makes sure `slot` has a wheel entry no later than its next deadline.
    pub(crate) fn arm_timer(&mut self, slot: u32) {
        let Some(conn) = self.at(slot) else {
            return;
        };
        if conn.closing {
            return;
        }
        let want = conn.next_deadline();
        let armed = conn.timer;
        let generation = conn.generation;
        match (armed, want) {
            // Fires first, then re-arms at the later deadline.
            (Some((_, armed)), Some(want)) if armed <= want => return,
            (None, None) => return,
            (Some((id, _)), _) => {
                self.timers.cancel(id);
                if let Some(conn) = self.at(slot) {
                    conn.timer = None;
                }
            }
            (None, Some(_)) => {}
        }
        let Some(deadline) = want else { return };
        match self.timers.insert(deadline, key(slot, generation)) {
            Ok(id) => {
                if let Some(conn) = self.at(slot) {
                    conn.timer = Some((id, deadline));
                }
            }
            Err(e) => {
                tracing::error!(core = self.core, slot, error = %e, "cannot arm a connection deadline; closing it");
                self.close_later(slot, CloseReason::IoError);
            }
        }
    }

    /// Drops `slot`'s wheel entry (it is closing).
    pub(crate) fn cancel_timer(&mut self, slot: u32) {
        if let Some((id, _)) = self.at(slot).and_then(|c| c.timer.take()) {
            self.timers.cancel(id);
        }
    }

    /// Takes the keys of every entry due at `now_ms` (hand the list back with
    /// [`Connections::fired_done`] to keep its allocation).
    fn take_fired(&mut self, now_ms: u64) -> Vec<u64> {
        let mut fired = std::mem::take(&mut self.fired);
        self.timers.expire(now_ms, |key| fired.push(key));
        fired
    }

    fn fired_done(&mut self, mut fired: Vec<u64>) {
        fired.clear();
        self.fired = fired;
    }

    /// Hands `now_ms` to the connection of a fired entry: re-armed at its next
    /// deadline if none has passed; else what is due.
    fn fire(&mut self, key: u64, now_ms: u64) -> Fired {
        let (slot, generation) = (key as u32, (key >> 32) as u32);
        let core = self.core;
        let Some(conn) = self.get_mut(slot, generation) else {
            return Fired::Nothing;
        };
        conn.timer = None;
        if conn.closing {
            return Fired::Nothing;
        }
        if let Proto::Http(http) = &conn.proto {
            if http.park_expired(now_ms) {
                return Fired::Held(slot);
            }
        }
        match conn.handle_timeout(now_ms) {
            Ok(()) => {
                self.arm_timer(slot);
                Fired::Nothing
            }
            Err(why) => {
                tracing::debug!(core, slot, peer = ?conn.peer, %why, "closing connection");
                Fired::Close(slot)
            }
        }
    }
}

/// What a fired wheel entry asks for.
enum Fired {
    /// Nothing (re-armed, or the connection is gone).
    Nothing,
    /// A deadline of the connection passed: close it.
    Close(u32),
    /// The HLS request parked on it is due (503, or a stalled stream ends).
    Held(u32),
}

impl CoreState {
    /// Fires every due entry: connections whose deadline passed close with
    /// [`CloseReason::Timeout`]; a held HLS request past its deadline is
    /// answered; the others are re-armed at their new deadline.
    pub(super) fn expire_timers(&mut self, r: &mut Reactor) {
        let now = self.now_ms();
        let fired = self.conns.take_fired(now);
        for &key in &fired {
            match self.conns.fire(key, now) {
                Fired::Nothing => {}
                Fired::Close(slot) => {
                    // Whichever deadline fired, a TLS handshake still under way never finished.
                    if self
                        .conns
                        .at(slot)
                        .and_then(|c| c.tls.as_ref())
                        .is_some_and(|t| t.handshake_pending())
                    {
                        self.metrics
                            .tls_handshakes
                            .inc(crate::metrics::TlsHandshakeResult::Timeout);
                    }
                    self.close_now(r, slot, CloseReason::Timeout);
                }
                Fired::Held(slot) => self.hls_held_due(slot),
            }
        }
        self.conns.fired_done(fired);
    }
}
