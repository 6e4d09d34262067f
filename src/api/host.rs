//! `quantix.v1.HostService`.

use crate::cluster::Host;
use crate::proto::v1::host_service_server::HostService;

#[allow(dead_code)] // the stub until its service is filled in
pub struct HostApi {
    pub host: Host,
}

#[tonic::async_trait]
impl HostService for HostApi {}
