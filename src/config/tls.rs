//! The TLS listeners' checks: `server.https_listen` and `server.rtmps_listen`
//! need `[tls]` (whose struct, `tls::TlsConfig`, lives with the TLS code) and
//! an address no other listener uses.

use super::{Config, ConfigError};

impl Config {
    /// A TLS listener needs `[tls]` (its `cert` and `key`); the error names the
    /// listener. The files themselves are read by `tls::ServerTls::load` (at
    /// startup, and by `check-config`).
    pub fn validate_tls(&self) -> Result<(), ConfigError> {
        let listeners = [
            ("server.https_listen", self.server.https_listen),
            ("server.rtmps_listen", self.server.rtmps_listen),
        ];
        for (field, addr) in listeners {
            if let (Some(addr), None) = (addr, &self.tls) {
                return Err(ConfigError::Invalid {
                    field,
                    reason: format!(
                        "{addr} is a TLS listener: it needs [tls] cert and key \
                         (or --tls-cert and --tls-key)"
                    ),
                });
            }
        }
        let mut addrs = vec![
            self.server.rtmp_listen,
            self.server.http_listen,
            self.api.admin_listen,
        ];
        for (field, addr) in listeners {
            if let Some(addr) = addr {
                if addr.port() != 0 && addrs.contains(&addr) {
                    return Err(ConfigError::Invalid {
                        field,
                        reason: format!("{addr} is already another listener's address"),
                    });
                }
                addrs.push(addr);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::*;

    #[test]
    fn tls_listeners_are_off_by_default_and_need_a_certificate() {
        let c = Config::default();
        assert_eq!((c.server.https_listen, c.server.rtmps_listen), (None, None));
        assert!(c.tls.is_none());
        for key in ["https_listen", "rtmps_listen"] {
            let err = Config::from_toml(&format!("[server]\n{key} = \"127.0.0.1:8443\"\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("server.{key}")), "{err}");
            assert!(err.contains("[tls]"), "{err}");
        }
        let c = Config::from_toml(
            "[server]\nhttps_listen = \"127.0.0.1:8443\"\nrtmps_listen = \"127.0.0.1:1936\"\n\
             [tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n\
             [[tls.sni]]\nnames = [\"a.example\"]\ncert = \"/a.pem\"\nkey = \"/ak.pem\"\n",
        )
        .unwrap();
        let tls = c.tls.as_ref().unwrap();
        assert_eq!(tls.cert, std::path::Path::new("/c.pem"));
        assert_eq!(tls.sni[0].names, ["a.example"]);
        assert_eq!(
            c.server.https_listen,
            Some("127.0.0.1:8443".parse().unwrap())
        );
        // check-config prints the effective config: it must round-trip.
        let text = toml::to_string_pretty(&c).unwrap();
        assert_eq!(Config::from_toml(&text).unwrap(), c);
        let clash =
            "[server]\nhttp_listen = \"127.0.0.1:8080\"\nhttps_listen = \"127.0.0.1:8080\"\n\
                     [tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n";
        let err = Config::from_toml(clash).unwrap_err().to_string();
        assert!(err.contains("server.https_listen"), "{err}");
    }
}
