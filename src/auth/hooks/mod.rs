//! HTTP hooks (`[hooks]`), sans-IO: SRS `http_hooks` compatible requests out,
//! decisions in. No sockets and no clock: the server opens the connections on
//! its own reactor, passes the current millisecond in and feeds the response
//! bytes back.
//!
//! * [`config`]: the `[hooks]` section and its `http://` URLs.
//! * [`body`]: who asks ([`HookSubject`]) and the POST request with SRS's JSON body.
//! * [`response`]: the bounded response reader and SRS's allow rule.
//! * [`core`]: one core's hook calls: coalescing, the allow cache, the
//!   in-flight bound, timeouts, fail policies and notification retries.

pub mod body;
pub mod config;
pub mod core;
pub mod response;

pub use body::HookSubject;
pub use config::{HookUrl, HooksConfig, HooksConfigError};
pub use core::{Asked, CallId, CallOutcome, Finished, HookCore, HookResult, Outgoing};
pub use response::{Answer, ResponseError, ResponseReader};

/// Which hook a call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookAction {
    /// A publisher asks to publish (gating).
    Publish,
    /// A publisher stopped (notification).
    Unpublish,
    /// A viewer asks to play (gating).
    Play,
    /// A viewer stopped (notification).
    Stop,
}

impl HookAction {
    /// Every action, in metric-label order.
    pub const ALL: [HookAction; 4] = [
        HookAction::Publish,
        HookAction::Unpublish,
        HookAction::Play,
        HookAction::Stop,
    ];

    /// SRS's `action` field and the `action` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            HookAction::Publish => "on_publish",
            HookAction::Unpublish => "on_unpublish",
            HookAction::Play => "on_play",
            HookAction::Stop => "on_stop",
        }
    }

    /// Index in [`HookAction::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the answer decides a session (`on_publish`, `on_play`) rather
    /// than only being told (`on_unpublish`, `on_stop`).
    pub fn gates(self) -> bool {
        matches!(self, HookAction::Publish | HookAction::Play)
    }
}

impl From<super::Action> for HookAction {
    fn from(a: super::Action) -> HookAction {
        match a {
            super::Action::Publish => HookAction::Publish,
            super::Action::Play => HookAction::Play,
        }
    }
}
