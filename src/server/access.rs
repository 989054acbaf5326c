//! `[auth]` at the start of a publish or play session: asks the shared
//! [`Gate`](crate::auth::Gate) once, counts a refusal by reason and logs it
//! once (never the query: it carries the signature). The caller sends the
//! protocol's refusal (RTMP `NetStream.Publish.Unauthorized` /
//! `NetStream.Play.Failed`, HTTP 403) and closes.

use std::time::{SystemTime, UNIX_EPOCH};

use super::worker::CoreState;
use crate::auth::{Action, Refusal, Request};
use crate::metrics::{AuthRefusal, RefuseReason};

/// The metric label of a refusal.
fn label(r: Refusal) -> AuthRefusal {
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

impl CoreState {
    /// Whether connection `slot` may `action` the stream `app/stream` with
    /// this query; `uri_suffix` completes the path CDN schemes sign (`""` for
    /// RTMP, `".flv"` for HTTP-FLV). A refusal is counted and logged here.
    pub(super) fn authorize(
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
        match self.shared.gate.check(&req) {
            Ok(kid) => {
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
            Err(why) => {
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
                Err(why)
            }
        }
    }
}
