//! Placement in the replicated state: the `Place` and `Unschedulable` VM commands, the placement
//! policy record, and the indexes that let `apply` re-validate a placement without scanning
//! VMs: the pending set (`pending/<vm>` in `meta`) and the groups (`group/<name>` in `meta`,
//! each with its kind, member count and per-host count of placed members).
//!
//! Invariants (kept by calling the `on_*` hooks from `state::vms` in the same apply):
//! - `pending/<vm>` exists exactly for VMs with no placement.
//! - A group has one kind (affinity or anti-affinity): one namespace, like vSphere's rules.
//! - A host's allocation (`hosts::adjust_allocation`) and a group's host counts sum over the
//!   VMs placed there.
//!
//! May use: `model`, `scheduler::{snapshot, place}` (pure), `state::{kv, tables, hosts, vms}`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::command::{Applied, Outcome, RejectKind};
use super::kv::{Kv, KvError, KvRead, Table};
use super::vms::VmApplied;
use super::{hosts, tables};
use crate::model::image::Image;
use crate::model::policy::PlacementPolicy;
use crate::model::pool::Pool;
use crate::model::vm::{BootMedia, Power, Status, Vm};
use crate::model::UnixMillis;
use crate::scheduler::snapshot::{HostView, Policy, Snapshot, VmDemand};

const POLICY_KEY: &[u8] = b"placement_policy";
const PENDING: &[u8] = b"pending/";
const GROUP: &[u8] = b"group/";
const PLACED: &[u8] = b"placed/";

/// Key of the "VM `vm` is placed on `host`" index entry: `placed/<host>/<vm>`.
fn placed_key(host: &str, vm: &str) -> Vec<u8> {
    [PLACED, host.as_bytes(), b"/", vm.as_bytes()].concat()
}

/// Names of the VMs placed on `host`, in name order (the host's agent reads this).
pub fn placed_on(kv: &impl KvRead, host: &str) -> Result<Vec<String>, KvError> {
    let prefix = [PLACED, host.as_bytes(), b"/"].concat();
    Ok(kv
        .prefix(Table::Meta, &prefix)?
        .into_iter()
        .map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
        .collect())
}

/// Records an already-decided placement (a VM found on a host): allocation, groups and the
/// placed index, as `place` does after its checks.
pub fn record_placement(kv: &mut impl Kv, vm: &Vm, host: &str) -> Result<(), KvError> {
    hosts::adjust_allocation(kv, host, i64::from(vm.cpus), vm.memory_mib as i64)?;
    for (g, _) in vm_groups(vm) {
        if let Some(mut grp) = group(kv, g)? {
            *grp.hosts.entry(host.to_string()).or_default() += 1;
            put_group(kv, g, &grp)?;
        }
    }
    kv.delete(Table::Meta, &key(PENDING, &vm.name))?;
    kv.put(Table::Meta, &placed_key(host, &vm.name), &[])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupKind {
    Affinity,
    AntiAffinity,
}

impl GroupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Affinity => "affinity",
            GroupKind::AntiAffinity => "anti-affinity",
        }
    }
}

/// A group's index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub kind: GroupKind,
    /// VMs in the group, placed or not; the entry goes when it reaches zero.
    pub members: u64,
    /// Host name -> members placed there.
    pub hosts: BTreeMap<String, u64>,
}

fn key(prefix: &[u8], name: &str) -> Vec<u8> {
    [prefix, name.as_bytes()].concat()
}

/// The cluster's placement policy (the default until someone sets one).
pub fn policy(kv: &impl KvRead) -> Result<PlacementPolicy, KvError> {
    Ok(tables::get(kv, Table::Meta, "placement policy", POLICY_KEY)?.unwrap_or_default())
}

pub fn set_policy(kv: &mut impl Kv, p: &PlacementPolicy) -> Result<Outcome, KvError> {
    if let Err(e) = p.validate() {
        return Ok(Outcome::reject(RejectKind::InvalidArgument, e.to_string()));
    }
    tables::put(kv, Table::Meta, POLICY_KEY, p)?;
    Ok(Outcome::Applied(Applied::PolicySet(p.clone())))
}

pub fn group(kv: &impl KvRead, name: &str) -> Result<Option<Group>, KvError> {
    tables::get(kv, Table::Meta, "group", &key(GROUP, name))
}

fn put_group(kv: &mut impl Kv, name: &str, g: &Group) -> Result<(), KvError> {
    if g.members == 0 {
        kv.delete(Table::Meta, &key(GROUP, name))
    } else {
        tables::put(kv, Table::Meta, &key(GROUP, name), g)
    }
}

/// Every group, by name.
pub fn groups(kv: &impl KvRead) -> Result<BTreeMap<String, Group>, KvError> {
    kv.prefix(Table::Meta, GROUP)?
        .into_iter()
        .map(|(k, v)| {
            let name = String::from_utf8_lossy(&k[GROUP.len()..]).into_owned();
            Ok((name, super::codec::decode("group", &v)?))
        })
        .collect()
}

/// Names of the VMs waiting for a placement, in name order.
pub fn pending(kv: &impl KvRead) -> Result<Vec<String>, KvError> {
    Ok(kv
        .prefix(Table::Meta, PENDING)?
        .into_iter()
        .map(|(k, _)| String::from_utf8_lossy(&k[PENDING.len()..]).into_owned())
        .collect())
}

fn vm_groups(vm: &Vm) -> impl Iterator<Item = (&str, GroupKind)> {
    [
        (vm.affinity.as_deref(), GroupKind::Affinity),
        (vm.anti_affinity.as_deref(), GroupKind::AntiAffinity),
    ]
    .into_iter()
    .filter_map(|(g, k)| g.map(|g| (g, k)))
}

/// A new VM record: joins its groups and the pending set. `Err` (changing nothing) if a group
/// name is already used by a group of the other kind.
pub fn on_create(kv: &mut impl Kv, vm: &Vm) -> Result<Result<(), String>, KvError> {
    if vm.affinity.is_some() && vm.affinity == vm.anti_affinity {
        return Ok(Err(format!(
            "group {} cannot be both the affinity and the anti-affinity group",
            vm.affinity.as_deref().unwrap_or_default()
        )));
    }
    for (name, kind) in vm_groups(vm) {
        if let Some(g) = group(kv, name)? {
            if g.kind != kind {
                return Ok(Err(format!(
                    "{name} is an {} group; give the {} group another name",
                    g.kind.as_str(),
                    kind.as_str()
                )));
            }
        }
    }
    for (name, kind) in vm_groups(vm) {
        let mut g = group(kv, name)?.unwrap_or(Group {
            kind,
            members: 0,
            hosts: BTreeMap::new(),
        });
        g.members += 1;
        put_group(kv, name, &g)?;
    }
    if vm.placement.is_none() {
        kv.put(Table::Meta, &key(PENDING, &vm.name), &[])?;
    }
    Ok(Ok(()))
}

/// A VM record is going away: releases its host's allocation and group counts.
pub fn on_forget(kv: &mut impl Kv, vm: &Vm) -> Result<(), KvError> {
    kv.delete(Table::Meta, &key(PENDING, &vm.name))?;
    if let Some(host) = &vm.placement {
        hosts::adjust_allocation(kv, host, -i64::from(vm.cpus), -(vm.memory_mib as i64))?;
        kv.delete(Table::Meta, &placed_key(host, &vm.name))?;
    }
    for (name, _) in vm_groups(vm) {
        if let Some(mut g) = group(kv, name)? {
            g.members = g.members.saturating_sub(1);
            if let Some(host) = &vm.placement {
                unplace_from_group(&mut g, host);
            }
            put_group(kv, name, &g)?;
        }
    }
    Ok(())
}

fn unplace_from_group(g: &mut Group, host: &str) {
    if let Some(n) = g.hosts.get_mut(host) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            g.hosts.remove(host);
        }
    }
}

/// A VM was renamed: moves its pending or placed entry.
pub fn on_rename(kv: &mut impl Kv, old: &str, vm: &Vm) -> Result<(), KvError> {
    if kv.get(Table::Meta, &key(PENDING, old))?.is_some() {
        kv.delete(Table::Meta, &key(PENDING, old))?;
        kv.put(Table::Meta, &key(PENDING, &vm.name), &[])?;
    }
    if let Some(host) = &vm.placement {
        kv.delete(Table::Meta, &placed_key(host, old))?;
        kv.put(Table::Meta, &placed_key(host, &vm.name), &[])?;
    }
    Ok(())
}

/// A placed VM changes size from `old` to `new`: `Err` with the reason if the new size does not
/// fit on its host under the policy; otherwise the allocation follows.
pub fn on_resize(kv: &mut impl Kv, old: &Vm, new: &Vm) -> Result<Result<(), String>, KvError> {
    let Some(host) = &old.placement else {
        return Ok(Ok(()));
    };
    let dc = i64::from(new.cpus) - i64::from(old.cpus);
    let dm = new.memory_mib as i64 - old.memory_mib as i64;
    if dc > 0 || dm > 0 {
        let inv = hosts::inventory(kv, host)?;
        let p = Policy::from_placement(&policy(kv)?);
        let view = HostView {
            name: host.clone(),
            online: true,
            cpus: inv.cpus,
            memory_mib: inv.memory_mib,
            alloc_cpus: inv.allocated_cpus.saturating_sub(old.cpus),
            alloc_memory_mib: inv.allocated_memory_mib.saturating_sub(old.memory_mib),
            ..HostView::default()
        };
        let demand = VmDemand {
            cpus: new.cpus,
            memory_mib: new.memory_mib,
            ..VmDemand::default()
        };
        let checks = [
            crate::scheduler::filters::cpu(&view, &demand, &p),
            crate::scheduler::filters::memory(&view, &demand, &p),
        ];
        if let Some(r) = checks.into_iter().find_map(Result::err) {
            return Ok(Err(format!("host {host} cannot take the new size: {r}")));
        }
    }
    hosts::adjust_allocation(kv, host, dc, dm)?;
    Ok(Ok(()))
}

/// What `vm` asks of a host.
pub fn demand(vm: &Vm) -> VmDemand {
    VmDemand {
        name: vm.name.clone(),
        cpus: vm.cpus,
        memory_mib: vm.memory_mib,
        pools: vm.disks.iter().map(|d| d.pool.clone()).collect(),
        image: match &vm.boot {
            BootMedia::CloudImage(i) | BootMedia::Iso(i) => Some(i.clone()),
            BootMedia::Pxe | BootMedia::Foreign => None,
        },
        host_pin: vm.host_pin.clone(),
        anti_affinity: vm.anti_affinity.clone(),
        affinity: vm.affinity.clone(),
    }
}

/// True if `pool` (by its record) is an image's shared pool.
fn shared(pool: Option<&Pool>) -> bool {
    pool.is_some_and(|p| p.spec.kind.is_shared())
}

/// An image counts as shared (available on every host that reaches its pool) when its pool is
/// shared and some host has it ready; otherwise it is available where it is ready.
pub fn image_is_shared(image: &Image, pool: Option<&Pool>) -> bool {
    shared(pool) && !image.ready_on().is_empty()
}

/// Re-validates placing `name` on `host` at this log position and records it. The leader's
/// view may be stale (or a second leader may have placed it): the generation must still be
/// the one the proposer saw, and the VM must fit the host as the state is now.
pub fn place(
    kv: &mut impl Kv,
    at: UnixMillis,
    name: &str,
    host: &str,
    generation: u64,
) -> Result<Outcome, KvError> {
    let refuse = |kind, msg: String| Ok(Outcome::reject(kind, msg));
    let Some(mut vm) = super::vms::get(kv, name)? else {
        return refuse(RejectKind::NotFound, format!("vm {name} does not exist"));
    };
    if let Some(h) = &vm.placement {
        return refuse(
            RejectKind::FailedPrecondition,
            format!("vm {name} is already placed on host {h}"),
        );
    }
    if vm.generation != generation {
        return refuse(
            RejectKind::FailedPrecondition,
            format!(
                "vm {name} changed (generation {} is now {}); place it again",
                generation, vm.generation
            ),
        );
    }
    if vm.scheduled_at.is_some_and(|t| t > at) {
        return refuse(
            RejectKind::FailedPrecondition,
            format!("vm {name} is scheduled for later"),
        );
    }
    if tables::host(kv, host)?.is_none() {
        return refuse(
            RejectKind::NotFound,
            format!("host {host} is not a member of this cluster"),
        );
    }
    let d = demand(&vm);
    let inv = hosts::inventory(kv, host)?;
    let (view, snapshot) = target_view(kv, host, &inv, &d)?;
    let p = Policy::from_placement(&policy(kv)?);
    if let Err(r) = crate::scheduler::place::fits(&view, &d, &snapshot, &p) {
        return refuse(
            RejectKind::FailedPrecondition,
            format!("vm {name} does not fit on host {host}: {r}"),
        );
    }
    record_placement(kv, &vm, host)?;
    vm.placement = Some(host.to_string());
    vm.observed.status = Status::Creating;
    vm.observed.reason = format!("placed on host {host}; waiting for it to create the VM");
    vm.observed.at = at;
    vm.generation += 1;
    vm.updated_at = at;
    tables::put(kv, Table::Vms, vm.name.as_bytes(), &vm)?;
    Ok(Outcome::Applied(Applied::Vm(VmApplied::Updated(Box::new(
        vm,
    )))))
}

/// The target host as `fits` needs it, reading only what this VM touches: its pools, its
/// image and its groups. `online` is true: liveness is the leader's soft view, not state.
fn target_view(
    kv: &impl KvRead,
    host: &str,
    inv: &crate::model::host::HostInventory,
    d: &VmDemand,
) -> Result<(HostView, Snapshot), KvError> {
    let mut pools = BTreeSet::new();
    for name in &d.pools {
        let pool: Option<Pool> = super::pools::get(kv, name)?;
        if pool.is_some_and(|p| p.hosts.get(host).is_some_and(|o| o.reachable)) {
            pools.insert(name.clone());
        }
    }
    let mut snapshot = Snapshot::default();
    let mut images = BTreeSet::new();
    if let Some(name) = &d.image {
        if let Some(img) = super::images::get(kv, name)? {
            let pool: Option<Pool> = super::pools::get(kv, &img.spec.pool)?;
            if image_is_shared(&img, pool.as_ref()) {
                snapshot.shared_images.insert(name.clone());
            } else if img.ready_on().contains(&host) {
                images.insert(name.clone());
            }
        }
    }
    for g in [&d.affinity, &d.anti_affinity].into_iter().flatten() {
        if let Some(grp) = group(kv, g)? {
            snapshot
                .groups
                .insert(g.clone(), grp.hosts.into_keys().collect());
        }
    }
    let view = HostView {
        name: host.to_string(),
        online: true,
        maintenance: inv.maintenance,
        cpus: inv.cpus,
        memory_mib: inv.memory_mib,
        alloc_cpus: inv.allocated_cpus,
        alloc_memory_mib: inv.allocated_memory_mib,
        pools,
        images,
        vms: BTreeSet::new(),
    };
    Ok((view, snapshot))
}

/// Records why a pending VM is still pending (from the leader's scheduler). Refused, and
/// harmless, if the VM was placed or changed since the leader looked.
pub fn unschedulable(
    kv: &mut impl Kv,
    at: UnixMillis,
    name: &str,
    generation: u64,
    reason: &str,
) -> Result<Outcome, KvError> {
    let Some(mut vm) = super::vms::get(kv, name)? else {
        return Ok(Outcome::reject(
            RejectKind::NotFound,
            format!("vm {name} does not exist"),
        ));
    };
    if vm.placement.is_some() || vm.generation != generation || vm.power == Power::Deleted {
        return Ok(Outcome::reject(
            RejectKind::FailedPrecondition,
            format!("vm {name} is no longer pending as the scheduler saw it"),
        ));
    }
    vm.observed.reason = reason.chars().take(1024).collect();
    vm.observed.at = at;
    tables::put(kv, Table::Vms, vm.name.as_bytes(), &vm)?;
    Ok(Outcome::Applied(Applied::Vm(VmApplied::Observed)))
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
