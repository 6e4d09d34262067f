//! Hosts: the members of the cluster as the replicated state records them (`HostRecord`), and
//! each host's inventory: capacity, allocation, maintenance (`HostInventory`). Which pools a
//! host reaches is on the pool records (`model::pool::Pool::hosts`), not here.

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
    /// Set by an operator: the scheduler places nothing new on a host in maintenance.
    pub maintenance: bool,
    /// When the host last reported its inventory; 0 = never.
    pub reported_at: UnixMillis,
    /// Free memory as libvirt sees it (MiB), when libvirt tells (the test driver does not).
    /// Informational: placement uses capacity and allocation, like Proxmox and Incus.
    pub free_memory_mib: Option<u64>,
}

/// Why a reported inventory was refused; each error names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    #[error("cpus must be at least 1 (got {0})")]
    NoCpus(u32),
    #[error("memory_mib must be at least 1 (got {0})")]
    NoMemory(u64),
}

impl HostInventory {
    /// Validates a report of a host's capacity.
    pub fn check_report(cpus: u32, memory_mib: u64) -> Result<(), InventoryError> {
        if cpus == 0 {
            return Err(InventoryError::NoCpus(cpus));
        }
        if memory_mib == 0 {
            return Err(InventoryError::NoMemory(memory_mib));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_checks() {
        assert_eq!(HostInventory::check_report(4, 8192), Ok(()));
        let cases: &[(u32, u64, &str)] = &[
            (0, 1, "cpus must be at least 1"),
            (1, 0, "memory_mib must be at least 1"),
        ];
        for (cpus, mem, msg) in cases {
            let err = HostInventory::check_report(*cpus, *mem).unwrap_err();
            assert!(err.to_string().contains(msg), "{err}");
        }
    }
}
