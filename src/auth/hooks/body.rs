//! Who a hook call is about, and the request: `POST` with SRS `http_hooks`'
//! JSON body, `Content-Length`, `Host` and `Connection: close`.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use super::config::HookUrl;
use super::HookAction;

/// The session a hook call is about, as the server saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HookSubject {
    /// The connection's id (unique on this server while it lives).
    pub client_id: String,
    /// The client's address (`""` if unknown).
    pub ip: String,
    /// The app (`live`).
    pub app: String,
    /// The stream name (`cam`), without query or extension.
    pub stream: String,
    /// The query with its `?` (`"?token=x"`), or `""`: SRS's `param`.
    pub param: String,
    /// RTMP `connect`'s `tcUrl`, or for HTTP the URL's scheme, host and app.
    pub tc_url: String,
    /// RTMP `connect`'s `pageUrl` (`on_play` only), or `""`.
    pub page_url: String,
}

impl HookSubject {
    /// What identical calls share: the action, stream, query and client
    /// address. Concurrent calls with the same key are one request, and an
    /// allow is cached under it. (The client id is not part of it: the one
    /// request carries the first asker's.)
    pub fn coalesce_key(&self, action: HookAction) -> String {
        let mut key = String::with_capacity(
            16 + self.app.len() + self.stream.len() + self.param.len() + self.ip.len(),
        );
        for part in [
            action.as_str(),
            &self.app,
            &self.stream,
            &self.param,
            &self.ip,
        ] {
            key.push_str(part);
            key.push('\0');
        }
        key
    }
}

/// SRS's body, field for field (`pageUrl` on `on_play` only).
#[derive(Serialize)]
struct Body<'a> {
    server_id: &'a str,
    service_id: &'a str,
    action: &'a str,
    client_id: &'a str,
    ip: &'a str,
    vhost: &'a str,
    app: &'a str,
    #[serde(rename = "tcUrl")]
    tc_url: &'a str,
    stream: &'a str,
    param: &'a str,
    stream_url: String,
    stream_id: String,
    #[serde(rename = "pageUrl", skip_serializing_if = "Option::is_none")]
    page_url: Option<&'a str>,
}

/// SRS's vhost when none is configured; hook servers written for SRS expect it.
pub const DEFAULT_VHOST: &str = "__defaultVhost__";

/// Who the server is: the `server_id` and `service_id` of every body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerIds {
    /// `[hooks] server_id`.
    pub server_id: String,
    /// Unique per process start (SRS: a random id per run).
    pub service_id: String,
}

/// The JSON body of `action` about `who`.
pub fn json_body(action: HookAction, who: &HookSubject, ids: &ServerIds) -> Vec<u8> {
    let body = Body {
        server_id: &ids.server_id,
        service_id: &ids.service_id,
        action: action.as_str(),
        client_id: &who.client_id,
        ip: &who.ip,
        vhost: DEFAULT_VHOST,
        app: &who.app,
        tc_url: &who.tc_url,
        stream: &who.stream,
        param: &who.param,
        stream_url: format!("/{}/{}", who.app, who.stream),
        stream_id: format!("{}/{}", who.app, who.stream),
        page_url: (action == HookAction::Play).then_some(who.page_url.as_str()),
    };
    // Serialising borrowed strings into a Vec cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The whole request: `POST {target}` to `url` with `body`.
pub fn write_request(url: &HookUrl, body: &[u8]) -> Bytes {
    let host = url.host_header();
    let length = body.len().to_string();
    let mut out = BytesMut::with_capacity(160 + url.target.len() + host.len() + body.len());
    for part in [
        b"POST ".as_slice(),
        url.target.as_bytes(),
        b" HTTP/1.1\r\nHost: ",
        host.as_bytes(),
        b"\r\nUser-Agent: ringcast-hooks\r\nContent-Type: application/json\r\nAccept: */*\r\nContent-Length: ",
        length.as_bytes(),
        b"\r\nConnection: close\r\n\r\n",
        body,
    ] {
        out.put_slice(part);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> HookSubject {
        HookSubject {
            client_id: "0-7-1".into(),
            ip: "10.0.0.5".into(),
            app: "live".into(),
            stream: "cam".into(),
            param: "?token=t\"x".into(),
            tc_url: "rtmp://example/live".into(),
            page_url: "http://page/".into(),
        }
    }

    fn ids() -> ServerIds {
        ServerIds {
            server_id: "edge-1".into(),
            service_id: "abcd".into(),
        }
    }

    #[test]
    fn body_has_srs_fields() {
        let v: serde_json::Value =
            serde_json::from_slice(&json_body(HookAction::Play, &subject(), &ids())).unwrap();
        assert_eq!(v["server_id"], "edge-1");
        assert_eq!(v["service_id"], "abcd");
        assert_eq!(v["action"], "on_play");
        assert_eq!(v["client_id"], "0-7-1");
        assert_eq!(v["ip"], "10.0.0.5");
        assert_eq!(v["vhost"], "__defaultVhost__");
        assert_eq!(v["app"], "live");
        assert_eq!(v["tcUrl"], "rtmp://example/live");
        assert_eq!(v["stream"], "cam");
        assert_eq!(v["param"], "?token=t\"x");
        assert_eq!(v["stream_url"], "/live/cam");
        assert_eq!(v["stream_id"], "live/cam");
        assert_eq!(v["pageUrl"], "http://page/");
        let v: serde_json::Value =
            serde_json::from_slice(&json_body(HookAction::Unpublish, &subject(), &ids())).unwrap();
        assert_eq!(v["action"], "on_unpublish");
        assert!(v.get("pageUrl").is_none());
    }

    #[test]
    fn request_parses_as_http() {
        let url = HookUrl::parse("http://127.0.0.1:8085/hooks?k=1").unwrap();
        let body = json_body(HookAction::Publish, &subject(), &ids());
        let req = write_request(&url, &body);
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut parsed = httparse::Request::new(&mut headers);
        let httparse::Status::Complete(n) = parsed.parse(&req).unwrap() else {
            panic!("incomplete")
        };
        assert_eq!(parsed.method, Some("POST"));
        assert_eq!(parsed.path, Some("/hooks?k=1"));
        let h = |name: &str| {
            parsed
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| std::str::from_utf8(h.value).unwrap().to_owned())
        };
        assert_eq!(h("host").as_deref(), Some("127.0.0.1:8085"));
        assert_eq!(h("connection").as_deref(), Some("close"));
        assert_eq!(h("content-length"), Some(body.len().to_string()));
        assert_eq!(&req[n..], &body[..]);
    }

    #[test]
    fn coalesce_key_separates_fields() {
        let a = subject();
        let mut b = subject();
        b.client_id = "other".into();
        assert_eq!(
            a.coalesce_key(HookAction::Play),
            b.coalesce_key(HookAction::Play)
        );
        assert_ne!(
            a.coalesce_key(HookAction::Play),
            a.coalesce_key(HookAction::Publish)
        );
        let mut c = subject();
        c.app = "liv".into();
        c.stream = "ecam".into();
        assert_ne!(
            a.coalesce_key(HookAction::Play),
            c.coalesce_key(HookAction::Play)
        );
        let mut d = subject();
        d.ip = "10.0.0.6".into();
        assert_ne!(
            a.coalesce_key(HookAction::Play),
            d.coalesce_key(HookAction::Play)
        );
    }
}
