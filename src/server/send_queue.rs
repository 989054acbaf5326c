//! Which connections send at the end of this turn, and the flush policy that
//! decides when a viewer with new frames sends.
//!
//! A viewer is flushed at the end of the turn when a frame that matters now
//! reaches it (video, a sequence header, metadata: [`WakeKind::Now`]). An audio
//! frame ([`WakeKind::Deferrable`]) may wait up to `runtime.audio_flush_delay` so
//! that it rides in the same gathered send as the next video frame: each send pays
//! a fixed kernel cost however many frames it carries, and ~47 of the ~77 frames a
//! viewer is owed per second (30 fps video, 48 kHz AAC) are audio.
//! `runtime.send_merge_window` delays every wake alike. The delays use one
//! deadline per core (the earliest any waiting viewer is owed), never a timer per
//! viewer: when it passes, every waiting viewer joins the ready list.
//!
//! A turn flushes at most `runtime.max_sends_per_turn` connections, taken in
//! order: connections that are not viewers (handshakes, requests' answers) and a
//! joining viewer's first send first, then viewers in the order they became ready.
//! The rest stay queued for the next turn, which first collects completions, so a
//! frame that arrives while a long ready list is being worked through reaches the
//! viewers not yet sent to in the same pass, and a handshake's reply never waits
//! behind every viewer of the core.
//!
//! Building and submitting each send is `CoreState::flush_ready`'s (it needs the
//! reactor, the shard and the connection's outbox); this type only keeps the order
//! and the flags (`Conn::queued`, `Conn::woken`) that make each connection appear
//! at most once in each list.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::connections::Connections;
use crate::protocol::{Frame, FrameKind};
use crate::stream::{StreamId, ViewerId};

/// How soon viewers woken by a new frame must send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeKind {
    /// Video, sequence headers, metadata, a stream's start: at the end of the turn
    /// (or of the send-merge window), with whatever audio waits before it.
    Now,
    /// Audio: may wait up to the audio flush delay for a video frame to ride with.
    Deferrable,
}

impl WakeKind {
    /// What a newly published `frame` asks of its viewers' sends.
    pub fn of(frame: &Frame) -> WakeKind {
        if frame.kind == FrameKind::Audio && !frame.sequence_header {
            WakeKind::Deferrable
        } else {
            WakeKind::Now
        }
    }
}

/// Viewers of one stream waiting to send.
#[derive(Default)]
struct Waiting {
    /// When they become ready: the earliest deadline any of them is owed.
    due: Option<Instant>,
    /// Their connections; an entry whose `Conn::woken` was cleared by a flush
    /// meanwhile is skipped.
    slots: Vec<u32>,
}

/// A core's ready list and its waiting (woken, not yet ready) viewers.
pub struct SendQueue {
    /// How long any woken viewer waits for more frames; zero sends at once.
    window: Duration,
    /// How long a viewer woken by audio only may wait (at least `window`).
    audio_delay: Duration,
    /// Viewers with something to send, flushed in this order.
    ready: VecDeque<u32>,
    /// Connections that go before `ready`: not viewers (a session's replies, an
    /// HTTP answer) or a viewer's first send.
    urgent: VecDeque<u32>,
    /// Most connections one turn flushes.
    per_turn: usize,
    /// Viewers woken and waiting, by stream: the shard wakes a viewer once (when
    /// it had run dry), so the stream's next video frame wakes no one and must
    /// release its waiting viewers itself. Only streams that had viewers waiting
    /// since the last deadline have an entry.
    waiting: HashMap<StreamId, Waiting>,
    /// The earliest `Waiting::due`: when the turn must wake up.
    merge_deadline: Option<Instant>,
}

impl SendQueue {
    /// An empty queue merging every viewer wake-up over `window`, and wake-ups by
    /// audio alone over `audio_delay` (if longer), flushing at most `per_turn`
    /// connections a turn.
    pub fn new(window: Duration, audio_delay: Duration, per_turn: usize) -> SendQueue {
        SendQueue {
            window,
            audio_delay: audio_delay.max(window),
            ready: VecDeque::new(),
            urgent: VecDeque::new(),
            per_turn: per_turn.max(1),
            waiting: HashMap::new(),
            merge_deadline: None,
        }
    }

    /// Queues `slot` for a send at the end of the turn (a connection that is not
    /// a viewer goes ahead of the viewers).
    pub fn mark_ready(&mut self, conns: &mut Connections, slot: u32) {
        self.queue(conns, slot, false);
    }

    /// Queues `slot` ahead of the viewers: a viewer's first send (its join).
    pub fn mark_urgent(&mut self, conns: &mut Connections, slot: u32) {
        self.queue(conns, slot, true);
    }

    /// Queues `slot` once; `join`: a viewer's first send, which goes ahead like
    /// every connection that is not a viewer.
    fn queue(&mut self, conns: &mut Connections, slot: u32, join: bool) {
        if let Some(conn) = conns.at(slot) {
            if !conn.queued && !conn.closing {
                conn.queued = true;
                match join || conn.viewer.is_none() {
                    true => self.urgent.push_back(slot),
                    false => self.ready.push_back(slot),
                }
            }
        }
    }

    /// How long a wake of this kind may wait.
    fn delay(&self, kind: WakeKind) -> Duration {
        match kind {
            WakeKind::Now => self.window,
            WakeKind::Deferrable => self.audio_delay,
        }
    }

    /// `stream` has a new frame of `kind` and `slots` are the connections of its
    /// viewers that had run dry. With no delay for the kind they send at the end
    /// of the turn, and so do the stream's viewers already waiting (their audio
    /// rides with this frame); otherwise they wait, at most the kind's delay from
    /// `now`, so frames arriving meanwhile leave in the same gathered send.
    pub fn wake(
        &mut self,
        conns: &mut Connections,
        stream: StreamId,
        slots: impl IntoIterator<Item = u32>,
        kind: WakeKind,
        now: Instant,
    ) {
        let delay = self.delay(kind);
        if delay.is_zero() {
            self.release_stream(conns, stream);
            for slot in slots {
                self.mark_ready(conns, slot);
            }
            return;
        }
        let waiting = self.waiting.entry(stream).or_default();
        for slot in slots {
            let Some(conn) = conns.at(slot) else {
                continue;
            };
            if !(conn.queued || conn.woken || conn.closing) {
                conn.woken = true;
                waiting.slots.push(slot);
            }
        }
        if waiting.slots.is_empty() {
            return;
        }
        // A video frame brings the stream's waiting viewers forward to the window.
        let due = waiting.due.map_or(now + delay, |d| d.min(now + delay));
        waiting.due = Some(due);
        self.merge_deadline = Some(self.merge_deadline.map_or(due, |d| d.min(due)));
    }

    /// Moves the viewers of `stream` still waiting to the ready list.
    fn release_stream(&mut self, conns: &mut Connections, stream: StreamId) {
        let Some(waiting) = self.waiting.get_mut(&stream) else {
            return;
        };
        let was_due = waiting.due.take();
        let mut slots = std::mem::take(&mut waiting.slots);
        self.release(conns, &mut slots);
        if let Some(waiting) = self.waiting.get_mut(&stream) {
            // Keep the allocation for the stream's next waiting viewers.
            waiting.slots = slots;
        }
        if was_due.is_some() && was_due == self.merge_deadline {
            self.merge_deadline = self.waiting.values().filter_map(|w| w.due).min();
        }
    }

    /// Moves the connections of `slots` still waiting to the ready list, emptying it.
    fn release(&mut self, conns: &mut Connections, slots: &mut Vec<u32>) {
        for slot in slots.drain(..) {
            let Some(conn) = conns.at(slot) else {
                continue;
            };
            if std::mem::take(&mut conn.woken) {
                self.mark_ready(conns, slot);
            }
        }
    }

    /// Wakes ([`SendQueue::wake`]) the connection of each viewer in `ids` that
    /// `viewer_conns` knows, for a frame of `kind` of `stream`; the clock is read
    /// once.
    pub fn wake_viewers(
        &mut self,
        conns: &mut Connections,
        viewer_conns: &HashMap<ViewerId, u32>,
        stream: StreamId,
        ids: &[ViewerId],
        kind: WakeKind,
    ) {
        if ids.is_empty() && (kind == WakeKind::Deferrable || self.waiting.is_empty()) {
            return;
        }
        let slots = ids.iter().filter_map(|id| viewer_conns.get(id).copied());
        self.wake(conns, stream, slots, kind, Instant::now());
    }

    /// Queues ([`SendQueue::mark_ready`]) the connection of each viewer in `ids`
    /// that `viewer_conns` knows, with no delay (e.g. their stream ended).
    pub fn ready_viewers(
        &mut self,
        conns: &mut Connections,
        viewer_conns: &HashMap<ViewerId, u32>,
        ids: &[ViewerId],
    ) {
        for id in ids {
            if let Some(&slot) = viewer_conns.get(id) {
                self.mark_ready(conns, slot);
            }
        }
    }

    /// Moves the viewers whose deadline has passed to the ready list (those
    /// flushed meanwhile, e.g. with a video frame, are not).
    pub fn end_merge_window(&mut self, conns: &mut Connections, now: Instant) {
        if self.merge_deadline.is_none_or(|d| d > now) {
            return;
        }
        let mut waiting = std::mem::take(&mut self.waiting);
        // A stream with no one waiting since its last deadline loses its entry (so
        // an ended stream is forgotten); the others keep their allocation.
        waiting.retain(|_, w| match w.due {
            Some(due) if due <= now => {
                w.due = None;
                self.release(conns, &mut w.slots);
                true
            }
            Some(_) => true,
            None => false,
        });
        self.waiting = waiting;
        self.merge_deadline = self.waiting.values().filter_map(|w| w.due).min();
    }

    /// Takes this turn's share of the ready connections (urgent ones first, at
    /// most `per_turn` in all) into `out` to flush them; the rest wait for the next
    /// turn. Flushing may queue connections again (e.g. a finished viewer).
    /// Viewers keep at least a quarter of the share, so a flood of requests cannot
    /// starve them (nor they the requests).
    pub fn take_turn(&mut self, out: &mut Vec<u32>) {
        out.clear();
        let kept_for_viewers = self.ready.len().min(self.per_turn / 4);
        let from_urgent = self.urgent.len().min(self.per_turn - kept_for_viewers);
        out.extend(self.urgent.drain(..from_urgent));
        let from_ready = self.ready.len().min(self.per_turn - from_urgent);
        out.extend(self.ready.drain(..from_ready));
    }

    /// Every ready connection in flush order (tests).
    #[cfg(test)]
    fn take_ready(&mut self) -> Vec<u32> {
        self.urgent.drain(..).chain(self.ready.drain(..)).collect()
    }

    /// Nothing is ready to send now.
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.urgent.is_empty()
    }

    /// How long the turn may sleep: until the waiting viewers' deadline, at most `max`.
    pub fn wait(&self, max: Duration) -> Duration {
        self.merge_deadline.map_or(max, |d| {
            d.saturating_duration_since(Instant::now()).min(max)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::conn::{Egress, ViewerState};
    use crate::server::connections::test_conn;
    use crate::server::egress_flv::FlvEgress;
    use crate::stream::{Role, Shard, ShardConfig, StreamId, StreamKey, ViewerOptions};
    use bytes::Bytes;

    const HOUR: Duration = Duration::from_secs(3600);
    const S: StreamId = StreamId(7);
    const OTHER: StreamId = StreamId(8);

    /// A playing HTTP-FLV viewer (its id from a shard of its own).
    fn test_viewer() -> ViewerState {
        let mut shard = Shard::new(0, ShardConfig::default());
        let key = StreamKey::new("live", "v").unwrap();
        shard
            .open_stream(key, S, Role::Owner { generation: 1 }, 0)
            .unwrap();
        ViewerState {
            id: shard.add_viewer(S, ViewerOptions::default()).unwrap(),
            egress: Egress::Flv(FlvEgress::new(false)),
            finished: false,
        }
    }

    fn frame(kind: FrameKind, payload: &'static [u8]) -> Frame {
        Frame::new(kind, 0, Bytes::from_static(payload))
    }

    #[test]
    fn only_plain_audio_may_wait() {
        // AAC raw frame (0xAF, packet type 1) waits; its sequence header (type 0),
        // video of any kind and metadata do not.
        assert_eq!(
            WakeKind::of(&frame(FrameKind::Audio, &[0xAF, 1, 0x21])),
            WakeKind::Deferrable
        );
        assert_eq!(
            WakeKind::of(&frame(FrameKind::Audio, &[0xAF, 0, 0x12, 0x10])),
            WakeKind::Now
        );
        assert_eq!(
            WakeKind::of(&frame(FrameKind::Video, &[0x27, 1, 0, 0, 0])),
            WakeKind::Now
        );
        assert_eq!(
            WakeKind::of(&frame(FrameKind::Video, &[0x17, 1, 0, 0, 0])),
            WakeKind::Now
        );
        assert_eq!(
            WakeKind::of(&frame(FrameKind::Script, &[2, 0, 0])),
            WakeKind::Now
        );
    }

    #[test]
    fn a_connection_is_ready_once_and_never_while_closing() {
        let mut conns = Connections::new(0, 8);
        let (a, b) = (conns.insert(test_conn), conns.insert(test_conn));
        let mut q = SendQueue::new(Duration::ZERO, Duration::ZERO, usize::MAX);
        let now = Instant::now();
        q.mark_ready(&mut conns, a);
        q.mark_ready(&mut conns, a);
        q.wake(&mut conns, S, [a], WakeKind::Now, now);
        q.wake(&mut conns, S, [a], WakeKind::Deferrable, now);
        conns.at(b).expect("b").closing = true;
        q.mark_ready(&mut conns, b);
        let ready = q.take_ready();
        assert_eq!(ready, vec![a]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_turn_takes_urgent_connections_first_and_at_most_its_share() {
        let mut conns = Connections::new(0, 8);
        let slots: Vec<u32> = (0..5).map(|_| conns.insert(test_conn)).collect();
        // Three viewers, then a session reply (not a viewer) and a joining viewer.
        for &slot in &slots[..3] {
            conns.at(slot).expect("conn").viewer = Some(test_viewer());
        }
        let mut q = SendQueue::new(Duration::ZERO, Duration::ZERO, 3);
        for &slot in &slots[..4] {
            q.mark_ready(&mut conns, slot);
        }
        conns.at(slots[4]).expect("conn").viewer = Some(test_viewer());
        q.mark_urgent(&mut conns, slots[4]);
        let mut turn = Vec::new();
        q.take_turn(&mut turn);
        assert_eq!(turn, vec![slots[3], slots[4], slots[0]]);
        assert!(!q.is_empty());
        // The rest wait, in order, for the next turn.
        q.take_turn(&mut turn);
        assert_eq!(turn, vec![slots[1], slots[2]]);
        assert!(q.is_empty());
        q.take_turn(&mut turn);
        assert!(turn.is_empty());
    }

    #[test]
    fn urgent_connections_never_take_the_viewers_whole_share() {
        let mut conns = Connections::new(0, 16);
        let viewers: Vec<u32> = (0..4).map(|_| conns.insert(test_conn)).collect();
        let others: Vec<u32> = (0..8).map(|_| conns.insert(test_conn)).collect();
        let mut q = SendQueue::new(Duration::ZERO, Duration::ZERO, 8);
        for &slot in &viewers {
            conns.at(slot).expect("conn").viewer = Some(test_viewer());
            q.mark_ready(&mut conns, slot);
        }
        for &slot in &others {
            q.mark_ready(&mut conns, slot);
        }
        let mut turn = Vec::new();
        q.take_turn(&mut turn);
        // Six requests' answers, then two viewers (a quarter of eight).
        assert_eq!(turn[..6], others[..6]);
        assert_eq!(turn[6..], viewers[..2]);
    }

    #[test]
    fn viewers_are_found_by_id_and_unknown_ids_are_ignored() {
        let mut conns = Connections::new(0, 8);
        let (a, b) = (conns.insert(test_conn), conns.insert(test_conn));
        // Viewer ids come from a shard.
        let mut shard = Shard::new(0, ShardConfig::default());
        let stream = StreamId(1);
        let key = StreamKey::new("live", "a").unwrap();
        shard
            .open_stream(key, stream, Role::Owner { generation: 1 }, 0)
            .unwrap();
        let mut viewer = || shard.add_viewer(stream, ViewerOptions::default()).unwrap();
        let (va, vb, unknown) = (viewer(), viewer(), viewer());
        let viewer_conns: HashMap<ViewerId, u32> = [(va, a), (vb, b)].into_iter().collect();
        let mut q = SendQueue::new(Duration::ZERO, Duration::ZERO, usize::MAX);
        q.wake_viewers(&mut conns, &viewer_conns, S, &[vb, unknown], WakeKind::Now);
        assert_eq!(q.take_ready(), vec![b]);
        // Flushed (`CoreState::flush_one` clears the flag).
        conns.at(b).expect("b").queued = false;
        let mut q = SendQueue::new(HOUR, Duration::ZERO, usize::MAX);
        // Waking waits for the window; an ended stream's viewers go at once.
        q.wake_viewers(&mut conns, &viewer_conns, S, &[va], WakeKind::Now);
        assert!(q.is_empty());
        q.ready_viewers(&mut conns, &viewer_conns, &[vb]);
        assert_eq!(q.take_ready(), vec![b]);
    }

    #[test]
    fn woken_viewers_wait_for_the_end_of_the_window() {
        let mut conns = Connections::new(0, 8);
        let (a, b) = (conns.insert(test_conn), conns.insert(test_conn));
        let mut q = SendQueue::new(HOUR, Duration::ZERO, usize::MAX);
        let now = Instant::now();
        q.wake(&mut conns, S, [a], WakeKind::Now, now);
        q.wake(&mut conns, S, [b], WakeKind::Deferrable, now);
        q.wake(&mut conns, S, [a], WakeKind::Now, now);
        assert!(q.is_empty());
        assert!(q.wait(Duration::from_millis(50)) <= Duration::from_millis(50));
        // Not yet over.
        q.end_merge_window(&mut conns, now);
        assert!(q.is_empty());
        q.end_merge_window(&mut conns, now + HOUR);
        assert_eq!(q.take_ready(), vec![a, b]);
        assert_eq!(q.wait(Duration::from_millis(50)), Duration::from_millis(50));
        assert!(!conns.at(a).expect("a").woken);
    }

    #[test]
    fn audio_waits_for_video_or_the_delay_and_video_never_waits() {
        let mut conns = Connections::new(0, 8);
        let (a, b) = (conns.insert(test_conn), conns.insert(test_conn));
        let delay = Duration::from_millis(30);
        let mut q = SendQueue::new(Duration::ZERO, delay, usize::MAX);
        let t0 = Instant::now();
        // Audio for both: nothing is ready; the turn sleeps at most the delay.
        q.wake(&mut conns, S, [a], WakeKind::Deferrable, t0);
        q.wake(&mut conns, S, [b], WakeKind::Deferrable, t0);
        assert!(q.is_empty());
        assert!(q.wait(HOUR) <= delay);
        // Video (10 ms later) wakes no one, as neither had run dry: the stream's
        // waiting viewers are ready at once, their audio rides along.
        q.wake(
            &mut conns,
            S,
            [],
            WakeKind::Now,
            t0 + Duration::from_millis(10),
        );
        assert_eq!(q.take_ready(), vec![a, b]);
        // Flushed (`CoreState::flush_one` clears both flags).
        for slot in [a, b] {
            let conn = conns.at(slot).expect("conn");
            (conn.queued, conn.woken) = (false, false);
        }
        // Audio for `a` on another stream: video of S does not release it.
        q.wake(
            &mut conns,
            OTHER,
            [a],
            WakeKind::Deferrable,
            t0 + Duration::from_millis(12),
        );
        q.wake(
            &mut conns,
            S,
            [],
            WakeKind::Now,
            t0 + Duration::from_millis(13),
        );
        assert!(q.is_empty());
        // Audio for `b` waits from now on.
        q.wake(
            &mut conns,
            S,
            [b],
            WakeKind::Deferrable,
            t0 + Duration::from_millis(20),
        );
        let due = t0 + Duration::from_millis(12) + delay;
        assert!(q.wait(HOUR) <= Duration::from_millis(12) + delay);
        q.end_merge_window(&mut conns, due - Duration::from_millis(1));
        assert!(q.is_empty());
        // Each stream's deadline counts from its own first waiting viewer.
        q.end_merge_window(&mut conns, due);
        assert_eq!(q.take_ready(), vec![a]);
        q.end_merge_window(&mut conns, t0 + Duration::from_millis(20) + delay);
        assert_eq!(q.take_ready(), vec![b]);
        assert_eq!(q.wait(HOUR), HOUR);
    }

    #[test]
    fn a_shorter_deadline_brings_every_waiting_viewer_forward() {
        let mut conns = Connections::new(0, 8);
        let (a, b) = (conns.insert(test_conn), conns.insert(test_conn));
        // Merge window 5 ms, audio 30 ms: video wakes cut the wait for everyone.
        let mut q = SendQueue::new(
            Duration::from_millis(5),
            Duration::from_millis(30),
            usize::MAX,
        );
        let t0 = Instant::now();
        q.wake(&mut conns, S, [a], WakeKind::Deferrable, t0);
        q.wake(&mut conns, S, [b], WakeKind::Now, t0);
        q.end_merge_window(&mut conns, t0 + Duration::from_millis(5));
        assert_eq!(q.take_ready(), vec![a, b]);
    }

    #[test]
    fn the_audio_delay_is_never_shorter_than_the_merge_window() {
        let mut conns = Connections::new(0, 8);
        let a = conns.insert(test_conn);
        let mut q = SendQueue::new(Duration::from_millis(20), Duration::ZERO, usize::MAX);
        let t0 = Instant::now();
        q.wake(&mut conns, S, [a], WakeKind::Deferrable, t0);
        assert!(q.is_empty());
        q.end_merge_window(&mut conns, t0 + Duration::from_millis(20));
        assert_eq!(q.take_ready(), vec![a]);
    }

    #[test]
    fn a_viewer_flushed_meanwhile_is_not_sent_to_again_at_the_deadline() {
        let mut conns = Connections::new(0, 8);
        let (a, b) = (conns.insert(test_conn), conns.insert(test_conn));
        let delay = Duration::from_millis(30);
        let mut q = SendQueue::new(Duration::ZERO, delay, usize::MAX);
        let t0 = Instant::now();
        q.wake(&mut conns, S, [a, b], WakeKind::Deferrable, t0);
        // `a`'s previous send completed: it is flushed now, with its audio
        // (`CoreState::flush_one` clears both flags).
        q.mark_ready(&mut conns, a);
        assert_eq!(q.take_ready(), vec![a]);
        let conn = conns.at(a).expect("a");
        (conn.queued, conn.woken) = (false, false);
        q.end_merge_window(&mut conns, t0 + delay);
        assert_eq!(q.take_ready(), vec![b]);
    }
}
