//! The keys and the dispatch from a query to the scheme that signed it.

use super::ringcast::{self, HmacSha256};
use super::secure_link::Segment;
use super::{auth_key, secure_link, tencent, Refusal, Request};

/// One verification key.
#[derive(Clone)]
pub struct Key {
    id: String,
    kind: KeyKind,
}

#[derive(Clone)]
enum KeyKind {
    Ringcast(HmacSha256),
    Tencent(Vec<u8>),
    AuthKeyA {
        secret: Vec<u8>,
        ttl_s: u64,
    },
    SecureLink {
        secret: Vec<u8>,
        template: Vec<Segment>,
    },
}

impl std::fmt::Debug for Key {
    /// Names the key and its scheme, never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("scheme", &self.scheme())
            .finish()
    }
}

impl Key {
    /// A ringcast HMAC-SHA256 key, looked up by its id (`kid`).
    pub fn ringcast(id: impl Into<String>, secret: &[u8]) -> Self {
        Key {
            id: id.into(),
            kind: KeyKind::Ringcast(ringcast::keyed(secret)),
        }
    }

    /// A Tencent CSS `txSecret` key.
    pub fn tencent(id: impl Into<String>, secret: &[u8]) -> Self {
        Key {
            id: id.into(),
            kind: KeyKind::Tencent(secret.to_vec()),
        }
    }

    /// An `auth_key` type A key; URLs are valid until their timestamp + `ttl_s`.
    pub fn auth_key_a(id: impl Into<String>, secret: &[u8], ttl_s: u64) -> Self {
        Key {
            id: id.into(),
            kind: KeyKind::AuthKeyA {
                secret: secret.to_vec(),
                ttl_s,
            },
        }
    }

    /// An nginx `secure_link_md5` key with its parsed template.
    pub fn secure_link(id: impl Into<String>, secret: &[u8], template: Vec<Segment>) -> Self {
        Key {
            id: id.into(),
            kind: KeyKind::SecureLink {
                secret: secret.to_vec(),
                template,
            },
        }
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The scheme's config name.
    pub fn scheme(&self) -> &'static str {
        match self.kind {
            KeyKind::Ringcast(_) => "ringcast",
            KeyKind::Tencent(_) => "tencent",
            KeyKind::AuthKeyA { .. } => "auth_key_a",
            KeyKind::SecureLink { .. } => "secure_link_md5",
        }
    }
}

/// The keys of every scheme and the clock-skew allowance.
#[derive(Clone, Debug, Default)]
pub struct Verifier {
    keys: Vec<Key>,
    skew_s: u64,
}

impl Verifier {
    /// A verifier over `keys`, allowing `skew_s` seconds past each expiry.
    pub fn new(keys: Vec<Key>, skew_s: u64) -> Self {
        Verifier { keys, skew_s }
    }

    /// The keys, in config order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Verifies the token in `req.query` with the scheme whose parameter it
    /// carries (`sig`: ringcast; `txSecret`: Tencent; `auth_key`: type A;
    /// `md5`: nginx secure_link), trying every key of that scheme (so a
    /// primary and a backup key both work) except for ringcast, whose `kid`
    /// names its key. `Ok` names the key that matched.
    pub fn verify(&self, req: &Request<'_>) -> Result<&str, Refusal> {
        let q = req.query.ok_or(Refusal::Missing)?;
        if let Some(token) = ringcast::Token::parse(q) {
            let token = token?;
            let key = self
                .keys
                .iter()
                .find_map(|k| match &k.kind {
                    KeyKind::Ringcast(mac) if k.id == token.kid => Some((k, mac)),
                    _ => None,
                })
                .ok_or(Refusal::UnknownKey)?;
            token.verify(key.1, req, self.skew_s)?;
            return Ok(&key.0.id);
        }
        if let Some(token) = tencent::Token::parse(q) {
            let token = token?;
            let key = self.first_match(|kind| match kind {
                KeyKind::Tencent(secret) => Some(token.signed_with(secret, req)),
                _ => None,
            })?;
            token.check_time(req, self.skew_s)?;
            return Ok(&key.id);
        }
        if let Some(token) = auth_key::Token::parse(q) {
            let token = token?;
            let mut ttl = 0;
            let key = self.first_match(|kind| match kind {
                KeyKind::AuthKeyA { secret, ttl_s } => {
                    ttl = *ttl_s;
                    Some(token.signed_with(secret, req))
                }
                _ => None,
            })?;
            token.check_time(req, ttl, self.skew_s)?;
            return Ok(&key.id);
        }
        if let Some(token) = secure_link::Token::parse(q) {
            let token = token?;
            let key = self.first_match(|kind| match kind {
                KeyKind::SecureLink { secret, template } => {
                    Some(token.signed_with(template, secret, req))
                }
                _ => None,
            })?;
            token.check_time(req, self.skew_s)?;
            return Ok(&key.id);
        }
        Err(Refusal::Missing)
    }

    /// The first key for which `matches` says `Some(true)`; `UnknownKey` when
    /// no key is of the scheme (`None` for all), `BadSignature` when none matched.
    fn first_match(
        &self,
        mut matches: impl FnMut(&KeyKind) -> Option<bool>,
    ) -> Result<&Key, Refusal> {
        let mut any = false;
        for key in &self.keys {
            match matches(&key.kind) {
                Some(true) => return Ok(key),
                Some(false) => any = true,
                None => {}
            }
        }
        Err(if any {
            Refusal::BadSignature
        } else {
            Refusal::UnknownKey
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ringcast::{sign, Scope};
    use crate::auth::{secure_link::parse_template, Action};

    fn req<'a>(q: &'a str, now_s: u64) -> Request<'a> {
        Request {
            action: Action::Play,
            app: "live",
            stream: "test",
            uri_suffix: ".flv",
            query: Some(q),
            client_ip: Some("127.0.0.1".parse().unwrap()),
            now_s,
        }
    }

    fn verifier() -> Verifier {
        Verifier::new(
            vec![
                Key::ringcast("old", b"old secret"),
                Key::ringcast("new", b"new secret"),
                Key::tencent("tx-backup", b"backup"),
                Key::tencent("tx", b"e12c46f2612d5106e2034781ab261ca3"),
                Key::auth_key_a("ali", b"aliyuncdnexp1234", 1800),
                Key::secure_link("ngx", b"secret", parse_template("$uri $secret").unwrap()),
            ],
            30,
        )
    }

    #[test]
    fn rotation_by_key_id() {
        let v = verifier();
        for (kid, secret) in [("old", &b"old secret"[..]), ("new", b"new secret")] {
            let q = sign(
                secret,
                kid,
                Action::Play,
                Scope::Stream("live", "test"),
                100,
                None,
            );
            assert_eq!(v.verify(&req(&q, 0)), Ok(kid));
        }
        // Right id, wrong secret; unknown id.
        for (kid, refusal) in [
            ("old", Refusal::BadSignature),
            ("gone", Refusal::UnknownKey),
        ] {
            let q = sign(
                b"new secret",
                kid,
                Action::Play,
                Scope::Stream("live", "test"),
                100,
                None,
            );
            assert_eq!(v.verify(&req(&q, 0)), Err(refusal));
        }
    }

    #[test]
    fn each_scheme_is_dispatched_by_its_parameter() {
        let v = verifier();
        // Backup and primary keys are both tried.
        let tx = "txSecret=d9bf4738bede2bff5d4362b8399c94b5&txTime=5867D600";
        assert_eq!(v.verify(&req(tx, 0x5867_D600)), Ok("tx"));
        assert_eq!(v.verify(&req(tx, 0x5867_D600 + 31)), Err(Refusal::Expired));
        // python3 -c "import hashlib;print(hashlib.md5(b'/live/test.flv-1700000000-0-0-aliyuncdnexp1234').hexdigest())"
        let ali = "auth_key=1700000000-0-0-7fc0012f85f16dbb7dbcdf15c930e9dd";
        assert_eq!(v.verify(&req(ali, 1_700_000_000 + 1800)), Ok("ali"));
        assert_eq!(
            v.verify(&req(ali, 1_700_000_000 + 1831)),
            Err(Refusal::Expired)
        );
        // python3 -c "import hashlib,base64;print(base64.urlsafe_b64encode(hashlib.md5(b'/live/test.flv secret').digest()))"
        let ngx = "md5=SIXQ0Y05FHUoMUiPPIn5uQ&expires=1700000000";
        assert_eq!(v.verify(&req(ngx, 1_700_000_000)), Ok("ngx"));
        assert_eq!(v.verify(&req("a=1", 0)), Err(Refusal::Missing));
        assert_eq!(
            Verifier::default().verify(&req(tx, 0)),
            Err(Refusal::UnknownKey)
        );
        let mut r = req(tx, 0);
        r.query = None;
        assert_eq!(v.verify(&r), Err(Refusal::Missing));
    }

    proptest::proptest! {
        /// Any query (valid-looking fields, garbage, multi-byte text) gets a
        /// decision, never a panic.
        #[test]
        fn any_query_gets_a_decision(
            q in "((exp|kid|sig|ip|pfx|txSecret|txTime|auth_key|md5|expires)=[-0-9a-fA-F_.:/é]{0,70}&?){0,6}",
            stream in "[a-z/é]{0,8}",
            now in 0u64..=u64::MAX,
        ) {
            let v = verifier();
            let mut r = req(&q, now);
            r.stream = &stream;
            let _ = v.verify(&r);
        }
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let text = format!("{:?}", verifier());
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("\"ngx\""));
    }
}
