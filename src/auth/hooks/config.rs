//! The `[hooks]` section: the four `http://` URLs, timeouts, fail policies
//! and bounds. URLs are parsed here; turning a host name into addresses is
//! the server's (once, at start).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest hook URL accepted.
const MAX_URL_LEN: usize = 2048;

/// A parsed `http://host[:port]/path[?query]` hook URL.
#[derive(Clone, PartialEq, Eq)]
pub struct HookUrl {
    /// Host as written (`127.0.0.1`, `hooks.local`, `[::1]` without brackets).
    pub host: String,
    /// TCP port (default 80).
    pub port: u16,
    /// Path and query sent in the request line (may carry a secret: never logged).
    pub target: String,
}

impl HookUrl {
    /// Parses an `http://` URL. `https://` and credentials in the URL are
    /// refused with a reason.
    pub fn parse(url: &str) -> Result<HookUrl, String> {
        if url.len() > MAX_URL_LEN {
            return Err(format!("longer than {MAX_URL_LEN} bytes"));
        }
        if url.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err("contains spaces or control characters".into());
        }
        let Some(rest) = url.strip_prefix("http://") else {
            return Err("must start with http:// (https hooks are not supported)".into());
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let target = if target.starts_with('?') {
            format!("/{target}")
        } else {
            target.to_owned()
        };
        if authority.contains('@') {
            return Err(
                "credentials in the URL are not supported; put a token in the query".into(),
            );
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or("unclosed [ in host")?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err("no host".into());
        }
        let port = match port {
            None => 80,
            Some(p) => p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?,
        };
        if port == 0 {
            return Err("port 0".into());
        }
        Ok(HookUrl {
            host: host.to_owned(),
            port,
            target,
        })
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        let bracketed = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            bracketed
        } else {
            format!("{bracketed}:{}", self.port)
        }
    }

    /// `http://host:port/path` without the query: safe to log.
    pub fn redacted(&self) -> String {
        let path = self.target.split('?').next().unwrap_or("/");
        format!("http://{}{path}", self.host_header())
    }
}

/// Never prints the query (it may carry a secret).
impl fmt::Debug for HookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The `[hooks]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HooksConfig {
    /// Asked before a publish when `auth.publish` is `hook` or `signed+hook`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_publish: Option<String>,
    /// Told when a publisher stops (fire-and-forget).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_unpublish: Option<String>,
    /// Asked before a play when `auth.play` is `hook` or `signed+hook`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_play: Option<String>,
    /// Told when a viewer stops (fire-and-forget).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_stop: Option<String>,
    /// Longest an `on_play` / `on_stop` call may take.
    #[serde(with = "humantime_serde")]
    pub timeout_play: Duration,
    /// Longest an `on_publish` / `on_unpublish` call may take.
    #[serde(with = "humantime_serde")]
    pub timeout_publish: Duration,
    /// A play whose hook cannot be asked (down, timeout, garbled, overloaded)
    /// is allowed (true) or refused (false, the default).
    pub fail_open_play: bool,
    /// Same for publish; refused by default.
    pub fail_open_publish: bool,
    /// Most hook calls in flight per core; past it a gating call takes its
    /// action's fail policy at once and a notification waits in a bounded queue.
    pub max_in_flight_per_core: usize,
    /// How long an allow is reused for the same action, stream, query and
    /// client address (0: never).
    #[serde(with = "humantime_serde")]
    pub cache_allow_for: Duration,
    /// Extra attempts for an `on_unpublish` / `on_stop` that got no answer.
    pub stop_retries: u32,
    /// The `server_id` field of every request body.
    pub server_id: String,
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            on_publish: None,
            on_unpublish: None,
            on_play: None,
            on_stop: None,
            timeout_play: Duration::from_secs(3),
            timeout_publish: Duration::from_secs(5),
            fail_open_play: false,
            fail_open_publish: false,
            max_in_flight_per_core: 256,
            cache_allow_for: Duration::from_secs(10),
            stop_retries: 2,
            server_id: "ringcast".to_owned(),
        }
    }
}

/// Why `[hooks]` is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HooksConfigError {
    /// A URL does not parse.
    #[error("hooks.{field}: {reason}")]
    BadUrl {
        /// `on_publish`, ...
        field: &'static str,
        /// What is wrong (never the URL itself: it may carry a secret).
        reason: String,
    },
    /// A policy asks a hook whose URL is not set.
    #[error("auth.{action} = \"{policy}\" needs hooks.{field}")]
    MissingUrl {
        /// `publish` or `play`.
        action: &'static str,
        /// The policy.
        policy: String,
        /// The missing key.
        field: &'static str,
    },
    /// A value is out of range.
    #[error("hooks.{field}: {reason}")]
    OutOfRange {
        /// The key.
        field: &'static str,
        /// The allowed range.
        reason: &'static str,
    },
}

impl HooksConfig {
    /// The URL of `action`, if set.
    pub fn url_text(&self, action: super::HookAction) -> Option<&str> {
        use super::HookAction::*;
        match action {
            Publish => self.on_publish.as_deref(),
            Unpublish => self.on_unpublish.as_deref(),
            Play => self.on_play.as_deref(),
            Stop => self.on_stop.as_deref(),
        }
    }

    /// The parsed URL of every action (index [`super::HookAction::index`]).
    pub fn urls(&self) -> Result<[Option<HookUrl>; 4], HooksConfigError> {
        let mut out: [Option<HookUrl>; 4] = Default::default();
        for (slot, action) in out.iter_mut().zip(super::HookAction::ALL) {
            if let Some(text) = self.url_text(action) {
                *slot = Some(
                    HookUrl::parse(text).map_err(|reason| HooksConfigError::BadUrl {
                        field: action.as_str(),
                        reason,
                    })?,
                );
            }
        }
        Ok(out)
    }

    /// Checks the section against the `[auth]` policies that use it.
    pub fn validate(
        &self,
        publish: super::super::Policy,
        play: super::super::Policy,
    ) -> Result<(), HooksConfigError> {
        let urls = self.urls()?;
        for (action, policy, hook) in [
            ("publish", publish, super::HookAction::Publish),
            ("play", play, super::HookAction::Play),
        ] {
            let missing = urls.get(hook.index()).is_none_or(Option::is_none);
            if policy.needs_hook() && missing {
                return Err(HooksConfigError::MissingUrl {
                    action,
                    policy: String::from(policy),
                    field: hook.as_str(),
                });
            }
        }
        let range = |ok: bool, field, reason| {
            if ok {
                Ok(())
            } else {
                Err(HooksConfigError::OutOfRange { field, reason })
            }
        };
        let timeout_ok =
            |d: Duration| d >= Duration::from_millis(10) && d <= Duration::from_secs(60);
        range(
            timeout_ok(self.timeout_play),
            "timeout_play",
            "must be 10ms..=60s",
        )?;
        range(
            timeout_ok(self.timeout_publish),
            "timeout_publish",
            "must be 10ms..=60s",
        )?;
        range(
            (1..=65_536).contains(&self.max_in_flight_per_core),
            "max_in_flight_per_core",
            "must be 1..=65536",
        )?;
        range(
            self.cache_allow_for <= Duration::from_secs(86_400),
            "cache_allow_for",
            "must be at most 24h",
        )?;
        range(self.stop_retries <= 10, "stop_retries", "must be 0..=10")?;
        range(
            !self.server_id.is_empty() && self.server_id.len() <= 128,
            "server_id",
            "must be 1 to 128 bytes",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::Policy;
    use super::*;

    #[test]
    fn urls_parse() {
        let u = HookUrl::parse("http://127.0.0.1:8085/api/v1/streams?token=s3cret").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 8085));
        assert_eq!(u.target, "/api/v1/streams?token=s3cret");
        assert_eq!(u.host_header(), "127.0.0.1:8085");
        assert_eq!(u.redacted(), "http://127.0.0.1:8085/api/v1/streams");
        assert!(!format!("{u:?}").contains("s3cret"));
        let u = HookUrl::parse("http://hooks.local").unwrap();
        assert_eq!(
            (u.port, u.target.as_str(), u.host_header()),
            (80, "/", "hooks.local".to_owned())
        );
        let u = HookUrl::parse("http://[::1]:9/x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.host_header()),
            ("::1", "[::1]:9".to_owned())
        );
        let u = HookUrl::parse("http://h?k=v").unwrap();
        assert_eq!(u.target, "/?k=v");
        for bad in [
            "https://h/",
            "ftp://h/",
            "http:///x",
            "http://h:0/",
            "http://h:99999/",
            "http://user:pw@h/",
            "http://h/a b",
            "http://[::1/",
        ] {
            assert!(HookUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation() {
        let c: HooksConfig = toml::from_str("").unwrap();
        assert_eq!(c, HooksConfig::default());
        c.validate(Policy::Open, Policy::Signed).unwrap();
        assert_eq!(
            c.validate(Policy::Hook, Policy::Open),
            Err(HooksConfigError::MissingUrl {
                action: "publish",
                policy: "hook".into(),
                field: "on_publish"
            })
        );
        let err = c.validate(Policy::Open, Policy::SignedHook).unwrap_err();
        assert_eq!(
            err.to_string(),
            "auth.play = \"signed+hook\" needs hooks.on_play"
        );
        let c: HooksConfig = toml::from_str(
            "on_play = \"http://127.0.0.1:1/p?secret=x\"\ntimeout_play = \"250ms\"\nfail_open_play = true\ncache_allow_for = \"0s\"",
        )
        .unwrap();
        c.validate(Policy::Open, Policy::Hook).unwrap();
        let bad: HooksConfig = toml::from_str("on_stop = \"https://x/\"").unwrap();
        let err = bad
            .validate(Policy::Open, Policy::Open)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("hooks.on_stop: must start with http://"),
            "{err}"
        );
        for text in [
            "timeout_play = \"0s\"",
            "timeout_publish = \"2m\"",
            "max_in_flight_per_core = 0",
            "stop_retries = 11",
            "server_id = \"\"",
        ] {
            let c: HooksConfig = toml::from_str(text).unwrap();
            assert!(
                matches!(
                    c.validate(Policy::Open, Policy::Open),
                    Err(HooksConfigError::OutOfRange { .. })
                ),
                "{text}"
            );
        }
    }
}
