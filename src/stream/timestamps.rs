//! Timestamps: a monotonic per-stream timeline built from what encoders send,
//! and each viewer's output timeline on top of it.
//!
//! Encoders send 32-bit millisecond timestamps that wrap, jump back when they
//! restart, and sometimes leap hours ahead. Players stall or drop frames on
//! all of these, so the stream timeline is rebuilt here: wraps are unwrapped,
//! small backward steps (audio/video interleave jitter) are clamped so frames
//! keep their arrival order, and large jumps either way are rebased to continue
//! from the last frame. A publisher resuming a key in its grace period
//! continues the same timeline.

use crate::protocol::flv::frame::timestamp_delta;

/// How far timestamps may move before the stream timeline is rebased.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampPolicy {
    /// A step back up to this is interleave jitter (clamped); more is a restart (rebased).
    pub max_backward_ms: u32,
    /// A step forward above this is a broken-encoder jump (rebased).
    pub max_forward_ms: u32,
    /// Step used after a rebase before any normal step was seen.
    pub default_step_ms: u32,
}

impl Default for TimestampPolicy {
    fn default() -> Self {
        TimestampPolicy {
            max_backward_ms: 500,
            max_forward_ms: 10_000,
            default_step_ms: 10,
        }
    }
}

/// Turns a publisher's raw 32-bit timestamps into the stream's monotonic
/// 64-bit timeline (milliseconds).
#[derive(Clone, Debug)]
pub struct StreamClock {
    policy: TimestampPolicy,
    /// Last raw timestamp of the current publisher, and its unwrapped value.
    last_raw: Option<(u32, i64)>,
    /// `out = unwrapped + offset` until the next rebase.
    offset: i64,
    /// Last output; never decreases.
    last_out: Option<i64>,
    /// Last normal forward step, reused as the gap across a rebase.
    step: i64,
    rebases: u64,
    /// Set by `resume` until the new publisher's first timed frame.
    resuming: bool,
    /// Set by `resume_following` until the new upstream's first timed frame
    /// that is not a replay.
    following: bool,
    /// The last video keyframe's timeline value (`mark_keyframe`).
    last_keyframe: Option<i64>,
}

/// Longest gap a followed upstream may leave (an outage of the origin's
/// timeline) before its next frame is taken as a new timeline and re-based.
pub const MAX_FOLLOW_GAP_MS: i64 = 300_000;

impl StreamClock {
    /// A clock for a new stream; its timeline starts at the first raw timestamp.
    pub fn new(policy: TimestampPolicy) -> Self {
        StreamClock {
            policy,
            last_raw: None,
            offset: 0,
            last_out: None,
            step: i64::from(policy.default_step_ms),
            rebases: 0,
            resuming: false,
            following: false,
            last_keyframe: None,
        }
    }

    /// Maps one raw timestamp, in arrival order, to the stream timeline.
    pub fn correct(&mut self, raw: u32) -> u64 {
        let out = match (self.last_raw, self.last_out) {
            (None, None) => {
                self.offset = 0;
                self.last_raw = Some((raw, i64::from(raw)));
                i64::from(raw)
            }
            (None, Some(last_out)) if self.following => {
                // First new frame of a followed upstream: on the same timeline
                // (a gap forward, or the few frames past the end of a replay)
                // it keeps its own time; anything else is a new timeline.
                self.following = false;
                let unwrapped = last_out + i64::from(timestamp_delta(raw, low32(last_out)));
                let distance = unwrapped - last_out;
                if distance < -i64::from(self.policy.max_backward_ms)
                    || distance > MAX_FOLLOW_GAP_MS
                {
                    self.rebases += 1;
                    let out = last_out + self.step;
                    self.offset = out - i64::from(raw);
                    self.last_raw = Some((raw, i64::from(raw)));
                    out
                } else {
                    self.offset = 0;
                    self.last_raw = Some((raw, unwrapped));
                    unwrapped.max(last_out)
                }
            }
            (None, Some(last_out)) => {
                // First frame of a resuming publisher: continue after the last
                // frame. After untimed frames only: start at the raw time if it
                // does not go back.
                let distance = i64::from(raw) - last_out;
                let jump = distance > i64::from(self.policy.max_forward_ms)
                    || distance < -i64::from(self.policy.max_backward_ms);
                let out = if self.resuming || jump {
                    last_out + self.step
                } else {
                    i64::from(raw).max(last_out)
                };
                self.resuming = false;
                self.offset = out - i64::from(raw);
                self.last_raw = Some((raw, i64::from(raw)));
                out
            }
            (Some((prev_raw, prev_unwrapped)), last_out) => {
                let delta = i64::from(timestamp_delta(raw, prev_raw));
                let unwrapped = prev_unwrapped + delta;
                self.last_raw = Some((raw, unwrapped));
                let last_out = last_out.unwrap_or(0);
                if delta > i64::from(self.policy.max_forward_ms)
                    || delta < -i64::from(self.policy.max_backward_ms)
                {
                    self.rebases += 1;
                    tracing::debug!(raw, delta, "stream timestamp jump rebased");
                    self.offset = last_out + self.step - unwrapped;
                } else if delta > 0 {
                    self.step = delta;
                }
                (unwrapped + self.offset).max(last_out)
            }
        };
        self.last_out = Some(out);
        u64::try_from(out).unwrap_or(0)
    }

    /// Stamps a frame whose timestamp carries no timing (script data such as
    /// `onMetaData`, which encoders often send with timestamp 0 mid-stream):
    /// it goes at the current end of the timeline and does not move the clock.
    pub fn stamp_untimed(&mut self, raw: u32) -> u64 {
        let out = *self.last_out.get_or_insert(i64::from(raw));
        u64::try_from(out).unwrap_or(0)
    }

    /// A new publisher takes over the stream: its first frame continues the
    /// timeline right after the last one, whatever its raw timestamp.
    pub fn resume(&mut self) {
        self.last_raw = None;
        self.resuming = true;
    }

    /// An upstream that carries the stream's own timeline (an edge's pull of
    /// a ringcast origin) takes over again after a loss: frames it repeats
    /// (the origin's GOP cache, up to the end of the timeline here) are
    /// [`StreamClock::is_replay`], and its first new frame keeps its own time
    /// when it continues the timeline (a gap forward of up to
    /// [`MAX_FOLLOW_GAP_MS`]); otherwise it is re-based like
    /// [`StreamClock::resume`]'s.
    pub fn resume_following(&mut self) {
        self.last_raw = None;
        self.resuming = false;
        self.following = self.last_out.is_some();
    }

    /// Whether a timed frame at `raw` repeats media this timeline already has:
    /// only right after [`StreamClock::resume_following`], for frames from the
    /// last video keyframe seen (where a re-pulled GOP cache starts at the
    /// earliest) to the end of the timeline. Such frames are dropped, not stamped.
    pub fn is_replay(&self, raw: u32) -> bool {
        if !self.following {
            return false;
        }
        let (Some(last_out), Some(key)) = (self.last_out, self.last_keyframe) else {
            return false;
        };
        let unwrapped = last_out + i64::from(timestamp_delta(raw, low32(last_out)));
        (key..=last_out).contains(&unwrapped)
    }

    /// Notes that the frame just stamped at `ts` is a video keyframe.
    pub fn mark_keyframe(&mut self, ts: u64) {
        self.last_keyframe = i64::try_from(ts).ok();
    }

    /// The last timeline value produced, if any.
    pub fn last(&self) -> Option<u64> {
        self.last_out.and_then(|v| u64::try_from(v).ok())
    }

    /// How many times a jump forced a rebase (for stats).
    pub fn rebases(&self) -> u64 {
        self.rebases
    }
}

/// The low 32 bits of a timeline value (what the wire carries).
fn low32(v: i64) -> u32 {
    (v & 0xFFFF_FFFF) as u32
}

/// Where a viewer's output timestamps start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimelineMode {
    /// The viewer's first frame is at 0 (what players expect from a fresh connection).
    #[default]
    ZeroBased,
    /// Keep the stream timeline (wrapped to 32 bits), e.g. to align several outputs.
    Source,
}

/// One viewer's output timeline: maps stream time to the 32-bit timestamps it sends.
#[derive(Clone, Copy, Debug)]
pub struct ViewerTimeline {
    mode: TimelineMode,
    base: u64,
    last: u64,
}

impl ViewerTimeline {
    /// A timeline whose first frame is at stream time `start`.
    pub fn new(mode: TimelineMode, start: u64) -> Self {
        ViewerTimeline {
            mode,
            base: start,
            last: start,
        }
    }

    /// The output timestamp for a frame at stream time `stream_ts`. Never goes
    /// back: frames sent ahead of their place (the start-up metadata and
    /// sequence headers) take the timestamp of the frame they precede.
    pub fn map(&mut self, stream_ts: u64) -> u32 {
        self.last = self.last.max(stream_ts);
        let out = match self.mode {
            TimelineMode::ZeroBased => self.last - self.base,
            TimelineMode::Source => self.last,
        };
        // Wire timestamps are 32-bit and wrap; receivers compare them modulo 2^32.
        out as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(clock: &mut StreamClock, raws: &[u32]) -> Vec<u64> {
        raws.iter().map(|&r| clock.correct(r)).collect()
    }

    #[test]
    fn normal_stream_is_unchanged() {
        let mut c = StreamClock::new(TimestampPolicy::default());
        assert_eq!(
            run(&mut c, &[1000, 1023, 1033, 1046, 1066]),
            vec![1000, 1023, 1033, 1046, 1066]
        );
        assert_eq!(c.rebases(), 0);
    }

    #[test]
    fn wraparound_continues_forward() {
        let mut c = StreamClock::new(TimestampPolicy::default());
        let start = u32::MAX - 30;
        let out = run(&mut c, &[start, start + 20, 9, 29]);
        let s = u64::from(start);
        assert_eq!(out, vec![s, s + 20, s + 40, s + 60]);
    }

    #[test]
    fn interleave_jitter_is_clamped_not_rebased() {
        let mut c = StreamClock::new(TimestampPolicy::default());
        // video 1040 arrives before audio 1023
        let out = run(&mut c, &[1000, 1040, 1023, 1046, 1080]);
        assert_eq!(out, vec![1000, 1040, 1040, 1046, 1080]);
        assert_eq!(c.rebases(), 0);
    }

    #[test]
    fn backward_jump_is_rebased_after_last_frame() {
        let mut c = StreamClock::new(TimestampPolicy::default());
        let out = run(&mut c, &[50_000, 50_040, 0, 40, 80]);
        assert_eq!(out, vec![50_000, 50_040, 50_080, 50_120, 50_160]);
        assert_eq!(c.rebases(), 1);
    }

    #[test]
    fn huge_forward_jump_is_rebased() {
        let mut c = StreamClock::new(TimestampPolicy::default());
        let out = run(&mut c, &[0, 33, 66, 3_600_000_000, 3_600_000_033]);
        assert_eq!(out, vec![0, 33, 66, 99, 132]);
    }

    #[test]
    fn resume_continues_timeline() {
        let mut c = StreamClock::new(TimestampPolicy::default());
        run(&mut c, &[5000, 5020, 5040]);
        c.resume();
        assert_eq!(run(&mut c, &[123_456, 123_476]), vec![5060, 5080]);
    }

    #[test]
    fn a_followed_upstream_keeps_the_timeline_and_skips_its_replay() {
        let p = TimestampPolicy::default();
        let mut c = StreamClock::new(p);
        assert_eq!(run(&mut c, &[90_000, 90_040]), vec![90_000, 90_040]);
        c.mark_keyframe(90_040);
        assert_eq!(run(&mut c, &[90_080, 90_120]), vec![90_080, 90_120]);
        c.resume_following();
        // The re-pulled GOP cache starts at the last keyframe: already here.
        for raw in [90_040, 90_080, 90_120] {
            assert!(c.is_replay(raw), "{raw}");
        }
        assert!(
            !c.is_replay(90_000),
            "before the last keyframe: a new timeline"
        );
        assert!(!c.is_replay(90_160));
        assert_eq!(run(&mut c, &[90_160, 90_200]), vec![90_160, 90_200]);
        assert!(!c.is_replay(90_120), "only right after the resume");

        // A gap on the same timeline (the origin ran on): kept as is.
        c.resume_following();
        assert_eq!(run(&mut c, &[150_000, 150_040]), vec![150_000, 150_040]);
        assert_eq!(c.rebases(), 0);

        // A new timeline (the origin's stream restarted): re-based after the end.
        c.resume_following();
        assert!(!c.is_replay(0));
        assert_eq!(run(&mut c, &[0, 40]), vec![150_080, 150_120]);
        assert_eq!(c.rebases(), 1);
        c.resume_following();
        let far = 150_120 + MAX_FOLLOW_GAP_MS as u32 + 1;
        assert_eq!(run(&mut c, &[far]), vec![150_160]);

        // Past 2^32 ms the wire value wraps; the timeline does not.
        let mut w = StreamClock::new(p);
        let start = u32::MAX - 100;
        run(&mut w, &[start, start.wrapping_add(40)]);
        w.mark_keyframe(u64::from(start));
        w.resume_following();
        assert!(w.is_replay(start));
        assert_eq!(w.correct(start.wrapping_add(200)), u64::from(start) + 200);
    }

    #[test]
    fn untimed_frames_do_not_move_the_clock() {
        let mut c = StreamClock::new(TimestampPolicy::default());
        assert_eq!(c.stamp_untimed(0), 0);
        assert_eq!(c.correct(0), 0, "the first timed frame keeps its time");
        assert_eq!(c.correct(40), 40);
        assert_eq!(c.stamp_untimed(0), 40, "metadata at ts 0 mid-stream");
        assert_eq!(c.correct(80), 80);
        let mut late = StreamClock::new(TimestampPolicy::default());
        assert_eq!(late.stamp_untimed(5_000), 5_000);
        assert_eq!(
            late.correct(4_900),
            5_000,
            "never before an earlier untimed frame"
        );
        let mut far = StreamClock::new(TimestampPolicy::default());
        far.stamp_untimed(5);
        assert_eq!(
            far.correct(2_426_963_549),
            15,
            "a jump from untimed frames is rebased too"
        );
        assert_eq!(c.rebases(), 0);
    }

    #[test]
    fn viewer_timeline_zero_based_and_source() {
        let mut z = ViewerTimeline::new(TimelineMode::ZeroBased, 7000);
        assert_eq!(
            z.map(6000),
            0,
            "start-up headers older than the start frame map to 0"
        );
        assert_eq!(z.map(7000), 0);
        assert_eq!(z.map(7040), 40);
        let mut s = ViewerTimeline::new(TimelineMode::Source, 7000);
        assert_eq!(s.map(7040), 7040);
        assert_eq!(
            s.map(1 << 32),
            0,
            "source timeline wraps like the wire format"
        );
    }

    proptest::proptest! {
        #[test]
        fn a_followed_clock_is_monotonic_and_bounded(raws in proptest::collection::vec(proptest::num::u32::ANY, 1..200),
                                                      resume_at in proptest::collection::vec(0usize..200, 0..4)) {
            let mut c = StreamClock::new(TimestampPolicy::default());
            let mut last = None::<u64>;
            for (i, r) in raws.into_iter().enumerate() {
                if resume_at.contains(&i) { c.resume_following(); }
                if r % 5 == 0 { c.mark_keyframe(last.unwrap_or(0)); }
                if c.is_replay(r) { continue; }
                let out = c.correct(r);
                if let Some(last) = last {
                    proptest::prop_assert!(out >= last, "{out} < {last}");
                    proptest::prop_assert!(out - last <= MAX_FOLLOW_GAP_MS as u64, "jump {last} -> {out}");
                }
                last = Some(out);
            }
        }

        #[test]
        fn clock_is_monotonic_for_any_input(raws in proptest::collection::vec(proptest::num::u32::ANY, 1..200),
                                             resume_at in 0usize..200) {
            let mut c = StreamClock::new(TimestampPolicy::default());
            let mut last = 0u64;
            for (i, r) in raws.into_iter().enumerate() {
                if i == resume_at { c.resume(); }
                let out = if r % 7 == 0 { c.stamp_untimed(r) } else { c.correct(r) };
                proptest::prop_assert!(out >= last, "{out} < {last}");
                if i > 0 {
                    proptest::prop_assert!(out - last <= 10_000, "jump {last} -> {out}");
                }
                last = out;
            }
        }
    }
}
