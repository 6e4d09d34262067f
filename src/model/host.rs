//! Hosts: the members of the cluster as the replicated state records them (`HostRecord`), and
//! each host's inventory: capacity, allocation, pools, maintenance (`HostInventory`).

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

/// What a host has and what is asked of it, kept apart from [`HostRecord`] so membership
/// records (carried in joins and Raft membership) stay small. A host that has never reported
/// has zero capacity, which is what the scheduler should assume for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInventory {
    /// CPUs the host offers to VMs (reported by the host).
    pub cpus: u32,
    /// Memory the host offers to VMs, in MiB (reported by the host).
    pub memory_mib: u64,
    /// CPUs of the VMs placed on the host: kept equal to their sum by whoever places VMs.
    pub allocated_cpus: u32,
    /// Memory of the VMs placed on the host, in MiB (same rule as `allocated_cpus`).
    pub allocated_memory_mib: u64,
    /// Storage pools the host reaches (reported), sorted and without duplicates.
    pub pools: Vec<String>,
    /// Set by an operator: the scheduler places nothing new on a host in maintenance.
    pub maintenance: bool,
    /// When the host last reported its inventory; 0 = never.
    pub reported_at: UnixMillis,
}

/// Why a reported inventory was refused; each error names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    #[error("cpus must be at least 1 (got {0})")]
    NoCpus(u32),
    #[error("memory_mib must be at least 1 (got {0})")]
    NoMemory(u64),
    #[error(transparent)]
    PoolName(#[from] super::names::NameError),
}

impl HostInventory {
    /// Validates a report and returns its pool list in canonical form (sorted, deduplicated),
    /// so two reports of the same pools store identical bytes.
    pub fn check_report(
        cpus: u32,
        memory_mib: u64,
        pools: &[String],
    ) -> Result<Vec<String>, InventoryError> {
        if cpus == 0 {
            return Err(InventoryError::NoCpus(cpus));
        }
        if memory_mib == 0 {
            return Err(InventoryError::NoMemory(memory_mib));
        }
        for p in pools {
            super::names::validate_label("pool name", p)?;
        }
        let mut pools = pools.to_vec();
        pools.sort();
        pools.dedup();
        Ok(pools)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_checks() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            HostInventory::check_report(4, 8192, &p(&["nfs", "local", "nfs"])),
            Ok(p(&["local", "nfs"]))
        );
        let cases: &[(u32, u64, &[&str], &str)] = &[
            (0, 1, &[], "cpus must be at least 1"),
            (1, 0, &[], "memory_mib must be at least 1"),
            (1, 1, &["Bad_Pool"], "pool name 'Bad_Pool'"),
            (1, 1, &[""], "pool name must not be empty"),
        ];
        for (cpus, mem, pools, msg) in cases {
            let err = HostInventory::check_report(*cpus, *mem, &p(pools)).unwrap_err();
            assert!(err.to_string().contains(msg), "{err}");
        }
    }
}
