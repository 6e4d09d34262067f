//! Builds the scheduler's input from the replicated state: the `Snapshot` of hosts (capacity,
//! allocation, reachable pools, ready images, group members) and the pending VMs that are due.
//! Host liveness is not state; the caller says who is online.
//!
//! Owns: `Plan`, `plan`. Uses: `state` (reads only), `snapshot`. No clock: `now` is an
//! argument, so a plan is a pure function of (state, online, now).

use std::collections::BTreeSet;

use super::snapshot::{HostView, Policy, Snapshot, VmDemand};
use crate::model::UnixMillis;
use crate::state::kv::{KvError, KvRead};
use crate::state::{hosts, images, placement, pools, vms};

/// One pending VM the scheduler may place now.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub demand: VmDemand,
    /// The VM's generation when read; `Place` is refused if it changed since.
    pub generation: u64,
    /// The reason it shows now, so an unchanged explanation is not proposed again.
    pub reason: String,
}

/// Everything one scheduling round needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub snapshot: Snapshot,
    pub policy: Policy,
    /// Due VMs, in name order.
    pub due: Vec<Pending>,
    /// The earliest `scheduled_at` still in the future, if any: when to look again.
    pub next_due: Option<UnixMillis>,
}

/// Reads the state into a plan. `online(host)` is the caller's liveness view.
pub fn plan(
    kv: &impl KvRead,
    online: impl Fn(&str) -> bool,
    now: UnixMillis,
) -> Result<Plan, KvError> {
    let mut snapshot = Snapshot::default();
    for info in hosts::list(kv)? {
        let inv = &info.inventory;
        snapshot.insert_host(HostView {
            name: info.record.name.clone(),
            online: online(&info.record.name),
            maintenance: inv.maintenance,
            cpus: inv.cpus,
            memory_mib: inv.memory_mib,
            alloc_cpus: inv.allocated_cpus,
            alloc_memory_mib: inv.allocated_memory_mib,
            pools: info.pools.iter().cloned().collect(),
            images: BTreeSet::new(),
            vms: BTreeSet::new(),
        });
    }
    let all_pools = pools::list(kv)?;
    for img in images::list(kv, None)? {
        let pool = all_pools.iter().find(|p| p.spec.name == img.spec.pool);
        if placement::image_is_shared(&img, pool) {
            snapshot.shared_images.insert(img.spec.name.clone());
            continue;
        }
        for host in img.ready_on() {
            if let Some(h) = snapshot.hosts.get_mut(host) {
                h.images.insert(img.spec.name.clone());
            }
        }
    }
    for (name, g) in placement::groups(kv)? {
        if !g.hosts.is_empty() {
            snapshot.groups.insert(name, g.hosts.into_keys().collect());
        }
    }
    let mut due = Vec::new();
    let mut next_due: Option<UnixMillis> = None;
    for name in placement::pending(kv)? {
        let Some(vm) = vms::get(kv, &name)? else {
            continue;
        };
        match vm.scheduled_at {
            Some(t) if t > now => {
                next_due = Some(next_due.map_or(t, |n| n.min(t)));
                continue;
            }
            _ => {}
        }
        due.push(Pending {
            demand: placement::demand(&vm),
            generation: vm.generation,
            reason: vm.observed.reason.clone(),
        });
    }
    Ok(Plan {
        snapshot,
        policy: Policy::from_placement(&placement::policy(kv)?),
        due,
        next_due,
    })
}
