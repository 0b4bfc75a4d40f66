//! Certificates made by the tests: a certificate authority of their own and the server
//! certificates it signs, or self-signed ones, for `localhost` and `127.0.0.1`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The names every test certificate is for.
const NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// A certificate authority made by the test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A server's certificate and its key, PEM.
#[derive(Clone)]
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Tidings test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("the CA's certificate");
        TestCa {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        }
    }

    /// The CA's certificate, PEM: what a client that trusts it has among its roots.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate for `localhost` and `127.0.0.1`, signed by this CA.
    pub fn issue(&self) -> Pair {
        let key = KeyPair::generate().expect("a server key");
        let params = server_params();
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

fn server_params() -> CertificateParams {
    let mut params =
        CertificateParams::new(NAMES.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "Tidings test server");
    params
}

impl Pair {
    /// A self-signed server certificate for `localhost` and `127.0.0.1`: no authority vouches
    /// for it.
    pub fn self_signed() -> Pair {
        let key = KeyPair::generate().expect("a server key");
        let cert = server_params().self_signed(&key).expect("self-signed");
        Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The certificate's DER bytes.
    pub fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).expect("a PEM certificate")
    }

    /// Its fingerprint, as the server logs it and a client shows it.
    pub fn fingerprint(&self) -> String {
        tidings_proto::certificate_fingerprint(&self.der())
    }

    /// Writes `tls/cert.pem` and `tls/key.pem` under `dir` (replacing what is there, each file
    /// renamed into place whole); their paths.
    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let tls = dir.join("tls");
        std::fs::create_dir_all(&tls).expect("tls dir");
        let put = |name: &str, text: &str| {
            let path = tls.join(name);
            let partial = tls.join(format!("{name}.partial"));
            std::fs::write(&partial, text).expect("write a PEM file");
            std::fs::rename(&partial, &path).expect("rename it into place");
            path
        };
        (
            put("cert.pem", &self.cert_pem),
            put("key.pem", &self.key_pem),
        )
    }
}

/// A TLS client configuration that trusts the certificates in `pem` (a CA's, or a self-signed
/// server certificate itself) and nothing else.
pub fn trusting(pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.expect("a PEM certificate")).expect("a root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}
