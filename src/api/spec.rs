//! `quantix.v1.SpecService`.

use crate::cluster::Host;
use crate::proto::v1::spec_service_server::SpecService;

#[allow(dead_code)] // the stub until its service is filled in
pub struct SpecApi {
    pub host: Host,
}

#[tonic::async_trait]
impl SpecService for SpecApi {}
