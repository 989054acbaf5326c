//! The decisions of one pulled stream, on its owner core: which origin to try,
//! when to retry, when waiting viewers may start, when to give up, and when an
//! unwatched upstream is closed. Sans-IO: events and the time in, [`PullAction`]s
//! out, all on one core so that start, close and re-open never race.

use super::backoff::Backoff;
use crate::stream::CoreSet;

/// Timing of a pull.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PullTiming {
    /// Keep an unwatched upstream this long (ms) before closing it.
    pub idle_close_ms: u64,
    /// Give up on a pull that has not started after this long (ms).
    pub start_timeout_ms: u64,
}

/// What the server must do for a pull.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullAction {
    /// Open a connection to origin number `origin` (index in the configured list).
    Connect {
        /// The origin's index.
        origin: usize,
    },
    /// Claim the key and open the stream (first start), or resume it (after a loss).
    OpenStream,
    /// Tell the viewers waiting on these cores that the stream is there.
    Ready(CoreSet),
    /// Tell the viewers waiting on these cores that no origin has the stream.
    NotFound(CoreSet),
    /// Tell the viewers waiting on these cores that no origin could be reached in time.
    Unavailable(CoreSet),
    /// The upstream broke while live: the stream waits for a new one (viewers stay).
    UpstreamLost,
    /// Close the current upstream connection, if any.
    CloseUpstream,
    /// End the stream (if it was opened) and forget the pull.
    Finish,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A connection to `origin` is being made (or its session is starting).
    Connecting { origin: usize },
    /// The upstream delivers.
    Live { origin: usize },
    /// Waiting to retry `origin` at `until_ms`.
    Retrying { origin: usize, until_ms: u64 },
    /// Given up or closed; the server forgets the pull.
    Finished,
}

/// One pulled stream's state.
#[derive(Clone, Debug)]
pub struct Pull {
    origins: usize,
    timing: PullTiming,
    phase: Phase,
    created_ms: u64,
    /// The stream has been opened (it started at least once).
    started: bool,
    /// Origins tried in the first pass, and whether one said "not found".
    first_pass_tried: usize,
    first_pass_not_found: bool,
    /// Cores whose viewers wait for the first start.
    waiting: CoreSet,
    backoff: Backoff,
    /// The upstream came back after a loss and has not delivered media yet.
    recovering: bool,
    /// Since when nobody watches (None while watched).
    idle_since_ms: Option<u64>,
    /// Viewers told to start after this time subscribe shortly after: not idle before it.
    last_ready_ms: u64,
}

impl Pull {
    /// A pull for `origins` origins asked for by a viewer on `from_core`; returns
    /// it with its first action (connect to the first origin).
    pub fn new(
        origins: usize,
        timing: PullTiming,
        from_core: usize,
        now_ms: u64,
        out: &mut Vec<PullAction>,
    ) -> Pull {
        let mut waiting = CoreSet::EMPTY;
        waiting.insert(from_core);
        let phase = if origins == 0 {
            Phase::Finished
        } else {
            Phase::Connecting { origin: 0 }
        };
        let pull = Pull {
            origins,
            timing,
            phase,
            created_ms: now_ms,
            started: false,
            first_pass_tried: 0,
            first_pass_not_found: false,
            waiting,
            backoff: Backoff::default(),
            recovering: false,
            idle_since_ms: None,
            last_ready_ms: now_ms,
        };
        if origins == 0 {
            out.push(PullAction::Unavailable(waiting));
            out.push(PullAction::Finish);
        } else {
            out.push(PullAction::Connect { origin: 0 });
        }
        pull
    }

    /// The origin index in use (connecting, live or next to retry).
    pub fn origin(&self) -> Option<usize> {
        match self.phase {
            Phase::Connecting { origin }
            | Phase::Live { origin }
            | Phase::Retrying { origin, .. } => Some(origin),
            Phase::Finished => None,
        }
    }

    /// True once the stream has been opened.
    pub fn started(&self) -> bool {
        self.started
    }

    /// True once the server should forget this pull.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// True while the upstream delivers.
    pub fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Live { .. })
    }

    /// A viewer on `from_core` wants the stream.
    pub fn request(&mut self, from_core: usize, now_ms: u64, out: &mut Vec<PullAction>) {
        if self.phase == Phase::Finished {
            return;
        }
        if self.started {
            // The stream exists (live, or waiting for its upstream to come back).
            let mut core = CoreSet::EMPTY;
            core.insert(from_core);
            self.last_ready_ms = now_ms;
            self.idle_since_ms = None;
            out.push(PullAction::Ready(core));
        } else {
            self.waiting.insert(from_core);
        }
    }

    /// The origin accepted the play request.
    pub fn upstream_started(&mut self, now_ms: u64, out: &mut Vec<PullAction>) {
        let Phase::Connecting { origin } = self.phase else {
            return;
        };
        self.phase = Phase::Live { origin };
        self.backoff.reset();
        out.push(PullAction::OpenStream);
        if self.started {
            self.recovering = true;
        } else {
            self.started = true;
            self.last_ready_ms = now_ms;
            out.push(PullAction::Ready(std::mem::take(&mut self.waiting)));
        }
    }

    /// A frame arrived; true if it is the first since the upstream recovered from a loss.
    pub fn media(&mut self) -> bool {
        std::mem::take(&mut self.recovering)
    }

    /// The current upstream failed to connect, was refused (`not_found`), or broke.
    pub fn upstream_failed(&mut self, not_found: bool, now_ms: u64, out: &mut Vec<PullAction>) {
        let origin = match self.phase {
            Phase::Connecting { origin } => origin,
            Phase::Live { origin } => {
                out.push(PullAction::UpstreamLost);
                origin
            }
            Phase::Retrying { .. } | Phase::Finished => return,
        };
        self.recovering = false;
        let next = (origin + 1) % self.origins.max(1);
        if !self.started {
            self.first_pass_tried += 1;
            self.first_pass_not_found |= not_found;
            if self.first_pass_tried < self.origins {
                self.phase = Phase::Connecting { origin: next };
                out.push(PullAction::Connect { origin: next });
            } else {
                self.give_up(out);
            }
            return;
        }
        let until_ms = now_ms.saturating_add(self.backoff.next_delay_ms());
        self.phase = Phase::Retrying {
            origin: next,
            until_ms,
        };
    }

    fn give_up(&mut self, out: &mut Vec<PullAction>) {
        let waiting = std::mem::take(&mut self.waiting);
        out.push(if self.first_pass_not_found {
            PullAction::NotFound(waiting)
        } else {
            PullAction::Unavailable(waiting)
        });
        out.push(PullAction::CloseUpstream);
        out.push(PullAction::Finish);
        self.phase = Phase::Finished;
    }

    /// When the pull next needs [`Pull::handle_timeout`]: the start timeout, a
    /// retry that falls due, or the end of the idle window. Whether it is watched
    /// is only learnt in `handle_timeout`, so a watched live pull has no deadline
    /// of its own and the server also calls it on its periodic pass.
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.phase == Phase::Finished {
            return None;
        }
        if !self.started {
            return Some(self.created_ms.saturating_add(self.timing.start_timeout_ms));
        }
        let idle = self
            .idle_since_ms
            .map(|since| since.saturating_add(self.timing.idle_close_ms));
        let retry = match self.phase {
            Phase::Retrying { until_ms, .. } => Some(until_ms),
            _ => None,
        };
        match (idle, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passes: retries that are due, the start timeout, and idle close.
    /// `audience` counts viewers of the stream on every core (local viewers plus
    /// subscribed cores).
    pub fn handle_timeout(&mut self, now_ms: u64, audience: usize, out: &mut Vec<PullAction>) {
        if self.phase == Phase::Finished {
            return;
        }
        if !self.started {
            if now_ms.saturating_sub(self.created_ms) >= self.timing.start_timeout_ms {
                self.first_pass_not_found = false;
                self.give_up(out);
            }
            return;
        }
        if audience > 0 {
            self.idle_since_ms = None;
        } else {
            let since = *self
                .idle_since_ms
                .get_or_insert(now_ms.max(self.last_ready_ms));
            if now_ms.saturating_sub(since) >= self.timing.idle_close_ms {
                out.push(PullAction::CloseUpstream);
                out.push(PullAction::Finish);
                self.phase = Phase::Finished;
                return;
            }
        }
        if let Phase::Retrying { origin, until_ms } = self.phase {
            if now_ms >= until_ms {
                self.phase = Phase::Connecting { origin };
                out.push(PullAction::Connect { origin });
            }
        }
    }

    /// The server stops the pull (its stream was taken over or deleted).
    pub fn abandon(&mut self, out: &mut Vec<PullAction>) {
        if self.phase != Phase::Finished {
            out.push(PullAction::CloseUpstream);
            self.phase = Phase::Finished;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: PullTiming = PullTiming {
        idle_close_ms: 30_000,
        start_timeout_ms: 10_000,
    };

    fn cores(list: &[usize]) -> CoreSet {
        let mut set = CoreSet::EMPTY;
        for &c in list {
            set.insert(c);
        }
        set
    }

    fn start(origins: usize) -> (Pull, Vec<PullAction>) {
        let mut out = Vec::new();
        let pull = Pull::new(origins, TIMING, 1, 0, &mut out);
        (pull, out)
    }

    #[test]
    fn concurrent_requests_share_one_upstream_and_start_together() {
        let (mut p, first) = start(2);
        assert_eq!(first, vec![PullAction::Connect { origin: 0 }]);
        let mut out = Vec::new();
        p.request(3, 5, &mut out);
        p.request(1, 6, &mut out);
        assert!(
            out.is_empty(),
            "no second connect, nobody told yet: {out:?}"
        );
        p.upstream_started(50, &mut out);
        assert_eq!(
            out,
            vec![PullAction::OpenStream, PullAction::Ready(cores(&[1, 3]))]
        );
        out.clear();
        p.request(0, 60, &mut out);
        assert_eq!(
            out,
            vec![PullAction::Ready(cores(&[0]))],
            "later viewers start at once"
        );
        assert!(!p.media(), "a first start is not a recovery");
    }

    #[test]
    fn first_pass_fails_over_then_reports_not_found() {
        let (mut p, _) = start(3);
        let mut out = Vec::new();
        p.upstream_failed(false, 10, &mut out);
        assert_eq!(
            out,
            vec![PullAction::Connect { origin: 1 }],
            "next origin at once"
        );
        out.clear();
        p.upstream_failed(true, 20, &mut out);
        assert_eq!(out, vec![PullAction::Connect { origin: 2 }]);
        out.clear();
        p.upstream_failed(false, 30, &mut out);
        assert_eq!(
            out,
            vec![
                PullAction::NotFound(cores(&[1])),
                PullAction::CloseUpstream,
                PullAction::Finish
            ]
        );
        assert!(p.is_finished());
    }

    #[test]
    fn all_origins_down_is_unavailable_and_start_timeout_bounds_the_wait() {
        let (mut p, _) = start(1);
        let mut out = Vec::new();
        p.upstream_failed(false, 10, &mut out);
        assert_eq!(out[0], PullAction::Unavailable(cores(&[1])));
        let (mut slow, _) = start(1);
        out.clear();
        slow.handle_timeout(9_999, 0, &mut out);
        assert!(out.is_empty());
        slow.handle_timeout(10_000, 0, &mut out);
        assert_eq!(
            out,
            vec![
                PullAction::Unavailable(cores(&[1])),
                PullAction::CloseUpstream,
                PullAction::Finish
            ]
        );
    }

    #[test]
    fn loss_retries_with_backoff_across_origins_and_counts_a_recovery() {
        let (mut p, _) = start(2);
        let mut out = Vec::new();
        p.upstream_started(0, &mut out);
        out.clear();
        p.upstream_failed(false, 1_000, &mut out);
        assert_eq!(out, vec![PullAction::UpstreamLost]);
        out.clear();
        p.handle_timeout(1_999, 1, &mut out);
        assert!(out.is_empty(), "waits 1 s");
        p.handle_timeout(2_000, 1, &mut out);
        assert_eq!(
            out,
            vec![PullAction::Connect { origin: 1 }],
            "next origin in the list"
        );
        out.clear();
        p.upstream_failed(false, 2_100, &mut out);
        assert!(out.is_empty(), "a failed retry is not another loss");
        p.handle_timeout(4_099, 1, &mut out);
        assert!(out.is_empty(), "then 2 s");
        p.handle_timeout(4_100, 1, &mut out);
        assert_eq!(out, vec![PullAction::Connect { origin: 0 }]);
        out.clear();
        p.upstream_started(4_200, &mut out);
        assert_eq!(out, vec![PullAction::OpenStream], "resume; nobody waits");
        assert!(p.media(), "first frame after a loss is a recovery");
        assert!(!p.media());
        out.clear();
        p.upstream_failed(false, 5_000, &mut out);
        p.handle_timeout(5_999, 1, &mut out);
        assert_eq!(
            out,
            vec![PullAction::UpstreamLost],
            "backoff was reset by the success"
        );
        out.clear();
        p.handle_timeout(6_000, 1, &mut out);
        assert_eq!(out, vec![PullAction::Connect { origin: 1 }]);
    }

    #[test]
    fn idle_close_waits_the_full_window_and_a_viewer_inside_it_keeps_the_upstream() {
        let (mut p, _) = start(1);
        let mut out = Vec::new();
        p.upstream_started(0, &mut out);
        out.clear();
        p.handle_timeout(1_000, 0, &mut out);
        p.handle_timeout(30_999, 0, &mut out);
        assert!(out.is_empty(), "not before idle_close");
        p.request(2, 31_000, &mut out);
        assert_eq!(out, vec![PullAction::Ready(cores(&[2]))]);
        out.clear();
        p.handle_timeout(31_001, 0, &mut out);
        p.handle_timeout(60_999, 0, &mut out);
        assert!(out.is_empty(), "a viewer told to start re-arms the window");
        p.handle_timeout(61_001, 1, &mut out);
        p.handle_timeout(90_000, 0, &mut out);
        assert!(out.is_empty());
        p.handle_timeout(120_000, 0, &mut out);
        assert_eq!(out, vec![PullAction::CloseUpstream, PullAction::Finish]);
        assert!(p.is_finished());
        out.clear();
        p.request(2, 120_001, &mut out);
        assert!(
            out.is_empty(),
            "a finished pull never answers; the server makes a new one"
        );
    }

    #[test]
    fn unwatched_stream_in_retry_closes_after_idle() {
        let (mut p, _) = start(1);
        let mut out = Vec::new();
        p.upstream_started(0, &mut out);
        p.upstream_failed(false, 100, &mut out);
        out.clear();
        p.handle_timeout(1_100, 0, &mut out);
        assert_eq!(out, vec![PullAction::Connect { origin: 0 }]);
        out.clear();
        p.handle_timeout(31_099, 0, &mut out);
        assert!(out.is_empty());
        p.handle_timeout(31_100, 0, &mut out);
        assert_eq!(out, vec![PullAction::CloseUpstream, PullAction::Finish]);
    }

    #[test]
    fn poll_timeout_names_the_next_deadline_on_a_fake_clock() {
        const BASE: u64 = 2_000_000;
        let mut out = Vec::new();
        let mut p = Pull::new(1, TIMING, 0, BASE, &mut out);
        assert_eq!(p.poll_timeout(), Some(BASE + 10_000), "start timeout");
        p.upstream_started(BASE + 500, &mut out);
        assert_eq!(
            p.poll_timeout(),
            None,
            "live: nothing due until the audience is sampled"
        );
        p.handle_timeout(BASE + 1_000, 0, &mut out);
        assert_eq!(
            p.poll_timeout(),
            Some(BASE + 31_000),
            "unwatched: the idle window"
        );
        p.upstream_failed(false, BASE + 2_000, &mut out);
        assert_eq!(
            p.poll_timeout(),
            Some(BASE + 3_000),
            "the retry comes first"
        );
        out.clear();
        p.handle_timeout(BASE + 3_000, 0, &mut out);
        assert_eq!(out, vec![PullAction::Connect { origin: 0 }]);
        assert_eq!(p.poll_timeout(), Some(BASE + 31_000));
        out.clear();
        p.handle_timeout(BASE + 31_000, 0, &mut out);
        assert_eq!(out, vec![PullAction::CloseUpstream, PullAction::Finish]);
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn no_origins_is_unavailable_at_once() {
        let (p, out) = start(0);
        assert!(p.is_finished());
        assert_eq!(
            out,
            vec![PullAction::Unavailable(cores(&[1])), PullAction::Finish]
        );
    }
}
