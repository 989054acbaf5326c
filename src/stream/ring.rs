//! The per-stream, per-core frame ring: recent frames with sequence numbers,
//! the start-up context (metadata, sequence headers) and the GOP cache.
//!
//! Entries are `Rc`-shared: a viewer's pending frames are a cursor (a sequence
//! number) into this ring, and the server holds an `Rc` only while a send is
//! in flight, so fan-out costs no refcount traffic per viewer per frame except
//! for frames actually being sent. Nothing here is `Send`; each core has its own.

use std::cell::OnceCell;
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;

use crate::protocol::{Frame, FrameKind};

/// Number of per-entry encoding cache slots (see [`RingEntry::encoding`]).
pub const ENCODING_SLOTS: usize = 4;

/// Names one encoding cache slot. The server assigns a meaning to each (e.g.
/// slot 0: RTMP shared chunks at its chunk size); the stream layer does not
/// know formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodingSlot(u8);

impl EncodingSlot {
    /// Slot 0.
    pub const S0: EncodingSlot = EncodingSlot(0);
    /// Slot 1.
    pub const S1: EncodingSlot = EncodingSlot(1);
    /// Slot 2.
    pub const S2: EncodingSlot = EncodingSlot(2);
    /// Slot 3.
    pub const S3: EncodingSlot = EncodingSlot(3);

    /// The slot with this index, if it exists.
    pub const fn new(index: usize) -> Option<Self> {
        if index < ENCODING_SLOTS {
            Some(EncodingSlot(index as u8))
        } else {
            None
        }
    }
}

/// What a viewer joining at a keyframe must receive first: the metadata and
/// the sequence headers that were current when that keyframe arrived.
#[derive(Debug, Default)]
pub struct StartContext {
    /// Latest `onMetaData` (script frame).
    pub metadata: Option<Rc<RingEntry>>,
    /// Latest audio sequence header.
    pub audio_header: Option<Rc<RingEntry>>,
    /// Latest video sequence header.
    pub video_header: Option<Rc<RingEntry>>,
}

impl StartContext {
    /// The context entries in send order (metadata, audio, video), present ones only.
    pub fn entries(&self) -> impl Iterator<Item = &Rc<RingEntry>> {
        [&self.metadata, &self.audio_header, &self.video_header]
            .into_iter()
            .flatten()
    }

    /// The `index`th present entry in send order.
    pub fn get(&self, index: usize) -> Option<&Rc<RingEntry>> {
        self.entries().nth(index)
    }
}

/// One frame in the ring.
#[derive(Debug)]
pub struct RingEntry {
    seq: u64,
    stream_ts: u64,
    arrival_ms: u64,
    /// When the frame reached this server, µs on the shared server clock (on the
    /// ingesting core: a replica keeps the owner's value, so latency counts the hop).
    arrived_us: u64,
    /// Bytes pushed into the ring before this entry (for O(1) byte lag).
    byte_offset: u64,
    frame: Frame,
    /// Set on keyframes: what a viewer starting here needs first.
    start: Option<Rc<StartContext>>,
    encodings: [OnceCell<Bytes>; ENCODING_SLOTS],
}

impl RingEntry {
    /// Sequence number in this ring (strictly increasing by one).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The frame. Its `timestamp` is the corrected stream time wrapped to 32
    /// bits (what replicas receive), not the publisher's raw value.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// Corrected, monotonic stream time (ms).
    pub fn stream_ts(&self) -> u64 {
        self.stream_ts
    }

    /// When the frame was pushed (the `now_ms` given to the push).
    pub fn arrival_ms(&self) -> u64 {
        self.arrival_ms
    }

    /// When the frame reached this server (µs on the clock every core shares),
    /// for the frame-received → send-completed latency.
    pub fn arrived_us(&self) -> u64 {
        self.arrived_us
    }

    /// The start-up context, if this is a keyframe.
    pub fn start_context(&self) -> Option<&Rc<StartContext>> {
        self.start.as_ref()
    }

    /// The payload encoded for one output format, computed by `make` on first
    /// use and shared by every viewer of this core afterwards.
    pub fn encoding(&self, slot: EncodingSlot, make: impl FnOnce(&Frame) -> Bytes) -> &Bytes {
        // EncodingSlot can only hold indices below ENCODING_SLOTS.
        self.encodings[usize::from(slot.0)].get_or_init(|| make(&self.frame))
    }
}

/// Caps on what one ring holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingLimits {
    /// Most frames held.
    pub max_frames: usize,
    /// Most payload bytes held. Should exceed the viewers' `hard_lag_bytes` so
    /// the lag policy, not eviction, decides who is too slow.
    pub max_bytes: usize,
    /// Frames older than this (by arrival) are dropped unless they are part of
    /// the GOP cache. Should exceed the viewers' `hard_lag_ms`.
    pub max_age_ms: u64,
}

impl Default for RingLimits {
    fn default() -> Self {
        RingLimits {
            max_frames: 16_384,
            max_bytes: 64 << 20,
            max_age_ms: 15_000,
        }
    }
}

/// Frames of one stream on one core.
#[derive(Debug)]
pub struct Ring {
    limits: RingLimits,
    entries: VecDeque<Rc<RingEntry>>,
    /// Sequence number the next pushed frame gets.
    next_seq: u64,
    /// Payload bytes currently held.
    held_bytes: usize,
    /// Total payload bytes ever pushed (the next entry's `byte_offset`).
    pushed_bytes: u64,
    context: Rc<StartContext>,
    last_keyframe_seq: Option<u64>,
    has_video: bool,
    evicted: u64,
    /// No reader needs frames below this: outside the GOP cache they may go
    /// before the age limit (see [`Ring::set_reader_floor`]).
    reader_floor: u64,
}

impl Ring {
    /// An empty ring.
    pub fn new(limits: RingLimits) -> Self {
        Ring {
            limits,
            entries: VecDeque::new(),
            next_seq: 0,
            held_bytes: 0,
            pushed_bytes: 0,
            context: Rc::new(StartContext::default()),
            last_keyframe_seq: None,
            has_video: false,
            evicted: 0,
            reader_floor: 0,
        }
    }

    /// Appends a frame (its `timestamp` already set to the stream time wrapped
    /// to 32 bits), then evicts what the limits no longer allow.
    pub fn push(&mut self, frame: Frame, stream_ts: u64, now_ms: u64) -> Rc<RingEntry> {
        self.push_arrived(frame, stream_ts, now_ms, now_ms.saturating_mul(1_000))
    }

    /// [`Ring::push`] of a frame that reached the server at `arrived_us` (finer
    /// than `now_ms`, or earlier: on another core).
    pub fn push_arrived(
        &mut self,
        mut frame: Frame,
        stream_ts: u64,
        now_ms: u64,
        arrived_us: u64,
    ) -> Rc<RingEntry> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let len = frame.payload.len();
        let kind = frame.kind;
        let is_key = frame.keyframe;
        let is_header = frame.sequence_header;
        let is_metadata = kind == FrameKind::Script && frame.payload.starts_with(METADATA_PREFIX);
        if is_header || is_metadata {
            // The start context keeps this for the stream's lifetime. Its payload
            // usually shares a large arena block with other frames; a few
            // hundred bytes must not keep megabytes alive, so it gets its own
            // exact-size allocation (a rare copy: headers change seldom).
            frame.payload = Bytes::copy_from_slice(&frame.payload);
        }
        if kind == FrameKind::Video {
            self.has_video = true;
        }
        let entry = Rc::new(RingEntry {
            seq,
            stream_ts,
            arrival_ms: now_ms,
            arrived_us,
            byte_offset: self.pushed_bytes,
            start: is_key.then(|| self.context.clone()),
            frame,
            encodings: Default::default(),
        });
        self.pushed_bytes += len as u64;
        self.held_bytes += len;
        self.entries.push_back(entry.clone());
        if is_key {
            self.last_keyframe_seq = Some(seq);
        }
        self.update_context(&entry, kind, is_header || is_metadata);
        self.evict(now_ms);
        entry
    }

    fn update_context(&mut self, entry: &Rc<RingEntry>, kind: FrameKind, is_context: bool) {
        if !is_context {
            return;
        }
        let old = &*self.context;
        let mut next = StartContext {
            metadata: old.metadata.clone(),
            audio_header: old.audio_header.clone(),
            video_header: old.video_header.clone(),
        };
        match kind {
            FrameKind::Script => next.metadata = Some(entry.clone()),
            FrameKind::Audio => next.audio_header = Some(entry.clone()),
            FrameKind::Video => {
                let unchanged = old
                    .video_header
                    .as_ref()
                    .is_some_and(|h| h.frame.payload == entry.frame.payload);
                if !unchanged {
                    // The cached GOP was coded against the old configuration.
                    self.last_keyframe_seq = None;
                }
                next.video_header = Some(entry.clone());
            }
        }
        self.context = Rc::new(next);
    }

    fn evict(&mut self, now_ms: u64) {
        while let Some(front) = self.entries.front() {
            let over_count = self.entries.len() > self.limits.max_frames;
            let over_bytes = self.held_bytes > self.limits.max_bytes;
            let in_gop = self.last_keyframe_seq.is_some_and(|k| front.seq >= k);
            let too_old =
                now_ms.saturating_sub(front.arrival_ms) > self.limits.max_age_ms && !in_gop;
            let unneeded = front.seq < self.reader_floor && !in_gop;
            if !(over_count || over_bytes || too_old || unneeded) {
                break;
            }
            let seq = front.seq;
            self.held_bytes -= front.frame.payload.len();
            self.entries.pop_front();
            self.evicted += 1;
            if self.last_keyframe_seq == Some(seq) {
                self.last_keyframe_seq = None;
            }
        }
    }

    /// Declares that no reader needs frames below `seq`, so frames outside the
    /// GOP cache can be dropped as soon as they are older than that instead
    /// of after the age limit: a stream whose viewers keep up holds about one
    /// GOP, not `max_age_ms` of history. Takes effect on the next push.
    pub fn set_reader_floor(&mut self, seq: u64) {
        self.reader_floor = seq;
    }

    /// Lowers the reader floor to `seq` if it is above (a reader needs `seq`).
    pub fn lower_reader_floor(&mut self, seq: u64) {
        self.reader_floor = self.reader_floor.min(seq);
    }

    /// The entry with sequence number `seq`, if still held.
    pub fn get(&self, seq: u64) -> Option<&Rc<RingEntry>> {
        let first = self.first_seq();
        let index = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.entries.get(index)
    }

    /// Sequence number of the oldest held entry (== `next_seq()` when empty).
    pub fn first_seq(&self) -> u64 {
        self.entries.front().map_or(self.next_seq, |e| e.seq)
    }

    /// Sequence number the next pushed frame will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Payload bytes from `seq` to the newest entry.
    pub fn bytes_from(&self, seq: u64) -> u64 {
        match self.get(seq) {
            Some(e) => self.pushed_bytes - e.byte_offset,
            None => 0,
        }
    }

    /// The keyframe that starts the GOP cache, if it is held.
    pub fn gop_start(&self) -> Option<&Rc<RingEntry>> {
        self.last_keyframe_seq.and_then(|k| self.get(k))
    }

    /// The metadata and sequence headers current now.
    pub fn context(&self) -> &Rc<StartContext> {
        &self.context
    }

    /// True once any video frame was pushed: viewers then start at keyframes.
    pub fn has_video(&self) -> bool {
        self.has_video
    }

    /// Records that the stream has video although none was pushed here (a
    /// replica whose snapshot holds no video frame), so viewers here start at
    /// keyframes like viewers on the owner core.
    pub fn mark_has_video(&mut self) {
        self.has_video = true;
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Payload bytes held.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Frames evicted so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// What a new replica needs to start viewers at the same place as here:
    /// the start context, then every frame of the GOP cache (or just the
    /// current context when there is no GOP), with stream-time timestamps.
    pub fn snapshot(&self) -> Vec<Frame> {
        let (context, from, start_ts) = match self.gop_start() {
            Some(k) => (
                k.start.clone().unwrap_or_else(|| self.context.clone()),
                k.seq,
                k.frame.timestamp,
            ),
            None => {
                let last_ts = self.entries.back().map_or(0, |e| e.frame.timestamp);
                (self.context.clone(), self.next_seq, last_ts)
            }
        };
        // The context is sent "at" the start frame. Its own timestamps may be
        // hours older, too far for the replica to unwrap against the next frame.
        let mut frames: Vec<Frame> = context
            .entries()
            .map(|e| Frame {
                timestamp: start_ts,
                ..e.frame.clone()
            })
            .collect();
        let first = self.first_seq();
        let skip = usize::try_from(from.saturating_sub(first)).unwrap_or(usize::MAX);
        frames.extend(self.entries.iter().skip(skip).map(|e| e.frame.clone()));
        frames
    }
}

/// AMF0 string marker + length 10 + `onMetaData`: the payload prefix of a metadata frame.
const METADATA_PREFIX: &[u8] = b"\x02\x00\x0aonMetaData";

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn video(ts: u32, key: bool) -> Frame {
        let b0 = if key { 0x17 } else { 0x27 };
        Frame::new(
            FrameKind::Video,
            ts,
            Bytes::from(vec![b0, 1, 0, 0, 0, 0xAA, 0xBB]),
        )
    }
    pub(crate) fn video_header(ts: u32, variant: u8) -> Frame {
        Frame::new(
            FrameKind::Video,
            ts,
            Bytes::from(vec![0x17, 0, 0, 0, 0, variant]),
        )
    }
    pub(crate) fn audio(ts: u32) -> Frame {
        Frame::new(
            FrameKind::Audio,
            ts,
            Bytes::from_static(&[0xaf, 1, 0x21, 0x22]),
        )
    }
    pub(crate) fn audio_header(ts: u32) -> Frame {
        Frame::new(
            FrameKind::Audio,
            ts,
            Bytes::from_static(&[0xaf, 0, 0x12, 0x10]),
        )
    }
    pub(crate) fn metadata(ts: u32) -> Frame {
        let mut body = METADATA_PREFIX.to_vec();
        body.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 0, 9]);
        Frame::new(FrameKind::Script, ts, Bytes::from(body))
    }

    fn push(r: &mut Ring, f: Frame, now: u64) -> Rc<RingEntry> {
        let ts = u64::from(f.timestamp);
        r.push(f, ts, now)
    }

    #[test]
    fn tracks_context_and_gop() {
        let mut r = Ring::new(RingLimits::default());
        push(&mut r, metadata(0), 0);
        push(&mut r, video_header(0, 1), 0);
        push(&mut r, audio_header(0), 0);
        assert!(r.gop_start().is_none());
        let k = push(&mut r, video(0, true), 0);
        push(&mut r, audio(10), 10);
        push(&mut r, video(40, false), 40);
        assert_eq!(r.gop_start().map(|e| e.seq()), Some(k.seq()));
        let ctx = k.start_context().unwrap();
        let kinds: Vec<_> = ctx
            .entries()
            .map(|e| (e.frame().kind, e.frame().sequence_header))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (FrameKind::Script, false),
                (FrameKind::Audio, true),
                (FrameKind::Video, true)
            ]
        );
        let snap = r.snapshot();
        assert_eq!(snap.len(), 3 + 3);
        assert!(snap[3].keyframe);
        assert!(
            snap.iter().all(|f| f.timestamp >= snap[3].timestamp),
            "context sent at the keyframe's time"
        );
    }

    #[test]
    fn context_frames_do_not_share_the_buffer_they_arrived_in() {
        // `backing` stands in for an arena block: every payload is a slice of
        // it, so an entry keeping its slice would keep the whole block alive.
        let meta = metadata(0);
        let header = video_header(0, 1);
        let h_at = 4096;
        let mut backing = vec![0u8; 64 << 10];
        backing[..meta.payload.len()].copy_from_slice(&meta.payload);
        backing[h_at..h_at + header.payload.len()].copy_from_slice(&header.payload);
        let block = Bytes::from(backing);
        let in_block = |p: &Bytes| {
            let start = block.as_ptr() as usize;
            (start..start + block.len()).contains(&(p.as_ptr() as usize))
        };
        let meta_len = meta.payload.len();
        let header_len = header.payload.len();
        let mut r = Ring::new(RingLimits::default());
        let carved = |f: Frame, at: usize, len: usize| Frame {
            payload: block.slice(at..at + len),
            ..f
        };
        push(&mut r, carved(meta.clone(), 0, meta_len), 0);
        push(&mut r, carved(header.clone(), h_at, header_len), 0);
        let media = push(&mut r, carved(video(0, false), 8192, 1000), 0);
        let ctx = r.context();
        let kept: Vec<_> = ctx.entries().map(|e| e.frame().payload.clone()).collect();
        assert_eq!(kept, vec![meta.payload, header.payload], "same bytes");
        for p in &kept {
            assert!(!in_block(p), "a context entry pins its block");
        }
        assert!(in_block(&media.frame().payload), "media is not copied");
    }

    #[test]
    fn changed_video_header_invalidates_gop_but_repeat_does_not() {
        let mut r = Ring::new(RingLimits::default());
        push(&mut r, video_header(0, 1), 0);
        push(&mut r, video(0, true), 0);
        push(&mut r, video_header(40, 1), 40);
        assert!(r.gop_start().is_some(), "identical header repeated");
        push(&mut r, video_header(80, 2), 80);
        assert!(r.gop_start().is_none(), "new codec config");
    }

    #[test]
    fn bounded_by_frames_bytes_and_age() {
        let limits = RingLimits {
            max_frames: 10,
            max_bytes: 1000,
            max_age_ms: 100,
        };
        let mut r = Ring::new(limits);
        for i in 0..100u32 {
            push(&mut r, audio(i), 0);
        }
        assert_eq!(r.len(), 10);
        assert_eq!(r.first_seq(), 90);
        assert!(r.get(89).is_none());
        assert_eq!(r.get(95).map(|e| e.seq()), Some(95));
        assert_eq!(r.bytes_from(95), 5 * 4);
        push(&mut r, audio(200), 200);
        assert_eq!(r.len(), 1, "everything older than 100 ms dropped");
        let big = Frame::new(FrameKind::Audio, 0, Bytes::from(vec![0xaf; 600]));
        push(&mut r, big.clone(), 200);
        push(&mut r, big, 200);
        assert!(r.held_bytes() <= 1000);
    }

    #[test]
    fn age_limit_keeps_gop_but_caps_evict_it() {
        let limits = RingLimits {
            max_frames: 5,
            max_bytes: 1 << 20,
            max_age_ms: 100,
        };
        let mut r = Ring::new(limits);
        push(&mut r, video(0, true), 0);
        push(&mut r, video(500, false), 500);
        assert!(r.gop_start().is_some(), "GOP survives the age limit");
        for i in 0..5 {
            push(&mut r, video(600 + i, false), 600);
        }
        assert!(r.gop_start().is_none(), "frame cap evicted the keyframe");
    }

    #[test]
    fn reader_floor_drops_unneeded_history_but_keeps_the_gop() {
        let mut r = Ring::new(RingLimits::default());
        push(&mut r, video(0, true), 0);
        push(&mut r, video(40, false), 40);
        push(&mut r, video(80, true), 80);
        push(&mut r, audio(90), 90);
        assert_eq!(r.len(), 4, "age limit not reached, floor 0");
        r.set_reader_floor(1);
        push(&mut r, audio(100), 100);
        assert_eq!(r.first_seq(), 1, "seq 0 was not needed");
        r.set_reader_floor(u64::MAX);
        push(&mut r, audio(110), 110);
        assert_eq!(r.first_seq(), 2, "the GOP from the last keyframe stays");
        r.lower_reader_floor(0);
        assert_eq!(r.reader_floor, 0);
    }

    #[test]
    fn encoding_cache_is_computed_once() {
        let mut r = Ring::new(RingLimits::default());
        let e = push(&mut r, audio(0), 0);
        let mut calls = 0;
        let a = e.encoding(EncodingSlot::S0, |f| {
            calls += 1;
            f.payload.clone()
        });
        assert_eq!(a.len(), 4);
        e.encoding(EncodingSlot::S0, |_| {
            calls += 1;
            Bytes::new()
        });
        assert_eq!(calls, 1);
        assert_eq!(
            e.encoding(EncodingSlot::S1, |_| Bytes::from_static(b"x"))
                .as_ref(),
            b"x"
        );
        assert!(EncodingSlot::new(ENCODING_SLOTS).is_none());
    }
}
