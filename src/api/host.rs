//! `quantix.v1.HostService`: hosts with their inventory. The stored part (record, capacity,
//! allocation, maintenance, and the pools whose records say it reaches them) comes from the replicated state; role comes from this
//! host's view of the Raft membership, and online from the leader, which is the only host that
//! hears from every member (so a stale read reports only the answering host online).

use std::collections::{BTreeMap, BTreeSet};
use tonic::{Request, Response, Status};

use super::cluster::is_stale;
use super::status::to_status;
use crate::cluster::{ClusterError, Host as RunningHost};
use crate::model::names::validate_label;
use crate::model::{HostId, Role};
use crate::proto::v1::host_service_server::HostService;
use crate::proto::v1::*;
use crate::state::hosts::{self, HostApplied, HostCommand, HostInfo};
use crate::state::{Applied, Command};

pub struct HostApi {
    pub host: RunningHost,
}

/// What the live cluster (not the replicated state) says about members.
struct Live {
    voters: BTreeSet<HostId>,
    members: BTreeSet<HostId>,
    online: BTreeMap<HostId, bool>,
    leader: Option<HostId>,
}

impl HostApi {
    async fn live(&self, stale: bool) -> Result<Live, Status> {
        let (nodes, voters) = self.host.membership();
        let online = if stale {
            BTreeMap::from([(self.host.id(), true)])
        } else {
            self.host.online_view().await.map_err(to_status)?
        };
        Ok(Live {
            voters,
            members: nodes.into_keys().collect(),
            online,
            leader: self.host.raft().metrics().borrow().current_leader,
        })
    }

    /// Waits for the requested freshness and returns the local state to read.
    async fn state(&self, consistency: i32) -> Result<crate::state::redb_kv::RedbRead, Status> {
        self.host
            .read_barrier(is_stale(consistency))
            .await
            .map_err(to_status)?;
        self.host.state().map_err(to_status)
    }
}

fn to_proto(h: HostInfo, live: &Live) -> Host {
    let id = h.record.id;
    let role = if live.voters.contains(&id) {
        Role::Voter.as_str()
    } else if live.members.contains(&id) {
        Role::NonVoter.as_str()
    } else {
        "none"
    };
    let inv = h.inventory;
    Host {
        name: h.record.name,
        id,
        address: h.record.address,
        role: role.into(),
        online: live.online.get(&id).copied().unwrap_or(false),
        leader: live.leader == Some(id),
        maintenance: inv.maintenance,
        cpus: inv.cpus,
        memory_mib: inv.memory_mib,
        allocated_cpus: inv.allocated_cpus,
        allocated_memory_mib: inv.allocated_memory_mib,
        free_memory_mib: inv.free_memory_mib,
        pools: h.pools,
        joined_at_ms: h.record.joined_at,
        reported_at_ms: inv.reported_at,
    }
}

fn check_name(name: &str) -> Result<(), Status> {
    validate_label("host name", name)
        .map_err(|e| to_status(ClusterError::InvalidArgument(e.to_string())))
}

fn storage(e: crate::state::KvError) -> Status {
    to_status(ClusterError::internal(e))
}

#[tonic::async_trait]
impl HostService for HostApi {
    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn list_hosts(
        &self,
        req: Request<ListHostsRequest>,
    ) -> Result<Response<ListHostsResponse>, Status> {
        let r = req.into_inner();
        let state = self.state(r.consistency).await?;
        let list = hosts::list(&state).map_err(storage)?;
        let live = self.live(is_stale(r.consistency)).await?;
        Ok(Response::new(ListHostsResponse {
            hosts: list.into_iter().map(|h| to_proto(h, &live)).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn get_host(&self, req: Request<GetHostRequest>) -> Result<Response<Host>, Status> {
        let r = req.into_inner();
        check_name(&r.name)?;
        let state = self.state(r.consistency).await?;
        let Some(info) = hosts::get(&state, &r.name).map_err(storage)? else {
            return Err(to_status(ClusterError::NotFound(format!(
                "host {} is not a member of this cluster",
                r.name
            ))));
        };
        let live = self.live(is_stale(r.consistency)).await?;
        Ok(Response::new(to_proto(info, &live)))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn set_maintenance(
        &self,
        req: Request<SetMaintenanceRequest>,
    ) -> Result<Response<Host>, Status> {
        let r = req.into_inner();
        check_name(&r.name)?;
        let cmd = Command::Host(HostCommand::SetMaintenance {
            host: r.name,
            on: r.on,
        });
        match self
            .host
            .write_ok(cmd, Some(r.request_id))
            .await
            .map_err(to_status)?
        {
            Applied::Host(HostApplied::MaintenanceSet(info)) => {
                let live = self.live(false).await?;
                Ok(Response::new(to_proto(info, &live)))
            }
            other => Err(to_status(ClusterError::internal(format!(
                "unexpected outcome {other:?}"
            )))),
        }
    }
}
