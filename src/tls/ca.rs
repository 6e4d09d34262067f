//! The cluster's certificate authority: born at bootstrap, it signs a certificate for every
//! host (server and client auth, named by the host's addresses) and every API client (client
//! auth only). A signer never takes a request's own claims: the public key is all it uses
//! from a CSR; names, roles, key usages and lifetime are ours. Certificates carry their role
//! in the subject's organizational unit (`host` or `client`) and their name in the common
//! name, which is what the server reads back to authorize a peer.
//! Owns: `Ca`, `Role`, `KeyAndCsr`, `PeerCert`. Uses: `rcgen`, `x509-parser`, `sha2`.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};

use super::TlsError;

/// How long the cluster CA is valid.
const CA_DAYS: i64 = 3650;
/// How long a host or client certificate is valid.
pub const LEAF_DAYS: i64 = 825;

/// What a certificate may do, written as its subject's OU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A member host: serves and calls other hosts.
    Host,
    /// An API client (CLI, script, dashboard login).
    Client,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Client => "client",
        }
    }
}

/// The CA's certificate and key, PEM.
#[derive(Clone)]
pub struct Ca {
    pub cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

/// A fresh key and a CSR for it (the key never leaves the machine that made it).
pub struct KeyAndCsr {
    pub key_pem: String,
    pub csr_pem: String,
}

/// What a verified peer certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCert {
    pub name: String,
    pub role: Option<Role>,
    pub fingerprint: String,
}

fn rc(what: &'static str) -> impl Fn(rcgen::Error) -> TlsError {
    move |e| TlsError::Cert {
        what,
        message: e.to_string(),
    }
}

fn validity(p: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    // An hour of slack for clocks that differ between hosts.
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(days);
}

impl Ca {
    /// A new CA for the cluster `cluster_id`.
    pub fn generate(cluster_id: &str) -> Result<Ca, TlsError> {
        let key = KeyPair::generate().map_err(rc("generate the CA key"))?;
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(
            DnType::CommonName,
            format!("Quantix cluster {cluster_id} CA"),
        );
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut p, CA_DAYS);
        let cert = p.self_signed(&key).map_err(rc("self-sign the CA"))?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A CA read back from its PEM files.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, TlsError> {
        let key = KeyPair::from_pem(key_pem).map_err(rc("read the CA key"))?;
        Issuer::from_ca_cert_pem(cert_pem, key).map_err(rc("read the CA certificate"))?;
        Ok(Ca {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
        })
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// SHA-256 of the CA certificate (DER), lower-case hex: what join tokens carry.
    pub fn fingerprint(&self) -> String {
        fingerprint_pem(&self.cert_pem).unwrap_or_default()
    }

    /// Signs `csr_pem` for `name` in `role`. Hosts get `sans` (their addresses' hosts) as
    /// subject alternative names; clients get none.
    pub fn issue(
        &self,
        csr_pem: &str,
        role: Role,
        name: &str,
        sans: &[String],
    ) -> Result<String, TlsError> {
        let mut csr =
            CertificateSigningRequestParams::from_pem(csr_pem).map_err(rc("read the CSR"))?;
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, name);
        p.distinguished_name
            .push(DnType::OrganizationalUnitName, role.as_str());
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = match role {
            Role::Host => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            Role::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        if role == Role::Host {
            p.subject_alt_names = sans
                .iter()
                .map(|s| match s.parse::<std::net::IpAddr>() {
                    Ok(ip) => Ok(SanType::IpAddress(ip)),
                    Err(_) => s
                        .clone()
                        .try_into()
                        .map(SanType::DnsName)
                        .map_err(rc("name a host")),
                })
                .collect::<Result<_, _>>()?;
        }
        p.use_authority_key_identifier_extension = true;
        validity(&mut p, LEAF_DAYS);
        csr.params = p;
        let key = KeyPair::from_pem(&self.key_pem).map_err(rc("read the CA key"))?;
        let issuer =
            Issuer::from_ca_cert_pem(&self.cert_pem, key).map_err(rc("read the CA certificate"))?;
        Ok(csr.signed_by(&issuer).map_err(rc("sign"))?.pem())
    }
}

/// A new key pair and a CSR for it.
pub fn new_key_and_csr(name: &str) -> Result<KeyAndCsr, TlsError> {
    let key = KeyPair::generate().map_err(rc("generate a key"))?;
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, name);
    let csr = p.serialize_request(&key).map_err(rc("make a CSR"))?;
    Ok(KeyAndCsr {
        key_pem: key.serialize_pem(),
        csr_pem: csr.pem().map_err(rc("write the CSR"))?,
    })
}

/// The DER of the first certificate in `pem`.
pub fn cert_der(pem: &str) -> Result<Vec<u8>, TlsError> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.to_vec())
        .map_err(|e| TlsError::Cert {
            what: "read a certificate",
            message: e.to_string(),
        })
}

/// SHA-256 of a certificate's DER, lower-case hex.
pub fn fingerprint_der(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

pub fn fingerprint_pem(pem: &str) -> Result<String, TlsError> {
    Ok(fingerprint_der(&cert_der(pem)?))
}

/// Name, role and fingerprint of a certificate (already verified by the TLS layer).
pub fn peer_cert(der: &[u8]) -> Result<PeerCert, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| TlsError::Cert {
        what: "read a peer certificate",
        message: e.to_string(),
    })?;
    let subject = cert.subject();
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_string)
    };
    let name = first(&mut subject.iter_common_name()).unwrap_or_default();
    let role = match first(&mut subject.iter_organizational_unit()).as_deref() {
        Some("host") => Some(Role::Host),
        Some("client") => Some(Role::Client),
        _ => None,
    };
    Ok(PeerCert {
        name,
        role,
        fingerprint: fingerprint_der(der),
    })
}
