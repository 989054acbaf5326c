//! Tencent Cloud CSS (live) `txSecret`/`txTime`, verify only.
//!
//! As documented in "Splicing Live Streaming URLs" / anti-leech
//! (<https://intl.cloud.tencent.com/document/product/267/31560>,
//! <https://www.tencentcloud.com/document/product/267/31059>): `txTime` is the
//! expiry in hexadecimal Unix seconds and `txSecret = md5(KEY + StreamName +
//! txTime)` in lowercase hex, where StreamName is the stream name alone (no
//! app, no extension) and the fields are joined without separators. The
//! expiry is checked with the configured clock-skew allowance.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use super::{hex, query, Refusal, Request};

/// The `txSecret`/`txTime` pair of a query: `None` when there is no `txSecret`.
pub(crate) struct Token<'q> {
    time_text: &'q str,
    expiry: u64,
    secret: [u8; 16],
}

impl<'q> Token<'q> {
    /// Reads the pair from `q`.
    pub(crate) fn parse(q: &'q str) -> Option<Result<Self, Refusal>> {
        let secret = query::param(q, "txSecret")?;
        Some(
            (|| {
                let time_text = query::param(q, "txTime")?;
                Some(Token {
                    time_text,
                    expiry: query::hexadecimal(time_text)?,
                    secret: hex::decode::<16>(secret)?,
                })
            })()
            .ok_or(Refusal::Malformed),
        )
    }

    /// Whether the signature was made with `key` for this stream.
    pub(crate) fn signed_with(&self, key: &[u8], req: &Request<'_>) -> bool {
        let mut md5 = Md5::new();
        md5.update(key);
        md5.update(req.stream.as_bytes());
        md5.update(self.time_text.as_bytes());
        bool::from(md5.finalize().as_slice().ct_eq(&self.secret))
    }

    /// The expiry check, after a key matched.
    pub(crate) fn check_time(&self, req: &Request<'_>, skew_s: u64) -> Result<(), Refusal> {
        if req.now_s > self.expiry.saturating_add(skew_s) {
            return Err(Refusal::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Action;

    const KEY: &[u8] = b"e12c46f2612d5106e2034781ab261ca3";

    fn req(stream: &str, now_s: u64) -> Request<'_> {
        Request {
            action: Action::Play,
            app: "live",
            stream,
            uri_suffix: ".flv",
            query: None,
            client_ip: None,
            now_s,
        }
    }

    /// The vector of Tencent's example key, stream `test`, txTime `5867D600`
    /// (2016-12-31 16:00 UTC), computed independently:
    /// `python3 -c "import hashlib;print(hashlib.md5(b'e12c46f2612d5106e2034781ab261ca3test5867D600').hexdigest())"`.
    const Q: &str = "txSecret=d9bf4738bede2bff5d4362b8399c94b5&txTime=5867D600";

    #[test]
    fn documented_vector_verifies_until_expiry() {
        let t = Token::parse(Q).unwrap().unwrap();
        assert!(t.signed_with(KEY, &req("test", 0)));
        assert_eq!(t.check_time(&req("test", 0x5867_D600), 30), Ok(()));
        assert_eq!(t.check_time(&req("test", 0x5867_D600 + 30), 30), Ok(()));
        assert_eq!(
            t.check_time(&req("test", 0x5867_D600 + 31), 30),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn tampered_stream_time_or_key_fail() {
        let t = Token::parse(Q).unwrap().unwrap();
        assert!(!t.signed_with(KEY, &req("test2", 0)));
        assert!(!t.signed_with(b"another key", &req("test", 0)));
        let later = Q.replace("5867D600", "5867D700");
        let t = Token::parse(&later).unwrap().unwrap();
        assert!(!t.signed_with(KEY, &req("test", 0)));
    }

    #[test]
    fn malformed() {
        assert!(Token::parse("txTime=5867D600").is_none());
        assert!(matches!(
            Token::parse("txSecret=d9bf&txTime=5867D600"),
            Some(Err(Refusal::Malformed))
        ));
        assert!(matches!(
            Token::parse("txSecret=d9bf4738bede2bff5d4362b8399c94b5"),
            Some(Err(Refusal::Malformed))
        ));
    }
}
