//! Tests of the pure placement core: a table per filter and scorer, the `Unschedulable`
//! summary text, `place` and `place_batch` cases, and proptest properties over random clusters
//! and VM sequences (capacity, groups, `fits` agreement, completeness, determinism).

use std::collections::{BTreeMap, BTreeSet};

use super::filters::{self, Filters, Reject};
use super::place::{
    batch_order, bench_place, best_host, explain, fits, place, place_batch, Unschedulable,
};
use super::scores;
use super::snapshot::{HostView, Policy, Snapshot, VmDemand};

/// A filter's expected answer.
type Want = Result<(), Reject>;
/// A list of names in a table row.
type Names = &'static [&'static str];
/// Groups in a table row: group -> hosts running a member.
type GroupRows = &'static [(&'static str, Names)];

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// An online 8-CPU, 16 GiB host reaching pool `local`, nothing allocated.
fn host(name: &str) -> HostView {
    HostView {
        name: name.to_string(),
        online: true,
        maintenance: false,
        cpus: 8,
        memory_mib: 16384,
        pools: set(&["local"]),
        ..HostView::default()
    }
}

/// A 2-CPU, 2 GiB VM on pool `local`, no other constraint.
fn vm(name: &str) -> VmDemand {
    VmDemand {
        name: name.to_string(),
        cpus: 2,
        memory_mib: 2048,
        pools: set(&["local"]),
        ..VmDemand::default()
    }
}

fn snapshot(hosts: Vec<HostView>) -> Snapshot {
    let mut s = Snapshot::default();
    for h in hosts {
        s.insert_host(h);
    }
    s
}

fn no_overcommit() -> Policy {
    Policy {
        cpu_overcommit: 1.0,
        memory_overcommit: 1.0,
        ..Policy::default()
    }
}

mod batch_and_properties;
mod scoring;
mod tables;
