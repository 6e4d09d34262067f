//! Membership: bootstrap, join tokens, joins, removal, and the leader's controller that keeps
//! at most `max_voters` voters (promoting non-voters when a voter goes away).
//!
//! Joins themselves are in `cluster::join`.

use openraft::error::{ClientWriteError, RaftError};
use openraft::ChangeMembers;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::token::{new_secret, sha256_hex, JoinToken};
use super::write::LeaderRpc;
use super::{now_ms, ClusterError, Host};
use crate::model::{HostId, HostRecord};
use crate::raft::Member;
use crate::state::{tables, Applied, Command};

/// Default join token lifetime.
pub const TOKEN_TTL: Duration = Duration::from_secs(3600);
/// How long a joining host may take to catch up before the join fails.
pub(super) const CATCH_UP: Duration = Duration::from_secs(60);

pub(super) fn change_err(e: RaftError<u64, ClientWriteError<u64, Member>>) -> ClusterError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ClusterError::NotLeader {
            leader: f.leader_node,
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
            ClusterError::FailedPrecondition(c.to_string())
        }
        RaftError::Fatal(f) => ClusterError::Unavailable(format!("raft stopped: {f}")),
    }
}

impl Host {
    pub fn cluster_info(&self) -> Result<Option<tables::ClusterInfo>, ClusterError> {
        tables::cluster_info(&self.state()?).map_err(ClusterError::internal)
    }

    /// Makes this host a one-member cluster.
    pub async fn bootstrap(&self, max_voters: u32) -> Result<String, ClusterError> {
        let max_voters = if max_voters == 0 { 3 } else { max_voters };
        if !crate::state::cluster::VOTER_COUNTS.contains(&max_voters) {
            return Err(ClusterError::InvalidArgument(format!(
                "max_voters must be one of 1, 3, 5, 7 (got {max_voters})"
            )));
        }
        let initialized = self.is_member()
            || self
                .raft()
                .is_initialized()
                .await
                .map_err(ClusterError::internal)?;
        let (members, _) = self.membership();
        // A bootstrap interrupted after `initialize` but before `InitCluster` applied leaves a
        // one-member group without cluster info: finish it instead of refusing forever.
        let resumable = initialized
            && self.cluster_info()?.is_none()
            && members.len() == 1
            && members.contains_key(&self.id());
        if initialized && !resumable {
            let id = self
                .cluster_info()?
                .map(|c| c.id)
                .unwrap_or_else(|| "(joining)".into());
            return Err(ClusterError::AlreadyMember(format!(
                "host {} already belongs to cluster {id}; bootstrap refused",
                self.name()
            )));
        }
        if !initialized {
            let mut nodes = BTreeMap::new();
            nodes.insert(self.id(), self.member());
            self.raft()
                .initialize(nodes)
                .await
                .map_err(|e| ClusterError::AlreadyMember(format!("bootstrap refused: {e}")))?;
        }
        self.raft()
            .wait(Some(super::LEADER_WAIT))
            .current_leader(self.id(), "bootstrap")
            .await
            .map_err(|e| {
                ClusterError::Unavailable(format!("did not become leader of the new cluster: {e}"))
            })?;
        if self.cluster_key().is_none() {
            let key = crate::tls::sealing::ClusterKey::generate()
                .map_err(|e| ClusterError::Internal(e.to_string()))?;
            self.install_cluster_key(key)?;
        }
        let cluster_id = uuid::Uuid::new_v4().to_string();
        self.ensure_cluster_ca(&cluster_id)?;
        let host = HostRecord {
            id: self.id(),
            name: self.name().into(),
            address: self.member().addr,
            joined_at: now_ms(),
        };
        self.write_ok(
            Command::InitCluster {
                cluster_id: cluster_id.clone(),
                host,
                max_voters,
            },
            None,
        )
        .await?;
        if let Some(fingerprint) = self.host_cert_fingerprint() {
            self.write_ok(
                Command::SetHostCert {
                    host: self.name().into(),
                    fingerprint,
                },
                None,
            )
            .await?;
        }
        tracing::info!(cluster = %cluster_id, "bootstrapped a new cluster");
        Ok(cluster_id)
    }

    /// Makes a one-time join token, valid on every member.
    pub async fn create_token(
        &self,
        ttl: Option<Duration>,
        request_id: Option<String>,
    ) -> Result<(String, u64), ClusterError> {
        self.require_member()?;
        let ttl = ttl.filter(|t| !t.is_zero()).unwrap_or(TOKEN_TTL);
        let cluster_id =
            self.cluster_info()?
                .map(|c| c.id)
                .ok_or_else(|| ClusterError::NotInitialized {
                    host: self.name().into(),
                })?;
        let secret = new_secret();
        let token_id = hex::encode(rand::random::<[u8; 8]>());
        let expires_at = now_ms() + ttl.as_millis() as u64;
        let cmd = Command::CreateJoinToken {
            token_id: token_id.clone(),
            secret_sha256: sha256_hex(&secret),
            expires_at,
        };
        match self.write_ok(cmd, request_id).await? {
            Applied::TokenCreated { token_id: stored } if stored == token_id => {}
            _ => return Err(ClusterError::FailedPrecondition(
                "this request id was already used for another request; retry with a new request id"
                    .into(),
            )),
        }
        let (nodes, voters) = self.membership();
        let leader = self.raft().metrics().borrow().current_leader;
        let mut addrs: Vec<(u8, String)> = nodes
            .iter()
            .map(|(id, m)| {
                (
                    if Some(*id) == leader {
                        0
                    } else if voters.contains(id) {
                        1
                    } else {
                        2
                    },
                    m.addr.clone(),
                )
            })
            .collect();
        addrs.sort();
        let token = JoinToken {
            cluster_id,
            addrs: addrs.into_iter().map(|(_, a)| a).collect(),
            token_id,
            secret,
            expires_at,
            ca_fingerprint: self.ca_fingerprint(),
        };
        Ok((token.encode(), expires_at))
    }

    /// Removes a member by name; returns the hosts promoted to voter to replace it.
    pub async fn remove_member(&self, name: String) -> Result<Vec<String>, ClusterError> {
        self.require_member()?;
        self.leader_call(LeaderRpc::Remove, &name, |h, n| async move {
            h.remove_as_leader(n).await
        })
        .await
    }

    async fn remove_as_leader(&self, name: String) -> Result<Vec<String>, ClusterError> {
        let state = self.state()?;
        let rec = tables::host(&state, &name)
            .map_err(ClusterError::internal)?
            .ok_or_else(|| ClusterError::NotFound(format!("host {name} is not a member")))?;
        let info = self
            .cluster_info()?
            .ok_or_else(|| ClusterError::NotInitialized {
                host: self.name().into(),
            })?;
        // Checked again in apply; checked here first so a refused removal never changes Raft membership.
        if let Some(crate::state::Outcome::Rejected(r)) =
            crate::state::cluster::vms_hold_host(&state, &name).map_err(ClusterError::internal)?
        {
            return Err(ClusterError::Rejected(r));
        }
        let _guard = self.inner.membership_lock.lock().await;
        let (nodes, voters) = self.membership();
        let mut promoted = Vec::new();
        if voters.contains(&rec.id) {
            let mut next: BTreeSet<HostId> =
                voters.iter().copied().filter(|v| *v != rec.id).collect();
            if next.is_empty() {
                return Err(ClusterError::FailedPrecondition(format!(
                    "host {name} is the last voter and cannot be removed"
                )));
            }
            let room = (info.max_voters as usize).saturating_sub(next.len());
            for id in self.promotable(&nodes, &voters, room, Some(rec.id)) {
                next.insert(id);
                promoted.push(nodes.get(&id).map(|m| m.name.clone()).unwrap_or_default());
            }
            self.raft()
                .change_membership(ChangeMembers::ReplaceAllVoters(next), false)
                .await
                .map_err(change_err)?;
        } else if nodes.contains_key(&rec.id) {
            self.raft()
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([rec.id])), false)
                .await
                .map_err(change_err)?;
        }
        self.write_ok(
            Command::RemoveHost { name: name.clone() },
            Some(format!("remove-{}-{}", name, rec.id)),
        )
        .await?;
        tracing::info!(host = %name, ?promoted, "removed member");
        Ok(promoted)
    }

    /// Online non-voters best suited to become voters, most caught-up first.
    fn promotable(
        &self,
        nodes: &BTreeMap<HostId, Member>,
        voters: &BTreeSet<HostId>,
        room: usize,
        except: Option<HostId>,
    ) -> Vec<HostId> {
        let matched: BTreeMap<HostId, u64> = self
            .raft()
            .metrics()
            .borrow()
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .map(|(id, l)| (*id, l.map_or(0, |l| l.index)))
                    .collect()
            })
            .unwrap_or_default();
        let mut candidates: Vec<(u64, HostId)> = nodes
            .keys()
            .filter(|id| !voters.contains(id) && Some(**id) != except && self.is_online(**id))
            .map(|id| (matched.get(id).copied().unwrap_or(0), *id))
            .collect();
        candidates.sort_by(|a, b| b.cmp(a));
        candidates
            .into_iter()
            .take(room)
            .map(|(_, id)| id)
            .collect()
    }

    /// Leader-only background work: promote non-voters while there is room for voters.
    pub(super) fn spawn_membership_controller(&self) {
        let host = self.clone();
        tokio::spawn(async move {
            let mut metrics = host.raft().metrics();
            loop {
                let changed = tokio::time::timeout(Duration::from_secs(1), metrics.changed()).await;
                if matches!(changed, Ok(Err(_))) {
                    return; // raft stopped
                }
                let leads = metrics.borrow_and_update().current_leader == Some(host.id());
                if leads {
                    if let Err(e) = host.reconcile_voters().await {
                        tracing::debug!(error = %e, "voter reconcile");
                    }
                }
            }
        });
    }

    async fn reconcile_voters(&self) -> Result<(), ClusterError> {
        let Some(info) = self.cluster_info()? else {
            return Ok(());
        };
        let Ok(_guard) = self.inner.membership_lock.try_lock() else {
            return Ok(());
        };
        let (nodes, voters) = self.membership();
        let room = (info.max_voters as usize).saturating_sub(voters.len());
        if room == 0 {
            return Ok(());
        }
        let promote = self.promotable(&nodes, &voters, room, None);
        if promote.is_empty() {
            return Ok(());
        }
        tracing::info!(?promote, "promoting non-voters to voters");
        self.raft()
            .change_membership(
                ChangeMembers::AddVoterIds(promote.into_iter().collect()),
                true,
            )
            .await
            .map_err(change_err)?;
        Ok(())
    }
}
