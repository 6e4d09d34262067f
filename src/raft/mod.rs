//! Raft: the openraft type configuration, the redb log store and state machine, and the
//! host-to-host transport. Owns: the log file (`log.redb`), the state file (`state.redb`) and
//! the snapshot file under `data_dir`. May use: `state`. See `raft/DESIGN.md` for why the
//! log fsyncs every append but the state machine does not.

// openraft's storage traits fix the error type (`StorageError`, ~200 bytes); our helpers
// return the same type rather than boxing and unboxing at every trait boundary.
#[allow(clippy::result_large_err)]
pub mod log_store;
pub mod network;
#[allow(clippy::result_large_err)]
pub mod state_machine;
pub mod wire;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Cursor;

use crate::state::{Outcomes, Proposal};

/// A member as Raft membership records it: enough to reach it and to name it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    /// `host:port` of its gRPC listener.
    pub addr: String,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.addr)
    }
}

openraft::declare_raft_types!(
    /// Quantix's Raft types: log payload `Proposal`, response `Outcomes`, node `Member`.
    pub TypeConfig:
        D = Proposal,
        R = Outcomes,
        NodeId = u64,
        Node = Member,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type StorageError = openraft::StorageError<u64>;
pub type StoredMembership = openraft::StoredMembership<u64, Member>;
pub type SnapshotMeta = openraft::SnapshotMeta<u64, Member>;
pub type Metrics = openraft::RaftMetrics<u64, Member>;

/// A store file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {path}: {message}")]
pub struct OpenError {
    pub path: std::path::PathBuf,
    pub message: String,
}

impl OpenError {
    pub(crate) fn new(path: &std::path::Path, e: impl std::fmt::Display) -> OpenError {
        OpenError {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// Runs blocking storage work (redb, fsync) without stalling other tasks on this worker.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod conformance;
