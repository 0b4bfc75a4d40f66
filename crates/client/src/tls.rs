//! Which `https://` servers the client believes.
//!
//! A server is believed when its certificate chains to a root the system trusts (its certificate
//! store; `SSL_CERT_FILE` or `SSL_CERT_DIR` stand in for it), or when its certificate is the very
//! one the user pinned for that server — a self-signed certificate, say, whose fingerprint they
//! compared with the one the host gave them ([`crate::Client::trust_certificate`]). Nothing is
//! ever believed silently: a certificate that is neither is refused, and the refusal says its
//! fingerprint ([`crate::ClientError::UntrustedCertificate`]) so a UI can show it and ask.
//!
//! A pinned certificate is believed as it is, whatever name or dates it carries: the user's
//! comparison is the trust. A pin does not stop a certificate that chains to the system's roots
//! from being believed (a server that moved to a public authority keeps working).
//!
//! One [`Trust`] goes with one [`crate::api::Api`], and every connection to its server — the HTTP
//! API, the WebSocket, the feed, the HTTP transports — is made with its [`rustls::ClientConfig`].

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::ClientError;

/// A certificate the client would not believe: what it was, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Its SHA-256 fingerprint ([`tidings_proto::certificate_fingerprint`]).
    pub fingerprint: String,
    /// Why no root vouches for it, as rustls says.
    pub reason: String,
}

/// The TLS settings for one server: the system's roots and the certificate pinned for it, if any.
#[derive(Debug, Clone)]
pub(crate) struct Trust {
    config: Arc<ClientConfig>,
    verifier: Arc<Verifier>,
}

#[derive(Debug)]
struct Verifier {
    /// `None` when the system has no roots at all: only a pin is believed.
    roots: Option<Arc<WebPkiServerVerifier>>,
    pinned: Option<String>,
    provider: Arc<CryptoProvider>,
    /// The last certificate refused, for the error the connection's failure becomes.
    refused: Mutex<Option<Refused>>,
}

/// A `reqwest` client builder that can speak TLS: what every HTTP client of the project outside
/// the client core (tests, benchmarks) starts from. With only rustls's `ring` in the build,
/// `reqwest` has no crypto provider of its own and panics when it builds a client for which
/// none was installed; this installs `ring` as the process's default first.
pub fn http_builder() -> reqwest::ClientBuilder {
    // Already installed (by an earlier call, or by the program) is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// The system's roots, read once per process.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for err in &found.errors {
                tracing::warn!(%err, "could not read the system's certificates");
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "the system's root certificates");
            Arc::new(roots)
        })
        .clone()
}

impl Trust {
    /// Believes the system's roots, and the certificate whose fingerprint is `pinned`.
    pub fn new(pinned: Option<String>) -> Result<Trust, ClientError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = system_roots();
        let roots = if roots.is_empty() {
            None
        } else {
            let built = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
                .build()
                .map_err(|err| ClientError::Protocol(format!("TLS roots: {err}")))?;
            Some(built)
        };
        let verifier = Arc::new(Verifier {
            roots,
            pinned,
            provider: Arc::clone(&provider),
            refused: Mutex::new(None),
        });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| ClientError::Protocol(format!("TLS: {err}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        Ok(Trust {
            config: Arc::new(config),
            verifier,
        })
    }

    pub fn config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    /// The certificate pinned for this server, if any.
    pub fn pinned(&self) -> Option<&str> {
        self.verifier.pinned.as_deref()
    }

    /// Whether a connection made with this trust has refused a certificate since it was last
    /// taken.
    pub fn has_refused(&self) -> bool {
        self.verifier
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// The last certificate refused on a connection made with this trust, taken.
    pub fn take_refused(&self) -> Option<Refused> {
        self.verifier
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = tidings_proto::certificate_fingerprint(end_entity);
        if self.pinned.as_deref() == Some(fingerprint.as_str()) {
            return Ok(ServerCertVerified::assertion());
        }
        let checked = match &self.roots {
            Some(roots) => {
                roots.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        };
        if let Err(err) = &checked {
            *self.refused.lock().unwrap_or_else(PoisonError::into_inner) = Some(Refused {
                fingerprint,
                reason: err.to_string(),
            });
        }
        checked
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
