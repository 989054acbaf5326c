//! `[auth]` at the start of a publish or play session: asks the shared
//! [`Gate`](crate::auth::Gate) once, then, under a `hook` policy, the
//! `[hooks]` server (which may hold the session, see [`super::hooks`]).
//! A refusal is counted by reason and logged once (never the query: it
//! carries the signature). The caller sends the protocol's refusal (RTMP
//! `NetStream.Publish.Unauthorized` / `NetStream.Play.Failed`, HTTP 403) and
//! closes.

use std::time::{SystemTime, UNIX_EPOCH};

use super::hooks::{HookGate, Resume};
use super::worker::CoreState;
use crate::auth::hooks::HookAction;
use crate::auth::{Action, Refusal, Request};
use crate::metrics::{AuthRefusal, RefuseReason};

/// The metric label of a refusal.
pub(super) fn label(r: Refusal) -> AuthRefusal {
    match r {
        Refusal::Missing => AuthRefusal::Missing,
        Refusal::Malformed => AuthRefusal::Malformed,
        Refusal::Expired => AuthRefusal::Expired,
        Refusal::BadSignature => AuthRefusal::BadSignature,
        Refusal::UnknownKey => AuthRefusal::UnknownKey,
        Refusal::IpMismatch => AuthRefusal::IpMismatch,
        Refusal::HookDenied => AuthRefusal::HookDenied,
        Refusal::HookError => AuthRefusal::HookError,
    }
}

/// What the session does next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Access {
    /// Go on now.
    Granted,
    /// Held for the hook: it will be resumed (through the [`Resume`] given)
    /// or refused; do nothing more now.
    Held,
    /// Refuse it (already counted and logged).
    Refused(Refusal),
}

impl CoreState {
    /// Whether connection `slot` may `action` the stream `app/stream` with
    /// this query; `uri_suffix` completes the path CDN schemes sign (`""` for
    /// RTMP, `".flv"` for HTTP-FLV). `resume` builds how the session goes on
    /// if it has to wait for its hook. A refusal is counted and logged here.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn authorize(
        &mut self,
        slot: u32,
        action: Action,
        app: &str,
        stream: &str,
        uri_suffix: &str,
        query: Option<&str>,
        resume: impl FnOnce() -> Resume,
    ) -> Access {
        let checked = self.check_signature(slot, action, app, stream, uri_suffix, query);
        let decided = match checked {
            Err(why) => Err(why),
            Ok(()) if self.shared.gate.policy(action).needs_hook() => {
                let who = self.hook_subject(slot, app, stream, query);
                match self.ask_hook(slot, HookAction::from(action), &who, resume()) {
                    HookGate::Allowed => Ok(()),
                    HookGate::Held => return Access::Held,
                    HookGate::Refused(why) => Err(why),
                }
            }
            Ok(()) => Ok(()),
        };
        match decided {
            Ok(()) => Access::Granted,
            Err(why) => {
                self.refused(slot, action, app, stream, why);
                Access::Refused(why)
            }
        }
    }

    /// The `[auth]` gate's answer (signed URL, or nothing to check) for
    /// connection `slot` asking to `action` `app/stream` now; no hook is asked.
    pub(super) fn check_signature(
        &mut self,
        slot: u32,
        action: Action,
        app: &str,
        stream: &str,
        uri_suffix: &str,
        query: Option<&str>,
    ) -> Result<(), Refusal> {
        let peer = self.conns.at(slot).and_then(|c| c.peer);
        let now_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let req = Request {
            action,
            app,
            stream,
            uri_suffix,
            query,
            client_ip: peer.map(|p| p.ip()),
            now_s,
        };
        let kid = self.shared.gate.check(&req)?;
        if let Some(kid) = kid {
            tracing::debug!(
                core = self.core,
                action = action.as_str(),
                app,
                stream,
                kid,
                ?peer,
                "signed URL accepted"
            );
        }
        Ok(())
    }

    /// Counts an `[auth]` refusal (signed URL or hook) of connection `slot` and
    /// logs it once (never the query: it carries the signature).
    pub(super) fn refused(
        &mut self,
        slot: u32,
        action: Action,
        app: &str,
        stream: &str,
        why: Refusal,
    ) {
        let peer = self.conns.at(slot).and_then(|c| c.peer);
        self.metrics.auth_refused.inc(label(why));
        self.metrics
            .connections_refused
            .inc(RefuseReason::Unauthorized);
        tracing::info!(
            core = self.core,
            action = action.as_str(),
            app,
            stream,
            ?peer,
            reason = why.as_str(),
            "access refused"
        );
    }
}
