//! `quantix.v1.ClusterService`: bootstrap, join tokens, joins, status, removal, and the
//! replicated placement policy (wire form in `policy`).

mod policy;

use std::time::Duration;
use tonic::{Request, Response, Status};

use super::status::to_status;
use crate::cluster::{ClusterError, Host};
use crate::proto::v1::cluster_service_server::ClusterService;
use crate::proto::v1::*;
use crate::state::{http_addrs, placement, Applied, Command};
use policy::PolicyEdit;

pub struct ClusterApi {
    pub host: Host,
}

pub(super) fn is_stale(c: i32) -> bool {
    c == ReadConsistency::Stale as i32
}

fn invalid(e: impl std::fmt::Display) -> Status {
    to_status(ClusterError::InvalidArgument(e.to_string()))
}

fn storage(e: crate::state::KvError) -> Status {
    to_status(ClusterError::internal(e))
}

impl ClusterApi {
    /// The stored policy once this host's state is as fresh as `stale` asks.
    async fn current_policy(
        &self,
        stale: bool,
    ) -> Result<crate::model::policy::PlacementPolicy, Status> {
        self.host.read_barrier(stale).await.map_err(to_status)?;
        let state = self.host.state().map_err(to_status)?;
        placement::policy(&state).map_err(storage)
    }
}

#[tonic::async_trait]
impl ClusterService for ClusterApi {
    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn bootstrap(
        &self,
        req: Request<BootstrapRequest>,
    ) -> Result<Response<BootstrapResponse>, Status> {
        let cluster_id = self
            .host
            .bootstrap(req.into_inner().max_voters)
            .await
            .map_err(to_status)?;
        Ok(Response::new(BootstrapResponse {
            cluster_id,
            host: self.host.name().into(),
        }))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn create_join_token(
        &self,
        req: Request<CreateJoinTokenRequest>,
    ) -> Result<Response<CreateJoinTokenResponse>, Status> {
        let r = req.into_inner();
        let ttl = (r.ttl_seconds > 0).then(|| Duration::from_secs(r.ttl_seconds));
        let (token, expires_at_ms) = self
            .host
            .create_token(ttl, Some(r.request_id))
            .await
            .map_err(to_status)?;
        Ok(Response::new(CreateJoinTokenResponse {
            token,
            expires_at_ms,
        }))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn join(&self, req: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        let answer = self
            .host
            .join(&req.into_inner().token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(JoinResponse {
            cluster_id: answer.cluster_id,
            host: self.host.name().into(),
            role: answer.role.as_str().into(),
        }))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn get_status(
        &self,
        req: Request<GetStatusRequest>,
    ) -> Result<Response<ClusterStatus>, Status> {
        let s = self
            .host
            .status(is_stale(req.into_inner().consistency))
            .await
            .map_err(to_status)?;
        // Published HTTP addresses, from this host's copy: they change only when a host's
        // config does, so the status's own freshness is enough.
        let http = {
            let state = self.host.state().map_err(to_status)?;
            let mut http = std::collections::HashMap::new();
            for m in &s.members {
                if let Some(a) = http_addrs::get(&state, &m.name).map_err(storage)? {
                    http.insert(m.name.clone(), a);
                }
            }
            http
        };
        Ok(Response::new(ClusterStatus {
            cluster_id: s.cluster_id,
            leader: s.leader.unwrap_or_default(),
            term: s.term,
            commit_index: s.commit_index,
            applied_index: s.applied_index,
            members: s
                .members
                .into_iter()
                .map(|m| Member {
                    http_address: http.get(&m.name).cloned().unwrap_or_default(),
                    name: m.name,
                    id: m.id,
                    address: m.address,
                    role: m.role.as_str().into(),
                    online: m.online,
                    leader: m.leader,
                    matched_index: m.matched_index,
                })
                .collect(),
            answered_by: s.answered_by,
            max_voters: s.max_voters,
            snapshot_index: s.snapshot_index,
            purged_index: s.purged_index,
        }))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn remove_member(
        &self,
        req: Request<RemoveMemberRequest>,
    ) -> Result<Response<RemoveMemberResponse>, Status> {
        let promoted = self
            .host
            .remove_member(req.into_inner().name)
            .await
            .map_err(to_status)?;
        Ok(Response::new(RemoveMemberResponse { promoted }))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn get_placement_policy(
        &self,
        req: Request<GetPlacementPolicyRequest>,
    ) -> Result<Response<PlacementPolicy>, Status> {
        let p = self
            .current_policy(is_stale(req.into_inner().consistency))
            .await?;
        Ok(Response::new(policy::to_proto(&p)))
    }

    /// Read, change the given knobs, propose the whole record (the command replaces it). Two
    /// concurrent calls that change different knobs can lose one change: the last write wins,
    /// as with any whole-record update. `apply` validates again.
    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn set_placement_policy(
        &self,
        req: Request<SetPlacementPolicyRequest>,
    ) -> Result<Response<PlacementPolicy>, Status> {
        let r = req.into_inner();
        let edit = PolicyEdit::parse(&r).map_err(invalid)?;
        let new = edit
            .applied_to(self.current_policy(false).await?)
            .map_err(invalid)?;
        match self
            .host
            .write_ok(Command::SetPlacementPolicy(new), Some(r.request_id))
            .await
            .map_err(to_status)?
        {
            Applied::PolicySet(p) => Ok(Response::new(policy::to_proto(&p))),
            other => Err(to_status(ClusterError::internal(format!(
                "unexpected outcome {other:?}"
            )))),
        }
    }
}
