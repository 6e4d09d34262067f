//! A host's certificates in the cluster's CA (issue 8; issued and stored, not yet used by the
//! listeners): bootstrap makes the CA and the first host's certificate; a joining host sends a
//! CSR with its join request and gets back its certificate, the CA certificate and the CA key
//! (every member can then sign joins when it leads, as Incus members share the cluster
//! certificate); join tokens carry the CA's fingerprint. Files live in `<data_dir>/tls/`
//! (`ca.crt`, `ca.key`, `host.crt`, `host.key`; 0600, directory 0700).
//! Owns: `Issued`, the file names. Uses: `tls`, `cluster::Host`.

use serde::{Deserialize, Serialize};

use super::{ClusterError, Host};
use crate::tls::ca::{self, Ca, Role};

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const HOST_CERT: &str = "host.crt";
pub const HOST_KEY: &str = "host.key";

/// A client certificate just signed.
#[derive(Debug, Clone)]
pub struct SignedClient {
    pub cert_pem: String,
    pub ca_pem: String,
    pub fingerprint: String,
}

/// What a joining host receives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Issued {
    pub ca_pem: String,
    pub ca_key_pem: String,
    pub cert_pem: String,
}

fn tls_err(e: crate::tls::TlsError) -> ClusterError {
    ClusterError::Internal(e.to_string())
}

/// The names a host's certificate carries: the host part of its advertised address.
pub fn sans(addr: &str) -> Vec<String> {
    let host = match addr.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    };
    vec![host.to_string()]
}

impl Host {
    fn ca(&self) -> Result<Option<Ca>, ClusterError> {
        let dir = self.tls_dir();
        match (
            dir.read(CA_CERT).map_err(tls_err)?,
            dir.read(CA_KEY).map_err(tls_err)?,
        ) {
            (Some(cert), Some(key)) => Ok(Some(Ca::from_pem(&cert, &key).map_err(tls_err)?)),
            _ => Ok(None),
        }
    }

    /// SHA-256 of this host's own certificate, once it has one.
    pub fn host_cert_fingerprint(&self) -> Option<String> {
        let pem = self.tls_dir().read(HOST_CERT).ok().flatten()?;
        ca::fingerprint_pem(&pem).ok()
    }

    /// SHA-256 of the cluster CA certificate, once this host has it.
    pub fn ca_fingerprint(&self) -> Option<String> {
        let pem = self.tls_dir().read(CA_CERT).ok().flatten()?;
        ca::fingerprint_pem(&pem).ok()
    }

    /// At bootstrap: the cluster CA and this host's certificate (kept if already made, so an
    /// interrupted bootstrap resumes with the same CA).
    pub(super) fn ensure_cluster_ca(&self, cluster_id: &str) -> Result<(), ClusterError> {
        let ca = match self.ca()? {
            Some(ca) => ca,
            None => {
                let ca = Ca::generate(cluster_id).map_err(tls_err)?;
                let dir = self.tls_dir();
                dir.write(CA_KEY, ca.key_pem()).map_err(tls_err)?;
                dir.write(CA_CERT, &ca.cert_pem).map_err(tls_err)?;
                ca
            }
        };
        if self.tls_dir().read(HOST_CERT).map_err(tls_err)?.is_none() {
            let kc = ca::new_key_and_csr(self.name()).map_err(tls_err)?;
            let cert = ca
                .issue(
                    &kc.csr_pem,
                    Role::Host,
                    self.name(),
                    &sans(&self.member().addr),
                )
                .map_err(tls_err)?;
            self.store_host_cert(&kc.key_pem, &cert)?;
        }
        Ok(())
    }

    /// On the leader: signs a joining host's CSR.
    pub(super) fn sign_join(
        &self,
        csr_pem: &str,
        name: &str,
        addr: &str,
    ) -> Result<Option<Issued>, ClusterError> {
        let Some(ca) = self.ca()? else {
            // A cluster bootstrapped before certificates existed: nothing to hand out.
            return Ok(None);
        };
        let cert_pem = ca
            .issue(csr_pem, Role::Host, name, &sans(addr))
            .map_err(|e| ClusterError::InvalidArgument(format!("join request: {e}")))?;
        Ok(Some(Issued {
            ca_pem: ca.cert_pem.clone(),
            ca_key_pem: ca.key_pem().to_string(),
            cert_pem,
        }))
    }

    /// Signs an API client's CSR (role `client`, CN `name`); returns the certificate, the CA
    /// certificate and the certificate's fingerprint. Only the CSR's public key is used.
    pub fn sign_client(&self, csr_pem: &str, name: &str) -> Result<SignedClient, ClusterError> {
        let ca = self.ca()?.ok_or_else(|| {
            ClusterError::FailedPrecondition(format!(
                "host {} has no cluster CA (it is not a member of a cluster)",
                self.name()
            ))
        })?;
        let cert_pem = ca
            .issue(csr_pem, Role::Client, name, &[])
            .map_err(|e| ClusterError::InvalidArgument(format!("csr_pem: {e}")))?;
        let fingerprint = ca::fingerprint_pem(&cert_pem).map_err(tls_err)?;
        Ok(SignedClient {
            cert_pem,
            ca_pem: ca.cert_pem.clone(),
            fingerprint,
        })
    }

    /// The cluster CA certificate (PEM), once this host has it.
    pub fn ca_pem(&self) -> Option<String> {
        self.tls_dir().read(CA_CERT).ok().flatten()
    }

    /// On the joining host: keeps what the leader issued, with the key made for the CSR.
    pub(super) fn store_issued(&self, issued: &Issued, key_pem: &str) -> Result<(), ClusterError> {
        let dir = self.tls_dir();
        dir.write(CA_KEY, &issued.ca_key_pem).map_err(tls_err)?;
        dir.write(CA_CERT, &issued.ca_pem).map_err(tls_err)?;
        self.store_host_cert(key_pem, &issued.cert_pem)
    }

    fn store_host_cert(&self, key_pem: &str, cert_pem: &str) -> Result<(), ClusterError> {
        let dir = self.tls_dir();
        dir.write(HOST_KEY, key_pem).map_err(tls_err)?;
        dir.write(HOST_CERT, cert_pem).map_err(tls_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_names_come_from_the_address() {
        assert_eq!(sans("10.0.0.5:7401"), ["10.0.0.5"]);
        assert_eq!(sans("host1.lab:7401"), ["host1.lab"]);
        assert_eq!(sans("[fd00::1]:7401"), ["fd00::1"]);
    }
}
