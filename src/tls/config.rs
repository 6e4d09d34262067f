//! rustls configurations for every connection Quantix makes or takes, all on the `ring`
//! provider and TLS 1.2+:
//! - `server`: presents the host's certificate with the CA after it (so a joining host can
//!   check the CA against its token's fingerprint), asks for a client certificate and verifies
//!   one against the CA when given; a caller without one still connects, and what it may do is
//!   decided per call from `PeerCert` (`ca::peer_cert`), never at the handshake alone.
//! - `client`: trusts only the cluster CA, optionally presenting a certificate.
//! - `pinned`: for a joining host that has only a token: trusts a server whose chain holds a CA
//!   certificate with the token's fingerprint, and checks the leaf against that CA.
//!
//! Owns: `server`, `client`, `pinned`. Uses: `rustls`, `rustls-pki-types`, `tls::ca`.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;

use super::ca::{cert_der, fingerprint_der};
use super::TlsError;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn bad(what: &'static str) -> impl Fn(rustls::Error) -> TlsError {
    move |e| TlsError::Config {
        what,
        message: e.to_string(),
    }
}

fn roots(ca_pem: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(cert_der(ca_pem)?))
        .map_err(bad("trust the cluster CA"))?;
    Ok(roots)
}

fn key(key_pem: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsError::Config {
        what: "read a private key",
        message: e.to_string(),
    })
}

/// A host's own certificate chain: its leaf, then the CA.
fn chain(cert_pem: &str, ca_pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    Ok(vec![
        CertificateDer::from(cert_der(cert_pem)?),
        CertificateDer::from(cert_der(ca_pem)?),
    ])
}

/// What a host's listener uses.
pub fn server(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Arc<ServerConfig>, TlsError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca_pem)?), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Config {
                what: "verify client certificates",
                message: e.to_string(),
            })?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(bad("choose TLS versions"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain(cert_pem, ca_pem)?, key(key_pem)?)
        .map_err(bad("load the host certificate"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// What a host (to other hosts) or an API client uses; `identity` is (cert, key) PEM. The
/// server must present a certificate of the cluster CA; its names are not checked against the
/// address dialled (`Trust::ClusterCa`), since only the cluster's own hosts hold such certificates
/// and users reach hosts by names and addresses a certificate cannot all list.
pub fn client(ca_pem: &str, identity: Option<(&str, &str)>) -> Result<Arc<ClientConfig>, TlsError> {
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca_pem)?), provider())
        .build()
        .map_err(|e| TlsError::Config {
            what: "verify server certificates",
            message: e.to_string(),
        })?;
    let verifier = Arc::new(Verifier {
        trust: Trust::ClusterCa(webpki),
        provider: provider(),
    });
    let b = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(bad("choose TLS versions"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut cfg = match identity {
        Some((cert, k)) => b
            .with_client_auth_cert(vec![CertificateDer::from(cert_der(cert)?)], key(k)?)
            .map_err(bad("load the client certificate"))?,
        None => b.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// A server config with a throwaway self-signed certificate, for a host that has none yet.
pub fn self_signed_server(name: &str) -> Result<Arc<ServerConfig>, TlsError> {
    let key = rcgen::KeyPair::generate().map_err(|e| TlsError::Cert {
        what: "generate a temporary key",
        message: e.to_string(),
    })?;
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .and_then(|p| p.self_signed(&key))
        .map_err(|e| TlsError::Cert {
            what: "make a temporary certificate",
            message: e.to_string(),
        })?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(bad("choose TLS versions"))?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| TlsError::Config {
                what: "use the temporary key",
                message: e.to_string(),
            })?,
        )
        .map_err(bad("load the temporary certificate"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// What a joining host uses before it has the CA: trust pinned to `ca_fingerprint`.
pub fn pinned(ca_fingerprint: &str) -> Result<Arc<ClientConfig>, TlsError> {
    let verifier = Arc::new(Verifier {
        trust: Trust::Pinned(ca_fingerprint.to_ascii_lowercase()),
        provider: provider(),
    });
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(bad("choose TLS versions"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// The two ways a client here trusts a server.
#[derive(Debug)]
enum Trust {
    /// A chain to the cluster CA; a certificate that chains to it but does not name the
    /// address dialled is still accepted (see `client`; webpki checks names only after the
    /// chain verified).
    ClusterCa(Arc<WebPkiServerVerifier>),
    /// A chain holding a CA certificate with this SHA-256 (a join token's), the leaf verified
    /// against that CA.
    Pinned(String),
}

#[derive(Debug)]
struct Verifier {
    trust: Trust,
    provider: Arc<CryptoProvider>,
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
        match &self.trust {
            Trust::ClusterCa(webpki) => {
                match webpki.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                ) {
                    Err(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::NotValidForName
                        | rustls::CertificateError::NotValidForNameContext { .. },
                    )) => Ok(ServerCertVerified::assertion()),
                    other => other,
                }
            }
            Trust::Pinned(fingerprint) => {
                let Some(ca) = intermediates
                    .iter()
                    .find(|c| fingerprint_der(c) == *fingerprint)
                else {
                    return Err(rustls::Error::General(format!(
                        "the server's CA is not the one the join token names (sha256 {fingerprint})"
                    )));
                };
                let mut roots = RootCertStore::empty();
                roots.add(ca.clone().into_owned())?;
                let inner = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&self.provider),
                )
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
                inner.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
            }
        }
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
