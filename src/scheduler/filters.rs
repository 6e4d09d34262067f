//! Hard filters: may this VM go on this host at all? Each filter is a pure function returning
//! `Ok(())` or the `Reject` reason; `Filters` runs them all for one VM with the per-VM lookups
//! (groups, shared images) done once, so scanning a thousand hosts stays cheap.
//!
//! Owns: `Reject` and its stable key, the filter functions, `Filters`. Uses: `snapshot`.
//!
//! Pure: no I/O, no clock, no randomness. The same inputs always give the same answer, which
//! `apply` relies on when it re-validates a placement with `place::fits`.

use std::collections::BTreeSet;

use super::snapshot::{HostView, Policy, Snapshot, VmDemand};

/// Why a host cannot take a VM. The payloads are what a person needs to act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("host is offline")]
    Offline,
    #[error("host is in maintenance")]
    Maintenance,
    #[error("needs {}, {free} free", cpus(*need))]
    Cpu { need: u32, free: u32 },
    #[error("needs {} memory, {} free", fmt_mib(*need_mib), fmt_mib(*free_mib))]
    Memory { need_mib: u64, free_mib: u64 },
    #[error("host does not reach pool {0}")]
    Pool(String),
    #[error("image {0} is not available on the host")]
    Image(String),
    #[error("VM is pinned to host {0}")]
    Pinned(String),
    #[error("host already runs a member of anti-affinity group {0}")]
    AntiAffinity(String),
    #[error("host does not run the members of affinity group {0}")]
    Affinity(String),
}

fn fmt_mib(mib: u64) -> String {
    crate::model::size::format_mib(mib)
}

/// `1 CPU`, `4 CPUs`.
pub(crate) fn cpus(n: u32) -> String {
    if n == 1 {
        "1 CPU".to_string()
    } else {
        format!("{n} CPUs")
    }
}

impl Reject {
    /// The reason's kind and the part of it that is the same for every host (the VM's need,
    /// not the host's free amount): `offline`, `maintenance`, `cpu:N`, `memory:MIB`,
    /// `pool:NAME`, `image:NAME`, `pinned:HOST`, `anti-affinity:GROUP`, `affinity:GROUP`.
    /// `Unschedulable` groups hosts by this key and its `Display` reads it back.
    pub fn key(&self) -> String {
        match self {
            Reject::Offline => "offline".to_string(),
            Reject::Maintenance => "maintenance".to_string(),
            Reject::Cpu { need, .. } => format!("cpu:{need}"),
            Reject::Memory { need_mib, .. } => format!("memory:{need_mib}"),
            Reject::Pool(p) => format!("pool:{p}"),
            Reject::Image(i) => format!("image:{i}"),
            Reject::Pinned(h) => format!("pinned:{h}"),
            Reject::AntiAffinity(g) => format!("anti-affinity:{g}"),
            Reject::Affinity(g) => format!("affinity:{g}"),
        }
    }

    /// True when both have the same `key()`, without building the strings.
    pub fn same_key(&self, other: &Reject) -> bool {
        match (self, other) {
            (Reject::Offline, Reject::Offline) | (Reject::Maintenance, Reject::Maintenance) => true,
            (Reject::Cpu { need: a, .. }, Reject::Cpu { need: b, .. }) => a == b,
            (Reject::Memory { need_mib: a, .. }, Reject::Memory { need_mib: b, .. }) => a == b,
            (Reject::Pool(a), Reject::Pool(b))
            | (Reject::Image(a), Reject::Image(b))
            | (Reject::Pinned(a), Reject::Pinned(b))
            | (Reject::AntiAffinity(a), Reject::AntiAffinity(b))
            | (Reject::Affinity(a), Reject::Affinity(b)) => a == b,
            _ => false,
        }
    }
}

pub fn online(h: &HostView) -> Result<(), Reject> {
    if h.online {
        Ok(())
    } else {
        Err(Reject::Offline)
    }
}

pub fn not_in_maintenance(h: &HostView) -> Result<(), Reject> {
    if h.maintenance {
        Err(Reject::Maintenance)
    } else {
        Ok(())
    }
}

pub fn pinned(h: &HostView, vm: &VmDemand) -> Result<(), Reject> {
    match &vm.host_pin {
        Some(pin) if *pin != h.name => Err(Reject::Pinned(pin.clone())),
        _ => Ok(()),
    }
}

/// Free CPUs are `floor(cpus × cpu_overcommit) − alloc_cpus`.
pub fn cpu(h: &HostView, vm: &VmDemand, p: &Policy) -> Result<(), Reject> {
    let free = h.free_cpus(p);
    if vm.cpus <= free {
        Ok(())
    } else {
        Err(Reject::Cpu {
            need: vm.cpus,
            free,
        })
    }
}

/// Free memory is `floor(memory_mib × memory_overcommit) − alloc_memory_mib`.
pub fn memory(h: &HostView, vm: &VmDemand, p: &Policy) -> Result<(), Reject> {
    let free = h.free_memory_mib(p);
    if vm.memory_mib <= free {
        Ok(())
    } else {
        Err(Reject::Memory {
            need_mib: vm.memory_mib,
            free_mib: free,
        })
    }
}

/// The host reaches every pool the VM's disks use; names the first (by name) it does not.
pub fn pools(h: &HostView, vm: &VmDemand) -> Result<(), Reject> {
    match vm.pools.iter().find(|p| !h.pools.contains(*p)) {
        Some(missing) => Err(Reject::Pool(missing.clone())),
        None => Ok(()),
    }
}

/// The VM's image is on a shared pool or present on the host.
pub fn image(h: &HostView, vm: &VmDemand, s: &Snapshot) -> Result<(), Reject> {
    let shared = vm
        .image
        .as_ref()
        .is_some_and(|i| s.shared_images.contains(i));
    image_given(h, vm, shared)
}

fn image_given(h: &HostView, vm: &VmDemand, shared: bool) -> Result<(), Reject> {
    match &vm.image {
        Some(i) if !shared && !h.images.contains(i) => Err(Reject::Image(i.clone())),
        _ => Ok(()),
    }
}

/// No member of the VM's anti-affinity group runs on the host yet.
pub fn anti_affinity(h: &HostView, vm: &VmDemand, s: &Snapshot) -> Result<(), Reject> {
    anti_affinity_given(h, group_of(vm.anti_affinity.as_deref(), s))
}

fn anti_affinity_given(h: &HostView, g: Option<(&str, &BTreeSet<String>)>) -> Result<(), Reject> {
    match g {
        Some((name, hosts)) if hosts.contains(&h.name) => {
            Err(Reject::AntiAffinity(name.to_string()))
        }
        _ => Ok(()),
    }
}

/// If members of the VM's affinity group run anywhere, the host is one of those hosts; the
/// first member of a group may go anywhere.
pub fn affinity(h: &HostView, vm: &VmDemand, s: &Snapshot) -> Result<(), Reject> {
    affinity_given(h, group_of(vm.affinity.as_deref(), s))
}

fn affinity_given(h: &HostView, g: Option<(&str, &BTreeSet<String>)>) -> Result<(), Reject> {
    match g {
        Some((name, hosts)) if !hosts.is_empty() && !hosts.contains(&h.name) => {
            Err(Reject::Affinity(name.to_string()))
        }
        _ => Ok(()),
    }
}

fn group_of<'a>(
    group: Option<&'a str>,
    s: &'a Snapshot,
) -> Option<(&'a str, &'a BTreeSet<String>)> {
    let name = group?;
    s.groups.get(name).map(|hosts| (name, hosts))
}

/// All filters for one VM, with its snapshot lookups done once. Reads from the snapshot only
/// `shared_images` and the VM's two entries in `groups`, never `hosts`.
#[derive(Debug, Clone)]
pub struct Filters<'a> {
    vm: &'a VmDemand,
    policy: &'a Policy,
    image_shared: bool,
    anti: Option<(&'a str, &'a BTreeSet<String>)>,
    aff: Option<(&'a str, &'a BTreeSet<String>)>,
}

impl<'a> Filters<'a> {
    pub fn new(s: &'a Snapshot, vm: &'a VmDemand, p: &'a Policy) -> Self {
        Filters {
            vm,
            policy: p,
            image_shared: vm
                .image
                .as_ref()
                .is_some_and(|i| s.shared_images.contains(i)),
            anti: group_of(vm.anti_affinity.as_deref(), s),
            aff: group_of(vm.affinity.as_deref(), s),
        }
    }

    /// The hosts the VM's affinity group already runs on, if that narrows the choice.
    pub fn affinity_hosts(&self) -> Option<&'a BTreeSet<String>> {
        self.aff.map(|(_, hosts)| hosts).filter(|h| !h.is_empty())
    }

    /// The first failing filter, cheapest first; `Ok` if the host may take the VM.
    pub fn check(&self, h: &HostView) -> Result<(), Reject> {
        pinned(h, self.vm)?;
        online(h)?;
        not_in_maintenance(h)?;
        cpu(h, self.vm, self.policy)?;
        memory(h, self.vm, self.policy)?;
        pools(h, self.vm)?;
        image_given(h, self.vm, self.image_shared)?;
        anti_affinity_given(h, self.anti)?;
        affinity_given(h, self.aff)
    }

    /// Every failing filter, for explanations. A host that is not the pinned host reports
    /// only `Pinned`: nothing else about it matters.
    pub fn each_reject(&self, h: &HostView, mut out: impl FnMut(Reject)) {
        if let Err(r) = pinned(h, self.vm) {
            out(r);
            return;
        }
        let results = [
            online(h),
            not_in_maintenance(h),
            cpu(h, self.vm, self.policy),
            memory(h, self.vm, self.policy),
            pools(h, self.vm),
            image_given(h, self.vm, self.image_shared),
            anti_affinity_given(h, self.anti),
            affinity_given(h, self.aff),
        ];
        for r in results.into_iter().filter_map(Result::err) {
            out(r);
        }
    }
}
