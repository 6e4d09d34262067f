//! The index `place_batch` scans: the snapshot's hosts flattened into contiguous rows (usable
//! flag, capacity after overcommit, allocation) with pools, local images and group membership
//! as bitsets over host positions. It answers exactly what `Filters::check` and
//! `scores::score` answer for the same snapshot, only without string comparisons or pointer
//! chasing per host: the tests replay every batch against `fits` and `place` to hold it to
//! that. It decides only successes; explaining a VM no host takes is left to `explain` on the
//! snapshot, which `place_batch` keeps in step.
//!
//! Pure: no I/O, no clock, no randomness. Host positions follow `Snapshot::hosts` order (by
//! name), so scanning positions in order breaks ties by name as `place` does.

use std::collections::{BTreeMap, BTreeSet};

use crate::scheduler::scores;
use crate::scheduler::snapshot::{Policy, Snapshot, VmDemand};

struct Row {
    /// Online and not in maintenance.
    usable: bool,
    cpu_cap: u32,
    alloc_cpus: u32,
    mem_cap: u64,
    alloc_mem: u64,
}

/// A fixed-width bitset per host, all hosts in one vector.
struct Bits {
    words: usize,
    data: Vec<u64>,
}

impl Bits {
    fn new(hosts: usize, width: usize) -> Self {
        let words = width.div_ceil(64).max(1);
        Bits {
            words,
            data: vec![0; hosts * words],
        }
    }

    fn set(&mut self, host: usize, bit: usize) {
        self.data[host * self.words + bit / 64] |= 1 << (bit % 64);
    }

    fn get(&self, host: usize, bit: usize) -> bool {
        self.data[host * self.words + bit / 64] & (1 << (bit % 64)) != 0
    }

    /// The host has every bit of `mask` (`words` long).
    fn has_all(&self, host: usize, mask: &[u64]) -> bool {
        let row = &self.data[host * self.words..(host + 1) * self.words];
        row.iter()
            .zip(mask)
            .all(|(have, need)| have & need == *need)
    }
}

/// Hosts that run a member of a group, by position. `any` is true when the snapshot names a
/// host for the group at all, even one it does not hold (which affinity must still honour).
struct Group {
    any: bool,
    hosts: Vec<u64>,
}

impl Group {
    fn has(&self, host: usize) -> bool {
        self.hosts[host / 64] & (1 << (host % 64)) != 0
    }

    fn add(&mut self, host: usize) {
        self.any = true;
        self.hosts[host / 64] |= 1 << (host % 64);
    }

    fn members(&self) -> impl Iterator<Item = usize> + '_ {
        self.hosts.iter().enumerate().flat_map(|(w, &word)| {
            (0..64)
                .filter(move |b| word & (1 << b) != 0)
                .map(move |b| w * 64 + b)
        })
    }
}

pub(super) struct Table {
    names: Vec<String>,
    rows: Vec<Row>,
    pool_ids: BTreeMap<String, usize>,
    pools: Bits,
    image_ids: BTreeMap<String, usize>,
    images: Bits,
    /// Loaded from the snapshot on first use, then kept up to date by `commit`.
    groups: BTreeMap<String, Group>,
}

fn intern<'a>(names: impl Iterator<Item = &'a String>) -> BTreeMap<String, usize> {
    let all: BTreeSet<&String> = names.collect();
    all.into_iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect()
}

impl Table {
    pub(super) fn new(s: &Snapshot, p: &Policy) -> Self {
        let n = s.hosts.len();
        let pool_ids = intern(s.hosts.values().flat_map(|h| &h.pools));
        let image_ids = intern(s.hosts.values().flat_map(|h| &h.images));
        let mut pools = Bits::new(n, pool_ids.len());
        let mut images = Bits::new(n, image_ids.len());
        let mut rows = Vec::with_capacity(n);
        for (i, h) in s.hosts.values().enumerate() {
            for id in h.pools.iter().filter_map(|x| pool_ids.get(x)) {
                pools.set(i, *id);
            }
            for id in h.images.iter().filter_map(|x| image_ids.get(x)) {
                images.set(i, *id);
            }
            rows.push(Row {
                usable: h.online && !h.maintenance,
                cpu_cap: p.cpu_capacity(h.cpus),
                alloc_cpus: h.alloc_cpus,
                mem_cap: p.memory_capacity(h.memory_mib),
                alloc_mem: h.alloc_memory_mib,
            });
        }
        Table {
            names: s.hosts.values().map(|h| h.name.clone()).collect(),
            rows,
            pool_ids,
            pools,
            image_ids,
            images,
            groups: BTreeMap::new(),
        }
    }

    pub(super) fn name(&self, host: usize) -> &str {
        &self.names[host]
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.names.binary_search_by(|n| n.as_str().cmp(name)).ok()
    }

    fn load_group(&mut self, s: &Snapshot, name: &str) {
        if self.groups.contains_key(name) {
            return;
        }
        let mut g = Group {
            any: false,
            hosts: vec![0; self.names.len().div_ceil(64).max(1)],
        };
        if let Some(hosts) = s.groups.get(name) {
            g.any = !hosts.is_empty();
            for pos in hosts.iter().filter_map(|h| self.position(h)) {
                g.add(pos);
            }
        }
        self.groups.insert(name.to_string(), g);
    }

    /// The best host for `vm` by the rules of `place::best_host`, as a position; `None` when
    /// no host passes the filters.
    pub(super) fn best(&mut self, s: &Snapshot, vm: &VmDemand, p: &Policy) -> Option<usize> {
        let mut need_pools = vec![0u64; self.pools.words];
        for pool in &vm.pools {
            // A pool no host reaches: nothing fits.
            let id = *self.pool_ids.get(pool)?;
            need_pools[id / 64] |= 1 << (id % 64);
        }
        let (image_required, image_id) = match &vm.image {
            None => (false, None),
            Some(i) => {
                let id = self.image_ids.get(i).copied();
                let shared = s.shared_images.contains(i);
                if !shared && id.is_none() {
                    return None;
                }
                (!shared, id)
            }
        };
        for g in [&vm.anti_affinity, &vm.affinity].into_iter().flatten() {
            self.load_group(s, g);
        }
        let anti = vm.anti_affinity.as_ref().and_then(|g| self.groups.get(g));
        let aff = vm
            .affinity
            .as_ref()
            .and_then(|g| self.groups.get(g))
            .filter(|g| g.any);

        let mut best: Option<(usize, f64)> = None;
        let mut consider = |i: usize| {
            let r = &self.rows[i];
            let fits = r.usable
                && vm.cpus <= r.cpu_cap.saturating_sub(r.alloc_cpus)
                && vm.memory_mib <= r.mem_cap.saturating_sub(r.alloc_mem)
                && self.pools.has_all(i, &need_pools)
                && (!image_required || image_id.is_some_and(|id| self.images.get(i, id)))
                && !anti.is_some_and(|g| g.has(i))
                && aff.is_none_or(|g| g.has(i));
            if !fits {
                return;
            }
            let local = image_id.is_some_and(|id| self.images.get(i, id));
            let cpu = scores::utilisation(
                u64::from(r.alloc_cpus) + u64::from(vm.cpus),
                u64::from(r.cpu_cap),
            );
            let mem = scores::utilisation(r.alloc_mem.saturating_add(vm.memory_mib), r.mem_cap);
            let score = scores::weighted(local, cpu, mem, p);
            if best.is_none_or(|(_, b)| score.total_cmp(&b).is_gt()) {
                best = Some((i, score));
            }
        };
        if let Some(pin) = &vm.host_pin {
            consider(self.position(pin)?);
        } else if let Some(g) = aff {
            for i in g.members() {
                consider(i);
            }
        } else {
            for i in 0..self.rows.len() {
                consider(i);
            }
        }
        best.map(|(i, _)| i)
    }

    /// Records `vm` on the host at `host`, as `Snapshot::assign` does.
    pub(super) fn commit(&mut self, s: &Snapshot, host: usize, vm: &VmDemand) {
        let r = &mut self.rows[host];
        r.alloc_cpus = r.alloc_cpus.saturating_add(vm.cpus);
        r.alloc_mem = r.alloc_mem.saturating_add(vm.memory_mib);
        for g in [&vm.anti_affinity, &vm.affinity].into_iter().flatten() {
            self.load_group(s, g);
            if let Some(group) = self.groups.get_mut(g) {
                group.add(host);
            }
        }
    }
}
