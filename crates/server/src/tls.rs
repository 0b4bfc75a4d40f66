//! TLS built in (`tls_cert`, `tls_key`): `https://` and `wss://` with no proxy in front.
//!
//! The certificate chain and its key are PEM files. Each handshake takes the pair loaded last, so
//! a renewed certificate is served from the next connection on, without a restart and without
//! touching the connections already open: the files are read again on SIGHUP and whenever their
//! contents change (looked at every [`WATCH_EVERY`], so a renewal that swaps a symlink or
//! rewrites the files is seen either way). A pair that fails to load — half-written, a key that
//! is not the certificate's — is logged and the one in use is kept.
//!
//! The server speaks HTTP/1.1 over TLS only (ALPN `http/1.1`), as it does in the clear.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::ServerError;
use crate::config::Config;

/// How often the files are looked at for a change.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// What the `Strict-Transport-Security` header says while TLS is on: browsers use `https://` for
/// this host for a year.
pub const HSTS: &str = "max-age=31536000";

/// The server's TLS: the acceptor every connection goes through, and the files it reloads.
pub struct Tls {
    acceptor: TlsAcceptor,
    current: Arc<Current>,
    provider: Arc<CryptoProvider>,
    cert: PathBuf,
    key: PathBuf,
}

/// The certificate handshakes are answered with: the one loaded last.
#[derive(Debug)]
struct Current {
    loaded: RwLock<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    /// The files' bytes it was loaded from, to tell a change.
    files: (Vec<u8>, Vec<u8>),
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let loaded = self.loaded.read().unwrap_or_else(PoisonError::into_inner);
        Some(Arc::clone(&loaded.key))
    }
}

impl Tls {
    /// The TLS of `config`, when both `tls_cert` and `tls_key` are set; an error when only one
    /// is, or when the files do not hold a certificate chain and its key.
    pub fn from_config(config: &Config) -> Result<Option<Tls>, ServerError> {
        match (&config.tls_cert, &config.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Tls::load(cert, key).map(Some),
            _ => Err(ServerError::Config(
                "tls_cert and tls_key go together: set both, or neither".into(),
            )),
        }
    }

    /// Loads the PEM certificate chain at `cert` (the server's certificate first) and its
    /// private key at `key`.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, ServerError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let files = (read(cert)?, read(key)?);
        let certified = certified_key(&files, cert, key, &provider)?;
        let current = Arc::new(Current {
            loaded: RwLock::new(Loaded {
                key: certified,
                files,
            }),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|err| ServerError::Config(format!("TLS: {err}")))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            current,
            provider,
            cert: cert.to_owned(),
            key: key.to_owned(),
        })
    }

    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// The fingerprint of the certificate being served ([`tidings_proto::certificate_fingerprint`]).
    pub fn fingerprint(&self) -> String {
        let loaded = self
            .current
            .loaded
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        loaded
            .key
            .end_entity_cert()
            .map(|der| tidings_proto::certificate_fingerprint(der))
            .unwrap_or_default()
    }

    /// Reads the files again and, when they changed and hold a good pair, serves that from the
    /// next handshake on. Whether it changed what is served; an error leaves it as it was.
    pub fn reload(&self) -> Result<bool, ServerError> {
        let files = (read(&self.cert)?, read(&self.key)?);
        {
            let loaded = self
                .current
                .loaded
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if loaded.files == files {
                return Ok(false);
            }
        }
        let key = certified_key(&files, &self.cert, &self.key, &self.provider)?;
        *self
            .current
            .loaded
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Loaded { key, files };
        Ok(true)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path)
        .map_err(|err| ServerError::Config(format!("TLS: {}: {err}", path.display())))
}

/// The chain and key in `files` (the bytes of `cert` and `key`), checked to belong together.
fn certified_key(
    files: &(Vec<u8>, Vec<u8>),
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, ServerError> {
    let bad =
        |path: &Path, what: String| ServerError::Config(format!("TLS: {}: {what}", path.display()));
    let chain = CertificateDer::pem_slice_iter(&files.0)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| bad(cert, format!("not a PEM certificate chain: {err}")))?;
    if chain.is_empty() {
        return Err(bad(cert, "holds no certificate".into()));
    }
    let private = PrivateKeyDer::from_pem_slice(&files.1)
        .map_err(|err| bad(key, format!("not a PEM private key: {err}")))?;
    let certified = CertifiedKey::from_der(chain, private, provider)
        .map_err(|err| bad(key, format!("not the key of {}: {err}", cert.display())))?;
    Ok(Arc::new(certified))
}

/// Reloads `tls` on SIGHUP and when its files change, until `token` is cancelled. SIGHUP is
/// listened for from the moment this returns, before the future runs: a SIGHUP sent once the
/// server has said it serves is never missed (nor, where SIGHUP's default is in force, fatal).
pub fn watch(tls: Arc<Tls>, token: CancellationToken) -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(err) => {
            tracing::warn!(%err, "cannot listen for SIGHUP; TLS files are reloaded when they change");
            None
        }
    };
    async move {
        let mut every = tokio::time::interval(WATCH_EVERY);
        // A failure is logged when it first happens, not at every look until the files are fixed.
        let mut failing: Option<String> = None;
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hangups.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<Option<()>>();
            let asked = tokio::select! {
                _ = token.cancelled() => return,
                _ = hangup => true,
                _ = every.tick() => false,
            };
            match tls.reload() {
                Ok(changed) => {
                    failing = None;
                    if changed {
                        tracing::info!(fingerprint = %tls.fingerprint(), "TLS certificate reloaded");
                    } else if asked {
                        tracing::info!("TLS files unchanged; nothing to reload");
                    }
                }
                Err(err) => {
                    let err = err.to_string();
                    if asked || failing.as_ref() != Some(&err) {
                        tracing::warn!(%err, "TLS certificate not reloaded; still serving the last one");
                    }
                    failing = Some(err);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for localhost and its key, PEM.
    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn fingerprint_of(pem: &str) -> String {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        tidings_proto::certificate_fingerprint(&der)
    }

    #[test]
    fn a_reload_takes_a_good_pair_and_keeps_serving_the_last_one_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let (first_cert, first_key) = pair();
        std::fs::write(&cert, &first_cert).unwrap();
        std::fs::write(&key, &first_key).unwrap();
        let tls = Tls::load(&cert, &key).unwrap();
        assert_eq!(tls.fingerprint(), fingerprint_of(&first_cert));
        assert!(!tls.reload().unwrap(), "unchanged files are not a change");

        // A certificate with another's key: refused, the first one still served.
        let (second_cert, second_key) = pair();
        std::fs::write(&cert, &second_cert).unwrap();
        let err = tls.reload().unwrap_err().to_string();
        assert!(err.contains("not the key of"), "{err}");
        assert_eq!(tls.fingerprint(), fingerprint_of(&first_cert));
        // Not PEM at all: the same.
        std::fs::write(&key, "half a key").unwrap();
        let err = tls.reload().unwrap_err().to_string();
        assert!(err.contains("not a PEM private key"), "{err}");
        assert_eq!(tls.fingerprint(), fingerprint_of(&first_cert));

        // The pair complete: served.
        std::fs::write(&key, &second_key).unwrap();
        assert!(tls.reload().unwrap());
        assert_eq!(tls.fingerprint(), fingerprint_of(&second_cert));
    }

    #[test]
    fn one_file_without_the_other_is_a_configuration_error() {
        let mut config = Config {
            tls_cert: Some("cert.pem".into()),
            ..Config::default()
        };
        let err = Tls::from_config(&config).err().unwrap().to_string();
        assert!(err.contains("go together"), "{err}");
        config.tls_cert = None;
        assert!(Tls::from_config(&config).unwrap().is_none());
    }
}
