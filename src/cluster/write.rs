//! The write and read paths. A write proposed on a follower is carried to the leader over the
//! transport (`Forward`), so clients never see "not leader". Every write has a request id
//! (the client's, or one made here) so that retries across leader changes apply once.

use serde::{de::DeserializeOwned, Serialize};
use std::time::Instant;
use tracing::Instrument;

use openraft::error::{CheckIsLeaderError, RaftError};

use super::{now_ms, ClusterError, Host, LEADER_WAIT};
use crate::raft::wire;
use crate::state::{Command, Outcome, Request};

/// Internal RPCs that must run on the leader.
#[derive(Debug, Clone, Copy)]
pub(super) enum LeaderRpc {
    Forward,
    ReadIndex,
    Join,
    Admit,
    Remove,
    MemberStatus,
}

impl LeaderRpc {
    /// How long the leader may take: a join waits for the new host to catch up.
    pub(super) fn timeout(self) -> std::time::Duration {
        match self {
            LeaderRpc::Admit => super::membership::CATCH_UP + std::time::Duration::from_secs(10),
            _ => LEADER_WAIT,
        }
    }
}

impl Host {
    /// Proposes a command from any host and returns its outcome once applied.
    pub async fn write(
        &self,
        cmd: Command,
        request_id: Option<String>,
    ) -> Result<Outcome, ClusterError> {
        self.require_member()?;
        let id = request_id
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let req = Request {
            by: self.name().to_string(),
            id: Some(id),
            at: now_ms(),
            cmd,
        };
        let term = self.raft().metrics().borrow().current_term;
        let span = tracing::info_span!("write", host = %self.name(), term, request = %req.id.as_deref().unwrap_or(""), cmd = req.cmd.kind());
        let kind = req.cmd.kind();
        let started = std::time::Instant::now();
        let result = self
            .leader_call(LeaderRpc::Forward, &req, |h, r: Request| async move {
                h.propose_local(r).await
            })
            .instrument(span)
            .await;
        let outcome = match &result {
            Ok(Outcome::Applied(_)) => "applied",
            Ok(Outcome::Rejected(_)) => "rejected",
            Err(_) => "error",
        };
        metrics::counter!("quantix_writes_total", "kind" => kind, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("quantix_write_seconds").record(started.elapsed().as_secs_f64());
        result
    }

    /// Like `write`, but a rejection becomes an error.
    pub async fn write_ok(
        &self,
        cmd: Command,
        request_id: Option<String>,
    ) -> Result<crate::state::Applied, ClusterError> {
        match self.write(cmd, request_id).await? {
            Outcome::Applied(a) => Ok(a),
            Outcome::Rejected(r) => Err(ClusterError::Rejected(r)),
        }
    }

    /// Proposes on this host's Raft (batched); `NotLeader` if it does not lead.
    pub(super) async fn propose_local(&self, req: Request) -> Result<Outcome, ClusterError> {
        self.inner.batcher.propose(req).await
    }

    /// Waits until this host's state reflects every write committed before the call.
    pub async fn read_barrier(&self, stale: bool) -> Result<(), ClusterError> {
        if stale {
            return Ok(());
        }
        self.require_member()?;
        let index: u64 = self
            .leader_call(LeaderRpc::ReadIndex, &(), |h, ()| async move {
                h.local_read_index().await
            })
            .await?;
        self.raft()
            .wait(Some(LEADER_WAIT))
            .applied_index_at_least(Some(index), "read barrier")
            .await
            .map_err(|e| {
                ClusterError::Unavailable(format!(
                    "local state did not reach read index {index}: {e}"
                ))
            })?;
        Ok(())
    }

    /// On the leader: confirm leadership with a quorum and return the index reads must wait for.
    ///
    /// openraft's read index is max(committed, the leader's first entry of its term). A leader
    /// restored at start-up (openraft 0.9 re-establishes a committed vote without an election)
    /// reuses the old term's first entry, and the `committed` mark is not stored (see `raft::log_store`), so that
    /// index can lie below an entry it acknowledged before it crashed. Reads therefore also
    /// wait for the leader's whole log as it stood at the first read of the term.
    pub(super) async fn local_read_index(&self) -> Result<u64, ClusterError> {
        let floor = {
            let m = self.raft().metrics();
            let m = m.borrow();
            let mut floor = self
                .inner
                .read_floor
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if floor.0 != m.current_term {
                *floor = (m.current_term, m.last_log_index.unwrap_or(0));
            }
            floor.1
        };
        match self.raft().get_read_log_id().await {
            Ok((read, _applied)) => Ok(read.map_or(0, |l| l.index).max(floor)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(ClusterError::NotLeader {
                    leader: f.leader_node,
                })
            }
            Err(RaftError::APIError(e)) => Err(ClusterError::Unavailable(e.to_string())),
            Err(RaftError::Fatal(e)) => {
                Err(ClusterError::Unavailable(format!("raft stopped: {e}")))
            }
        }
    }

    /// Runs `local` here if this host leads, else sends `rpc` to the leader; retries across
    /// leader changes until `LEADER_WAIT`, waking on membership/leader changes, not on a timer.
    pub(super) async fn leader_call<Req, Resp, F, Fut>(
        &self,
        rpc: LeaderRpc,
        req: &Req,
        local: F,
    ) -> Result<Resp, ClusterError>
    where
        Req: Serialize + Clone,
        Resp: DeserializeOwned,
        F: Fn(Host, Req) -> Fut,
        Fut: std::future::Future<Output = Result<Resp, ClusterError>>,
    {
        let start = Instant::now();
        let mut metrics = self.raft().metrics();
        let mut hint = String::from("none");
        loop {
            let (leader, leader_node) = {
                let m = metrics.borrow_and_update();
                let leader = m.current_leader;
                let node =
                    leader.and_then(|l| m.membership_config.membership().get_node(&l).cloned());
                (leader, node)
            };
            let result = match (leader, leader_node) {
                (Some(l), _) if l == self.id() => local(self.clone(), req.clone()).await,
                (Some(_), Some(node)) => {
                    metrics::counter!("quantix_leader_calls_forwarded_total").increment(1);
                    hint = node.to_string();
                    self.call_peer(rpc, &node.addr, req, rpc.timeout()).await
                }
                _ => Err(ClusterError::NotLeader { leader: None }),
            };
            match result {
                Err(e) if e.is_retryable() => {
                    tracing::debug!(error = %e, "leader call will retry");
                }
                other => return other,
            }
            let left = LEADER_WAIT.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(ClusterError::NoLeader {
                    waited_ms: start.elapsed().as_millis() as u64,
                    hint,
                });
            }
            // Wake on the next metrics change (new leader, new term), or retry soon anyway: a
            // leader that refused us because it was stepping down may not change metrics here.
            let _ = tokio::time::timeout(
                left.min(std::time::Duration::from_millis(50)),
                metrics.changed(),
            )
            .await;
        }
    }

    /// One internal RPC to the host at `addr`; transport failures are `Unavailable`.
    pub(super) async fn call_peer<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        rpc: LeaderRpc,
        addr: &str,
        req: &Req,
        timeout: std::time::Duration,
    ) -> Result<Resp, ClusterError> {
        let client = self
            .peers()
            .client(addr)
            .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
        call_with(client, rpc, addr, req, timeout).await
    }
}

/// One leader-bound RPC on `client` (a member's channel, or a joining host's pinned one).
pub(super) async fn call_with<Req: Serialize, Resp: DeserializeOwned>(
    mut client: crate::proto::internal::raft_transport_client::RaftTransportClient<
        tonic::transport::Channel,
    >,
    rpc: LeaderRpc,
    addr: &str,
    req: &Req,
    timeout: std::time::Duration,
) -> Result<Resp, ClusterError> {
    let env = wire::to_envelope(req).map_err(ClusterError::internal)?;
    let mut request = tonic::Request::new(env);
    request.set_timeout(timeout);
    let resp = match rpc {
        LeaderRpc::Forward => client.forward(request).await,
        LeaderRpc::ReadIndex => client.read_index(request).await,
        LeaderRpc::Join => client.join(request).await,
        LeaderRpc::Admit => client.admit(request).await,
        LeaderRpc::Remove => client.remove_member(request).await,
        LeaderRpc::MemberStatus => client.member_status(request).await,
    }
    .map_err(|s| match s.code() {
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
            ClusterError::PermissionDenied(format!("host {addr} refused: {}", s.message()))
        }
        _ => ClusterError::Unavailable(format!(
            "host {addr} unreachable: {}",
            crate::tls::connector::status_detail(&s)
        )),
    })?
    .into_inner();
    let result: Result<Resp, ClusterError> =
        wire::from_envelope("leader reply", &resp).map_err(ClusterError::internal)?;
    result
}
