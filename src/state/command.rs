//! What goes through the Raft log (`Request` = request id + time + `Command`) and what comes
//! back (`Outcome`). A refused command is a value, `Outcome::Rejected`, never an error: openraft
//! treats an error from `apply` as fatal.

use serde::{Deserialize, Serialize};

use crate::model::{Folder, HostRecord, UnixMillis};

/// One log entry's payload: requests proposed together. The leader packs concurrent client
/// writes into one entry because openraft 0.9 syncs the log once per entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub requests: Vec<Request>,
}

/// The outcomes of a `Proposal`'s requests, in order. Empty for Raft's own entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes(pub Vec<Outcome>);

/// One client request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Client-chosen id; a retry with the same id returns the first outcome.
    pub id: Option<String>,
    /// Name of the host that proposed it (for the event log).
    #[serde(default)]
    pub by: String,
    /// Wall-clock time fixed by the proposer; `apply` never reads the clock.
    pub at: UnixMillis,
    pub cmd: Command,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// First entry of a new cluster: its id, the first host, the defaults (root folders).
    InitCluster {
        cluster_id: String,
        host: HostRecord,
        max_voters: u32,
    },
    /// Store a join token's hash; the token itself never enters the log.
    CreateJoinToken {
        token_id: String,
        secret_sha256: String,
        expires_at: UnixMillis,
    },
    /// Spend a join token and record the host it admits.
    ConsumeJoinToken {
        token_id: String,
        secret_sha256: String,
        host: HostRecord,
    },
    RemoveHost {
        name: String,
    },
    CreateFolder {
        path: String,
        parents: bool,
    },
    DeleteFolder {
        path: String,
    },
    /// Does nothing; used by tests and to commit an entry in a new term.
    Noop,
    /// Replace the cluster's placement policy (overcommit, strategy, weights).
    SetPlacementPolicy(crate::model::policy::PlacementPolicy),
    /// Where browsers reach a host's HTTP listener (`state::http_addrs`); written by the host.
    SetHttpAddr {
        host: String,
        addr: String,
    },
    Folder(super::folders::FolderCommand),
    Host(super::hosts::HostCommand),
    Vm(super::vms::VmCommand),
    Spec(super::specs::SpecCommand),
    Image(super::images::ImageCommand),
    Pool(super::pools::PoolCommand),
    /// `ConsumeJoinToken` plus the fingerprint of the certificate the leader signed for the
    /// host (`state::host_certs`). Appended here (not a field of `ConsumeJoinToken`) so that
    /// log entries written before certificates still decode.
    JoinHost {
        token_id: String,
        secret_sha256: String,
        host: HostRecord,
        cert_fingerprint: String,
    },
    /// Records a member's certificate fingerprint (the first host's, after bootstrap).
    SetHostCert {
        host: String,
        fingerprint: String,
    },
    /// API credentials: client certificates and bearer tokens (`state::credentials`).
    Credential(super::credentials::CredentialCommand),
}

impl Command {
    /// What the command is about (a name, a path), for the event log.
    pub fn target(&self) -> String {
        match self {
            Command::InitCluster { cluster_id, .. } => cluster_id.clone(),
            Command::CreateJoinToken { token_id, .. } => token_id.clone(),
            Command::ConsumeJoinToken { host, .. } => host.name.clone(),
            Command::RemoveHost { name } => name.clone(),
            Command::CreateFolder { path, .. } | Command::DeleteFolder { path } => path.clone(),
            Command::Noop => String::new(),
            Command::SetPlacementPolicy(_) => "placement policy".to_string(),
            Command::SetHttpAddr { host, .. } => host.clone(),
            Command::Folder(c) => c.target(),
            Command::Host(c) => c.target(),
            Command::Vm(c) => c.target(),
            Command::Spec(c) => c.target(),
            Command::Image(c) => c.target(),
            Command::Pool(c) => c.target(),
            Command::JoinHost { host, .. } => host.name.clone(),
            Command::SetHostCert { host, .. } => host.clone(),
            Command::Credential(c) => c.target(),
        }
    }

    /// Short name for logs and spans.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::InitCluster { .. } => "init_cluster",
            Command::CreateJoinToken { .. } => "create_join_token",
            Command::ConsumeJoinToken { .. } => "consume_join_token",
            Command::RemoveHost { .. } => "remove_host",
            Command::CreateFolder { .. } => "create_folder",
            Command::DeleteFolder { .. } => "delete_folder",
            Command::Noop => "noop",
            Command::SetPlacementPolicy(_) => "set_placement_policy",
            Command::SetHttpAddr { .. } => "set_http_addr",
            Command::Folder(c) => c.kind(),
            Command::Host(c) => c.kind(),
            Command::Vm(c) => c.kind(),
            Command::Spec(c) => c.kind(),
            Command::Image(c) => c.kind(),
            Command::Pool(c) => c.kind(),
            Command::JoinHost { .. } => "join_host",
            Command::SetHostCert { .. } => "set_host_cert",
            Command::Credential(c) => c.kind(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Applied(Applied),
    Rejected(Rejection),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    ClusterInitialized {
        cluster_id: String,
    },
    TokenCreated {
        token_id: String,
    },
    HostJoined(HostRecord),
    HostRemoved(HostRecord),
    /// Every folder the command created (several with `parents`), outermost first.
    FoldersCreated(Vec<(String, Folder)>),
    FolderDeleted,
    Folder(super::folders::FolderApplied),
    Host(super::hosts::HostApplied),
    Vm(super::vms::VmApplied),
    Spec(super::specs::SpecApplied),
    Image(super::images::ImageApplied),
    Pool(super::pools::PoolApplied),
    PolicySet(crate::model::policy::PlacementPolicy),
    Nothing,
    /// The credential added or revoked.
    Credential(crate::model::credential::Credential),
}

/// Why a command was refused, in words for the user, with a kind that maps to a gRPC code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub kind: RejectKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectKind {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    PermissionDenied,
}

impl Outcome {
    pub fn reject(kind: RejectKind, message: impl Into<String>) -> Outcome {
        Outcome::Rejected(Rejection {
            kind,
            message: message.into(),
        })
    }
}
