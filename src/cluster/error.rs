//! Errors of a running host. Serializable, because a follower receives them from the leader
//! over the transport and hands them to its client unchanged. `api::status` maps them to gRPC.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::raft::Member;
use crate::state::Rejection;

#[derive(Debug, Clone, Error, Serialize, Deserialize)]
pub enum ClusterError {
    /// `apply` refused the command; the message is for the user.
    #[error("{}", .0.message)]
    Rejected(Rejection),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("host {host} is not part of a cluster yet: run `quantix cluster bootstrap` on it, or `quantix cluster join TOKEN`")]
    NotInitialized { host: String },
    #[error("{0}")]
    AlreadyMember(String),
    /// Internal: this host is not the leader. Forwarders retry; clients never see it.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<Member> },
    #[error("no leader reachable after {waited_ms} ms (leader hint: {hint})")]
    NoLeader { waited_ms: u64, hint: String },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ClusterError {
    pub fn internal(e: impl std::fmt::Display) -> ClusterError {
        ClusterError::Internal(e.to_string())
    }

    /// Errors after which the same request may succeed against another leader.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClusterError::NotLeader { .. } | ClusterError::Unavailable(_)
        )
    }
}
