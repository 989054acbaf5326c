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

mod call;
mod settings;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::body::{json_body, write_request, HookSubject};
use super::config::HookUrl;
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

pub use call::{Asked, CallId, CallOutcome, Finished, HookResult, Outgoing};
pub use settings::HookSettings;

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
