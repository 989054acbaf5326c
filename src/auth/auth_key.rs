//! Alibaba Cloud / Tencent Cloud CDN URL signing type A (`auth_key`), verify
//! only.
//!
//! As documented by Alibaba Cloud ("Type A signing",
//! <https://www.alibabacloud.com/help/en/cdn/user-guide/type-a-signing>, and
//! ApsaraVideo Live "URL signing",
//! <https://www.alibabacloud.com/help/en/live/user-guide/url-signing>) and
//! Tencent Cloud CDN type A (<https://cloud.tencent.com/document/product/228/41623>):
//! `auth_key=<timestamp>-<rand>-<uid>-<md5hash>` with
//! `md5hash = md5("<URI>-<timestamp>-<rand>-<uid>-<PrivateKey>")` in lowercase
//! hex, where URI is the request path (`/app/stream` for RTMP,
//! `/app/stream.flv` for HTTP-FLV). The URL is valid until `timestamp + ttl`
//! (the validity the CDN domain was configured with; `ttl = 0` when the
//! timestamp is itself the expiry), plus the clock-skew allowance.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use super::{hex, query, Refusal, Request};

/// An `auth_key` value split into its fields, borrowed from the query.
pub(crate) struct Token<'q> {
    /// `timestamp-rand-uid`, hashed as is.
    signed_fields: &'q str,
    timestamp: u64,
    hash: [u8; 16],
}

impl<'q> Token<'q> {
    /// Reads `auth_key` from `q`: `None` when there is none.
    pub(crate) fn parse(q: &'q str) -> Option<Result<Self, Refusal>> {
        let value = query::param(q, "auth_key")?;
        Some(Self::fields(value).ok_or(Refusal::Malformed))
    }

    fn fields(value: &'q str) -> Option<Self> {
        let (signed_fields, hash) = value.rsplit_once('-')?;
        let mut parts = signed_fields.splitn(3, '-');
        let timestamp = query::decimal(parts.next()?)?;
        let rand = parts.next()?;
        let uid = parts.next()?;
        if rand.contains('-') || uid.contains('-') {
            return None;
        }
        Some(Token {
            signed_fields,
            timestamp,
            hash: hex::decode::<16>(hash)?,
        })
    }

    /// Whether the hash was made with `key` for this request's URI.
    pub(crate) fn signed_with(&self, key: &[u8], req: &Request<'_>) -> bool {
        let mut md5 = Md5::new();
        for part in req.uri_parts() {
            md5.update(part);
        }
        md5.update(b"-");
        md5.update(self.signed_fields.as_bytes());
        md5.update(b"-");
        md5.update(key);
        bool::from(md5.finalize().as_slice().ct_eq(&self.hash))
    }

    /// The expiry check (`timestamp + ttl_s + skew_s`), after a key matched.
    pub(crate) fn check_time(
        &self,
        req: &Request<'_>,
        ttl_s: u64,
        skew_s: u64,
    ) -> Result<(), Refusal> {
        let expiry = self.timestamp.saturating_add(ttl_s);
        if req.now_s > expiry.saturating_add(skew_s) {
            return Err(Refusal::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Action;

    /// A request for `/{app}/{stream}.html`.
    fn req<'a>(app: &'a str, stream: &'a str, now_s: u64) -> Request<'a> {
        Request {
            action: Action::Play,
            app,
            stream,
            uri_suffix: ".html",
            query: None,
            client_ip: None,
            now_s,
        }
    }

    /// Alibaba's documented example: URI `/video/standard/1K.html`, PrivateKey
    /// `aliyuncdnexp1234`, timestamp 1444435200, rand 0, uid 0; computed
    /// independently with
    /// `python3 -c "import hashlib;print(hashlib.md5(b'/video/standard/1K.html-1444435200-0-0-aliyuncdnexp1234').hexdigest())"`
    /// (`80cd3862d699b7118eed99103f2a3a4f`, the value the doc shows).
    const Q: &str = "auth_key=1444435200-0-0-80cd3862d699b7118eed99103f2a3a4f";
    const KEY: &[u8] = b"aliyuncdnexp1234";

    #[test]
    fn documented_vector_verifies_within_ttl() {
        let t = Token::parse(Q).unwrap().unwrap();
        assert!(t.signed_with(KEY, &req("video/standard", "1K", 0)));
        assert_eq!(
            t.check_time(&req("video/standard", "1K", 1_444_435_200 + 1800), 1800, 0),
            Ok(())
        );
        assert_eq!(
            t.check_time(&req("video/standard", "1K", 1_444_435_200 + 1801), 1800, 0),
            Err(Refusal::Expired)
        );
        // Skew allowance on top of the TTL.
        assert_eq!(
            t.check_time(&req("video/standard", "1K", 1_444_435_200 + 1830), 1800, 30),
            Ok(())
        );
    }

    #[test]
    fn tampered_uri_fields_or_key_fail() {
        let t = Token::parse(Q).unwrap().unwrap();
        assert!(!t.signed_with(KEY, &req("video/standard", "2K", 0)));
        assert!(!t.signed_with(b"otherkey", &req("video/standard", "1K", 0)));
        let moved = Q.replace("1444435200-0-0", "1444435200-1-0");
        let t = Token::parse(&moved).unwrap().unwrap();
        assert!(!t.signed_with(KEY, &req("video/standard", "1K", 0)));
    }

    #[test]
    fn malformed() {
        for q in [
            "auth_key=1444435200-0-80cd3862d699b7118eed99103f2a3a4f",
            "auth_key=x-0-0-80cd3862d699b7118eed99103f2a3a4f",
            "auth_key=1444435200-0-0-80cd",
            "auth_key=1444435200-0-0-0-80cd3862d699b7118eed99103f2a3a4f",
        ] {
            assert!(
                matches!(Token::parse(q), Some(Err(Refusal::Malformed))),
                "{q}"
            );
        }
    }
}
