//! One core's hook calls, sans-IO. Gating calls (`on_publish`, `on_play`) are
//! asked with a waiter (whatever the server needs to resume the session);
//! notifications (`on_unpublish`, `on_stop`) are fire-and-forget with bounded
//! retries. The core decides what to send ([`HookCore::take_outgoing`]), the
//! server sends it on its reactor and reports how it ended
//! ([`HookCore::finish`]); time comes in as milliseconds.
//!
//! Bounds: at most `max_in_flight_per_core` calls at once (a gating call past
//! it takes its action's fail policy at once, a notification waits in a
//! queue of [`MAX_QUEUED_NOTICES`]), [`MAX_WAITERS_PER_CALL`] sessions per
//! coalesced call, [`MAX_CACHE_ENTRIES`] cached allows.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::body::{json_body, write_request, HookSubject, ServerIds};
use super::config::{HookUrl, HooksConfig, HooksConfigError};
use super::response::Answer;
use super::HookAction;

/// Most sessions waiting on one coalesced call; the next one takes the fail policy.
pub const MAX_WAITERS_PER_CALL: usize = 65_536;
/// Most cached allows per core; when full (after dropping the expired) new
/// allows are not cached.
pub const MAX_CACHE_ENTRIES: usize = 65_536;
/// Most notifications waiting for room or for their retry.
pub const MAX_QUEUED_NOTICES: usize = 4_096;
/// A notification's retry `n` (1-based) waits `n` times this.
pub const RETRY_DELAY_MS: u64 = 1_000;
/// How often expired cache entries are dropped.
const PRUNE_EVERY_MS: u64 = 1_000;

/// One call, unique on its core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallId(pub u64);

/// How a hook question was answered: the `result` label of
/// `ringcast_hook_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookResult {
    /// The server allowed.
    Allow,
    /// The server answered, not with an allow.
    Deny,
    /// No usable answer: connection refused or reset, broken HTTP, too large.
    Error,
    /// No answer within the action's timeout.
    Timeout,
    /// Joined an identical call already in flight (no request of its own).
    Coalesced,
    /// Answered from a cached allow (no request).
    Cached,
    /// Too many calls in flight on this core: not asked (fail policy).
    Overload,
}

impl HookResult {
    /// Every result, in metric-label order.
    pub const ALL: [HookResult; 7] = [
        HookResult::Allow,
        HookResult::Deny,
        HookResult::Error,
        HookResult::Timeout,
        HookResult::Coalesced,
        HookResult::Cached,
        HookResult::Overload,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            HookResult::Allow => "allow",
            HookResult::Deny => "deny",
            HookResult::Error => "error",
            HookResult::Timeout => "timeout",
            HookResult::Coalesced => "coalesced",
            HookResult::Cached => "cached",
            HookResult::Overload => "overload",
        }
    }

    /// Index in [`HookResult::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How a call ended, as the server saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// A complete, well-formed answer.
    Answer(Answer),
    /// No usable answer (connect failed, reset, broken or oversize response).
    Error,
    /// The deadline passed first.
    Timeout,
}

/// A request to send: open a connection to the action's URL, write `request`,
/// read the answer until `deadline_ms`.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Report its end with this.
    pub call: CallId,
    /// Which hook (its URL is [`HookCore::url`]).
    pub action: HookAction,
    /// The whole HTTP request.
    pub request: Bytes,
    /// When it times out (ms, the caller's clock).
    pub deadline_ms: u64,
}

/// What [`HookCore::ask`] did with a session.
#[derive(Debug, PartialEq, Eq)]
pub enum Asked<W> {
    /// Decided without a request (cached allow, overload, no URL): the waiter
    /// comes back with the decision.
    Now {
        /// Continue the session (true) or refuse it.
        allow: bool,
        /// Why.
        result: HookResult,
        /// The waiter, handed back.
        waiter: W,
    },
    /// Parked until its call finishes; `coalesced`: it joined a call in flight.
    Waiting {
        /// Joined an identical call instead of starting one.
        coalesced: bool,
    },
}

/// A finished call: its result (count it), and for a gating call the waiting
/// sessions and whether they may continue.
#[derive(Debug, PartialEq, Eq)]
pub struct Finished<W> {
    /// The call.
    pub call: CallId,
    /// Its action.
    pub action: HookAction,
    /// How it ended.
    pub result: HookResult,
    /// Whether the waiters continue (the answer, or the fail policy).
    pub allow: bool,
    /// From start to end, ms.
    pub latency_ms: u64,
    /// The sessions waiting on it (none for notifications).
    pub waiters: Vec<W>,
    /// A notification that will be sent again.
    pub retrying: bool,
}

/// The settings every core's [`HookCore`] is built from.
#[derive(Clone, Debug)]
pub struct HookSettings {
    urls: [Option<HookUrl>; 4],
    ids: ServerIds,
    timeout_ms: [u64; 4],
    fail_open: [bool; 4],
    max_in_flight: usize,
    cache_allow_ms: u64,
    stop_retries: u32,
}

impl HookSettings {
    /// From `[hooks]`; `service_id` is unique per process start.
    pub fn new(config: &HooksConfig, service_id: String) -> Result<HookSettings, HooksConfigError> {
        let play = config.timeout_play.as_millis() as u64;
        let publish = config.timeout_publish.as_millis() as u64;
        Ok(HookSettings {
            urls: config.urls()?,
            ids: ServerIds {
                server_id: config.server_id.clone(),
                service_id,
            },
            // Index order: HookAction::ALL.
            timeout_ms: [publish, publish, play, play],
            fail_open: [
                config.fail_open_publish,
                false,
                config.fail_open_play,
                false,
            ],
            max_in_flight: config.max_in_flight_per_core.max(1),
            cache_allow_ms: config.cache_allow_for.as_millis() as u64,
            stop_retries: config.stop_retries,
        })
    }
}

struct Call<W> {
    action: HookAction,
    key: Option<String>,
    waiters: Vec<W>,
    started_ms: u64,
    deadline_ms: u64,
    /// A notification's request and attempt number (0: the first).
    notice: Option<(Bytes, u32)>,
}

struct Notice {
    action: HookAction,
    request: Bytes,
    attempt: u32,
    due_ms: u64,
}

/// One core's hook calls. `W` is what the server keeps per waiting session.
pub struct HookCore<W> {
    settings: HookSettings,
    next_id: u64,
    calls: HashMap<u64, Call<W>>,
    by_key: HashMap<String, u64>,
    cache: HashMap<String, u64>,
    next_prune_ms: u64,
    outgoing: VecDeque<Outgoing>,
    notices: VecDeque<Notice>,
}

impl<W> HookCore<W> {
    /// No calls yet.
    pub fn new(settings: HookSettings) -> HookCore<W> {
        HookCore {
            settings,
            next_id: 0,
            calls: HashMap::new(),
            by_key: HashMap::new(),
            cache: HashMap::new(),
            next_prune_ms: 0,
            outgoing: VecDeque::new(),
            notices: VecDeque::new(),
        }
    }

    /// The URL of `action`, if configured.
    pub fn url(&self, action: HookAction) -> Option<&HookUrl> {
        self.settings.urls.get(action.index())?.as_ref()
    }

    /// Calls started and not finished.
    pub fn in_flight(&self) -> usize {
        self.calls.len()
    }

    /// Notifications waiting for room or their retry.
    pub fn queued_notices(&self) -> usize {
        self.notices.len()
    }

    fn fail_open(&self, action: HookAction) -> bool {
        self.settings
            .fail_open
            .get(action.index())
            .copied()
            .unwrap_or(false)
    }

    /// Asks the gating hook of `action` about `who` for the session `waiter`.
    pub fn ask(
        &mut self,
        action: HookAction,
        who: &HookSubject,
        waiter: W,
        now_ms: u64,
    ) -> Asked<W> {
        let key = who.coalesce_key(action);
        match self.cache.get(&key) {
            Some(&until) if until > now_ms => {
                return Asked::Now {
                    allow: true,
                    result: HookResult::Cached,
                    waiter,
                }
            }
            Some(_) => {
                self.cache.remove(&key);
            }
            None => {}
        }
        let fail = |core: &Self, result, waiter| Asked::Now {
            allow: core.fail_open(action),
            result,
            waiter,
        };
        if let Some(call) = self.by_key.get(&key).and_then(|id| self.calls.get_mut(id)) {
            if call.waiters.len() >= MAX_WAITERS_PER_CALL {
                return fail(self, HookResult::Overload, waiter);
            }
            call.waiters.push(waiter);
            return Asked::Waiting { coalesced: true };
        }
        let Some(url) = self.url(action) else {
            return fail(self, HookResult::Error, waiter);
        };
        if self.calls.len() >= self.settings.max_in_flight {
            return fail(self, HookResult::Overload, waiter);
        }
        let request = write_request(url, &json_body(action, who, &self.settings.ids));
        let id = self.start(
            action,
            Some(key.clone()),
            vec![waiter],
            request,
            None,
            now_ms,
        );
        self.by_key.insert(key, id.0);
        Asked::Waiting { coalesced: false }
    }

    /// Tells the notification hook of `action` about `who`. False when it is
    /// not configured, or dropped because the queue is full.
    pub fn notify(&mut self, action: HookAction, who: &HookSubject, now_ms: u64) -> bool {
        let Some(url) = self.url(action) else {
            return false;
        };
        let request = write_request(url, &json_body(action, who, &self.settings.ids));
        if self.calls.len() < self.settings.max_in_flight {
            self.start(
                action,
                None,
                Vec::new(),
                request.clone(),
                Some((request, 0)),
                now_ms,
            );
            return true;
        }
        if self.notices.len() >= MAX_QUEUED_NOTICES {
            return false;
        }
        self.notices.push_back(Notice {
            action,
            request,
            attempt: 0,
            due_ms: now_ms,
        });
        true
    }

    fn start(
        &mut self,
        action: HookAction,
        key: Option<String>,
        waiters: Vec<W>,
        request: Bytes,
        notice: Option<(Bytes, u32)>,
        now_ms: u64,
    ) -> CallId {
        let id = CallId(self.next_id);
        self.next_id += 1;
        let timeout = self
            .settings
            .timeout_ms
            .get(action.index())
            .copied()
            .unwrap_or(3_000);
        let deadline_ms = now_ms + timeout;
        self.calls.insert(
            id.0,
            Call {
                action,
                key,
                waiters,
                started_ms: now_ms,
                deadline_ms,
                notice,
            },
        );
        self.outgoing.push_back(Outgoing {
            call: id,
            action,
            request,
            deadline_ms,
        });
        id
    }

    /// The next request to send.
    pub fn take_outgoing(&mut self) -> Option<Outgoing> {
        self.outgoing.pop_front()
    }

    /// Call `id` ended with `outcome` at `now_ms`. `None` if it already ended
    /// (a timeout and a late answer race; the first wins).
    pub fn finish(&mut self, id: CallId, outcome: CallOutcome, now_ms: u64) -> Option<Finished<W>> {
        let call = self.calls.remove(&id.0)?;
        if let Some(key) = &call.key {
            if self.by_key.get(key) == Some(&id.0) {
                self.by_key.remove(key);
            }
        }
        let fail_open = self.fail_open(call.action);
        let (result, allow) = match outcome {
            CallOutcome::Answer(Answer::Allow) => (HookResult::Allow, true),
            CallOutcome::Answer(Answer::Deny { .. }) => (HookResult::Deny, false),
            CallOutcome::Error => (HookResult::Error, fail_open),
            CallOutcome::Timeout => (HookResult::Timeout, fail_open),
        };
        if result == HookResult::Allow && self.settings.cache_allow_ms > 0 {
            if let Some(key) = call.key {
                self.cache_allow(key, now_ms);
            }
        }
        let mut retrying = false;
        if let Some((request, attempt)) = call.notice {
            let failed = matches!(outcome, CallOutcome::Error | CallOutcome::Timeout);
            if failed
                && attempt < self.settings.stop_retries
                && self.notices.len() < MAX_QUEUED_NOTICES
            {
                self.notices.push_back(Notice {
                    action: call.action,
                    request,
                    attempt: attempt + 1,
                    due_ms: now_ms + RETRY_DELAY_MS * u64::from(attempt + 1),
                });
                retrying = true;
            }
        }
        self.promote(now_ms);
        Some(Finished {
            call: id,
            action: call.action,
            result,
            allow,
            latency_ms: now_ms.saturating_sub(call.started_ms),
            waiters: call.waiters,
            retrying,
        })
    }

    fn cache_allow(&mut self, key: String, now_ms: u64) {
        if self.cache.len() >= MAX_CACHE_ENTRIES {
            self.cache.retain(|_, until| *until > now_ms);
            if self.cache.len() >= MAX_CACHE_ENTRIES {
                return;
            }
        }
        self.cache
            .insert(key, now_ms + self.settings.cache_allow_ms);
    }

    /// Starts the due notifications while there is room.
    fn promote(&mut self, now_ms: u64) {
        if self.notices.is_empty() {
            return;
        }
        let mut waiting = VecDeque::with_capacity(self.notices.len());
        while let Some(n) = self.notices.pop_front() {
            if n.due_ms <= now_ms && self.calls.len() < self.settings.max_in_flight {
                let notice = Some((n.request.clone(), n.attempt));
                self.start(n.action, None, Vec::new(), n.request, notice, now_ms);
            } else {
                waiting.push_back(n);
            }
        }
        self.notices = waiting;
    }

    /// The earliest call deadline or notification due time.
    pub fn poll_timeout(&self) -> Option<u64> {
        let calls = self.calls.values().map(|c| c.deadline_ms);
        let notices = self.notices.iter().map(|n| n.due_ms);
        calls.chain(notices).min()
    }

    /// Times out the calls past their deadline at `now_ms` (into `out`; the
    /// server closes their connections), starts due notifications, drops
    /// expired cache entries.
    pub fn handle_timeout(&mut self, now_ms: u64, out: &mut Vec<Finished<W>>) {
        let expired: Vec<u64> = self
            .calls
            .iter()
            .filter(|(_, c)| c.deadline_ms <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(done) = self.finish(CallId(id), CallOutcome::Timeout, now_ms) {
                out.push(done);
            }
        }
        self.promote(now_ms);
        if now_ms >= self.next_prune_ms {
            self.cache.retain(|_, until| *until > now_ms);
            self.next_prune_ms = now_ms + PRUNE_EVERY_MS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(edit: impl FnOnce(&mut HooksConfig)) -> HookSettings {
        let mut c = HooksConfig {
            on_publish: Some("http://127.0.0.1:9/publish".into()),
            on_unpublish: Some("http://127.0.0.1:9/unpublish".into()),
            on_play: Some("http://127.0.0.1:9/play?k=s".into()),
            on_stop: Some("http://127.0.0.1:9/stop".into()),
            ..HooksConfig::default()
        };
        edit(&mut c);
        HookSettings::new(&c, "svc".into()).unwrap()
    }

    fn who(ip: &str) -> HookSubject {
        HookSubject {
            client_id: format!("c-{ip}"),
            ip: ip.into(),
            app: "live".into(),
            stream: "cam".into(),
            param: "?t=1".into(),
            ..HookSubject::default()
        }
    }

    fn waiting<W: std::fmt::Debug>(a: Asked<W>) -> bool {
        match a {
            Asked::Waiting { coalesced } => coalesced,
            other => panic!("expected a wait, got {other:?}"),
        }
    }

    const ALLOW: CallOutcome = CallOutcome::Answer(Answer::Allow);
    const DENY: CallOutcome = CallOutcome::Answer(Answer::Deny {
        status: 403,
        code: None,
    });

    #[test]
    fn a_call_goes_out_and_its_answer_releases_the_waiter() {
        let mut core: HookCore<u32> = HookCore::new(settings(|_| {}));
        assert!(!waiting(core.ask(
            HookAction::Play,
            &who("1.1.1.1"),
            7,
            100
        )));
        let out = core.take_outgoing().unwrap();
        assert!(core.take_outgoing().is_none());
        assert_eq!((out.action, out.deadline_ms), (HookAction::Play, 3_100));
        assert!(out.request.starts_with(b"POST /play?k=s HTTP/1.1\r\n"));
        assert_eq!(core.poll_timeout(), Some(3_100));
        let done = core.finish(out.call, ALLOW, 150).unwrap();
        assert_eq!(
            done,
            Finished {
                call: out.call,
                action: HookAction::Play,
                result: HookResult::Allow,
                allow: true,
                latency_ms: 50,
                waiters: vec![7],
                retrying: false
            }
        );
        assert_eq!(core.in_flight(), 0);
        assert!(core.finish(out.call, DENY, 151).is_none(), "ends once");
    }

    #[test]
    fn identical_asks_coalesce_and_different_ones_do_not() {
        let mut core: HookCore<u32> = HookCore::new(settings(|_| {}));
        assert!(!waiting(core.ask(HookAction::Play, &who("1.1.1.1"), 1, 0)));
        assert!(waiting(core.ask(HookAction::Play, &who("1.1.1.1"), 2, 1)));
        assert!(waiting(core.ask(HookAction::Play, &who("1.1.1.1"), 3, 2)));
        assert!(!waiting(core.ask(HookAction::Play, &who("2.2.2.2"), 4, 3)));
        assert!(!waiting(core.ask(
            HookAction::Publish,
            &who("1.1.1.1"),
            5,
            3
        )));
        let calls: Vec<Outgoing> = std::iter::from_fn(|| core.take_outgoing()).collect();
        assert_eq!(calls.len(), 3);
        let done = core.finish(calls[0].call, DENY, 10).unwrap();
        assert_eq!(
            (done.result, done.allow, done.waiters),
            (HookResult::Deny, false, vec![1, 2, 3])
        );
        // The finished call no longer collects waiters: the next ask is a new call.
        assert!(!waiting(core.ask(HookAction::Play, &who("1.1.1.1"), 6, 11)));
    }

    #[test]
    fn allows_are_cached_for_the_configured_time_denies_never() {
        let mut core: HookCore<u32> =
            HookCore::new(settings(|c| c.cache_allow_for = Duration::from_millis(500)));
        core.ask(HookAction::Play, &who("1.1.1.1"), 1, 0);
        let call = core.take_outgoing().unwrap().call;
        core.finish(call, ALLOW, 10);
        assert_eq!(
            core.ask(HookAction::Play, &who("1.1.1.1"), 2, 509),
            Asked::Now {
                allow: true,
                result: HookResult::Cached,
                waiter: 2
            }
        );
        assert!(core.take_outgoing().is_none());
        // Expired: asked again.
        assert!(!waiting(core.ask(
            HookAction::Play,
            &who("1.1.1.1"),
            3,
            510
        )));
        let call = core.take_outgoing().unwrap().call;
        core.finish(call, DENY, 520);
        assert!(!waiting(core.ask(
            HookAction::Play,
            &who("1.1.1.1"),
            4,
            521
        )));
        // Another address is another key.
        let mut core: HookCore<u32> = HookCore::new(settings(|_| {}));
        core.ask(HookAction::Play, &who("1.1.1.1"), 1, 0);
        let call = core.take_outgoing().unwrap().call;
        core.finish(call, ALLOW, 1);
        assert!(!waiting(core.ask(HookAction::Play, &who("9.9.9.9"), 2, 2)));
        // Expired entries are dropped by the sweep.
        let mut out = Vec::new();
        core.handle_timeout(20_000, &mut out);
        assert!(core.cache.is_empty());
    }

    #[test]
    fn cache_off_means_every_ask_is_a_call() {
        let mut core: HookCore<u32> =
            HookCore::new(settings(|c| c.cache_allow_for = Duration::ZERO));
        core.ask(HookAction::Play, &who("1.1.1.1"), 1, 0);
        let call = core.take_outgoing().unwrap().call;
        core.finish(call, ALLOW, 1);
        assert!(!waiting(core.ask(HookAction::Play, &who("1.1.1.1"), 2, 2)));
    }

    #[test]
    fn errors_and_timeouts_take_the_fail_policy() {
        for fail_open in [false, true] {
            let mut core: HookCore<u32> = HookCore::new(settings(|c| {
                c.fail_open_play = fail_open;
                c.timeout_play = Duration::from_millis(100);
            }));
            core.ask(HookAction::Play, &who("1.1.1.1"), 1, 0);
            core.ask(HookAction::Publish, &who("1.1.1.1"), 2, 0);
            core.ask(HookAction::Play, &who("2.2.2.2"), 3, 0);
            let calls: Vec<Outgoing> = std::iter::from_fn(|| core.take_outgoing()).collect();
            let e = core.finish(calls[0].call, CallOutcome::Error, 5).unwrap();
            assert_eq!((e.result, e.allow), (HookResult::Error, fail_open));
            // Publish fails closed by default.
            let e = core.finish(calls[1].call, CallOutcome::Timeout, 5).unwrap();
            assert_eq!((e.result, e.allow), (HookResult::Timeout, false));
            // The sweep times out what is past its deadline.
            let mut out = Vec::new();
            core.handle_timeout(99, &mut out);
            assert!(out.is_empty());
            core.handle_timeout(100, &mut out);
            assert_eq!(out.len(), 1);
            assert_eq!(
                (out[0].result, out[0].allow, &out[0].waiters),
                (HookResult::Timeout, fail_open, &vec![3])
            );
            assert_eq!(core.in_flight(), 0);
            assert_eq!(core.poll_timeout(), None);
        }
    }

    #[test]
    fn in_flight_is_bounded() {
        let mut core: HookCore<u32> = HookCore::new(settings(|c| {
            c.max_in_flight_per_core = 2;
            c.fail_open_publish = true;
        }));
        core.ask(HookAction::Play, &who("1.1.1.1"), 1, 0);
        core.ask(HookAction::Play, &who("2.2.2.2"), 2, 0);
        assert_eq!(
            core.ask(HookAction::Play, &who("3.3.3.3"), 3, 0),
            Asked::Now {
                allow: false,
                result: HookResult::Overload,
                waiter: 3
            }
        );
        assert_eq!(
            core.ask(HookAction::Publish, &who("3.3.3.3"), 4, 0),
            Asked::Now {
                allow: true,
                result: HookResult::Overload,
                waiter: 4
            }
        );
        // Coalescing onto a call in flight needs no room.
        assert!(waiting(core.ask(HookAction::Play, &who("1.1.1.1"), 5, 0)));
        assert_eq!(core.in_flight(), 2);
        // A notification waits for room, then goes out.
        assert!(core.notify(HookAction::Stop, &who("1.1.1.1"), 0));
        assert_eq!(core.queued_notices(), 1);
        let first = core.take_outgoing().unwrap().call;
        core.take_outgoing().unwrap();
        assert!(core.take_outgoing().is_none());
        core.finish(first, ALLOW, 3);
        let next = core.take_outgoing().unwrap();
        assert_eq!(next.action, HookAction::Stop);
        assert_eq!(core.queued_notices(), 0);
        // The notice queue itself is bounded.
        let mut dropped = 0;
        for _ in 0..MAX_QUEUED_NOTICES + 5 {
            if !core.notify(HookAction::Stop, &who("1.1.1.1"), 4) {
                dropped += 1;
            }
        }
        assert_eq!(dropped, 5);
    }

    #[test]
    fn waiters_per_call_are_bounded() {
        let mut core: HookCore<usize> = HookCore::new(settings(|_| {}));
        for i in 0..MAX_WAITERS_PER_CALL {
            assert!(matches!(
                core.ask(HookAction::Play, &who("1.1.1.1"), i, 0),
                Asked::Waiting { .. }
            ));
        }
        assert!(matches!(
            core.ask(HookAction::Play, &who("1.1.1.1"), 0, 0),
            Asked::Now {
                allow: false,
                result: HookResult::Overload,
                ..
            }
        ));
    }

    #[test]
    fn notifications_retry_a_bounded_number_of_times() {
        let mut core: HookCore<u32> = HookCore::new(settings(|c| c.stop_retries = 2));
        assert!(core.notify(HookAction::Unpublish, &who("1.1.1.1"), 0));
        let first = core.take_outgoing().unwrap();
        assert!(first.request.windows(14).any(|w| w == b"\"on_unpublish\""));
        let f = core.finish(first.call, CallOutcome::Error, 10).unwrap();
        assert!(f.retrying && f.waiters.is_empty());
        // Retry 1 is due a second later.
        assert!(core.take_outgoing().is_none());
        assert_eq!(core.poll_timeout(), Some(1_010));
        let mut out = Vec::new();
        core.handle_timeout(1_009, &mut out);
        assert!(core.take_outgoing().is_none());
        core.handle_timeout(1_010, &mut out);
        let second = core.take_outgoing().unwrap();
        assert_eq!(second.request, first.request);
        assert!(
            core.finish(second.call, CallOutcome::Timeout, 1_020)
                .unwrap()
                .retrying
        );
        core.handle_timeout(3_020, &mut out);
        let third = core.take_outgoing().unwrap();
        let f = core.finish(third.call, CallOutcome::Error, 3_030).unwrap();
        assert!(!f.retrying, "two retries, then it gives up");
        assert_eq!(core.poll_timeout(), None);
        // An answer (even a deny) is final.
        core.notify(HookAction::Stop, &who("1.1.1.1"), 0);
        let call = core.take_outgoing().unwrap().call;
        assert!(!core.finish(call, DENY, 1).unwrap().retrying);
    }

    #[test]
    fn unconfigured_hooks() {
        let mut core: HookCore<u32> = HookCore::new(settings(|c| {
            c.on_play = None;
            c.on_stop = None;
            c.fail_open_play = true;
        }));
        assert!(!core.notify(HookAction::Stop, &who("1.1.1.1"), 0));
        assert_eq!(
            core.ask(HookAction::Play, &who("1.1.1.1"), 1, 0),
            Asked::Now {
                allow: true,
                result: HookResult::Error,
                waiter: 1
            }
        );
        assert!(core.take_outgoing().is_none());
    }
}
