//! Keeps this host's inventory in the replicated state: its capacity and free memory from
//! libvirt (`HostCommand::ReportInventory`) and its view of every pool (`PoolCommand::Observe`),
//! sent at start and whenever they change, never when they do not (free memory only when it
//! moves by more than 1/16 of the host's memory). The scheduler reads both.
//!
//! It looks again when the applied index moves (a pool was created or changed) and every
//! `RECHECK`, at most once per `MIN_GAP`. Capacity is asked of libvirt at most every `RECHECK`.
//! Owns: `spawn`, `report_once`. Uses: `cluster::Host`, `hypervisor`, `pool_check`, `state`.

use std::time::{Duration, Instant};

use super::nfs::Mounter;
use super::pool_check;
use crate::cluster::{ClusterError, Host};
use crate::hypervisor::Hypervisor;
use crate::state::hosts::{self, HostCommand};
use crate::state::pools::{self, PoolCommand};
use crate::state::Command;

/// Longest time between two looks.
pub const RECHECK: Duration = Duration::from_secs(15);
/// Shortest time between two looks.
pub const MIN_GAP: Duration = Duration::from_millis(500);

/// What one look sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// libvirt was asked (the host is recorded and the call succeeded).
    pub checked_capacity: bool,
    pub capacity: bool,
    pub pools: Vec<String>,
}

/// Starts the reporter; it waits until the host is a member of a cluster.
pub fn spawn(host: Host, hv: Hypervisor) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { run(host, hv).await })
}

async fn run(host: Host, hv: Hypervisor) {
    let mut applied = host.applied();
    let mut last_capacity: Option<Instant> = None;
    let mut mounter = Some(Mounter::default());
    loop {
        if host.is_member() {
            let ask_libvirt = last_capacity.is_none_or(|t| t.elapsed() >= RECHECK);
            match report_once(&host, &hv, ask_libvirt, &mut mounter).await {
                Ok(sent) => {
                    if ask_libvirt && sent.checked_capacity {
                        last_capacity = Some(Instant::now());
                    }
                    if sent.capacity || !sent.pools.is_empty() {
                        tracing::info!(capacity = sent.capacity, pools = ?sent.pools, "inventory reported");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "inventory report failed; will retry"),
            }
        }
        tokio::time::sleep(MIN_GAP).await;
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(RECHECK) => {}
        }
    }
}

/// One look: compares what the host sees with what the state says and proposes the
/// differences. `ask_libvirt`: also read capacity from libvirt.
pub async fn report_once(
    host: &Host,
    hv: &Hypervisor,
    ask_libvirt: bool,
    mounter: &mut Option<Mounter>,
) -> Result<Sent, ClusterError> {
    let me = host.name().to_string();
    let (stored, pool_list) = {
        let state = host.state()?;
        // Only the inventory: `hosts::get` would also decode every pool, read just below.
        let stored =
            match crate::state::tables::host(&state, &me).map_err(ClusterError::internal)? {
                Some(_) => Some(hosts::inventory(&state, &me).map_err(ClusterError::internal)?),
                None => None,
            };
        (stored, pools::list(&state).map_err(ClusterError::internal)?)
    };
    let Some(stored) = stored else {
        // Not recorded as a host yet (joining): nothing to report against.
        return Ok(Sent::default());
    };
    let mut sent = Sent::default();
    if ask_libvirt {
        match hv.capacity().await {
            Ok(cap) if capacity_changed(&stored, &cap) => {
                sent.checked_capacity = true;
                host.write_ok(
                    Command::Host(HostCommand::ReportInventory {
                        host: me.clone(),
                        cpus: cap.cpus,
                        memory_mib: cap.memory_mib,
                        free_memory_mib: cap.free_memory_mib,
                    }),
                    None,
                )
                .await?;
                sent.capacity = true;
            }
            Ok(_) => sent.checked_capacity = true,
            Err(e) => tracing::warn!(error = %e, "cannot read host capacity from libvirt"),
        }
    }
    let specs: Vec<_> = pool_list.iter().map(|p| p.spec.clone()).collect();
    let mut m = mounter.take().unwrap_or_default();
    let m = tokio::task::spawn_blocking(move || {
        m.release_gone(&specs);
        m
    })
    .await
    .map_err(ClusterError::internal)?;
    *mounter = Some(m);
    for pool in pool_list {
        let spec = pool.spec.clone();
        let name = me.clone();
        // Mounting may take seconds: off the async threads, the mounter moved in and back.
        let mut m = mounter.take().unwrap_or_default();
        let (m, seen) = tokio::task::spawn_blocking(move || {
            let seen = match m.ensure(&spec, &name) {
                Ok(()) => pool_check::check(&spec, &name),
                Err(reason) => pool_check::Seen::unreachable(reason),
            };
            (m, seen)
        })
        .await
        .map_err(ClusterError::internal)?;
        *mounter = Some(m);
        if !pool_check::worth_reporting(pool.hosts.get(&me), &seen) {
            continue;
        }
        host.write_ok(
            Command::Pool(PoolCommand::Observe {
                pool: pool.spec.name.clone(),
                host: me.clone(),
                reachable: seen.reachable,
                reason: seen.reason,
                capacity_mib: seen.capacity_mib,
                free_mib: seen.free_mib,
            }),
            None,
        )
        .await?;
        sent.pools.push(pool.spec.name);
    }
    Ok(sent)
}

/// Whether libvirt's view differs enough from the stored inventory to be worth a Raft write:
/// any change of CPUs or memory; free memory appearing, going, or moving by more than 1/16 of
/// the memory (free memory moves all the time on a real host).
fn capacity_changed(
    stored: &crate::model::host::HostInventory,
    cap: &crate::hypervisor::NodeCapacity,
) -> bool {
    if cap.cpus != stored.cpus || cap.memory_mib != stored.memory_mib {
        return true;
    }
    match (stored.free_memory_mib, cap.free_memory_mib) {
        (Some(a), Some(b)) => a.abs_diff(b) > cap.memory_mib / 16,
        (a, b) => a.is_some() != b.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypervisor::NodeCapacity;
    use crate::model::host::HostInventory;

    #[test]
    fn only_real_changes_are_reported() {
        let stored = HostInventory {
            cpus: 8,
            memory_mib: 16384,
            free_memory_mib: Some(8000),
            ..HostInventory::default()
        };
        let cap = |cpus, memory_mib, free| NodeCapacity {
            cpus,
            memory_mib,
            free_memory_mib: free,
        };
        let cases = [
            (cap(8, 16384, Some(8000)), false, "same"),
            (
                cap(8, 16384, Some(8900)),
                false,
                "free moved by less than 1/16",
            ),
            (
                cap(8, 16384, Some(9100)),
                true,
                "free moved by more than 1/16",
            ),
            (cap(8, 16384, None), true, "free no longer known"),
            (cap(16, 16384, Some(8000)), true, "cpus"),
            (cap(8, 32768, Some(8000)), true, "memory"),
        ];
        for (c, want, what) in cases {
            assert_eq!(capacity_changed(&stored, &c), want, "{what}");
        }
    }
}
