//! The served certificate set and the rustls configurations built on it.
//!
//! [`CertResolver`] is the `ResolvesServerCert` of every server configuration:
//! it picks a certificate by SNI from the current [`CertSet`], read once per
//! handshake (a read lock held for a map look-up, never per record). A reload
//! builds a whole new set from the files and swaps the `Arc`; a failed reload
//! leaves the old set serving. Established sessions are never touched: their
//! keys were derived at their handshake.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig};

use super::load::{load_certified_key, load_roots, LoadError, TlsConfig};
use super::ALPN_HTTP11;

/// The crypto provider every configuration uses (ring; see the module docs).
/// rustls 0.23.48 deprecates it because ring has no post-quantum key exchange
/// (X25519MLKEM768): classic X25519/P-256/P-384 only. Moving to aws-lc-rs is
/// the rustls feature flag and this one function.
///
/// Key exchange groups are ordered X25519, P-256, P-384: ring 0.17's default
/// list puts P-384 first, whose generic (non-assembly) code made a full
/// handshake about 3× slower in `benches/tls.rs`; browsers and rustls clients
/// send an X25519 share anyway.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![X25519, SECP256R1, SECP384R1];
    Arc::new(provider)
}

/// Certificates by SNI name plus a default, all loaded and key-checked.
pub struct CertSet {
    default: Arc<CertifiedKey>,
    /// Lowercase exact names, and wildcard entries stored as `*.suffix`.
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl fmt::Debug for CertSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.by_name.keys().collect();
        names.sort();
        f.debug_struct("CertSet").field("names", &names).finish()
    }
}

impl CertSet {
    /// Loads every file `[tls]` names; the first failure is returned.
    pub fn load(config: &TlsConfig, provider: &CryptoProvider) -> Result<Self, LoadError> {
        let default = load_certified_key(&config.cert, &config.key, provider)?;
        let mut by_name = HashMap::new();
        for entry in &config.sni {
            let key = load_certified_key(&entry.cert, &entry.key, provider)?;
            if entry.names.is_empty() {
                return Err(LoadError::BadName {
                    path: entry.cert.clone(),
                    name: String::new(),
                });
            }
            for name in &entry.names {
                let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
                if name.is_empty() || by_name.insert(name.clone(), key.clone()).is_some() {
                    return Err(LoadError::BadName {
                        path: entry.cert.clone(),
                        name,
                    });
                }
            }
        }
        Ok(Self { default, by_name })
    }

    /// The certificate for the SNI name `name` (exact, then `*.` one label
    /// up), or the default when there is no name or no match.
    pub fn pick(&self, name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = name else {
            return self.default.clone();
        };
        // Allocation-free for the common all-lowercase name; SNI names are
        // normalised to lowercase by rustls already.
        if let Some(found) = self.by_name.get(name) {
            return found.clone();
        }
        if let Some((_, parent)) = name.split_once('.') {
            let mut wildcard = String::with_capacity(parent.len() + 2);
            wildcard.push_str("*.");
            wildcard.push_str(parent);
            if let Some(found) = self.by_name.get(&wildcard) {
                return found.clone();
            }
        }
        self.default.clone()
    }
}

/// The `ResolvesServerCert` shared by every server configuration: the current
/// [`CertSet`], swapped whole on reload.
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertSet>>,
}

impl CertResolver {
    /// A resolver serving `set`.
    pub fn new(set: CertSet) -> Self {
        Self {
            current: RwLock::new(Arc::new(set)),
        }
    }

    /// The set new handshakes use.
    pub fn current(&self) -> Arc<CertSet> {
        // A poisoned lock only means a writer panicked mid-swap; the Arc inside
        // is always whole, so keep serving it.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Makes `set` the one new handshakes use.
    pub fn replace(&self, set: CertSet) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(set);
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().pick(hello.server_name()))
    }
}

/// The server side of `[tls]`: one rustls configuration per listener kind
/// (HTTPS offers ALPN `http/1.1`, RTMPS none), TLS 1.2 and 1.3, both sharing
/// one reloadable [`CertResolver`]. Cheap to share across cores (`Arc`s).
#[derive(Debug, Clone)]
pub struct ServerTls {
    config: TlsConfig,
    provider: Arc<CryptoProvider>,
    resolver: Arc<CertResolver>,
    https: Arc<ServerConfig>,
    rtmps: Arc<ServerConfig>,
}

impl ServerTls {
    /// Loads the files `config` names and builds both configurations.
    pub fn load(config: &TlsConfig) -> Result<Self, LoadError> {
        let provider = provider();
        let resolver = Arc::new(CertResolver::new(CertSet::load(config, &provider)?));
        let build = |alpn: &[&[u8]]| -> Result<Arc<ServerConfig>, LoadError> {
            let mut server = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(|e| LoadError::Config(e.to_string()))?
                .with_no_client_auth()
                .with_cert_resolver(resolver.clone());
            server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(Arc::new(server))
        };
        Ok(Self {
            config: config.clone(),
            https: build(&[ALPN_HTTP11])?,
            rtmps: build(&[])?,
            provider,
            resolver,
        })
    }

    /// Re-reads every file and swaps the certificate set: handshakes from now
    /// on use the new certificates; established sessions keep theirs. On error
    /// the old set keeps serving.
    pub fn reload(&self) -> Result<(), LoadError> {
        let set = CertSet::load(&self.config, &self.provider)?;
        tracing::info!(names = ?set, "TLS certificates reloaded");
        self.resolver.replace(set);
        Ok(())
    }

    /// The configuration for HTTPS listeners (ALPN `http/1.1`).
    pub fn https(&self) -> Arc<ServerConfig> {
        self.https.clone()
    }

    /// The configuration for RTMPS listeners (no ALPN).
    pub fn rtmps(&self) -> Arc<ServerConfig> {
        self.rtmps.clone()
    }

    /// The resolver both configurations share.
    pub fn resolver(&self) -> &Arc<CertResolver> {
        &self.resolver
    }
}

/// The client side, for edge pulls from `https://` and `rtmps://` origins:
/// server certificates verified against the configured CA file or the system
/// store; TLS 1.2 and 1.3.
#[derive(Debug, Clone)]
pub struct ClientTls {
    https: Arc<ClientConfig>,
    rtmps: Arc<ClientConfig>,
}

impl ClientTls {
    /// Trusts the certificates in `ca` (PEM), or the system store when `None`.
    pub fn load(ca: Option<&std::path::Path>) -> Result<Self, LoadError> {
        Self::with_roots(load_roots(ca)?)
    }

    /// Trusts exactly `roots`.
    pub fn with_roots(roots: rustls::RootCertStore) -> Result<Self, LoadError> {
        let roots = Arc::new(roots);
        let build = |alpn: &[&[u8]]| -> Result<Arc<ClientConfig>, LoadError> {
            let mut client = ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(|e| LoadError::Config(e.to_string()))?
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            client.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(Arc::new(client))
        };
        Ok(Self {
            https: build(&[ALPN_HTTP11])?,
            rtmps: build(&[])?,
        })
    }

    /// The configuration for `https://` origins (ALPN `http/1.1`).
    pub fn https(&self) -> Arc<ClientConfig> {
        self.https.clone()
    }

    /// The configuration for `rtmps://` origins (no ALPN).
    pub fn rtmps(&self) -> Arc<ClientConfig> {
        self.rtmps.clone()
    }
}

#[cfg(test)]
mod tests {
    use rustls::NamedGroup;

    #[test]
    fn key_exchange_prefers_x25519_over_ring_default_p384() {
        let names: Vec<NamedGroup> = super::provider()
            .kx_groups
            .iter()
            .map(|g| g.name())
            .collect();
        assert_eq!(
            names,
            [
                NamedGroup::X25519,
                NamedGroup::secp256r1,
                NamedGroup::secp384r1
            ]
        );
    }
}
