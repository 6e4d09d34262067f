//! The access service (`quantix.v1.AccessService`): client certificates, bearer tokens,
//! revocation, the CA certificate and "who am I". Being filled in (issue 8).

use tonic::{Request, Response, Status};

use crate::cluster::Host;
use crate::proto::v1::access_service_server::AccessService;
use crate::proto::v1::*;

pub struct AccessApi {
    pub host: Host,
}

#[tonic::async_trait]
impl AccessService for AccessApi {
    async fn add_client(
        &self,
        _req: Request<AddClientRequest>,
    ) -> Result<Response<AddClientResponse>, Status> {
        Err(Status::unimplemented("add_client"))
    }
    async fn create_api_token(
        &self,
        _req: Request<CreateApiTokenRequest>,
    ) -> Result<Response<CreateApiTokenResponse>, Status> {
        Err(Status::unimplemented("create_api_token"))
    }
    async fn list_credentials(
        &self,
        _req: Request<ListCredentialsRequest>,
    ) -> Result<Response<ListCredentialsResponse>, Status> {
        Err(Status::unimplemented("list_credentials"))
    }
    async fn revoke_credential(
        &self,
        _req: Request<RevokeCredentialRequest>,
    ) -> Result<Response<RevokeCredentialResponse>, Status> {
        Err(Status::unimplemented("revoke_credential"))
    }
    async fn get_certificate_authority(
        &self,
        _req: Request<GetCertificateAuthorityRequest>,
    ) -> Result<Response<CertificateAuthority>, Status> {
        let _ = &self.host;
        Err(Status::unimplemented("get_certificate_authority"))
    }
    async fn who_am_i(
        &self,
        _req: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        Err(Status::unimplemented("who_am_i"))
    }
}
