//! `quantix.v1.AccessService`: client certificates signed from the caller's CSR, bearer
//! tokens (shown once; only their SHA-256 is kept), the list, revocation, the CA certificate
//! and "who am I". Every call here already passed the auth layer; the principal it found is in
//! the request's extensions and becomes the credential's `created_by`.

use tonic::{Request, Response, Status};

use super::cluster::is_stale;
use super::status::to_status;
use crate::auth::Principal;
use crate::cluster::{now_ms, ClusterError, Host};
use crate::model::credential::{ApiToken, Credential, CredentialKind};
use crate::proto::v1::access_service_server::AccessService;
use crate::proto::v1::*;
use crate::state::credentials::CredentialCommand;
use crate::state::{cluster::rfc3339, credentials, Applied, Command};

pub struct AccessApi {
    pub host: Host,
}

fn invalid(field: &str, why: impl std::fmt::Display) -> Status {
    to_status(ClusterError::InvalidArgument(format!("{field}: {why}")))
}

fn principal<T>(req: &Request<T>) -> String {
    req.extensions()
        .get::<Principal>()
        .map_or_else(|| "unknown".to_string(), Principal::describe)
}

/// The wire form of a stored credential.
pub fn to_proto(c: &Credential) -> crate::proto::v1::Credential {
    let fingerprint = match &c.kind {
        CredentialKind::Certificate { fingerprint } => fingerprint.clone(),
        CredentialKind::Token { id, .. } => id.clone(),
    };
    crate::proto::v1::Credential {
        name: c.name.clone(),
        kind: c.kind_str().into(),
        fingerprint,
        created_at: rfc3339(c.created_at),
        expires_at: c.expires_at.map(rfc3339).unwrap_or_default(),
        created_by: c.created_by.clone(),
    }
}

impl AccessApi {
    /// Member gRPC addresses, this host first.
    fn endpoints(&self) -> Vec<String> {
        let own = self.host.member().addr;
        let (members, _) = self.host.membership();
        let mut out = vec![own.clone()];
        out.extend(members.into_values().map(|m| m.addr).filter(|a| *a != own));
        out
    }

    fn ca_fingerprint(&self) -> Result<String, Status> {
        self.host.ca_fingerprint().ok_or_else(|| {
            to_status(ClusterError::FailedPrecondition(format!(
                "host {} has no cluster CA (it is not a member of a cluster)",
                self.host.name()
            )))
        })
    }

    async fn add(&self, credential: Credential, request_id: String) -> Result<Credential, Status> {
        let cmd = Command::Credential(CredentialCommand::Add { credential });
        match self
            .host
            .write_ok(cmd, Some(request_id).filter(|r| !r.is_empty()))
            .await
            .map_err(to_status)?
        {
            Applied::Credential(c) => Ok(c),
            other => Err(to_status(ClusterError::Internal(format!(
                "unexpected outcome {other:?}"
            )))),
        }
    }
}

fn check_name(name: &str) -> Result<(), Status> {
    // The label error already names the field.
    crate::model::names::validate_label("name", name)
        .map_err(|e| to_status(ClusterError::InvalidArgument(e.to_string())))
}

#[tonic::async_trait]
impl AccessService for AccessApi {
    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn add_client(
        &self,
        req: Request<AddClientRequest>,
    ) -> Result<Response<AddClientResponse>, Status> {
        let by = principal(&req);
        let r = req.into_inner();
        check_name(&r.name)?;
        if r.csr_pem.trim().is_empty() {
            return Err(invalid(
                "csr_pem",
                "a PEM certificate signing request is required",
            ));
        }
        let signed = self
            .host
            .sign_client(&r.csr_pem, &r.name)
            .map_err(to_status)?;
        let credential = Credential {
            name: r.name,
            kind: CredentialKind::Certificate {
                fingerprint: signed.fingerprint,
            },
            created_at: now_ms(),
            expires_at: None,
            created_by: by,
        };
        let stored = self.add(credential, r.request_id).await?;
        Ok(Response::new(AddClientResponse {
            credential: Some(to_proto(&stored)),
            cert_pem: signed.cert_pem,
            ca_fingerprint: self.ca_fingerprint()?,
            ca_pem: signed.ca_pem,
            endpoints: self.endpoints(),
        }))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn create_api_token(
        &self,
        req: Request<CreateApiTokenRequest>,
    ) -> Result<Response<CreateApiTokenResponse>, Status> {
        let by = principal(&req);
        let r = req.into_inner();
        check_name(&r.name)?;
        let ca_fingerprint = self.ca_fingerprint()?;
        let token = ApiToken::generate();
        let now = now_ms();
        let expires_at =
            (r.ttl_seconds > 0).then(|| now.saturating_add(r.ttl_seconds.saturating_mul(1000)));
        let credential = Credential {
            name: r.name,
            kind: CredentialKind::Token {
                id: token.id.clone(),
                secret_sha256: token.secret_sha256(),
            },
            created_at: now,
            expires_at,
            created_by: by,
        };
        let stored = self.add(credential, r.request_id).await?;
        Ok(Response::new(CreateApiTokenResponse {
            credential: Some(to_proto(&stored)),
            token: token.text(),
            ca_fingerprint,
            endpoints: self.endpoints(),
        }))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn list_credentials(
        &self,
        req: Request<ListCredentialsRequest>,
    ) -> Result<Response<ListCredentialsResponse>, Status> {
        self.host
            .read_barrier(is_stale(req.get_ref().consistency))
            .await
            .map_err(to_status)?;
        let state = self.host.state().map_err(to_status)?;
        let list = credentials::list(&state).map_err(|e| to_status(ClusterError::internal(e)))?;
        Ok(Response::new(ListCredentialsResponse {
            credentials: list.iter().map(to_proto).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn revoke_credential(
        &self,
        req: Request<RevokeCredentialRequest>,
    ) -> Result<Response<RevokeCredentialResponse>, Status> {
        let r = req.into_inner();
        if r.name.is_empty() {
            return Err(invalid("name", "the credential to revoke is required"));
        }
        let cmd = Command::Credential(CredentialCommand::Revoke { name: r.name });
        let applied = self
            .host
            .write_ok(cmd, Some(r.request_id).filter(|r| !r.is_empty()))
            .await
            .map_err(to_status)?;
        let Applied::Credential(c) = applied else {
            return Err(to_status(ClusterError::Internal(format!(
                "unexpected outcome {applied:?}"
            ))));
        };
        Ok(Response::new(RevokeCredentialResponse {
            credential: Some(to_proto(&c)),
        }))
    }

    async fn get_certificate_authority(
        &self,
        _req: Request<GetCertificateAuthorityRequest>,
    ) -> Result<Response<CertificateAuthority>, Status> {
        let fingerprint = self.ca_fingerprint()?;
        let ca_pem = self.host.ca_pem().unwrap_or_default();
        Ok(Response::new(CertificateAuthority {
            ca_pem,
            fingerprint,
        }))
    }

    async fn who_am_i(
        &self,
        req: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let (kind, name) = req
            .extensions()
            .get::<Principal>()
            .map_or(("unauthenticated".to_string(), String::new()), |p| {
                (p.kind().to_string(), p.name())
            });
        Ok(Response::new(WhoAmIResponse { kind, name }))
    }
}
