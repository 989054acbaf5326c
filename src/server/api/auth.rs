//! Bearer-token check for the admin API (`Authorization: Bearer <token>`).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Longest `Authorization` header value considered; longer ones are rejected
/// without hashing, so a client cannot make the server hash megabytes.
pub const MAX_AUTHORIZATION_LEN: usize = 4096;

/// Outcome of checking a request's credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// No token is configured, or the request presented the right one.
    Allowed,
    /// No usable `Authorization: Bearer` header.
    Missing,
    /// A bearer token that does not match.
    Invalid,
}

/// The configured token, kept as its SHA-256 digest so every comparison is
/// between two 32-byte values: the time taken reveals neither the token's
/// contents nor its length.
#[derive(Clone)]
pub struct BearerToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    /// Wraps the token from the config.
    pub fn new(token: &str) -> Self {
        Self {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// Checks the value of an `Authorization` header, if the request had one.
    pub fn check(&self, authorization: Option<&str>) -> AuthOutcome {
        let Some(value) = authorization else {
            return AuthOutcome::Missing;
        };
        if value.len() > MAX_AUTHORIZATION_LEN {
            return AuthOutcome::Invalid;
        }
        let Some(presented) = bearer_credentials(value) else {
            return AuthOutcome::Missing;
        };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if bool::from(digest.ct_eq(&self.digest)) {
            AuthOutcome::Allowed
        } else {
            AuthOutcome::Invalid
        }
    }
}

/// The credentials of a `Bearer` authorization value (scheme is
/// case-insensitive, RFC 6750 §2.1), or `None` for another scheme.
fn bearer_credentials(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_token_any_scheme_case() {
        let t = BearerToken::new("s3cret");
        assert_eq!(t.check(Some("Bearer s3cret")), AuthOutcome::Allowed);
        assert_eq!(t.check(Some("bearer   s3cret ")), AuthOutcome::Allowed);
    }

    #[test]
    fn wrong_missing_and_other_schemes() {
        let t = BearerToken::new("s3cret");
        assert_eq!(t.check(Some("Bearer s3cre")), AuthOutcome::Invalid);
        assert_eq!(t.check(Some("Bearer s3cret2")), AuthOutcome::Invalid);
        assert_eq!(t.check(None), AuthOutcome::Missing);
        assert_eq!(t.check(Some("Basic czNjcmV0")), AuthOutcome::Missing);
        assert_eq!(t.check(Some("Bearer")), AuthOutcome::Missing);
        assert_eq!(t.check(Some("Bearer ")), AuthOutcome::Missing);
        let huge = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_LEN));
        assert_eq!(t.check(Some(&huge)), AuthOutcome::Invalid);
    }

    #[test]
    fn debug_does_not_leak_the_token() {
        let t = BearerToken::new("s3cret");
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
