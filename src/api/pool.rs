//! `quantix.v1.PoolService`: create, get, list and delete storage pools, and limit them to
//! some hosts. Validates early (the same rules `apply` enforces) so a bad request fails with a
//! field-naming message before it reaches the log; whether limit hosts are members is checked
//! in `apply`. Host observations are proposed by agents, not through this service. `scan`
//! imports files already in a pool as images.

use tonic::{Request, Response, Status};

mod scan;

use super::cluster::is_stale;
use super::status::to_status;
use crate::cluster::{ClusterError, Host};
use crate::model::names;
use crate::model::pool::{validate_hosts, Pool, PoolFields, PoolKind, PoolSpec, PoolType};
use crate::proto::v1 as pb;
use crate::proto::v1::pool_service_server::PoolService;
use crate::state::pools::{self, PoolApplied, PoolCommand};
use crate::state::{Applied, Command};

pub struct PoolApi {
    pub host: Host,
}

fn invalid(e: impl std::fmt::Display) -> Status {
    to_status(ClusterError::InvalidArgument(e.to_string()))
}

fn internal(e: impl std::fmt::Display) -> Status {
    to_status(ClusterError::internal(e))
}

fn pool_type(t: i32) -> Result<PoolType, Status> {
    match pb::PoolType::try_from(t) {
        Ok(pb::PoolType::Dir) => Ok(PoolType::Dir),
        Ok(pb::PoolType::Nfs) => Ok(PoolType::Nfs),
        _ => Err(invalid("type must be dir or nfs")),
    }
}

fn to_proto(p: &Pool) -> pb::Pool {
    let mut out = pb::Pool {
        name: p.spec.name.clone(),
        shared: p.spec.kind.is_shared(),
        created_at_ms: p.created_at,
        hosts: p
            .hosts
            .iter()
            .map(|(host, o)| pb::PoolHostState {
                host: host.clone(),
                reachable: o.reachable,
                reason: o.reason.clone(),
                capacity_mib: o.capacity_mib,
                free_mib: o.free_mib,
                at_ms: o.at,
            })
            .collect(),
        reachable_from: p.reachable_from().into_iter().map(String::from).collect(),
        allowed_hosts: p.spec.hosts.clone(),
        ..Default::default()
    };
    match &p.spec.kind {
        PoolKind::Dir { path, .. } => {
            out.r#type = pb::PoolType::Dir as i32;
            out.path = path.clone();
        }
        PoolKind::Nfs {
            server,
            export,
            mount_point,
        } => {
            out.r#type = pb::PoolType::Nfs as i32;
            out.server = server.clone();
            out.export = export.clone();
            out.mount_point = mount_point.clone();
        }
    }
    out
}

#[tonic::async_trait]
impl PoolService for PoolApi {
    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn create_pool(
        &self,
        req: Request<pb::CreatePoolRequest>,
    ) -> Result<Response<pb::Pool>, Status> {
        let r = req.into_inner();
        let spec = PoolSpec::new(
            &r.name,
            pool_type(r.r#type)?,
            PoolFields {
                path: r.path,
                shared: r.shared,
                server: r.server,
                export: r.export,
                mount_point: r.mount_point,
                hosts: r.allowed_hosts,
            },
        )
        .map_err(invalid)?;
        let cmd = Command::Pool(PoolCommand::CreatePool(spec));
        match self
            .host
            .write_ok(cmd, Some(r.request_id))
            .await
            .map_err(to_status)?
        {
            Applied::Pool(PoolApplied::PoolCreated(p)) => Ok(Response::new(to_proto(&p))),
            other => Err(internal(format!("unexpected outcome {other:?}"))),
        }
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn get_pool(
        &self,
        req: Request<pb::GetPoolRequest>,
    ) -> Result<Response<pb::Pool>, Status> {
        let r = req.into_inner();
        names::validate_label("pool name", &r.name).map_err(invalid)?;
        self.host
            .read_barrier(is_stale(r.consistency))
            .await
            .map_err(to_status)?;
        let state = self.host.state().map_err(to_status)?;
        match pools::get(&state, &r.name).map_err(internal)? {
            Some(p) => Ok(Response::new(to_proto(&p))),
            None => Err(to_status(ClusterError::NotFound(format!(
                "pool {} does not exist",
                r.name
            )))),
        }
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn list_pools(
        &self,
        req: Request<pb::ListPoolsRequest>,
    ) -> Result<Response<pb::ListPoolsResponse>, Status> {
        let r = req.into_inner();
        self.host
            .read_barrier(is_stale(r.consistency))
            .await
            .map_err(to_status)?;
        let state = self.host.state().map_err(to_status)?;
        let list = pools::list(&state).map_err(internal)?;
        Ok(Response::new(pb::ListPoolsResponse {
            pools: list.iter().map(to_proto).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn delete_pool(
        &self,
        req: Request<pb::DeletePoolRequest>,
    ) -> Result<Response<pb::DeletePoolResponse>, Status> {
        let r = req.into_inner();
        names::validate_label("pool name", &r.name).map_err(invalid)?;
        self.host
            .write_ok(
                Command::Pool(PoolCommand::DeletePool { name: r.name }),
                Some(r.request_id),
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::DeletePoolResponse {}))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn set_pool_hosts(
        &self,
        req: Request<pb::SetPoolHostsRequest>,
    ) -> Result<Response<pb::Pool>, Status> {
        let r = req.into_inner();
        names::validate_label("pool name", &r.name).map_err(invalid)?;
        let hosts = validate_hosts(&r.allowed_hosts).map_err(invalid)?;
        let cmd = Command::Pool(PoolCommand::SetHosts {
            pool: r.name,
            hosts,
        });
        match self
            .host
            .write_ok(cmd, Some(r.request_id))
            .await
            .map_err(to_status)?
        {
            Applied::Pool(PoolApplied::PoolHostsChanged(p)) => Ok(Response::new(to_proto(&p))),
            other => Err(internal(format!("unexpected outcome {other:?}"))),
        }
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn scan_pool(
        &self,
        req: Request<pb::ScanPoolRequest>,
    ) -> Result<Response<pb::ScanPoolResponse>, Status> {
        let r = req.into_inner();
        names::validate_label("pool name", &r.name).map_err(invalid)?;
        scan::scan(&self.host, r).await.map(Response::new)
    }
}
