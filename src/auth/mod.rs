//! Signed-URL access control (`[auth]`), sans-IO: the action, the stream path,
//! the query string, the client's address and the wall-clock second come in; a
//! decision comes out. No sockets, no clocks, no allocation per check.
//!
//! The default scheme ([`ringcast`]) is an HMAC-SHA256 over the action, the
//! stream path (or a path prefix), the expiry and optionally the client IP,
//! carried as `?exp=…&kid=…&sig=…`. Three verify-only schemes accept URLs
//! signed the way CDNs sign them, for operators migrating: Tencent CSS
//! `txSecret`/`txTime` ([`tencent`]), Alibaba/Tencent `auth_key` type A
//! ([`auth_key`]) and nginx `secure_link_md5` ([`secure_link`]).
//!
//! The server asks [`Gate::check`] once, when a publish or play session
//! starts; a viewer whose token expires while watching keeps watching.

#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

pub mod auth_key;
pub mod config;
mod hex;
pub mod hooks;
mod query;
pub mod ringcast;
pub mod secure_link;
pub mod tencent;
mod verifier;

use std::net::IpAddr;

pub use config::{AuthConfig, AuthConfigError, KeyConfig, Policy, SchemeName};
pub use verifier::{Key, Verifier};

/// What a client asks to do with a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a stream (RTMP publish).
    Publish,
    /// Receive a stream (RTMP play, HTTP-FLV).
    Play,
}

impl Action {
    /// The word signed into a token and shown in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Play => "play",
        }
    }
}

/// One access request, as the server saw it when the session started.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Publish or play.
    pub action: Action,
    /// The app (`live`), query removed.
    pub app: &'a str,
    /// The stream name (`cam`), query and `.flv` removed.
    pub stream: &'a str,
    /// What follows `/app/stream` in the path the CDN schemes sign: `""` for
    /// RTMP, `".flv"` for HTTP-FLV (so the URI is `/app/stream.flv`).
    pub uri_suffix: &'a str,
    /// The query string after `?`, if any.
    pub query: Option<&'a str>,
    /// The client's address, if known.
    pub client_ip: Option<IpAddr>,
    /// Wall-clock time, Unix seconds.
    pub now_s: u64,
}

impl Request<'_> {
    /// The signed URI `/app/stream{suffix}` in pieces, so hashing it needs no
    /// joined string.
    pub(crate) fn uri_parts(&self) -> [&[u8]; 5] {
        [
            b"/",
            self.app.as_bytes(),
            b"/",
            self.stream.as_bytes(),
            self.uri_suffix.as_bytes(),
        ]
    }
}

/// Why a request was refused; the `reason` label of
/// `ringcast_auth_refused_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The query carries no token of any configured scheme.
    #[error("no token")]
    Missing,
    /// A token is there but a field is missing or unreadable.
    #[error("malformed token")]
    Malformed,
    /// The token's expiry (plus the allowed clock skew) has passed.
    #[error("token expired")]
    Expired,
    /// The signature does not match (wrong secret, tampered path, action or expiry).
    #[error("bad signature")]
    BadSignature,
    /// The token names a key id this server does not have.
    #[error("unknown key id")]
    UnknownKey,
    /// The token is bound to another client address.
    #[error("client address does not match the token")]
    IpMismatch,
    /// The `[hooks]` server answered, and not with an allow.
    #[error("denied by the hook server")]
    HookDenied,
    /// The `[hooks]` server could not be asked (down, timed out, garbled
    /// answer, too many calls in flight) and the action fails closed.
    #[error("hook server unavailable")]
    HookError,
}

impl Refusal {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::Expired => "expired",
            Refusal::BadSignature => "bad_signature",
            Refusal::UnknownKey => "unknown_key",
            Refusal::IpMismatch => "ip_mismatch",
            Refusal::HookDenied => "hook_denied",
            Refusal::HookError => "hook_error",
        }
    }
}

/// The access policy of both actions and the keys to check tokens with,
/// built once from `[auth]` and shared by every core.
#[derive(Clone, Debug, Default)]
pub struct Gate {
    publish: Policy,
    play: Policy,
    verifier: Verifier,
}

impl Gate {
    /// A gate with these policies and keys.
    pub fn new(publish: Policy, play: Policy, verifier: Verifier) -> Self {
        Gate {
            publish,
            play,
            verifier,
        }
    }

    /// Both actions signed and no key: refuses everything (the fallback when
    /// a configuration could not be turned into a gate).
    pub fn closed() -> Self {
        Gate::new(Policy::Signed, Policy::Signed, Verifier::default())
    }

    /// The policy of `action`.
    pub fn policy(&self, action: Action) -> Policy {
        match action {
            Action::Publish => self.publish,
            Action::Play => self.play,
        }
    }

    /// Allows or refuses `req`'s signed URL under its action's policy. `Ok`
    /// names the key id that signed it (`None`: no signature is needed). A
    /// `hook` policy passes here; the server asks the hook next
    /// ([`Policy::needs_hook`]).
    pub fn check<'g>(&'g self, req: &Request<'_>) -> Result<Option<&'g str>, Refusal> {
        if self.policy(req.action).needs_signature() {
            self.verifier.verify(req).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The keys.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }
}

/// Writes `app/stream` pieces and checks them against a prefix without
/// building the joined string.
pub(crate) fn path_starts_with(app: &str, stream: &str, prefix: &str) -> bool {
    let path_len = app.len() + 1 + stream.len();
    if prefix.len() > path_len {
        return false;
    }
    let mut rest = prefix.as_bytes();
    for piece in [app.as_bytes(), b"/", stream.as_bytes()] {
        let n = rest.len().min(piece.len());
        let (want, tail) = rest.split_at(n);
        if piece.get(..n) != Some(want) {
            return false;
        }
        rest = tail;
        if rest.is_empty() {
            return true;
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_match_walks_the_pieces() {
        assert!(path_starts_with("live", "cam", "live/cam"));
        assert!(path_starts_with("live", "cam", "live/"));
        assert!(path_starts_with("live", "cam", "li"));
        assert!(path_starts_with("live", "cam2", "live/cam"));
        assert!(path_starts_with("live", "cam", ""));
        assert!(!path_starts_with("live", "cam", "live/cam/"));
        assert!(!path_starts_with("live", "cam", "live/dog"));
        assert!(!path_starts_with("liv", "e/cam", "live/cam"));
        assert!(!path_starts_with("other", "cam", "live/"));
    }

    #[test]
    fn open_policy_allows_without_a_token() {
        let gate = Gate::default();
        let req = Request {
            action: Action::Publish,
            app: "live",
            stream: "cam",
            uri_suffix: "",
            query: None,
            client_ip: None,
            now_s: 0,
        };
        assert_eq!(gate.check(&req), Ok(None));
    }
}
