//! `[tls]` settings and the PEM files they name: certificate chains and
//! private keys, turned into rustls' types. This is the only part of the TLS
//! layer that reads files; every failure names the file and what is wrong.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// `[tls]`: the default certificate (`cert`, `key`), more certificates chosen by
/// SNI (`[[tls.sni]]`), and for edge pulls from `https://` / `rtmps://`
/// origins an optional CA file (`ca`) instead of the system store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the default certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the default certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Certificates chosen by the name the client asks for (SNI).
    #[serde(default)]
    pub sni: Vec<CertFiles>,
    /// PEM file of CA certificates trusted for origins; absent: the system store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

/// One SNI certificate: the names it serves and its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertFiles {
    /// Host names (case-insensitive) for which this certificate is chosen.
    /// `*.example.com` matches any single label in front of `example.com`.
    pub names: Vec<String>,
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Why a certificate, key or CA file could not be used. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read (missing, permissions...).
    #[error("{path}: cannot read: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A PEM section could not be parsed.
    #[error("{path}: bad PEM: {detail}")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// The file holds no `CERTIFICATE` section.
    #[error("{path}: no certificate in the file")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no private key section.
    #[error("{path}: no private key in the file")]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key is of a kind or curve the crypto provider cannot sign with.
    #[error("{path}: unsupported private key: {detail}")]
    UnsupportedKey {
        /// The key file.
        path: PathBuf,
        /// What rustls said.
        detail: String,
    },
    /// The private key does not belong to the chain's leaf certificate.
    #[error("{key}: private key does not match the certificate in {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// An SNI entry lists no name, or a name twice across entries.
    #[error("{path}: SNI name {name:?} is empty or already used")]
    BadName {
        /// The certificate file of the entry.
        path: PathBuf,
        /// The offending name.
        name: String,
    },
    /// No trusted root could be loaded for origin verification.
    #[error("no CA certificate could be loaded from {from}")]
    NoRoots {
        /// The CA file, or "the system store".
        from: String,
    },
    /// rustls refused the assembled configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate in a PEM file, in file order (leaf first for a chain).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LoadError::BadPem {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(LoadError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, LoadError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => LoadError::NoKey {
            path: path.to_path_buf(),
        },
        other => LoadError::BadPem {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    })
}

/// A chain and its key, checked to belong together, ready to serve.
pub fn load_certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, LoadError> {
    let chain = load_certs(cert)?;
    let der = load_key(key)?;
    let signing =
        provider
            .key_provider
            .load_private_key(der)
            .map_err(|e| LoadError::UnsupportedKey {
                path: key.to_path_buf(),
                detail: e.to_string(),
            })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(LoadError::KeyMismatch {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            })
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(e) => Err(LoadError::BadPem {
            path: cert.to_path_buf(),
            detail: e.to_string(),
        }),
    }
}

/// Trusted roots for origin verification: the CA file, or the system store.
pub fn load_roots(ca: Option<&Path>) -> Result<rustls::RootCertStore, LoadError> {
    let mut roots = rustls::RootCertStore::empty();
    let from = match ca {
        Some(path) => {
            for cert in load_certs(path)? {
                roots.add(cert).map_err(|e| LoadError::BadPem {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                })?;
            }
            path.display().to_string()
        }
        None => {
            // Unparsable entries in the system store are skipped, as browsers do.
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            "the system store".to_string()
        }
    };
    if roots.is_empty() {
        return Err(LoadError::NoRoots { from });
    }
    Ok(roots)
}
