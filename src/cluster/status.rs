//! `cluster status`: membership, roles, leader, term, indexes, and which members are online.
//! Only the leader hears from every member, so followers ask it for the online view.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::write::LeaderRpc;
use super::{ClusterError, Host};
use crate::model::{HostId, Role};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberStatus {
    pub id: HostId,
    pub name: String,
    pub address: String,
    pub role: Role,
    pub online: bool,
    pub leader: bool,
    pub matched_index: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub cluster_id: String,
    pub leader: Option<String>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub snapshot_index: u64,
    pub purged_index: u64,
    pub max_voters: u32,
    pub members: Vec<MemberStatus>,
    pub answered_by: String,
}

/// The leader's view: member id -> (online, matched index).
type OnlineView = BTreeMap<HostId, (bool, u64)>;

impl Host {
    /// True if `id` is this host or answered within the online window (meaningful on the
    /// leader, which hears from every member).
    pub fn is_online(&self, id: HostId) -> bool {
        id == self.id()
            || self
                .peers()
                .since_ok(id)
                .is_some_and(|d| d <= self.inner.online_within)
    }

    /// On the leader: who answered recently and how far each member's log matches.
    pub(super) async fn local_online_view(&self) -> Result<OnlineView, ClusterError> {
        let m = self.raft().metrics().borrow().clone();
        if m.current_leader != Some(self.id()) {
            return Err(ClusterError::NotLeader { leader: None });
        }
        let matched: BTreeMap<HostId, u64> = m
            .replication
            .iter()
            .flatten()
            .map(|(id, l)| (*id, l.map_or(0, |l| l.index)))
            .collect();
        Ok(m.membership_config
            .nodes()
            .map(|(id, _)| {
                let own = if *id == self.id() {
                    m.last_log_index.unwrap_or(0)
                } else {
                    0
                };
                (
                    *id,
                    (self.is_online(*id), matched.get(id).copied().unwrap_or(own)),
                )
            })
            .collect())
    }

    /// Which members the leader heard from recently, by id (asked of the leader, which is the
    /// only host that hears from every member).
    pub async fn online_view(&self) -> Result<BTreeMap<HostId, bool>, ClusterError> {
        let view: OnlineView = self
            .leader_call(LeaderRpc::MemberStatus, &(), |h, ()| async move {
                h.local_online_view().await
            })
            .await?;
        Ok(view
            .into_iter()
            .map(|(id, (online, _))| (id, online))
            .collect())
    }

    pub async fn status(&self, stale: bool) -> Result<ClusterStatus, ClusterError> {
        self.require_member()?;
        let m = self.raft().metrics().borrow().clone();
        // Without a leader (or when asked for a stale answer) report only what is known here.
        let view: OnlineView = if stale {
            BTreeMap::new()
        } else {
            self.leader_call(LeaderRpc::MemberStatus, &(), |h, ()| async move {
                h.local_online_view().await
            })
            .await
            .unwrap_or_default()
        };
        let committed = self
            .raft()
            .with_raft_state(|s| s.committed.map_or(0, |l| l.index))
            .await
            .map_err(ClusterError::internal)?;
        let info = self.cluster_info()?;
        let voters: Vec<HostId> = m.membership_config.voter_ids().collect();
        let mut members: Vec<MemberStatus> = m
            .membership_config
            .nodes()
            .map(|(id, node)| {
                let (online, matched) = view.get(id).copied().unwrap_or((*id == self.id(), 0));
                MemberStatus {
                    id: *id,
                    name: node.name.clone(),
                    address: node.addr.clone(),
                    role: if voters.contains(id) {
                        Role::Voter
                    } else {
                        Role::NonVoter
                    },
                    online,
                    leader: m.current_leader == Some(*id),
                    matched_index: matched,
                }
            })
            .collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        let leader = m.current_leader.and_then(|l| {
            m.membership_config
                .membership()
                .get_node(&l)
                .map(|n| n.name.clone())
        });
        Ok(ClusterStatus {
            cluster_id: info.as_ref().map(|i| i.id.clone()).unwrap_or_default(),
            leader,
            term: m.current_term,
            commit_index: committed,
            applied_index: m.last_applied.map_or(0, |l| l.index),
            snapshot_index: m.snapshot.map_or(0, |l| l.index),
            purged_index: m.purged.map_or(0, |l| l.index),
            max_voters: info.map_or(0, |i| i.max_voters),
            members,
            answered_by: self.name().to_string(),
        })
    }
}
