//! Placement: the best host for one VM (`place`), for many in one go (`place_batch`), the
//! re-validation `apply` runs (`fits`), and the explanation for a VM no host can take
//! (`Unschedulable`).
//!
//! Owns: `place`, `best_host`, `explain`, `place_batch`, `batch_order`, `fits`,
//! `Unschedulable`, `bench_place`, and the flattened index `place_batch` scans (`batch`).
//! Uses: `snapshot`, `filters`, `scores`, `model::size`.
//!
//! Pure and deterministic: no I/O, no clock, no randomness; hosts are scanned in name order and
//! a host replaces the best so far only with a strictly higher score, so ties go to the
//! smallest host name. The one exception is `bench_place`, a benchmark entry point that reads
//! the monotonic clock around `place_batch` (never inside it).
//!
//! Cost: one VM is O(hosts) with no allocation when it is placed; explaining a VM no host takes
//! allocates the host names it reports. `place_batch` is O(hosts) to build its index, then
//! O(hosts) per VM over contiguous rows and bitsets.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

mod batch;

use super::filters::{cpus, Filters, Reject};
use super::scores;
use super::snapshot::{HostView, Policy, Snapshot, VmDemand};
use crate::model::size::format_mib;

/// Why no host can take a VM: hosts grouped by reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unschedulable {
    /// Hosts the VM was checked against (the whole snapshot).
    pub considered: usize,
    /// Reason key (`Reject::key`: `memory:8192`, `pool:nfs-a`, `maintenance`, …) -> the hosts
    /// refused for it, in name order. A host may appear under several reasons; a host that is
    /// not the VM's pinned host appears only under `pinned:HOST`.
    pub reasons: BTreeMap<String, Vec<String>>,
}

impl std::error::Error for Unschedulable {}

impl fmt::Display for Unschedulable {
    /// A short summary: `no host reaches pool nfs-a; 2 hosts lack 8 GiB memory; host h3 is in
    /// maintenance`. Placement problems (pin, pools, image, capacity, groups) come before host
    /// states (maintenance, offline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.considered == 0 {
            return f.write_str("no hosts in the cluster");
        }
        if self.reasons.is_empty() {
            return f.write_str("no host fits");
        }
        let mut phrases: Vec<(u8, &str, String)> = self
            .reasons
            .iter()
            .map(|(key, hosts)| {
                let (rank, phrase) = phrase(key, hosts, self.considered);
                (rank, key.as_str(), phrase)
            })
            .collect();
        phrases.sort();
        for (i, (_, _, p)) in phrases.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(p)?;
        }
        Ok(())
    }
}

/// Rank (display order) and text for one reason.
fn phrase(key: &str, hosts: &[String], considered: usize) -> (u8, String) {
    let (kind, arg) = key.split_once(':').unwrap_or((key, ""));
    let n = hosts.len();
    // "No host …" only when it says more than naming the one host would.
    let all = n == considered && n > 1;
    let one = n == 1;
    let subject = match hosts {
        [h] => format!("host {h}"),
        _ if all => format!("all {n} hosts"),
        _ => format!("{n} hosts"),
    };
    let s = |singular: &'static str, plural: &'static str| if one { singular } else { plural };
    match kind {
        "pinned" if n == considered => (
            0,
            format!("pinned to host {arg}, which is not in the cluster"),
        ),
        "pinned" => (0, format!("pinned to host {arg}")),
        "pool" if all => (1, format!("no host reaches pool {arg}")),
        "pool" => (1, format!("{subject} cannot reach pool {arg}")),
        "image" if all => (2, format!("no host has image {arg}")),
        "image" => (2, format!("{subject} {} image {arg}", s("lacks", "lack"))),
        "cpu" => {
            let need = arg
                .parse()
                .map(cpus)
                .unwrap_or_else(|_| format!("{arg} CPUs"));
            (3, format!("{subject} {} {need}", s("lacks", "lack")))
        }
        "memory" => {
            let need = arg
                .parse()
                .map(format_mib)
                .unwrap_or_else(|_| format!("{arg} MiB"));
            (4, format!("{subject} {} {need} memory", s("lacks", "lack")))
        }
        "anti-affinity" => (
            5,
            format!(
                "{subject} already {} a member of anti-affinity group {arg}",
                s("runs", "run")
            ),
        ),
        "affinity" => (
            6,
            format!(
                "{subject} {} not where affinity group {arg} runs",
                s("is", "are")
            ),
        ),
        "maintenance" => (7, format!("{subject} {} in maintenance", s("is", "are"))),
        "offline" => (8, format!("{subject} {} offline", s("is", "are"))),
        _ => (9, format!("{subject}: {key}")),
    }
}

/// Runs every filter for `vm` on `host`, first failure first; `Ok` means `host` may take it.
///
/// This is the check `apply` repeats at the placement's log position. It is cheap (a few set
/// lookups and integer comparisons), computes no score, and reads from `s` only
/// `shared_images` and the VM's affinity and anti-affinity entries in `groups`, never
/// `s.hosts`; so `apply` may pass a snapshot holding just those.
pub fn fits(host: &HostView, vm: &VmDemand, s: &Snapshot, p: &Policy) -> Result<(), Reject> {
    Filters::new(s, vm, p).check(host)
}

/// The best-scoring host that passes every filter, ties to the smallest name.
pub fn place(s: &Snapshot, vm: &VmDemand, p: &Policy) -> Result<String, Unschedulable> {
    best_host(s, vm, p).ok_or_else(|| explain(s, vm, p))
}

/// `place` without the explanation: for retrying pending VMs cheaply.
pub fn best_host(s: &Snapshot, vm: &VmDemand, p: &Policy) -> Option<String> {
    let filters = Filters::new(s, vm, p);
    // A pin or an already-placed affinity group narrows the scan; all three iterate in name
    // order.
    let best = if let Some(pin) = &vm.host_pin {
        pick(s.hosts.get(pin).into_iter(), &filters, vm, p)
    } else if let Some(group_hosts) = filters.affinity_hosts() {
        pick(
            group_hosts.iter().filter_map(|name| s.hosts.get(name)),
            &filters,
            vm,
            p,
        )
    } else {
        pick(s.hosts.values(), &filters, vm, p)
    };
    best.map(|h| h.name.clone())
}

/// The highest-scoring candidate that passes the filters; candidates come in name order and
/// only a strictly higher score replaces the best, so ties go to the smallest name.
fn pick<'s>(
    candidates: impl Iterator<Item = &'s HostView>,
    filters: &Filters<'_>,
    vm: &VmDemand,
    p: &Policy,
) -> Option<&'s HostView> {
    let mut best: Option<(&HostView, f64)> = None;
    for h in candidates {
        if filters.check(h).is_err() {
            continue;
        }
        let score = scores::score(h, vm, p);
        if best.is_none_or(|(_, b)| score.total_cmp(&b).is_gt()) {
            best = Some((h, score));
        }
    }
    best.map(|(h, _)| h)
}

/// Why `vm` fits no host of `s`: every host's every failing filter, grouped by reason.
pub fn explain(s: &Snapshot, vm: &VmDemand, p: &Policy) -> Unschedulable {
    let filters = Filters::new(s, vm, p);
    // Few distinct reasons per VM: a short list compared with `same_key` avoids building a
    // key string for every host.
    let mut groups: Vec<(Reject, Vec<String>)> = Vec::new();
    for h in s.hosts.values() {
        filters.each_reject(h, |r| {
            match groups.iter_mut().find(|(g, _)| g.same_key(&r)) {
                Some((_, hosts)) => hosts.push(h.name.clone()),
                None => groups.push((r, vec![h.name.clone()])),
            }
        });
    }
    Unschedulable {
        considered: s.hosts.len(),
        reasons: groups
            .into_iter()
            .map(|(r, hosts)| (r.key(), hosts))
            .collect(),
    }
}

/// The order `place_batch` places `vms` in, as indexes: larger first (memory, then CPUs), then
/// by name, then by input position. Big VMs first packs better; the rest makes it total.
pub fn batch_order(vms: &[VmDemand]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..vms.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&vms[a], &vms[b]);
        y.memory_mib
            .cmp(&x.memory_mib)
            .then(y.cpus.cmp(&x.cpus))
            .then_with(|| x.name.cmp(&y.name))
            .then(a.cmp(&b))
    });
    order
}

/// Places `vms` one by one in `batch_order`, recording each placement in `s`
/// (`Snapshot::assign`) before the next, so a batch never overcommits a host or breaks a group.
/// Each answer is exactly what `place` would give at that point of the sequence; the scan runs
/// over a flattened index of the snapshot (`batch`) to keep 10,000 VMs × 1,000 hosts fast.
/// Results come back in input order, each with the VM's name.
pub fn place_batch(
    s: &mut Snapshot,
    vms: &[VmDemand],
    p: &Policy,
) -> Vec<(String, Result<String, Unschedulable>)> {
    let mut table = batch::Table::new(s, p);
    // Demands (without the name, which placement ignores) that fitted nowhere since the last
    // placement: the snapshot has not changed, so they still fit nowhere, for the same reasons.
    // Saves rescanning and re-explaining a run of identical VMs that do not fit.
    let mut unplaceable: BTreeMap<Shape<'_>, Unschedulable> = BTreeMap::new();
    let mut results: Vec<(usize, Result<String, Unschedulable>)> = batch_order(vms)
        .into_iter()
        .map(|i| {
            let vm = &vms[i];
            let shape = shape(vm);
            if let Some(u) = unplaceable.get(&shape) {
                return (i, Err(u.clone()));
            }
            let r = match table.best(s, vm, p) {
                Some(pos) => {
                    table.commit(s, pos, vm);
                    let host = table.name(pos).to_string();
                    s.assign(&host, vm);
                    unplaceable.clear();
                    Ok(host)
                }
                None => {
                    let u = explain(s, vm, p);
                    unplaceable.insert(shape, u.clone());
                    Err(u)
                }
            };
            (i, r)
        })
        .collect();
    results.sort_by_key(|(i, _)| *i);
    results
        .into_iter()
        .map(|(i, r)| (vms[i].name.clone(), r))
        .collect()
}

/// Everything placement reads from a VM except its name.
type Shape<'a> = (
    u32,
    u64,
    &'a BTreeSet<String>,
    &'a Option<String>,
    &'a Option<String>,
    &'a Option<String>,
    &'a Option<String>,
);

fn shape(vm: &VmDemand) -> Shape<'_> {
    // Destructured so that a new field is a compile error here, not a silent cache bug.
    let VmDemand {
        name: _,
        cpus,
        memory_mib,
        pools,
        image,
        host_pin,
        anti_affinity,
        affinity,
    } = vm;
    (
        *cpus,
        *memory_mib,
        pools,
        image,
        host_pin,
        anti_affinity,
        affinity,
    )
}

/// Benchmark entry point: builds a synthetic snapshot of `hosts` hosts (mixed sizes, pools,
/// local images; a few offline or in maintenance) and `vms` VMs (mixed sizes, pools, images,
/// some anti-affinity and affinity groups), then times `place_batch` alone. Returns the time
/// and how many VMs were placed. Deterministic: the same arguments place the same VMs.
pub fn bench_place(hosts: usize, vms: usize) -> (Duration, usize) {
    let (mut snapshot, demands) = synthetic(hosts, vms);
    let policy = Policy::default();
    let start = Instant::now();
    let results = place_batch(&mut snapshot, &demands, &policy);
    let elapsed = start.elapsed();
    (elapsed, results.iter().filter(|(_, r)| r.is_ok()).count())
}

/// The synthetic cluster and workload `bench_place` uses.
pub fn synthetic(hosts: usize, vms: usize) -> (Snapshot, Vec<VmDemand>) {
    let mut s = Snapshot {
        shared_images: ["ubuntu-24.04".to_string()].into(),
        ..Snapshot::default()
    };
    for i in 0..hosts {
        s.insert_host(HostView {
            name: format!("h{i:05}"),
            online: i % 50 != 49,
            maintenance: i % 97 == 96,
            cpus: [32, 64, 96][i % 3],
            memory_mib: [128, 256, 512][i % 3] * 1024,
            alloc_cpus: 0,
            alloc_memory_mib: 0,
            pools: ["local".to_string(), format!("nfs-{}", i % 4)].into(),
            images: [format!("img-{}", i % 8), format!("img-{}", (i + 3) % 8)].into(),
            vms: Default::default(),
        });
    }
    let demands = (0..vms)
        .map(|i| VmDemand {
            name: format!("vm{i:06}"),
            cpus: (i % 8) as u32 + 1,
            memory_mib: ((i % 16) as u64 + 1) * 1024,
            pools: if i % 3 == 0 {
                ["local".to_string()].into()
            } else {
                [format!("nfs-{}", i % 4)].into()
            },
            image: Some(if i % 2 == 0 {
                "ubuntu-24.04".to_string()
            } else {
                format!("img-{}", i % 8)
            }),
            host_pin: None,
            anti_affinity: (i % 10 == 0).then(|| format!("aa-{}", i / 10 % 100)),
            affinity: (i % 50 == 7).then(|| format!("af-{}", i / 50 % 40)),
        })
        .collect();
    (s, demands)
}
