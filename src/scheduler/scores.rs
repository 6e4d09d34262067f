//! Soft scores: among the hosts that pass every filter, which is best? Each scorer is a pure
//! function of (host, VM, policy) giving a value in [0, 1], higher is better; `score` is their
//! weighted sum. Scores only rank hosts that already fit: they are never needed to validate a
//! placement, so `apply` does not compute them.
//!
//! Owns: the scorers and `score`. Uses: `snapshot`.
//!
//! Pure: no I/O, no clock, no randomness; callers break ties by host name.

use super::snapshot::{HostView, Policy, VmDemand};

/// 1 if the host already holds the VM's image locally (no copy to fetch, and the VM's disks
/// can sit next to their backing file), else 0. A VM without an image scores 0 everywhere.
pub fn image_locality(h: &HostView, vm: &VmDemand) -> f64 {
    match &vm.image {
        Some(i) if h.images.contains(i) => 1.0,
        _ => 0.0,
    }
}

/// CPU and memory utilisation (of the overcommitted capacity) after placing the VM, each
/// clamped to [0, 1]; a host with no capacity counts as full.
pub fn utilisation_after(h: &HostView, vm: &VmDemand, p: &Policy) -> (f64, f64) {
    let cpu = utilisation(
        u64::from(h.alloc_cpus) + u64::from(vm.cpus),
        u64::from(p.cpu_capacity(h.cpus)),
    );
    let mem = utilisation(
        h.alloc_memory_mib.saturating_add(vm.memory_mib),
        p.memory_capacity(h.memory_mib),
    );
    (cpu, mem)
}

/// `used / cap` clamped to [0, 1]; no capacity counts as full.
pub fn utilisation(used: u64, cap: u64) -> f64 {
    if cap == 0 {
        1.0
    } else {
        (used as f64 / cap as f64).clamp(0.0, 1.0)
    }
}

/// 1 when CPU and memory would be equally used after placement, falling to 0 when one is full
/// and the other empty: keeps hosts from running out of one resource with the other idle.
pub fn balance(h: &HostView, vm: &VmDemand, p: &Policy) -> f64 {
    let (cpu, mem) = utilisation_after(h, vm, p);
    1.0 - (cpu - mem).abs()
}

/// With `spread`, the host's free fraction after placement (mean of CPU and memory), so
/// emptier hosts win; without, its used fraction, so fuller hosts win (pack). That flips the
/// sign of the preference while staying in [0, 1], so the weights compare like with like.
pub fn spread(h: &HostView, vm: &VmDemand, p: &Policy) -> f64 {
    let (cpu, mem) = utilisation_after(h, vm, p);
    let used = (cpu + mem) / 2.0;
    if p.spread {
        1.0 - used
    } else {
        used
    }
}

/// The weighted sum of the scorers.
pub fn score(h: &HostView, vm: &VmDemand, p: &Policy) -> f64 {
    let (cpu, mem) = utilisation_after(h, vm, p);
    let local = image_locality(h, vm) > 0.0;
    weighted(local, cpu, mem, p)
}

/// The weighted sum from its inputs: whether the image is local and the CPU and memory
/// utilisation after placement. `score` and the batch index in `place` both end here, so
/// they compute bit-identical scores.
pub fn weighted(image_local: bool, cpu: f64, mem: f64, p: &Policy) -> f64 {
    let used = (cpu + mem) / 2.0;
    let spread = if p.spread { 1.0 - used } else { used };
    let locality = if image_local { 1.0 } else { 0.0 };
    p.weight_image_locality * locality
        + p.weight_balance * (1.0 - (cpu - mem).abs())
        + p.weight_spread * spread
}
