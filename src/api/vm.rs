//! `quantix.v1.VmService`.

use crate::cluster::Host;
use crate::proto::v1::vm_service_server::VmService;

#[allow(dead_code)] // the stub until its service is filled in
pub struct VmApi {
    pub host: Host,
}

#[tonic::async_trait]
impl VmService for VmApi {}
