//! A player's buffer, sans-IO: video frames go in as they are downloaded (media
//! time in µs), a playback clock starts with the first keyframe, and a stall is
//! the playback position catching up with the end of the buffered media.
//!
//! * **Start position**: a player seeks to its start position (hls.js: PART-HOLD-BACK
//!   behind the live edge), which may lie after the keyframe it had to download
//!   from; frames before it are decoded, not shown ([`Playback::start_after`]).
//! * **Startup**: viewer start → the buffer reaches the start position (first
//!   frame shown).
//! * **Latency behind live**: for each stamped frame, the wall-clock time it is
//!   *shown* (now plus how far ahead of the playback position it is) minus the
//!   publisher's send time: what a viewer of an hls.js player sees, hold-back and
//!   buffer included.
//! * **Stalls**: while playing, the position runs at real time; when it reaches
//!   the buffered end, playback pauses there until the next frame arrives. The
//!   pause is a stall (counted from [`MIN_STALL_US`]), ending when media arrives,
//!   or at [`Playback::finish`] if it is still going on.
//! * A jump in media time of more than [`MAX_JUMP_US`] (a new publisher, a
//!   discontinuity) is spliced onto the buffered end, like a player does.
//!
//! State is a few words per viewer; nothing allocates.

use crate::stamp::Stamp;
use crate::stats::Interval;
use crate::viewer::{count_sequence, Now};

/// Buffer underruns shorter than this are not counted (below one frame at 20 fps:
/// no player shows them).
pub const MIN_STALL_US: u64 = 50_000;
/// A media-time jump larger than this is a discontinuity.
pub const MAX_JUMP_US: u64 = 5_000_000;
/// A frame's duration when neither the container nor a previous frame says (25 fps).
const DEFAULT_FRAME_US: u64 = 40_000;

/// One downloaded video frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaFrame {
    /// Decode time, µs of media time.
    pub dts_us: u64,
    /// Presentation time, µs of media time.
    pub pts_us: u64,
    /// Duration, µs; 0 when the container does not say (MPEG-TS): the step
    /// between the last two frames is used.
    pub duration_us: u64,
    /// It carries a coded picture.
    pub picture: bool,
    /// It is an IDR.
    pub keyframe: bool,
    /// The publisher's stamp in it.
    pub stamp: Option<Stamp>,
}

/// One viewer's playback state.
#[derive(Clone, Debug, Default)]
pub struct Playback {
    started_us: u64,
    /// (monotonic µs, media µs) at which playback (re)started.
    anchor: Option<(u64, u64)>,
    /// End of buffered media, µs (spliced time).
    buffered_end: u64,
    /// Added to incoming media times to splice discontinuities.
    offset: i64,
    last_sequence: Option<u64>,
    frames_since_keyframe: Option<u64>,
    /// Media time to start showing from, µs after the first keyframe.
    start_after_us: u64,
    /// The first keyframe arrived; playback starts at this media time.
    start_at: Option<u64>,
    /// Decode time of the previous frame and the step before it, µs.
    last_dts: Option<u64>,
    last_step_us: u64,
}

impl Playback {
    /// A viewer that started (sent its first request) at `now`.
    pub fn new(now: Now) -> Self {
        Playback {
            started_us: now.mono_us,
            ..Playback::default()
        }
    }

    /// Starts showing `us` of media time after the first keyframe (the player seeks
    /// there); call before the first frame.
    pub fn start_after(&mut self, us: u64) {
        self.start_after_us = us;
    }

    /// Whether playback has started.
    pub fn playing(&self) -> bool {
        self.anchor.is_some()
    }

    /// The playback position at `mono_us`, and when it reached the buffered end
    /// if it has.
    fn position(&self, mono_us: u64) -> Option<(u64, Option<u64>)> {
        let (t0, p0) = self.anchor?;
        let pos = p0.saturating_add(mono_us.saturating_sub(t0));
        if pos > self.buffered_end {
            let stalled_at = t0.saturating_add(self.buffered_end.saturating_sub(p0));
            Some((self.buffered_end, Some(stalled_at)))
        } else {
            Some((pos, None))
        }
    }

    fn count_stall(from_us: u64, to_us: u64, iv: &mut Interval) {
        let gap = to_us.saturating_sub(from_us);
        if gap >= MIN_STALL_US {
            iv.counters.stalls += 1;
            iv.hist.stall_ms.saturating_record((gap / 1000).max(1));
        }
    }

    /// Accounts one downloaded video frame at `now`.
    pub fn on_frame(&mut self, f: MediaFrame, now: Now, iv: &mut Interval) {
        if !f.picture {
            return;
        }
        if self.start_at.is_none() && !f.keyframe {
            return; // not decodable before the first keyframe
        }
        // Splice discontinuities onto the buffered end.
        let mut dts = (f.dts_us as i64).saturating_add(self.offset).max(0) as u64;
        if self.start_at.is_some() && dts.abs_diff(self.buffered_end) > MAX_JUMP_US {
            self.offset = self.buffered_end as i64 - f.dts_us as i64;
            dts = self.buffered_end;
        }
        let pts = dts.saturating_add(f.pts_us.saturating_sub(f.dts_us));
        if let Some(step) = self.last_dts.and_then(|l| dts.checked_sub(l)) {
            if step > 0 {
                self.last_step_us = step;
            }
        }
        self.last_dts = Some(dts);
        let duration_us = match f.duration_us {
            0 if self.last_step_us > 0 => self.last_step_us,
            0 => DEFAULT_FRAME_US,
            d => d,
        };
        let start_at = *self.start_at.get_or_insert_with(|| {
            self.buffered_end = dts;
            pts.saturating_add(self.start_after_us)
        });
        match self.position(now.mono_us) {
            None => {}
            Some((pos, Some(stalled_at))) => {
                Self::count_stall(stalled_at, now.mono_us, iv);
                self.anchor = Some((now.mono_us, pos));
            }
            Some((_, None)) => {}
        }
        self.buffered_end = self.buffered_end.max(dts.saturating_add(duration_us));
        if self.anchor.is_none() && self.buffered_end > start_at {
            self.anchor = Some((now.mono_us, start_at));
            iv.counters.viewers_playing += 1;
            iv.hist
                .startup_ms
                .saturating_record(now.mono_us.saturating_sub(self.started_us) / 1000);
        }
        iv.counters.video_frames += 1;
        if f.keyframe {
            iv.counters.keyframes += 1;
            if let Some(n) = self.frames_since_keyframe {
                iv.hist.gop_frames.saturating_record(n);
            }
            self.frames_since_keyframe = Some(0);
        }
        if let Some(n) = self.frames_since_keyframe.as_mut() {
            *n += 1;
        }
        let Some(stamp) = f.stamp else { return };
        iv.counters.stamped_frames += 1;
        // Shown when the position reaches its PTS; frames before the start position
        // are decoded, never shown.
        let pos = self
            .position(now.mono_us)
            .map_or(start_at, |(pos, _)| pos)
            .max(start_at);
        if pts >= pos {
            let shown_unix = now.unix_us.saturating_add(pts - pos);
            iv.hist
                .latency_us
                .saturating_record(shown_unix.saturating_sub(stamp.sent_unix_us).max(1));
        }
        count_sequence(&mut self.last_sequence, stamp.sequence, iv);
    }

    /// Closes the books at the end of the run: a stall still going on counts.
    pub fn finish(&mut self, now: Now, iv: &mut Interval) {
        if let Some((_, Some(stalled_at))) = self.position(now.mono_us) {
            Self::count_stall(stalled_at, now.mono_us, iv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Now {
        Now {
            mono_us: ms * 1000,
            unix_us: 1_700_000_000_000_000 + ms * 1000,
        }
    }

    fn frame(i: u64, stamp_ms: u64) -> MediaFrame {
        MediaFrame {
            dts_us: 10_000_000 + i * 40_000,
            pts_us: 10_000_000 + i * 40_000,
            duration_us: 40_000,
            picture: true,
            keyframe: i.is_multiple_of(25),
            stamp: Some(Stamp {
                sent_unix_us: at(stamp_ms).unix_us,
                sequence: i,
            }),
        }
    }

    #[test]
    fn one_second_of_buffer_plays_without_stalls_and_latency_includes_it() {
        let mut iv = Interval::default();
        let mut p = Playback::new(at(0));
        // Joins 1 s behind: frames 0..25 (sent 0..1000 ms) arrive at once at 1000 ms,
        // then each frame arrives 40 ms after the previous, as it is produced.
        for i in 0..25 {
            p.on_frame(frame(i, i * 40), at(1000), &mut iv);
        }
        for i in 25..100 {
            p.on_frame(frame(i, i * 40), at(i * 40), &mut iv);
        }
        p.finish(at(99 * 40 + 20), &mut iv);
        let c = iv.counters;
        assert_eq!(
            (c.viewers_playing, c.video_frames, c.keyframes),
            (1, 100, 4)
        );
        assert_eq!((c.stalls, c.missing_frames, c.stamped_frames), (0, 0, 100));
        assert_eq!(iv.hist.startup_ms.max(), 1000);
        // Each frame is shown 1 s after it was sent.
        let lat = &iv.hist.latency_us;
        assert!(lat.equivalent(lat.min(), 1_000_000), "{}", lat.min());
        assert!(lat.equivalent(lat.max(), 1_000_000), "{}", lat.max());
        assert_eq!(iv.hist.gop_frames.len(), 3);
    }

    #[test]
    fn a_start_position_after_the_keyframe_is_shown_first() {
        let mut iv = Interval::default();
        let mut p = Playback::new(at(0));
        // Joins with 1.5 s buffered from a keyframe but seeks to 0.5 s behind its end.
        p.start_after(1_000_000);
        for i in 0..20 {
            p.on_frame(frame(i, i * 40), at(1000), &mut iv);
        }
        assert!(!p.playing(), "the start position is not buffered yet");
        for i in 20..40 {
            p.on_frame(frame(i, i * 40), at(1000), &mut iv);
        }
        assert!(p.playing());
        assert_eq!(iv.hist.startup_ms.max(), 1000);
        assert_eq!(iv.counters.video_frames, 40);
        // Frames 25..40 shown from 1000 ms on: 1000 + (i - 25) * 40 - i * 40 = 0 ms late.
        assert_eq!(iv.hist.latency_us.len(), 15);
        assert!(
            iv.hist.latency_us.max() < 1000,
            "{}",
            iv.hist.latency_us.max()
        );
    }

    #[test]
    fn an_empty_buffer_is_a_stall_ended_by_the_next_frame() {
        let mut iv = Interval::default();
        let mut p = Playback::new(at(0));
        // 200 ms of media, then nothing until 1200 ms: 1 s of stall.
        for i in 0..5 {
            p.on_frame(frame(i, 0), at(0), &mut iv);
        }
        p.on_frame(frame(5, 0), at(1200), &mut iv);
        assert_eq!(iv.counters.stalls, 1);
        assert_eq!(
            iv.hist.stall_ms.max(),
            iv.hist.stall_ms.highest_equivalent(1000)
        );
        // Playback resumed at 1200 ms with 40 ms buffered; the run ends 500 ms later.
        p.finish(at(1700), &mut iv);
        assert_eq!(iv.counters.stalls, 2);
    }

    #[test]
    fn unknown_durations_are_the_step_between_frames() {
        let mut iv = Interval::default();
        let mut p = Playback::new(at(0));
        // 30 fps with no durations (MPEG-TS): 30 frames buffer one second.
        for i in 0..30u64 {
            let mut f = frame(if i == 0 { 0 } else { 1 }, 0);
            f.keyframe = i == 0;
            f.dts_us = i * 33_333;
            f.pts_us = f.dts_us;
            f.duration_us = 0;
            p.on_frame(f, at(0), &mut iv);
        }
        p.finish(at(990), &mut iv);
        assert_eq!(iv.counters.stalls, 0, "999 ms buffered");
        p.finish(at(1100), &mut iv);
        assert_eq!(iv.counters.stalls, 1, "and not more");
    }

    #[test]
    fn frames_before_the_first_keyframe_are_not_decodable() {
        let mut iv = Interval::default();
        let mut p = Playback::new(at(0));
        p.on_frame(frame(3, 0), at(10), &mut iv);
        assert!(!p.playing());
        p.on_frame(frame(25, 0), at(20), &mut iv);
        assert!(p.playing());
        assert_eq!(iv.counters.video_frames, 1);
        assert_eq!(iv.hist.startup_ms.max(), 20);
    }

    #[test]
    fn a_new_publisher_is_spliced_not_a_stall() {
        let mut iv = Interval::default();
        let mut p = Playback::new(at(0));
        for i in 0..25 {
            p.on_frame(frame(i, 0), at(0), &mut iv);
        }
        let mut f = frame(0, 0);
        f.dts_us = 500_000_000;
        f.pts_us = 500_000_000;
        p.on_frame(f, at(500), &mut iv);
        p.finish(at(1000), &mut iv);
        assert_eq!(iv.counters.stalls, 0);
        assert_eq!(iv.counters.sequence_resets, 1);
    }
}
