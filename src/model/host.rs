//! Hosts: the members of the cluster as the replicated state records them.

use serde::{Deserialize, Serialize};

use super::UnixMillis;

/// Raft node id of a host: random, chosen once when its data directory is created.
pub type HostId = u64;

/// Voting role of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Voter,
    /// An openraft learner: receives the log, never counts toward a quorum.
    NonVoter,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Voter => "voter",
            Role::NonVoter => "non-voter",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub id: HostId,
    pub name: String,
    /// Address other hosts and clients use for its gRPC port (`host:port`).
    pub address: String,
    pub joined_at: UnixMillis,
}
