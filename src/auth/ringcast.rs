//! ringcast's own token: HMAC-SHA256 over the action, the stream path (or a
//! path prefix), the expiry and optionally the client address, carried in the
//! query as `exp=<unix s>&kid=<key id>&sig=<64 hex>`, plus `pfx=<prefix>` when
//! the token covers every path starting with a prefix and `ip=<addr>` when it
//! is bound to one client address.
//!
//! The signed message is, with `\n` between fields:
//! `ringcast-v1`, the action (`publish`/`play`), the scope (`=app/stream` for
//! one stream, `^prefix` for a prefix), the `exp` text, the `ip` text (empty
//! when unbound). Naming the action means a play URL never allows publishing;
//! the scope's first byte keeps a prefix token from passing as an exact one.
//! HMAC, unlike `md5(secret ‖ data)`, is not open to length extension.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{hex, path_starts_with, query, Action, Refusal, Request};

/// The keyed MAC, kept per key so a check only clones its precomputed state.
pub type HmacSha256 = Hmac<Sha256>;

/// What a token covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Exactly one stream: `app`, `stream`.
    Stream(&'a str, &'a str),
    /// Every path `app/stream` (or future HLS file path) starting with this text;
    /// a plain string prefix, so `live/cam` also covers `live/cam2`.
    Prefix(&'a str),
}

/// A ringcast token read from a query, borrowed from it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token<'q> {
    pub(crate) kid: &'q str,
    exp_text: &'q str,
    exp: u64,
    sig: [u8; 32],
    ip: Option<&'q str>,
    prefix: Option<&'q str>,
}

impl<'q> Token<'q> {
    /// The token in `query`: `None` when there is no `sig`, `Malformed` when a
    /// field is missing or unreadable.
    pub(crate) fn parse(q: &'q str) -> Option<Result<Self, Refusal>> {
        let sig = query::param(q, "sig")?;
        Some(Self::fields(q, sig).ok_or(Refusal::Malformed))
    }

    fn fields(q: &'q str, sig: &str) -> Option<Self> {
        let exp_text = query::param(q, "exp")?;
        Some(Token {
            kid: query::param(q, "kid")?,
            exp_text,
            exp: query::decimal(exp_text)?,
            sig: hex::decode::<32>(sig)?,
            ip: query::param(q, "ip"),
            prefix: query::param(q, "pfx"),
        })
    }

    /// Checks the token against `req` with a key's MAC state: signature first
    /// (so only genuine tokens are reported expired), then expiry with `skew_s`
    /// of leeway, then the address binding, then the path coverage.
    pub(crate) fn verify(
        &self,
        keyed: &HmacSha256,
        req: &Request<'_>,
        skew_s: u64,
    ) -> Result<(), Refusal> {
        let scope = match self.prefix {
            Some(p) => Scope::Prefix(p),
            None => Scope::Stream(req.app, req.stream),
        };
        let mut mac = keyed.clone();
        feed(
            &mut mac,
            req.action,
            scope,
            self.exp_text,
            self.ip.unwrap_or(""),
        );
        let computed = mac.finalize().into_bytes();
        if !bool::from(computed.as_slice().ct_eq(&self.sig)) {
            return Err(Refusal::BadSignature);
        }
        if req.now_s > self.exp.saturating_add(skew_s) {
            return Err(Refusal::Expired);
        }
        if let Some(ip) = self.ip {
            let bound: IpAddr = ip.parse().map_err(|_| Refusal::Malformed)?;
            match req.client_ip {
                Some(client) if client.to_canonical() == bound.to_canonical() => {}
                _ => return Err(Refusal::IpMismatch),
            }
        }
        if let Some(prefix) = self.prefix {
            if !path_starts_with(req.app, req.stream, prefix) {
                return Err(Refusal::BadSignature);
            }
        }
        Ok(())
    }
}

/// Feeds the signed message to `mac` piece by piece (no joined string).
fn feed(mac: &mut HmacSha256, action: Action, scope: Scope<'_>, exp: &str, ip: &str) {
    mac.update(b"ringcast-v1\n");
    mac.update(action.as_str().as_bytes());
    match scope {
        Scope::Stream(app, stream) => {
            mac.update(b"\n=");
            mac.update(app.as_bytes());
            mac.update(b"/");
            mac.update(stream.as_bytes());
        }
        Scope::Prefix(prefix) => {
            mac.update(b"\n^");
            mac.update(prefix.as_bytes());
        }
    }
    mac.update(b"\n");
    mac.update(exp.as_bytes());
    mac.update(b"\n");
    mac.update(ip.as_bytes());
}

/// The MAC state keyed with `secret` (any length works with HMAC).
pub fn keyed(secret: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable_hmac())
}

#[cold]
fn unreachable_hmac() -> HmacSha256 {
    // HMAC accepts keys of every length; `new_from_slice` cannot fail for it.
    // Fall back to the empty key rather than panic, so this stays total.
    <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default())
}

/// The query parameters that authorise `action` on `scope` until `exp`
/// (Unix seconds) with key `kid`, optionally bound to `ip`:
/// `exp=…&kid=…&sig=…[&ip=…][&pfx=…]`. Prefixes must not contain `&`, `#`,
/// `%` or spaces (they travel unencoded).
pub fn sign(
    secret: &[u8],
    kid: &str,
    action: Action,
    scope: Scope<'_>,
    exp: u64,
    ip: Option<IpAddr>,
) -> String {
    let exp_text = exp.to_string();
    let ip_text = ip.map(|a| a.to_canonical().to_string());
    let mut mac = keyed(secret);
    feed(
        &mut mac,
        action,
        scope,
        &exp_text,
        ip_text.as_deref().unwrap_or(""),
    );
    let mut sig = [0u8; 64];
    hex::encode_into(&mac.finalize().into_bytes(), &mut sig);
    let sig = std::str::from_utf8(&sig).unwrap_or_default();
    let mut q = format!("exp={exp_text}&kid={kid}&sig={sig}");
    if let Some(ip) = ip_text {
        q.push_str("&ip=");
        q.push_str(&ip);
    }
    if let Scope::Prefix(p) = scope {
        q.push_str("&pfx=");
        q.push_str(p);
    }
    q
}

/// Why a URL could not be signed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignUrlError {
    /// Not `scheme://host/app/stream`.
    #[error("expected rtmp://, rtmps://, http:// or https://HOST/APP/STREAM, got {0:?}")]
    NotAStreamUrl(String),
    /// The prefix has characters that would need encoding in a query.
    #[error("prefix {0:?} must not contain '&', '#', '%', '?' or whitespace")]
    BadPrefix(String),
}

/// The stream a play/publish URL names: `(app, stream)` from
/// `rtmp[s]://host[:port]/app/stream[?q]` or `http[s]://host[:port]/app/stream.flv[?q]`
/// (also `.m3u8`, `-ts.m3u8`, `.mpd`: the HLS / DASH entry URLs) (the app may
/// contain `/`, the stream is the last segment).
pub fn stream_of_url(url: &str) -> Result<(&str, &str), SignUrlError> {
    let bad = || SignUrlError::NotAStreamUrl(url.to_owned());
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let (_host, path) = rest.split_once('/').ok_or_else(bad)?;
    let path = path.split(['?', '#']).next().unwrap_or("");
    let path = match scheme {
        "rtmp" | "rtmps" => path,
        // HTTP-FLV, and the HLS / DASH entry URLs (`-ts.m3u8` before `.m3u8`).
        "http" | "https" => [".flv", "-ts.m3u8", ".m3u8", ".mpd"]
            .iter()
            .find_map(|s| path.strip_suffix(s))
            .unwrap_or(path),
        _ => return Err(bad()),
    };
    match path.rsplit_once('/') {
        Some((app, stream)) if !app.is_empty() && !stream.is_empty() => Ok((app, stream)),
        _ => Err(bad()),
    }
}

/// `url` with the token for `action` appended to its query: for the stream
/// the URL names, or for every path under `prefix` when given.
pub fn sign_url(
    url: &str,
    secret: &[u8],
    kid: &str,
    action: Action,
    prefix: Option<&str>,
    exp: u64,
    ip: Option<IpAddr>,
) -> Result<String, SignUrlError> {
    let (app, stream) = stream_of_url(url)?;
    let scope = match prefix {
        Some(p) if p.contains(['&', '#', '%', '?']) || p.contains(char::is_whitespace) => {
            return Err(SignUrlError::BadPrefix(p.to_owned()))
        }
        Some(p) => Scope::Prefix(p),
        None => Scope::Stream(app, stream),
    };
    let q = sign(secret, kid, action, scope, exp, ip);
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let sep = match base.split_once('?') {
        Some((_, "")) => "",
        Some(_) => "&",
        None => "?",
    };
    let mut out = format!("{base}{sep}{q}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn req<'a>(action: Action, stream: &'a str, q: &'a str, now_s: u64) -> Request<'a> {
        Request {
            action,
            app: "live",
            stream,
            uri_suffix: "",
            query: Some(q),
            client_ip: Some("192.0.2.7".parse().unwrap()),
            now_s,
        }
    }

    /// Signs with the test key `k1` ([`SECRET`]).
    fn sign_k1(action: Action, scope: Scope<'_>, exp: u64, ip: Option<IpAddr>) -> String {
        sign(SECRET, "k1", action, scope, exp, ip)
    }

    fn check(q: &str, r: &Request<'_>) -> Result<(), Refusal> {
        let token = Token::parse(q).expect("has sig")?;
        token.verify(&keyed(SECRET), r, 30)
    }

    #[test]
    fn signature_is_hmac_sha256_of_the_documented_message() {
        // python3 -c "import hmac,hashlib;print(hmac.new(b'0123456789abcdef0123456789abcdef',
        //   b'ringcast-v1\nplay\n=live/cam\n1700000000\n', hashlib.sha256).hexdigest())"
        let q = sign_k1(
            Action::Play,
            Scope::Stream("live", "cam"),
            1_700_000_000,
            None,
        );
        assert_eq!(
            q,
            "exp=1700000000&kid=k1&sig=\
             69296c9f9aa4037c72247455c42641fbf2c73e7247ab106062c401e0ec548d02"
        );
    }

    #[test]
    fn valid_expired_and_skew() {
        let q = sign_k1(Action::Play, Scope::Stream("live", "cam"), 1000, None);
        assert_eq!(check(&q, &req(Action::Play, "cam", &q, 999)), Ok(()));
        assert_eq!(check(&q, &req(Action::Play, "cam", &q, 1000)), Ok(()));
        // Within the 30 s skew allowance, then past it.
        assert_eq!(check(&q, &req(Action::Play, "cam", &q, 1030)), Ok(()));
        assert_eq!(
            check(&q, &req(Action::Play, "cam", &q, 1031)),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let q = sign_k1(Action::Play, Scope::Stream("live", "cam"), 1000, None);
        // Another stream, another action, another expiry, another key.
        assert_eq!(
            check(&q, &req(Action::Play, "cam2", &q, 0)),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            check(&q, &req(Action::Publish, "cam", &q, 0)),
            Err(Refusal::BadSignature)
        );
        let later = q.replace("exp=1000", "exp=9000");
        assert_eq!(
            check(&later, &req(Action::Play, "cam", &later, 0)),
            Err(Refusal::BadSignature)
        );
        let token = Token::parse(&q).unwrap().unwrap();
        assert_eq!(
            token.verify(
                &keyed(b"another secret"),
                &req(Action::Play, "cam", &q, 0),
                30
            ),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn ip_binding() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let q = sign_k1(
            Action::Publish,
            Scope::Stream("live", "cam"),
            1000,
            Some(ip),
        );
        assert!(q.ends_with("&ip=192.0.2.7"));
        let mut r = req(Action::Publish, "cam", &q, 0);
        assert_eq!(check(&q, &r), Ok(()));
        // The same address seen through a dual-stack socket.
        r.client_ip = Some("::ffff:192.0.2.7".parse().unwrap());
        assert_eq!(check(&q, &r), Ok(()));
        r.client_ip = Some("192.0.2.8".parse().unwrap());
        assert_eq!(check(&q, &r), Err(Refusal::IpMismatch));
        r.client_ip = None;
        assert_eq!(check(&q, &r), Err(Refusal::IpMismatch));
        // Rewriting the bound address to the attacker's own breaks the signature.
        let moved = q.replace("ip=192.0.2.7", "ip=192.0.2.8");
        let mut r = req(Action::Publish, "cam", &moved, 0);
        r.client_ip = Some("192.0.2.8".parse().unwrap());
        assert_eq!(check(&moved, &r), Err(Refusal::BadSignature));
        // Dropping it too.
        let dropped = q.replace("&ip=192.0.2.7", "");
        assert_eq!(
            check(&dropped, &req(Action::Publish, "cam", &dropped, 0)),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn prefix_covers_the_paths_under_it_only() {
        let q = sign_k1(Action::Play, Scope::Prefix("live/cam"), 1000, None);
        assert!(q.ends_with("&pfx=live/cam"));
        assert_eq!(check(&q, &req(Action::Play, "cam", &q, 0)), Ok(()));
        assert_eq!(check(&q, &req(Action::Play, "cam_720p", &q, 0)), Ok(()));
        assert_eq!(
            check(&q, &req(Action::Play, "dog", &q, 0)),
            Err(Refusal::BadSignature)
        );
        // Widening the prefix breaks the signature; so does passing it as exact.
        let wide = q.replace("pfx=live/cam", "pfx=live/");
        assert_eq!(
            check(&wide, &req(Action::Play, "dog", &wide, 0)),
            Err(Refusal::BadSignature)
        );
        let exact = sign_k1(Action::Play, Scope::Stream("live", "cam"), 1000, None);
        let forged = format!("{exact}&pfx=live/");
        assert_eq!(
            check(&forged, &req(Action::Play, "dog", &forged, 0)),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn urls_are_signed_for_the_stream_they_name() {
        assert_eq!(stream_of_url("rtmp://h:1935/live/cam"), Ok(("live", "cam")));
        assert_eq!(stream_of_url("rtmp://h/a/b/cam?x=1"), Ok(("a/b", "cam")));
        assert_eq!(
            stream_of_url("http://h:8080/live/cam.flv"),
            Ok(("live", "cam"))
        );
        for hls in ["cam.m3u8", "cam-ts.m3u8", "cam.mpd"] {
            assert_eq!(
                stream_of_url(&format!("http://h/live/{hls}?x=1")),
                Ok(("live", "cam"))
            );
        }
        assert!(stream_of_url("rtmp://h/cam").is_err());
        assert!(stream_of_url("ftp://h/live/cam").is_err());
        assert!(stream_of_url("live/cam").is_err());
        let url = sign_url(
            "http://h/live/cam.flv?a=1",
            SECRET,
            "k1",
            Action::Play,
            None,
            1000,
            None,
        )
        .unwrap();
        let q = url.strip_prefix("http://h/live/cam.flv?").unwrap();
        assert!(q.starts_with("a=1&exp=1000&kid=k1&sig="), "{url}");
        assert_eq!(check(q, &req(Action::Play, "cam", q, 0)), Ok(()));
        let url = sign_url(
            "rtmp://h/live/cam",
            SECRET,
            "k1",
            Action::Publish,
            Some("live/"),
            1000,
            None,
        )
        .unwrap();
        let q = url.split_once('?').unwrap().1;
        assert_eq!(check(q, &req(Action::Publish, "other", q, 0)), Ok(()));
        assert!(sign_url(
            "rtmp://h/live/cam",
            SECRET,
            "k1",
            Action::Play,
            Some("a&b"),
            1,
            None
        )
        .is_err());
    }

    #[test]
    fn malformed_fields() {
        assert!(Token::parse("exp=1&kid=k").is_none());
        for q in [
            "sig=00&exp=1&kid=k",
            "exp=x&kid=k&sig=69296c9f9aa4037c72247455c42641fbf2c73e7247ab106062c401e0ec548d02",
            "exp=1&sig=69296c9f9aa4037c72247455c42641fbf2c73e7247ab106062c401e0ec548d02",
        ] {
            assert_eq!(
                Token::parse(q).unwrap().err(),
                Some(Refusal::Malformed),
                "{q}"
            );
        }
    }
}
