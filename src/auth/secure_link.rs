//! nginx `secure_link` with `secure_link_md5`, verify only.
//!
//! As the nginx documentation describes it
//! (<https://nginx.org/en/docs/http/ngx_http_secure_link_module.html>): with
//! `secure_link $arg_md5,$arg_expires;` and an expression such as
//! `secure_link_md5 "$secure_link_expires$uri$remote_addr secret";` the link
//! carries `md5=<base64url of the binary MD5 of the expression, unpadded>` and
//! `expires=<Unix seconds>`. ringcast takes the expression as a template
//! (variables `$secure_link_expires`, `$uri`, `$remote_addr`, `$app`,
//! `$stream`, and `$secret` for the key's secret), parsed once at start.
//! `$uri` is `/app/stream` for RTMP and `/app/stream.flv` for HTTP-FLV.

use std::fmt::Write as _;
use std::net::IpAddr;

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use super::{hex, query, Refusal, Request};

/// The template nginx's documentation shows, with the secret as a variable.
pub const DEFAULT_TEMPLATE: &str = "$secure_link_expires$uri$remote_addr $secret";

/// One piece of a parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Text hashed as written.
    Literal(String),
    /// `$secure_link_expires`: the `expires` value as sent.
    Expires,
    /// `$uri`: the request path.
    Uri,
    /// `$remote_addr`: the client address.
    RemoteAddr,
    /// `$app`.
    App,
    /// `$stream`.
    Stream,
    /// `$secret`: the key's secret.
    Secret,
}

/// A template that names an unknown variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown variable `${0}` in secure_link_md5 template (known: $secure_link_expires, $uri, $remote_addr, $app, $stream, $secret)")]
pub struct TemplateError(pub String);

/// Splits a template into literal text and variables.
pub fn parse_template(template: &str) -> Result<Vec<Segment>, TemplateError> {
    const VARS: [(&str, Segment); 6] = [
        ("secure_link_expires", Segment::Expires),
        ("remote_addr", Segment::RemoteAddr),
        ("stream", Segment::Stream),
        ("secret", Segment::Secret),
        ("uri", Segment::Uri),
        ("app", Segment::App),
    ];
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        let (text, tail) = rest.split_at(at);
        literal.push_str(text);
        let name_len = tail
            .bytes()
            .skip(1)
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let name = tail.get(1..1 + name_len).unwrap_or("");
        let Some((_, seg)) = VARS.iter().find(|(v, _)| *v == name) else {
            return Err(TemplateError(name.to_owned()));
        };
        if !literal.is_empty() {
            out.push(Segment::Literal(std::mem::take(&mut literal)));
        }
        out.push(seg.clone());
        rest = tail.get(1 + name_len..).unwrap_or("");
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        out.push(Segment::Literal(literal));
    }
    Ok(out)
}

/// An address formatted on the stack (the longest IPv6 text is 45 bytes).
struct AddrText {
    buf: [u8; 64],
    len: usize,
}

impl std::fmt::Write for AddrText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl AddrText {
    fn of(ip: Option<IpAddr>) -> Self {
        let mut t = AddrText {
            buf: [0; 64],
            len: 0,
        };
        if let Some(ip) = ip {
            if write!(t, "{}", ip.to_canonical()).is_err() {
                t.len = 0;
            }
        }
        t
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

/// The `md5`/`expires` pair of a query.
pub(crate) struct Token<'q> {
    expires_text: &'q str,
    expires: u64,
    hash: [u8; 16],
}

impl<'q> Token<'q> {
    /// Reads the pair: `None` when there is no `md5`.
    pub(crate) fn parse(q: &'q str) -> Option<Result<Self, Refusal>> {
        let hash = query::param(q, "md5")?;
        Some(
            (|| {
                let expires_text = query::param(q, "expires")?;
                let expires = query::decimal(expires_text)?;
                // nginx refuses `expires <= 0`.
                (expires > 0).then_some(())?;
                Some(Token {
                    expires_text,
                    expires,
                    hash: hex::decode_base64url_16(hash)?,
                })
            })()
            .ok_or(Refusal::Malformed),
        )
    }

    /// Whether the hash is the template's MD5 with `secret` for this request.
    pub(crate) fn signed_with(
        &self,
        template: &[Segment],
        secret: &[u8],
        req: &Request<'_>,
    ) -> bool {
        let addr = AddrText::of(req.client_ip);
        let mut md5 = Md5::new();
        for seg in template {
            match seg {
                Segment::Literal(s) => md5.update(s.as_bytes()),
                Segment::Expires => md5.update(self.expires_text.as_bytes()),
                Segment::Uri => req.uri_parts().iter().for_each(|p| md5.update(p)),
                Segment::RemoteAddr => md5.update(addr.bytes()),
                Segment::App => md5.update(req.app.as_bytes()),
                Segment::Stream => md5.update(req.stream.as_bytes()),
                Segment::Secret => md5.update(secret),
            }
        }
        bool::from(md5.finalize().as_slice().ct_eq(&self.hash))
    }

    /// The expiry check, after a key matched. (nginx itself allows no skew.)
    pub(crate) fn check_time(&self, req: &Request<'_>, skew_s: u64) -> Result<(), Refusal> {
        if req.now_s > self.expires.saturating_add(skew_s) {
            return Err(Refusal::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Action;

    /// A request for `/s/{stream}` (RTMP-style: no suffix).
    fn req<'a>(stream: &'a str, ip: &str, now_s: u64) -> Request<'a> {
        Request {
            action: Action::Play,
            app: "s",
            stream,
            uri_suffix: "",
            query: None,
            client_ip: Some(ip.parse().unwrap()),
            now_s,
        }
    }

    /// nginx's documented example: `secure_link_md5
    /// "$secure_link_expires$uri$remote_addr secret"`, expires 2147483647, uri
    /// `/s/link`, address 127.0.0.1; the doc computes it with `echo -n
    /// '2147483647/s/link127.0.0.1 secret' | openssl md5 -binary | openssl
    /// base64 | tr +/ -_ | tr -d =`, and independently
    /// `python3 -c "import hashlib,base64;print(base64.urlsafe_b64encode(hashlib.md5(b'2147483647/s/link127.0.0.1 secret').digest()))"`
    /// gives the same `_e4Nc3iduzkWRm01TBBNYw`.
    const Q: &str = "md5=_e4Nc3iduzkWRm01TBBNYw&expires=2147483647";

    #[test]
    fn documented_vector_verifies() {
        let template = parse_template(DEFAULT_TEMPLATE).unwrap();
        let t = Token::parse(Q).unwrap().unwrap();
        assert!(t.signed_with(&template, b"secret", &req("link", "127.0.0.1", 0)));
        // The literal form of the doc's expression gives the same hash.
        let literal = parse_template("$secure_link_expires$uri$remote_addr secret").unwrap();
        assert!(t.signed_with(&literal, b"unused", &req("link", "127.0.0.1", 0)));
        assert_eq!(
            t.check_time(&req("link", "127.0.0.1", 2_147_483_647), 0),
            Ok(())
        );
        assert_eq!(
            t.check_time(&req("link", "127.0.0.1", 2_147_483_648), 0),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn address_path_and_key_are_bound() {
        let template = parse_template(DEFAULT_TEMPLATE).unwrap();
        let t = Token::parse(Q).unwrap().unwrap();
        assert!(!t.signed_with(&template, b"secret", &req("link", "127.0.0.2", 0)));
        assert!(t.signed_with(&template, b"secret", &req("link", "::ffff:127.0.0.1", 0)));
        assert!(!t.signed_with(&template, b"secret", &req("other", "127.0.0.1", 0)));
        assert!(!t.signed_with(&template, b"secreT", &req("link", "127.0.0.1", 0)));
    }

    #[test]
    fn templates() {
        assert_eq!(
            parse_template("a$uri-$app/$stream").unwrap(),
            vec![
                Segment::Literal("a".into()),
                Segment::Uri,
                Segment::Literal("-".into()),
                Segment::App,
                Segment::Literal("/".into()),
                Segment::Stream,
            ]
        );
        assert_eq!(
            parse_template("$host$uri"),
            Err(TemplateError("host".into()))
        );
    }

    #[test]
    fn malformed() {
        assert!(Token::parse("expires=1").is_none());
        for q in [
            "md5=_e4Nc3iduzkWRm01TBBNYw",
            "md5=_e4Nc3iduzkWRm01TBBNYw&expires=0",
            "md5=short&expires=5",
        ] {
            assert!(
                matches!(Token::parse(q), Some(Err(Refusal::Malformed))),
                "{q}"
            );
        }
    }
}
