//! What goes in and out of one hook call: its id, how it ended, the request
//! to send, what asking did with a session, and the finished call with its
//! result label.

use bytes::Bytes;

use crate::auth::hooks::response::Answer;
use crate::auth::hooks::HookAction;

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
    /// Which hook (its URL is [`HookCore::url`](super::HookCore::url)).
    pub action: HookAction,
    /// The whole HTTP request.
    pub request: Bytes,
    /// When it times out (ms, the caller's clock).
    pub deadline_ms: u64,
}

/// What [`HookCore::ask`](super::HookCore::ask) did with a session.
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
