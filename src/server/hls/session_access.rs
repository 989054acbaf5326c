//! `[auth]` and `[hooks]` for HLS / DASH, once per viewer session.
//!
//! An HLS player makes many requests per second (playlist reloads, parts,
//! segments) and none of them names the viewer, so a session is recognised
//! without per-viewer URL state:
//!
//! * A session starts at an *entry* URL (`.m3u8`, `-ts.m3u8`, `.mpd`, the
//!   URL a player is given): only there is the play token required and
//!   `on_play` asked. The URLs the playlists list are relative and carry no
//!   query, so players fetch them without the token.
//! * The connection remembers the one stream it was allowed (`Conn::
//!   hls_allowed`): an entry URL of that stream again on the same keep-alive
//!   connection (dash.js reloading the MPD, a player re-reading the
//!   multivariant) is neither re-checked nor re-asked.
//! * A new connection of the same viewer asks again, and the hook core's allow
//!   cache (`hooks.cache_allow_for`, keyed by action, stream, query and client
//!   IP) answers it without a hook request while the allow is fresh.
//! * A non-entry URL that does carry a token (a player that appends it to
//!   every request) has it checked like the entry's, with the same stream
//!   path, so one token signed for `app/stream` (or a prefix of it) covers a
//!   stream's playlists, parts and segments; a bad one is 403. Without one it
//!   is served (nothing in it names a viewer to check).
//!
//! `on_stop` (when configured) is told when the connection that started the
//! session closes, or when it starts a session of another stream.

use super::routes::HlsRequest;
use crate::auth::hooks::HookAction;
use crate::auth::Action;
use crate::server::access::Access;
use crate::server::hooks::Resume;
use crate::server::worker::CoreState;

/// Whether `query` carries anything besides LL-HLS directives (`_HLS_*`),
/// i.e. possibly a play token.
fn carries_token(query: &str) -> bool {
    query
        .split('&')
        .any(|p| !p.is_empty() && !p.starts_with("_HLS_"))
}

impl CoreState {
    /// Checks `req` (an entry URL: `entry`) of connection `slot` against
    /// `[auth]`: `Ok(req)` to serve it now; `Err(keep_going)` (as
    /// `on_request`) when it was answered (403) or is held for its hook
    /// (resumed by [`CoreState::hls_authorized`]).
    pub(super) fn hls_access(
        &mut self,
        slot: u32,
        req: HlsRequest,
        entry: bool,
        uri_suffix: &str,
    ) -> Result<HlsRequest, bool> {
        let known = self
            .conns
            .at(slot)
            .is_some_and(|c| c.hls_allowed.as_ref() == Some(&req.key));
        if known || (!entry && !carries_token(&req.query)) {
            return Ok(req);
        }
        let (app, stream) = (req.key.app().to_owned(), req.key.name().to_owned());
        let query = req.query.clone();
        let q = (!query.is_empty()).then_some(query.as_str());
        let ctx = req.ctx;
        if !entry {
            // A token on a listed URL: the signature only; the session's hook
            // was asked at its entry URL.
            return match self.check_signature(slot, Action::Play, &app, &stream, uri_suffix, q) {
                Ok(()) => Ok(req),
                Err(why) => {
                    self.refused(slot, Action::Play, &app, &stream, why);
                    Err(self.hls_error(slot, ctx, 403))
                }
            };
        }
        // Cloned only when the hook holds it.
        let resume = || Resume::Hls(Box::new(req.clone()));
        match self.authorize(slot, Action::Play, &app, &stream, uri_suffix, q, resume) {
            Access::Granted => {
                self.hls_session_started(slot, &req);
                Ok(req)
            }
            Access::Held => {
                // Pipelined requests stay buffered until the hook answers
                // (bounded by the hook's timeout).
                self.park(slot);
                Err(false)
            }
            // Counted and logged by `authorize`.
            Access::Refused(_) => Err(self.hls_error(slot, ctx, 403)),
        }
    }

    /// The connection's session of `req`'s stream was allowed: remember it
    /// and arm `on_stop`. A session of another stream on the same connection
    /// ends here (its `on_stop` is sent now).
    fn hls_session_started(&mut self, slot: u32, req: &HlsRequest) {
        let ended = self
            .conns
            .at(slot)
            .filter(|c| c.hls_allowed.is_some())
            .and_then(|c| c.hook_stop.take());
        if let Some(who) = ended {
            self.notify_hook(HookAction::Stop, &who);
        }
        let q = (!req.query.is_empty()).then_some(req.query.as_str());
        self.arm_stop_hook(slot, req.key.app(), req.key.name(), q);
        if let Some(conn) = self.conns.at(slot) {
            conn.hls_allowed = Some(req.key.clone());
        }
    }

    /// A request held for its `on_play` hook was allowed: remember the
    /// session, serve the request, then read what was pipelined behind it.
    pub(crate) fn hls_authorized(&mut self, slot: u32, req: HlsRequest) {
        self.hls_session_started(slot, &req);
        if self.hls_start(slot, req) {
            self.process_http(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::carries_token;

    #[test]
    fn only_non_directive_parameters_count_as_a_token() {
        assert!(!carries_token(""));
        assert!(!carries_token("_HLS_msn=3&_HLS_part=1"));
        assert!(!carries_token("_HLS_skip=YES&"));
        assert!(carries_token("_HLS_msn=3&exp=1&sig=ab"));
        assert!(carries_token("token=x"));
    }
}
