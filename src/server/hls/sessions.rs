//! HLS/DASH sessions, estimated per stream and core from request rates alone
//! (no per-viewer URL, cookie or connection state):
//!
//! * an LL-HLS player makes one blocking reload of the leading track's media
//!   playlist per part: reloads / parts produced;
//! * a player of whole segments (MPEG-TS HLS, fMP4 HLS without LL, LL-DASH)
//!   fetches one leading-track segment per segment: segments fetched /
//!   segments produced.
//!
//! Both over a 10 s window; "produced" is read off the stream's view (its
//! render count and last closed segment), so owner and other cores count
//! alike. Published as the stream's `hls` viewers in the API (summed over
//! cores).

use std::collections::HashMap;

use crate::stream::StreamId;

/// The window the rates are taken over (ms).
pub(crate) const WINDOW_MS: u64 = 10_000;

/// What a request counts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tick {
    /// A blocking reload of the leading track's media playlist.
    Reload,
    /// A leading-track fMP4 segment or an MPEG-TS segment.
    Segment,
}

/// How far a stream's packaging got: (playlist versions, last closed segment).
pub(crate) type Progress = (u64, u64);

#[derive(Default)]
struct Meter {
    reloads: u64,
    segments: u64,
    start: Option<Progress>,
}

/// Per-stream request counts of one core.
#[derive(Default)]
pub(crate) struct Sessions {
    meters: HashMap<StreamId, Meter>,
    window_start_ms: u64,
}

/// `n / d` rounded; 0 when nothing was produced.
fn ratio(n: u64, d: u64) -> u64 {
    n.saturating_add(d / 2).checked_div(d).unwrap_or(0)
}

impl Sessions {
    /// Counts one request; `now` is the stream's progress when it came.
    pub(crate) fn tick(&mut self, stream_id: StreamId, tick: Tick, now: Progress) {
        let m = self.meters.entry(stream_id).or_default();
        m.start.get_or_insert(now);
        match tick {
            Tick::Reload => m.reloads += 1,
            Tick::Segment => m.segments += 1,
        }
    }

    /// Once a window has passed: the estimate of every stream counted in it
    /// (streams with no request are reported 0 once, then forgotten).
    /// `progress` reads a stream's progress now.
    pub(crate) fn estimates(
        &mut self,
        now_ms: u64,
        mut progress: impl FnMut(StreamId) -> Option<Progress>,
    ) -> Option<Vec<(StreamId, u64)>> {
        if now_ms.saturating_sub(self.window_start_ms) < WINDOW_MS {
            return None;
        }
        self.window_start_ms = now_ms;
        let mut out = Vec::with_capacity(self.meters.len());
        self.meters.retain(|id, m| {
            let now = progress(*id);
            let sessions = match (m.start, now) {
                (Some((v0, s0)), Some((v1, s1))) => ratio(m.reloads, v1.saturating_sub(v0))
                    .saturating_add(ratio(m.segments, s1.saturating_sub(s0))),
                _ => 0,
            };
            out.push((*id, sessions));
            let keep = m.reloads + m.segments > 0 && now.is_some();
            *m = Meter {
                start: now,
                ..Meter::default()
            };
            keep
        });
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_follow_request_rates() {
        let mut s = Sessions::default();
        let at = |v, seg| Some((v, seg));
        assert!(
            s.estimates(5_000, |_| at(0, 0)).is_none(),
            "not a window yet"
        );
        // 40 parts and 5 segments produced in the window: three LL-HLS
        // players (one reload per part), two TS players (one per segment).
        for _ in 0..3 * 40 {
            s.tick(StreamId(1), Tick::Reload, (100, 10));
        }
        for _ in 0..2 * 5 {
            s.tick(StreamId(1), Tick::Segment, (100, 10));
        }
        s.tick(StreamId(2), Tick::Segment, (7, 1));
        let mut est = s
            .estimates(10_000, |id| {
                if id == StreamId(1) {
                    at(140, 15)
                } else {
                    at(7, 1)
                }
            })
            .unwrap();
        est.sort_by_key(|(id, _)| id.0);
        assert_eq!(est, vec![(StreamId(1), 5), (StreamId(2), 0)]);
        // Streams with no request are reported 0 once, then forgotten.
        let est = s.estimates(20_000, |_| at(200, 20)).unwrap();
        assert_eq!(est.len(), 2);
        assert!(est.iter().all(|(_, n)| *n == 0));
        assert!(s.estimates(30_000, |_| at(300, 30)).unwrap().is_empty());
    }
}
