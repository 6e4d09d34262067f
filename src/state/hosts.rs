//! Host commands (`HostCommand`), their apply, and host queries.
//! May use: `model`, `state::{kv, tables, codec, refs}`.
//!
//! A host's membership record (`HostRecord`, table `hosts`) is written by the cluster commands
//! (`InitCluster`, `ConsumeJoinToken`, `RemoveHost`). Its inventory (`HostInventory`) lives
//! beside it in the `meta` table under `host_inventory/<name>`: the `hosts` table holds only
//! `HostRecord` values (its scans decode every value as one), and the record travels in joins
//! and membership, so it stays small. Invariants: an inventory exists only for a known host
//! (`forget` is called when a host is removed); allocation is changed only through
//! `adjust_allocation`.

use serde::{Deserialize, Serialize};

use super::command::{Applied, Outcome, RejectKind};
use super::kv::{Kv, KvError, KvRead, Table};
use super::tables;
use crate::model::host::HostInventory;
use crate::model::{HostRecord, UnixMillis};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostCommand {
    /// Turn maintenance on or off: a host in maintenance gets no new VMs.
    SetMaintenance { host: String, on: bool },
    /// What a host found on itself (libvirt node info). Replaces capacity; leaves
    /// maintenance and allocation alone.
    ReportInventory {
        host: String,
        cpus: u32,
        memory_mib: u64,
        /// libvirt's free memory (MiB); `None` when the driver does not report it.
        free_memory_mib: Option<u64>,
    },
}

impl HostCommand {
    pub fn kind(&self) -> &'static str {
        match self {
            HostCommand::SetMaintenance { .. } => "set_maintenance",
            HostCommand::ReportInventory { .. } => "report_inventory",
        }
    }

    /// The entity the command is about, for the event log.
    pub fn target(&self) -> String {
        match self {
            HostCommand::SetMaintenance { host, .. }
            | HostCommand::ReportInventory { host, .. } => {
                format!("host {host}")
            }
        }
    }
}

/// A host as the state knows it: membership record and inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    pub record: HostRecord,
    pub inventory: HostInventory,
    /// Pools whose records say this host reaches them, by name.
    pub pools: Vec<String>,
}

/// What a successful HostCommand returns: the host after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostApplied {
    MaintenanceSet(HostInfo),
    InventoryRecorded(HostInfo),
}

pub fn apply(kv: &mut impl Kv, at: UnixMillis, cmd: &HostCommand) -> Result<Outcome, KvError> {
    match cmd {
        HostCommand::SetMaintenance { host, on } => {
            let Some(mut info) = get(kv, host)? else {
                return Ok(unknown(host));
            };
            info.inventory.maintenance = *on;
            put_inventory(kv, host, &info.inventory)?;
            Ok(Outcome::Applied(Applied::Host(
                HostApplied::MaintenanceSet(info),
            )))
        }
        HostCommand::ReportInventory {
            host,
            cpus,
            memory_mib,
            free_memory_mib,
        } => {
            match HostInventory::check_report(*cpus, *memory_mib) {
                Ok(()) => {}
                Err(e) => {
                    return Ok(Outcome::reject(
                        RejectKind::InvalidArgument,
                        format!("inventory of host {host}: {e}"),
                    ))
                }
            };
            let Some(mut info) = get(kv, host)? else {
                return Ok(unknown(host));
            };
            info.inventory.cpus = *cpus;
            info.inventory.memory_mib = *memory_mib;
            info.inventory.free_memory_mib = *free_memory_mib;
            info.inventory.reported_at = at;
            put_inventory(kv, host, &info.inventory)?;
            Ok(Outcome::Applied(Applied::Host(
                HostApplied::InventoryRecorded(info),
            )))
        }
    }
}

fn unknown(host: &str) -> Outcome {
    Outcome::reject(
        RejectKind::NotFound,
        format!("host {host} is not a member of this cluster"),
    )
}

fn inventory_key(host: &str) -> Vec<u8> {
    let mut k = b"host_inventory/".to_vec();
    k.extend_from_slice(host.as_bytes());
    k
}

fn put_inventory(kv: &mut impl Kv, host: &str, inv: &HostInventory) -> Result<(), KvError> {
    tables::put(kv, Table::Meta, &inventory_key(host), inv)
}

/// A host's inventory; the default (nothing reported, not in maintenance) when it has none.
pub fn inventory(kv: &impl KvRead, host: &str) -> Result<HostInventory, KvError> {
    Ok(tables::get(kv, Table::Meta, "host inventory", &inventory_key(host))?.unwrap_or_default())
}

/// One host by name.
pub fn get(kv: &impl KvRead, name: &str) -> Result<Option<HostInfo>, KvError> {
    let Some(record) = tables::host(kv, name)? else {
        return Ok(None);
    };
    let pools = super::pools::list(kv)?;
    Ok(Some(HostInfo {
        inventory: inventory(kv, name)?,
        pools: reachable(&pools, name),
        record,
    }))
}

fn reachable(pools: &[crate::model::pool::Pool], host: &str) -> Vec<String> {
    pools
        .iter()
        .filter(|p| p.hosts.get(host).is_some_and(|o| o.reachable))
        .map(|p| p.spec.name.clone())
        .collect()
}

/// Every host, by name.
pub fn list(kv: &impl KvRead) -> Result<Vec<HostInfo>, KvError> {
    let pools = super::pools::list(kv)?;
    tables::hosts(kv)?
        .into_iter()
        .map(|record| {
            Ok(HostInfo {
                inventory: inventory(kv, &record.name)?,
                pools: reachable(&pools, &record.name),
                record,
            })
        })
        .collect()
}

/// True if the host is in maintenance (an unknown host is not).
pub fn in_maintenance(kv: &impl KvRead, host: &str) -> Result<bool, KvError> {
    Ok(inventory(kv, host)?.maintenance)
}

/// Adds `cpus` and `memory_mib` (negative to release) to a host's allocation. For the VM
/// commands: call it in the same apply that places, resizes or removes a VM, so the stored
/// allocation stays the sum over the VMs placed on the host. Saturates at zero and at the
/// type's maximum rather than failing, because `apply` must not error for business reasons;
/// returns false (and changes nothing) for an unknown host.
pub fn adjust_allocation(
    kv: &mut impl Kv,
    host: &str,
    cpus: i64,
    memory_mib: i64,
) -> Result<bool, KvError> {
    if tables::host(kv, host)?.is_none() {
        return Ok(false);
    }
    let mut inv = inventory(kv, host)?;
    let c = (i64::from(inv.allocated_cpus) + cpus).clamp(0, i64::from(u32::MAX));
    inv.allocated_cpus = c as u32;
    inv.allocated_memory_mib = if memory_mib >= 0 {
        inv.allocated_memory_mib
            .saturating_add(memory_mib.unsigned_abs())
    } else {
        inv.allocated_memory_mib
            .saturating_sub(memory_mib.unsigned_abs())
    };
    put_inventory(kv, host, &inv)?;
    Ok(true)
}

/// Drops a host's inventory. Called when its record is removed, so a later host of the same
/// name starts clean (not in maintenance, nothing reported).
pub fn forget(kv: &mut impl Kv, host: &str) -> Result<(), KvError> {
    kv.delete(Table::Meta, &inventory_key(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::apply::tests::{host, init};
    use crate::state::{cluster, Command, Request};

    fn set(kv: &mut impl Kv, name: &str, on: bool) -> Outcome {
        apply(
            kv,
            10,
            &HostCommand::SetMaintenance {
                host: name.into(),
                on,
            },
        )
        .unwrap()
    }

    fn report(kv: &mut impl Kv, at: u64, name: &str, cpus: u32, mem: u64) -> Outcome {
        apply(
            kv,
            at,
            &HostCommand::ReportInventory {
                host: name.into(),
                cpus,
                memory_mib: mem,
                free_memory_mib: Some(mem / 2),
            },
        )
        .unwrap()
    }

    fn rejection(out: Outcome) -> (RejectKind, String) {
        match out {
            Outcome::Rejected(r) => (r.kind, r.message),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_new_host_has_an_empty_inventory() {
        let kv = init();
        let h = get(&kv, "h1").unwrap().unwrap();
        assert_eq!(h.record.name, "h1");
        assert_eq!(h.inventory, HostInventory::default());
        assert!(get(&kv, "nope").unwrap().is_none());
    }

    #[test]
    fn maintenance_on_and_off() {
        let mut kv = init();
        match set(&mut kv, "h1", true) {
            Outcome::Applied(Applied::Host(HostApplied::MaintenanceSet(info))) => {
                assert!(info.inventory.maintenance);
                assert_eq!(info.record.name, "h1");
            }
            other => panic!("{other:?}"),
        }
        assert!(in_maintenance(&kv, "h1").unwrap());
        // Setting the same value again is not an error.
        assert!(matches!(set(&mut kv, "h1", true), Outcome::Applied(_)));
        assert!(matches!(set(&mut kv, "h1", false), Outcome::Applied(_)));
        assert!(!in_maintenance(&kv, "h1").unwrap());
    }

    #[test]
    fn unknown_host_is_not_found() {
        let mut kv = init();
        let before = kv.clone();
        let (kind, msg) = rejection(set(&mut kv, "ghost", true));
        assert_eq!(kind, RejectKind::NotFound);
        assert!(msg.contains("host ghost"), "{msg}");
        let (kind, _) = rejection(report(&mut kv, 5, "ghost", 2, 1024));
        assert_eq!(kind, RejectKind::NotFound);
        assert_eq!(kv, before, "a refusal changes nothing");
    }

    #[test]
    fn report_stores_capacity_and_keeps_flags() {
        let mut kv = init();
        set(&mut kv, "h1", true);
        assert!(adjust_allocation(&mut kv, "h1", 2, 512).unwrap());
        match report(&mut kv, 77, "h1", 8, 16384) {
            Outcome::Applied(Applied::Host(HostApplied::InventoryRecorded(info))) => {
                assert_eq!(
                    info.inventory,
                    HostInventory {
                        cpus: 8,
                        memory_mib: 16384,
                        allocated_cpus: 2,
                        allocated_memory_mib: 512,
                        maintenance: true,
                        reported_at: 77,
                        free_memory_mib: Some(8192),
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(inventory(&kv, "h1").unwrap().cpus, 8);
        // A later report replaces the capacity.
        report(&mut kv, 78, "h1", 4, 8192);
        assert_eq!(inventory(&kv, "h1").unwrap().memory_mib, 8192);
    }

    #[test]
    fn bad_reports_are_refused_naming_the_field() {
        let mut kv = init();
        let cases: &[(u32, u64, &str)] = &[
            (0, 1024, "cpus must be at least 1"),
            (2, 0, "memory_mib must be at least 1"),
        ];
        for (cpus, mem, msg) in cases {
            let (kind, m) = rejection(report(&mut kv, 5, "h1", *cpus, *mem));
            assert_eq!(kind, RejectKind::InvalidArgument, "{m}");
            assert!(m.contains(msg) && m.contains("host h1"), "{m}");
        }
        assert_eq!(inventory(&kv, "h1").unwrap(), HostInventory::default());
    }

    #[test]
    fn allocation_adds_releases_and_saturates() {
        let mut kv = init();
        assert!(adjust_allocation(&mut kv, "h1", 4, 4096).unwrap());
        assert!(adjust_allocation(&mut kv, "h1", -1, -1024).unwrap());
        let inv = inventory(&kv, "h1").unwrap();
        assert_eq!((inv.allocated_cpus, inv.allocated_memory_mib), (3, 3072));
        assert!(adjust_allocation(&mut kv, "h1", -10, -10_000).unwrap());
        let inv = inventory(&kv, "h1").unwrap();
        assert_eq!((inv.allocated_cpus, inv.allocated_memory_mib), (0, 0));
        assert!(!adjust_allocation(&mut kv, "ghost", 1, 1).unwrap());
        assert!(get(&kv, "ghost").unwrap().is_none());
    }

    #[test]
    fn list_has_every_host_with_its_inventory() {
        let mut kv = init();
        cluster::create_token(&mut kv, 1, "t", "s", 10).unwrap();
        cluster::consume_token(&mut kv, 2, "t", "s", &host("h2", 2)).unwrap();
        set(&mut kv, "h2", true);
        let got: Vec<(String, bool)> = list(&kv)
            .unwrap()
            .into_iter()
            .map(|h| (h.record.name, h.inventory.maintenance))
            .collect();
        assert_eq!(got, vec![("h1".into(), false), ("h2".into(), true)]);
    }

    #[test]
    fn removed_host_leaves_no_inventory() {
        let mut kv = init();
        cluster::create_token(&mut kv, 1, "t", "s", 10).unwrap();
        cluster::consume_token(&mut kv, 2, "t", "s", &host("h2", 2)).unwrap();
        set(&mut kv, "h2", true);
        cluster::remove_host(&mut kv, "h2").unwrap();
        assert!(kv.get(Table::Meta, &inventory_key("h2")).unwrap().is_none());
    }

    #[test]
    fn commands_go_through_the_top_level_apply() {
        let mut kv = init();
        let req = Request {
            id: Some("m1".into()),
            by: "h1".into(),
            at: 9,
            cmd: Command::Host(HostCommand::SetMaintenance {
                host: "h1".into(),
                on: true,
            }),
        };
        assert_eq!(req.cmd.kind(), "set_maintenance");
        let out = crate::state::apply(&mut kv, 2, &req).unwrap();
        assert!(matches!(out, Outcome::Applied(Applied::Host(_))), "{out:?}");
        assert!(in_maintenance(&kv, "h1").unwrap());
    }
}
