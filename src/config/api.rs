//! `[api]`: the admin routes (API, status page, metrics), their default
//! loopback address, and the check that refuses them off loopback without a
//! token.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};

/// HTTP API, status page and metrics: the admin routes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// The admin address: the API, the status page and `/metrics` are served here
    /// (default `127.0.0.1:9090`, loopback, so nothing that lists streams or changes
    /// state is reachable from outside out of the box).
    pub admin_listen: SocketAddr,
    /// Also serve the admin routes on the public HTTP port (`server.http_listen`);
    /// off by default, when the public port answers them with 404.
    pub on_public_port: bool,
    /// When set, the API requires `Authorization: Bearer <token>`. Required when the
    /// admin routes are reachable on a non-loopback address.
    pub token: Option<String>,
}

/// Default admin address: loopback only.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9090);

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            admin_listen: DEFAULT_ADMIN_LISTEN,
            on_public_port: false,
            token: None,
        }
    }
}

impl ApiConfig {
    /// Whether the admin routes are reachable on a non-loopback address: the admin
    /// address itself, or a public HTTP(S) port in `public` (`server.http_listen`,
    /// `server.https_listen`) when `on_public_port`.
    pub fn exposed(&self, public: &[SocketAddr]) -> bool {
        !self.admin_listen.ip().is_loopback()
            || (self.on_public_port && public.iter().any(|a| !a.ip().is_loopback()))
    }
}

impl Config {
    /// `[api] on_public_port`): `server.http_listen` and `server.https_listen`.
    pub fn public_http(&self) -> Vec<SocketAddr> {
        std::iter::once(self.server.http_listen)
            .chain(self.server.https_listen)
            .collect()
    }

    /// Refuses admin routes reachable off loopback without `[api] token`. Separate
    /// from [`Config::validate`] because command-line flags may move the listeners
    /// after the file is read: `serve` and `check-config` call it on the final config.
    pub fn validate_exposure(&self) -> Result<(), ConfigError> {
        if self.api.exposed(&self.public_http()) && self.api.token.is_none() {
            return Err(ConfigError::Invalid {
                field: "api.token",
                reason: "is required when the admin routes (API, status page, /metrics) are \
                         reachable on a non-loopback address (api.admin_listen, or \
                         server.http_listen or server.https_listen with api.on_public_port): \
                         they list streams \
                         and kick publishers"
                    .into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::*;

    #[test]
    fn admin_routes_default_to_loopback_and_need_a_token_off_it() {
        let config = Config::default();
        assert_eq!(config.api.admin_listen, "127.0.0.1:9090".parse().unwrap());
        assert!(!config.api.on_public_port);
        assert!(!config.edge.allow_publish);
        assert!(config.validate_exposure().is_ok());
        let open = Config::from_toml("[api]\nadmin_listen = \"0.0.0.0:9090\"\n").unwrap();
        let err = open.validate_exposure().unwrap_err().to_string();
        assert!(err.contains("api.token"), "{err}");
        // The default public port is 0.0.0.0:8080: putting the routes there needs one too.
        let public = Config::from_toml("[api]\non_public_port = true\n").unwrap();
        assert!(public.validate_exposure().is_err());
        let on_loopback = Config::from_toml(
            "[server]\nhttp_listen = \"127.0.0.1:8080\"\n[api]\non_public_port = true\n",
        )
        .unwrap();
        assert!(on_loopback.validate_exposure().is_ok());
        // A public HTTPS port exposes them as much as the HTTP port.
        let over_https = Config::from_toml(
            "[server]\nhttp_listen = \"127.0.0.1:8080\"\nhttps_listen = \"0.0.0.0:8443\"\n\
             [tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n[api]\non_public_port = true\n",
        )
        .unwrap();
        assert!(over_https.validate_exposure().is_err());
        let with_token =
            Config::from_toml("[api]\nadmin_listen = \"0.0.0.0:9090\"\ntoken = \"t\"\n").unwrap();
        assert!(with_token.validate_exposure().is_ok());
    }
}
