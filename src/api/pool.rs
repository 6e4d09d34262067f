//! `quantix.v1.PoolService`.

use crate::cluster::Host;
use crate::proto::v1::pool_service_server::PoolService;

#[allow(dead_code)] // the stub until its service is filled in
pub struct PoolApi {
    pub host: Host,
}

#[tonic::async_trait]
impl PoolService for PoolApi {}
