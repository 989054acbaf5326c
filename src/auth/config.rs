//! The `[auth]` section: a policy per action, the keys, the clock-skew
//! allowance; turned into a [`Gate`] once at start.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secure_link::{self, TemplateError};
use super::{Gate, Key, Verifier};

/// How an action is allowed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Policy {
    /// Anyone may (the default, so the README demo needs no token).
    #[default]
    Open,
    /// Only with a valid signed URL.
    Signed,
    /// Only when the `[hooks]` `on_publish` / `on_play` server allows it.
    Hook,
    /// A valid signed URL, then the hook server's allow.
    SignedHook,
}

impl Policy {
    /// Whether a signed URL is checked.
    pub fn needs_signature(self) -> bool {
        matches!(self, Policy::Signed | Policy::SignedHook)
    }

    /// Whether the HTTP hook is asked.
    pub fn needs_hook(self) -> bool {
        matches!(self, Policy::Hook | Policy::SignedHook)
    }
}

impl TryFrom<String> for Policy {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "open" => Ok(Policy::Open),
            "signed" => Ok(Policy::Signed),
            "hook" => Ok(Policy::Hook),
            "signed+hook" => Ok(Policy::SignedHook),
            other => Err(format!(
                "unknown policy `{other}`: expected `open`, `signed`, `hook` or `signed+hook`"
            )),
        }
    }
}

impl From<Policy> for String {
    fn from(p: Policy) -> String {
        match p {
            Policy::Open => "open",
            Policy::Signed => "signed",
            Policy::Hook => "hook",
            Policy::SignedHook => "signed+hook",
        }
        .to_owned()
    }
}

/// Which scheme a key verifies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemeName {
    /// ringcast's HMAC-SHA256 token (`exp`, `kid`, `sig`); `ringcast sign` makes them.
    #[default]
    Ringcast,
    /// Tencent CSS `txSecret`/`txTime` (verify only).
    Tencent,
    /// Alibaba/Tencent CDN type A `auth_key` (verify only).
    AuthKeyA,
    /// nginx `secure_link_md5` (`md5`, `expires`; verify only).
    SecureLinkMd5,
}

/// One key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Key id: the `kid` of ringcast tokens; a name in logs for the others.
    pub id: String,
    /// The shared secret, as UTF-8 bytes.
    pub secret: String,
    /// The scheme this key verifies (default `ringcast`).
    #[serde(default)]
    pub scheme: SchemeName,
    /// `auth_key_a` only: validity added to the URL's timestamp (0: the
    /// timestamp is the expiry).
    #[serde(default, with = "humantime_serde")]
    pub ttl: Duration,
    /// `secure_link_md5` only: the `secure_link_md5` expression, with
    /// `$secret` for the secret (default
    /// `"$secure_link_expires$uri$remote_addr $secret"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// The `[auth]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Who may publish: `open`, `signed`, `hook` or `signed+hook`.
    pub publish: Policy,
    /// Who may play: `open`, `signed`, `hook` or `signed+hook`.
    pub play: Policy,
    /// How long past its expiry a token is still accepted (clocks differ).
    #[serde(with = "humantime_serde")]
    pub clock_skew: Duration,
    /// Verification keys, several at once for rotation.
    pub keys: Vec<KeyConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            publish: Policy::Open,
            play: Policy::Open,
            clock_skew: Duration::from_secs(30),
            keys: Vec::new(),
        }
    }
}

/// Why `[auth]` is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthConfigError {
    /// A policy checks signatures (`signed`, `signed+hook`) but no key is configured.
    #[error("auth.{action} = \"signed\" (or \"signed+hook\") needs at least one [[auth.keys]]")]
    NoKeys {
        /// `publish` or `play`.
        action: &'static str,
    },
    /// A key id is empty, too long or has characters other than `A-Za-z0-9._-`.
    #[error("auth key id {0:?} must be 1 to 64 of A-Z a-z 0-9 . _ -")]
    BadKeyId(String),
    /// Two keys share an id.
    #[error("auth key id {0:?} is used twice")]
    DuplicateKeyId(String),
    /// A key's secret is empty.
    #[error("auth key {0:?} has an empty secret")]
    EmptySecret(String),
    /// A field was given for a scheme that does not use it.
    #[error("auth key {id:?}: `{field}` applies only to scheme {scheme}")]
    FieldNotForScheme {
        /// The key.
        id: String,
        /// The field.
        field: &'static str,
        /// The scheme that uses it.
        scheme: &'static str,
    },
    /// A `secure_link_md5` template names an unknown variable.
    #[error("auth key {id:?}: {source}")]
    Template {
        /// The key.
        id: String,
        /// What is wrong.
        source: TemplateError,
    },
}

impl AuthConfig {
    /// Checks the section and builds the gate every core shares.
    pub fn gate(&self) -> Result<Gate, AuthConfigError> {
        for (action, policy) in [("publish", self.publish), ("play", self.play)] {
            if policy.needs_signature() && self.keys.is_empty() {
                return Err(AuthConfigError::NoKeys { action });
            }
        }
        let mut keys = Vec::with_capacity(self.keys.len());
        for (i, k) in self.keys.iter().enumerate() {
            let id_ok = (1..=64).contains(&k.id.len())
                && k.id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !id_ok {
                return Err(AuthConfigError::BadKeyId(k.id.clone()));
            }
            if self.keys.iter().take(i).any(|o| o.id == k.id) {
                return Err(AuthConfigError::DuplicateKeyId(k.id.clone()));
            }
            if k.secret.is_empty() {
                return Err(AuthConfigError::EmptySecret(k.id.clone()));
            }
            let misplaced = |field, scheme| AuthConfigError::FieldNotForScheme {
                id: k.id.clone(),
                field,
                scheme,
            };
            if k.scheme != SchemeName::AuthKeyA && !k.ttl.is_zero() {
                return Err(misplaced("ttl", "auth_key_a"));
            }
            if k.scheme != SchemeName::SecureLinkMd5 && k.template.is_some() {
                return Err(misplaced("template", "secure_link_md5"));
            }
            let secret = k.secret.as_bytes();
            keys.push(match k.scheme {
                SchemeName::Ringcast => Key::ringcast(&k.id, secret),
                SchemeName::Tencent => Key::tencent(&k.id, secret),
                SchemeName::AuthKeyA => Key::auth_key_a(&k.id, secret, k.ttl.as_secs()),
                SchemeName::SecureLinkMd5 => {
                    let text = k
                        .template
                        .as_deref()
                        .unwrap_or(secure_link::DEFAULT_TEMPLATE);
                    let template = secure_link::parse_template(text).map_err(|source| {
                        AuthConfigError::Template {
                            id: k.id.clone(),
                            source,
                        }
                    })?;
                    Key::secure_link(&k.id, secret, template)
                }
            });
        }
        Ok(Gate::new(
            self.publish,
            self.play,
            Verifier::new(keys, self.clock_skew.as_secs()),
        ))
    }

    /// The first `ringcast` key, or the one named `kid`: what `ringcast sign` signs with.
    pub fn signing_key(&self, kid: Option<&str>) -> Option<&KeyConfig> {
        self.keys
            .iter()
            .filter(|k| k.scheme == SchemeName::Ringcast)
            .find(|k| kid.is_none_or(|id| id == k.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AuthConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn defaults_are_open() {
        let c = parse("").unwrap();
        assert_eq!(c, AuthConfig::default());
        assert_eq!(c.clock_skew, Duration::from_secs(30));
        c.gate().unwrap();
    }

    #[test]
    fn hook_policies_parse_and_round_trip() {
        for (text, policy, signed, hook) in [
            ("open", Policy::Open, false, false),
            ("signed", Policy::Signed, true, false),
            ("hook", Policy::Hook, false, true),
            ("signed+hook", Policy::SignedHook, true, true),
        ] {
            let c = parse(&format!("play = \"{text}\"")).unwrap();
            assert_eq!(c.play, policy);
            assert_eq!(
                (policy.needs_signature(), policy.needs_hook()),
                (signed, hook)
            );
            assert_eq!(String::from(policy), text);
        }
        assert_eq!(
            parse("publish = \"signed+hook\"")
                .unwrap()
                .gate()
                .unwrap_err(),
            AuthConfigError::NoKeys { action: "publish" }
        );
        parse("publish = \"hook\"").unwrap().gate().unwrap();
        let err = parse("play = \"closed\"").unwrap_err().to_string();
        assert!(err.contains("unknown policy"), "{err}");
    }

    #[test]
    fn keys_and_checks() {
        let c = parse(
            r#"
            publish = "signed"
            clock_skew = "1m"
            [[keys]]
            id = "k1"
            secret = "s1"
            [[keys]]
            id = "tx"
            secret = "s2"
            scheme = "tencent"
            [[keys]]
            id = "ali"
            secret = "s3"
            scheme = "auth_key_a"
            ttl = "30m"
            [[keys]]
            id = "ngx"
            secret = "s4"
            scheme = "secure_link_md5"
            template = "$secure_link_expires$uri $secret"
            "#,
        )
        .unwrap();
        let gate = c.gate().unwrap();
        let schemes: Vec<_> = gate.verifier().keys().iter().map(Key::scheme).collect();
        assert_eq!(
            schemes,
            ["ringcast", "tencent", "auth_key_a", "secure_link_md5"]
        );
        assert_eq!(c.signing_key(None).unwrap().id, "k1");
        assert!(c.signing_key(Some("tx")).is_none());
        let rendered = toml::to_string(&c).unwrap();
        assert_eq!(parse(&rendered).unwrap(), c);
    }

    #[test]
    fn bad_sections() {
        let err = |text: &str| parse(text).unwrap().gate().unwrap_err();
        assert_eq!(
            err("play = \"signed\""),
            AuthConfigError::NoKeys { action: "play" }
        );
        assert!(matches!(
            err("[[keys]]\nid = \"a b\"\nsecret = \"s\""),
            AuthConfigError::BadKeyId(_)
        ));
        assert!(matches!(
            err("[[keys]]\nid = \"a\"\nsecret = \"s\"\n[[keys]]\nid = \"a\"\nsecret = \"t\""),
            AuthConfigError::DuplicateKeyId(_)
        ));
        assert!(matches!(
            err("[[keys]]\nid = \"a\"\nsecret = \"\""),
            AuthConfigError::EmptySecret(_)
        ));
        assert!(matches!(
            err("[[keys]]\nid = \"a\"\nsecret = \"s\"\nttl = \"1m\""),
            AuthConfigError::FieldNotForScheme { field: "ttl", .. }
        ));
        assert!(matches!(
            err("[[keys]]\nid = \"a\"\nsecret = \"s\"\nscheme = \"secure_link_md5\"\ntemplate = \"$host\""),
            AuthConfigError::Template { .. }
        ));
    }
}
