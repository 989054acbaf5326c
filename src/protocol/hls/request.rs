//! Blocking playlist reload (`_HLS_msn`, `_HLS_part`) and delta updates
//! (`_HLS_skip`): parsing the query and deciding, against the timeline's
//! current state, whether to answer now, wait, or refuse. Time is passed in;
//! [`Pending::deadline_ms`] tells the reactor when to give up on a waiter.
//!
//! Rules (draft-pantos-hls-rfc8216bis §6.2.5.2):
//! * `_HLS_part` without `_HLS_msn`: 400.
//! * `_HLS_msn` more than two beyond the last segment in the playlist (the
//!   open one counts: its parts are listed), or `_HLS_part` more than the
//!   Advance Part Limit beyond the last part (3 parts, or 3 s worth of parts
//!   when PART-TARGET < 1 s): 400 at once.
//! * Otherwise wait until segment `msn` is complete (no `_HLS_part`) or part
//!   `(msn, part)` exists, a part index past a closed segment's last part
//!   meaning part 0 of the next; an `msn` already gone from the window is
//!   answered at once with the whole playlist.
//! * Still waiting after 3 x TARGETDURATION: 503.
//! * A finished stream (ENDLIST) ignores the directives.

use thiserror::Error;

use super::config::Timing;
use super::timeline::Timeline;

/// Longest query string looked at (bytes); longer ones are refused.
pub const MAX_QUERY_LEN: usize = 2048;

/// A malformed `_HLS_*` directive (answer 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum DirectiveError {
    /// A value is not a decimal number that fits.
    #[error("{field} is not a decimal number (or is out of range)")]
    BadNumber {
        /// `_HLS_msn` or `_HLS_part`.
        field: &'static str,
    },
    /// `_HLS_skip` other than `YES` or `v2`.
    #[error("_HLS_skip must be YES or v2")]
    BadSkip,
    /// `_HLS_part` given without `_HLS_msn`.
    #[error("_HLS_part without _HLS_msn")]
    PartWithoutMsn,
    /// The same directive twice.
    #[error("{field} given more than once")]
    Repeated {
        /// The directive.
        field: &'static str,
    },
    /// The query is longer than the limit.
    #[error("query longer than {limit} bytes")]
    QueryTooLong {
        /// [`MAX_QUERY_LEN`].
        limit: usize,
    },
    /// `_HLS_msn` too far beyond the last segment.
    #[error("_HLS_msn {msn} is more than two beyond the last segment {last}")]
    MsnTooFarAhead {
        /// Asked.
        msn: u64,
        /// Last in the playlist.
        last: u64,
    },
    /// `_HLS_part` beyond the Advance Part Limit.
    #[error("_HLS_part {part} of {msn} is more than {limit} parts beyond the last part")]
    PartTooFarAhead {
        /// Asked segment.
        msn: u64,
        /// Asked part.
        part: u32,
        /// The Advance Part Limit in parts.
        limit: u32,
    },
}

/// The delivery directives of a playlist request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    /// `_HLS_msn`.
    pub msn: Option<u64>,
    /// `_HLS_part`.
    pub part: Option<u32>,
    /// `_HLS_skip=YES|v2`: a delta update.
    pub skip: bool,
}

fn num<T: std::str::FromStr>(v: &str, field: &'static str) -> Result<T, DirectiveError> {
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DirectiveError::BadNumber { field });
    }
    v.parse().map_err(|_| DirectiveError::BadNumber { field })
}

impl Directives {
    /// Parses the query string (without `?`); other parameters (a play
    /// token) are ignored.
    pub fn parse(query: &str) -> Result<Self, DirectiveError> {
        if query.len() > MAX_QUERY_LEN {
            return Err(DirectiveError::QueryTooLong {
                limit: MAX_QUERY_LEN,
            });
        }
        let mut d = Directives::default();
        let mut seen_skip = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "_HLS_msn" => {
                    if d.msn.is_some() {
                        return Err(DirectiveError::Repeated { field: "_HLS_msn" });
                    }
                    d.msn = Some(num(v, "_HLS_msn")?);
                }
                "_HLS_part" => {
                    if d.part.is_some() {
                        return Err(DirectiveError::Repeated { field: "_HLS_part" });
                    }
                    d.part = Some(num(v, "_HLS_part")?);
                }
                "_HLS_skip" => {
                    if seen_skip {
                        return Err(DirectiveError::Repeated { field: "_HLS_skip" });
                    }
                    seen_skip = true;
                    d.skip = match v {
                        "YES" | "v2" => true,
                        _ => return Err(DirectiveError::BadSkip),
                    };
                }
                _ => {}
            }
        }
        if d.part.is_some() && d.msn.is_none() {
            return Err(DirectiveError::PartWithoutMsn);
        }
        Ok(d)
    }

    /// Whether the request blocks (carries `_HLS_msn`).
    pub fn is_blocking(&self) -> bool {
        self.msn.is_some()
    }
}

/// The Advance Part Limit in parts: 3, or 3 s worth when PART-TARGET < 1 s.
pub fn advance_part_limit(part_target_ms: u32) -> u32 {
    if part_target_ms >= 1000 {
        3
    } else {
        3000_u32.div_ceil(part_target_ms.max(1))
    }
}

/// What to do with a playlist request now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Answer with the current playlist.
    Ready,
    /// Hold the request until `(msn, part)` exists or the deadline passes.
    Wait(Pending),
    /// Answer 400.
    BadRequest(DirectiveError),
    /// Answer 503: blocked past 3 target durations.
    TimedOut,
}

/// A held blocking reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Segment waited for.
    pub msn: u64,
    /// Part waited for (`None`: the whole segment).
    pub part: Option<u32>,
    /// When to answer 503 (same clock as the `now_ms` passed in).
    pub deadline_ms: u64,
}

/// What [`decide`] and the request answering need of a timeline: a few
/// numbers, copied out once per timeline change, so a request can be decided
/// on a snapshot (another core's copy) without the timeline itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimelineState {
    /// `EXT-X-ENDLIST`: the stream ended.
    pub finished: bool,
    /// The fixed playlist parameters.
    pub timing: Timing,
    /// [`Timeline::last_msn`].
    pub last_msn: Option<u64>,
    /// [`Timeline::last_part`].
    pub last_part: Option<(u64, u32)>,
    /// [`Timeline::last_closed_msn`].
    pub last_closed_msn: Option<u64>,
    /// The oldest closed segment in the window.
    pub first_msn: Option<u64>,
    /// [`Timeline::open_part`] (the preload hint).
    pub open_part: Option<(u64, u32)>,
    /// The open segment's number.
    pub open_msn: Option<u64>,
}

impl TimelineState {
    /// The state of `tl` now.
    pub fn of(tl: &Timeline) -> Self {
        TimelineState {
            finished: tl.is_finished(),
            timing: tl.timing(),
            last_msn: tl.last_msn(),
            last_part: tl.last_part(),
            last_closed_msn: tl.last_closed_msn(),
            first_msn: tl.segments().front().map(|s| s.msn),
            open_part: tl.open_part(),
            open_msn: tl.open_segment().map(|(m, _)| m),
        }
    }
}

/// Whether `(msn, part)` (part `None` = whole segment) is in the playlist.
fn available(tl: &TimelineState, msn: u64, part: Option<u32>) -> bool {
    if tl.last_closed_msn.is_some_and(|c| c >= msn) {
        return true;
    }
    let Some(p) = part else {
        return false;
    };
    // Segment `msn` is not closed: the part must be among the open segment's
    // closed parts (or the request is for an earlier, closed segment,
    // handled above).
    tl.last_part
        .is_some_and(|(lm, lp)| lm > msn || (lm == msn && lp >= p))
}

/// Decides a playlist request that arrived at `since_ms`, evaluated at `now_ms`.
/// Call it when the request arrives, again whenever a part closes
/// ([`super::timeline::TimelineEvent::PartClosed`]) and at the deadline.
pub fn decide(tl: &Timeline, d: &Directives, since_ms: u64, now_ms: u64) -> Decision {
    decide_on(&TimelineState::of(tl), d, since_ms, now_ms)
}

/// [`decide`] on a timeline's [`TimelineState`] (a snapshot of it).
pub fn decide_on(tl: &TimelineState, d: &Directives, since_ms: u64, now_ms: u64) -> Decision {
    let Some(msn) = d.msn else {
        return Decision::Ready;
    };
    if tl.finished {
        return Decision::Ready;
    }
    let timing = tl.timing;
    if let Some(last) = tl.last_msn {
        if msn > last.saturating_add(2) {
            return Decision::BadRequest(DirectiveError::MsnTooFarAhead { msn, last });
        }
        if let Some(part) = d.part {
            let limit = advance_part_limit(timing.part_target_ms);
            let (lm, lp) = tl.last_part.unwrap_or((last, 0));
            let ahead = if msn == lm {
                part.saturating_sub(lp)
            } else if msn > lm {
                part.saturating_add(1)
            } else {
                0
            };
            if ahead > limit {
                return Decision::BadRequest(DirectiveError::PartTooFarAhead { msn, part, limit });
            }
        }
        if tl.first_msn.is_some_and(|f| msn < f) {
            return Decision::Ready;
        }
    }
    if available(tl, msn, d.part) {
        return Decision::Ready;
    }
    let deadline_ms = since_ms.saturating_add(timing.block_limit_ms());
    if now_ms >= deadline_ms {
        return Decision::TimedOut;
    }
    Decision::Wait(Pending {
        msn,
        part: d.part,
        deadline_ms,
    })
}

/// The earliest deadline among held requests (the reactor's poll timeout).
pub fn poll_timeout<'a>(pending: impl IntoIterator<Item = &'a Pending>) -> Option<u64> {
    pending.into_iter().map(|p| p.deadline_ms).min()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::protocol::hls::config::HlsConfig;
    use crate::protocol::hls::testkit::{av_frames, feed};
    use crate::protocol::hls::timeline::{StartPoint, TimelineEvent, Tracks};

    fn running(seconds: u64) -> Timeline {
        let mut tl = Timeline::new(
            HlsConfig::default(),
            Tracks {
                video: true,
                audio: true,
            },
            StartPoint::PublishStart,
        )
        .unwrap();
        feed(&mut tl, &av_frames(30, 1, 60, 30 * seconds + 12, true));
        tl
    }

    fn d(q: &str) -> Directives {
        Directives::parse(q).unwrap()
    }

    #[test]
    fn directives_parse_and_malformed_values_are_typed_errors() {
        assert_eq!(
            d("_HLS_msn=12&_HLS_part=3&_HLS_skip=YES&token=abc"),
            Directives {
                msn: Some(12),
                part: Some(3),
                skip: true
            }
        );
        assert_eq!(d(""), Directives::default());
        assert!(d("_HLS_skip=v2").skip);
        let e = |q: &str| Directives::parse(q).unwrap_err();
        for q in [
            "_HLS_msn=x",
            "_HLS_msn=-1",
            "_HLS_msn=",
            "_HLS_msn=99999999999999999999",
        ] {
            assert_eq!(e(q), DirectiveError::BadNumber { field: "_HLS_msn" }, "{q}");
        }
        assert_eq!(
            e("_HLS_msn=1&_HLS_part=4294967296"),
            DirectiveError::BadNumber { field: "_HLS_part" }
        );
        assert_eq!(e("_HLS_part=1"), DirectiveError::PartWithoutMsn);
        assert_eq!(e("_HLS_skip=NO"), DirectiveError::BadSkip);
        assert_eq!(
            e("_HLS_msn=1&_HLS_msn=2"),
            DirectiveError::Repeated { field: "_HLS_msn" }
        );
        assert_eq!(
            e(&"x".repeat(MAX_QUERY_LEN + 1)),
            DirectiveError::QueryTooLong {
                limit: MAX_QUERY_LEN
            }
        );
    }

    #[test]
    fn the_advance_part_limit_follows_the_spec() {
        assert_eq!(advance_part_limit(334), 9);
        assert_eq!(advance_part_limit(200), 15);
        assert_eq!(advance_part_limit(1000), 3);
        assert_eq!(advance_part_limit(2000), 3);
    }

    #[test]
    fn requests_for_what_exists_are_ready_at_once() {
        let tl = running(20);
        let (lm, lp) = tl.last_part().unwrap();
        let now = 1_000;
        assert_eq!(decide(&tl, &d(""), now, now), Decision::Ready);
        assert_eq!(
            decide(&tl, &d(&format!("_HLS_msn={lm}&_HLS_part={lp}")), now, now),
            Decision::Ready
        );
        let closed = tl.last_closed_msn().unwrap();
        assert_eq!(
            decide(&tl, &d(&format!("_HLS_msn={closed}")), now, now),
            Decision::Ready
        );
        // A part index past a closed segment's last part means the next
        // segment's part 0, which exists.
        assert_eq!(
            decide(
                &tl,
                &d(&format!("_HLS_msn={closed}&_HLS_part=40")),
                now,
                now
            ),
            Decision::Ready
        );
        // An msn already gone from the window: the whole playlist, now.
        let first = tl.segments()[0].msn;
        assert!(first > 0);
        assert_eq!(
            decide(&tl, &d("_HLS_msn=0&_HLS_part=0"), now, now),
            Decision::Ready
        );
    }

    #[test]
    fn a_future_part_waits_until_it_lands_then_is_ready() {
        let mut tl = running(10);
        let (om, op) = tl.open_part().unwrap();
        let q = d(&format!("_HLS_msn={om}&_HLS_part={op}"));
        let since = 5_000;
        let Decision::Wait(p) = decide(&tl, &q, since, since) else {
            panic!("should wait");
        };
        assert_eq!((p.msn, p.part), (om, Some(op)));
        assert_eq!(p.deadline_ms, since + 3 * tl.timing().target_duration_ms());
        assert_eq!(poll_timeout([&p]), Some(p.deadline_ms));
        // Feed frames until that part closes; the decision flips to Ready
        // exactly then.
        let more = av_frames(30, 1, 60, 30 * 14, true);
        let mut ev = Vec::new();
        let last_dts = tl.segments().back().map(|s| s.start_ms).unwrap();
        for f in more.iter().filter(|f| f.dts_ms > last_dts + 2_500) {
            ev.clear();
            tl.push(*f, 0, &mut ev);
            let closed = ev.contains(&TimelineEvent::PartClosed { msn: om, part: op });
            let ready = decide(&tl, &q, since, since + 10) == Decision::Ready;
            if closed {
                assert!(ready);
                return;
            }
            assert!(!ready);
        }
        panic!("the part never closed");
    }

    #[test]
    fn a_whole_segment_request_waits_for_the_segment_not_its_parts() {
        let tl = running(10);
        let (om, _) = tl.open_part().unwrap();
        assert!(matches!(
            decide(&tl, &d(&format!("_HLS_msn={om}")), 0, 0),
            Decision::Wait(Pending { part: None, .. })
        ));
        assert!(matches!(
            decide(&tl, &d(&format!("_HLS_msn={}", om + 2)), 0, 0),
            Decision::Wait(_)
        ));
    }

    #[test]
    fn too_far_ahead_is_400_and_blocking_too_long_is_503() {
        let tl = running(10);
        let last = tl.last_msn().unwrap();
        assert_eq!(
            decide(&tl, &d(&format!("_HLS_msn={}", last + 3)), 0, 0),
            Decision::BadRequest(DirectiveError::MsnTooFarAhead {
                msn: last + 3,
                last
            })
        );
        let (om, op) = tl.open_part().unwrap();
        let far = op + advance_part_limit(334) + 1;
        assert!(matches!(
            decide(&tl, &d(&format!("_HLS_msn={om}&_HLS_part={far}")), 0, 0),
            Decision::BadRequest(DirectiveError::PartTooFarAhead { .. })
        ));
        // Within the limit it waits; past 3 x TARGETDURATION it is 503.
        let q = d(&format!("_HLS_msn={om}&_HLS_part={}", op + 1));
        let limit = tl.timing().block_limit_ms();
        assert!(matches!(
            decide(&tl, &q, 100, 100 + limit - 1),
            Decision::Wait(_)
        ));
        assert_eq!(decide(&tl, &q, 100, 100 + limit), Decision::TimedOut);
    }

    #[test]
    fn a_finished_stream_ignores_the_directives() {
        let mut tl = running(10);
        let mut ev = Vec::new();
        tl.finish(10_500, &mut ev);
        let last = tl.last_msn().unwrap();
        assert_eq!(
            decide(&tl, &d(&format!("_HLS_msn={}&_HLS_part=0", last + 1)), 0, 0),
            Decision::Ready
        );
    }
}
