//! The scheduler's view of the cluster: plain data built by the leader loop (or by `apply`, for
//! re-validation) from the replicated state, plus the placement policy.
//!
//! Owns: `HostView`, `VmDemand`, `Policy`, `Snapshot`, the overcommit arithmetic
//! (`Policy::cpu_capacity`, `Policy::memory_capacity`) and `Snapshot::assign`, the one way a
//! placement changes a snapshot. Uses only `model::policy` (the replicated policy record).
//!
//! Pure: no I/O, no clock, no randomness. The only floating point in the capacity rule is one
//! IEEE multiplication and a floor, so every host computes the same capacity from the same
//! inputs (which is what lets `apply` re-check capacity deterministically).
//!
//! Invariant: `Snapshot::hosts` is keyed by `HostView::name`.

use std::collections::{BTreeMap, BTreeSet};

/// One host as placement sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostView {
    pub name: String,
    pub online: bool,
    pub maintenance: bool,
    /// Physical CPUs offered to VMs (before overcommit).
    pub cpus: u32,
    /// Physical memory offered to VMs, in MiB (before overcommit).
    pub memory_mib: u64,
    /// CPUs of the VMs placed here.
    pub alloc_cpus: u32,
    /// Memory of the VMs placed here, in MiB.
    pub alloc_memory_mib: u64,
    /// Storage pools this host reaches.
    pub pools: BTreeSet<String>,
    /// Images present locally on this host.
    pub images: BTreeSet<String>,
    /// Names of the VMs placed here.
    pub vms: BTreeSet<String>,
}

impl HostView {
    /// CPUs still free under `p`'s overcommit; 0 when the host is already over (for instance
    /// after the ratio was lowered).
    pub fn free_cpus(&self, p: &Policy) -> u32 {
        p.cpu_capacity(self.cpus).saturating_sub(self.alloc_cpus)
    }

    /// Memory still free under `p`'s overcommit, in MiB; 0 when the host is already over.
    pub fn free_memory_mib(&self, p: &Policy) -> u64 {
        p.memory_capacity(self.memory_mib)
            .saturating_sub(self.alloc_memory_mib)
    }
}

/// What one pending VM asks of a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmDemand {
    pub name: String,
    pub cpus: u32,
    pub memory_mib: u64,
    /// Every pool its disks use: the host must reach all of them.
    pub pools: BTreeSet<String>,
    /// Boot or backing image that must be available on the host (shared or local).
    pub image: Option<String>,
    /// Place only on this host.
    pub host_pin: Option<String>,
    /// Members of this group run on different hosts.
    pub anti_affinity: Option<String>,
    /// Members of this group run on the same host.
    pub affinity: Option<String>,
}

/// How to place. The overcommit ratios are part of the capacity rule that `apply` re-checks,
/// so whoever re-validates must use the same ratios as the leader (replicated, not local).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Virtual CPUs per physical CPU.
    pub cpu_overcommit: f64,
    /// Memory handed out per MiB of physical memory.
    pub memory_overcommit: f64,
    /// `true`: prefer emptier hosts (spread); `false`: prefer fuller hosts (pack).
    pub spread: bool,
    pub weight_image_locality: f64,
    pub weight_balance: f64,
    pub weight_spread: f64,
}

impl Default for Policy {
    /// Spread, CPUs overcommitted 4:1, memory not overcommitted. A local image is worth as much
    /// as being half as full as the other host; balance only breaks near-ties.
    fn default() -> Self {
        Policy {
            cpu_overcommit: 4.0,
            memory_overcommit: 1.0,
            spread: true,
            weight_image_locality: 0.5,
            weight_balance: 0.25,
            weight_spread: 1.0,
        }
    }
}

impl Policy {
    /// The scheduler's form of the replicated policy record.
    pub fn from_placement(p: &crate::model::policy::PlacementPolicy) -> Policy {
        let r = |x: u32| f64::from(x) / 100.0;
        Policy {
            cpu_overcommit: r(p.cpu_overcommit_x100),
            memory_overcommit: r(p.memory_overcommit_x100),
            spread: p.strategy == crate::model::policy::Strategy::Spread,
            weight_image_locality: r(p.weight_image_locality_x100),
            weight_balance: r(p.weight_balance_x100),
            weight_spread: r(p.weight_spread_x100),
        }
    }

    /// `floor(cpus × cpu_overcommit)`, saturating; a ratio that is negative or NaN gives 0.
    pub fn cpu_capacity(&self, cpus: u32) -> u32 {
        let cap = scaled(u64::from(cpus), self.cpu_overcommit);
        u32::try_from(cap).unwrap_or(u32::MAX)
    }

    /// `floor(memory_mib × memory_overcommit)`, saturating; negative or NaN gives 0.
    pub fn memory_capacity(&self, memory_mib: u64) -> u64 {
        scaled(memory_mib, self.memory_overcommit)
    }
}

/// `floor(n × ratio)`. Exact for ratio 1 (no trip through f64, which would round values above
/// 2^53); `as` saturates and maps NaN to 0.
fn scaled(n: u64, ratio: f64) -> u64 {
    if ratio == 1.0 {
        n
    } else {
        (n as f64 * ratio).floor() as u64
    }
}

/// Everything placement looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Keyed by host name.
    pub hosts: BTreeMap<String, HostView>,
    /// Images on shared pools. Kept simple: such an image counts as available on every host.
    pub shared_images: BTreeSet<String>,
    /// Group name -> hosts that already run a member. Affinity and anti-affinity groups share
    /// this one namespace, so the builder should keep their names apart.
    pub groups: BTreeMap<String, BTreeSet<String>>,
}

impl Snapshot {
    /// Adds or replaces a host, keyed by its name.
    pub fn insert_host(&mut self, host: HostView) {
        self.hosts.insert(host.name.clone(), host);
    }

    /// Records `vm` as placed on `host`: allocation, the host's VM set and the VM's groups.
    /// Does not check anything (see `place::fits`); returns `false` and changes nothing if the
    /// host is unknown.
    pub fn assign(&mut self, host: &str, vm: &VmDemand) -> bool {
        let Some(h) = self.hosts.get_mut(host) else {
            return false;
        };
        h.alloc_cpus = h.alloc_cpus.saturating_add(vm.cpus);
        h.alloc_memory_mib = h.alloc_memory_mib.saturating_add(vm.memory_mib);
        h.vms.insert(vm.name.clone());
        for group in [&vm.anti_affinity, &vm.affinity].into_iter().flatten() {
            match self.groups.get_mut(group) {
                Some(hosts) => {
                    if !hosts.contains(host) {
                        hosts.insert(host.to_string());
                    }
                }
                None => {
                    self.groups
                        .insert(group.clone(), BTreeSet::from([host.to_string()]));
                }
            }
        }
        true
    }
}
