//! The reconcile loop: converge this host's libvirt to the VMs placed on it. Level-triggered:
//! it wakes when the applied index moves and every `RESYNC`, lists the VMs placed here and
//! the domains libvirt has, runs one `plan::step` per VM, and repeats while steps were taken.
//! Observed state goes back through Raft only when it changed. A failing VM backs off
//! (doubling up to `MAX_BACKOFF`) and is reported failed with libvirt's words, never spins.
//! On start it adopts the domains it knows (reboots carried out before are not repeated, and
//! one asked for while the daemon was down is carried out: `reboots` keeps them on disk) and
//! reports unknown domains into /Discovered. A domain Quantix did not define that holds the
//! name of a VM placed here is never touched; the VM reports the conflict.
//!
//! Owns: `spawn`, `Agent`. Uses: `cluster::Host`, `hypervisor`, `agent::{plan, desired, seed}`,
//! `state` (reads).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::desired::{self, Settings};
use super::plan::{self, Have, Memory, Step, Want};
use super::reboots::Reboots;
use crate::cluster::{ClusterError, Host};
use crate::hypervisor::domains::DomState;
use crate::hypervisor::{disks, domain_xml, Hypervisor};
use crate::model::vm::{BootMedia, Power, Status, Vm};
use crate::state::vms::VmCommand;
use crate::state::{images, placement, pools, specs, tables, vms, Command};

/// Longest time between two passes.
pub const RESYNC: Duration = Duration::from_secs(10);
/// Shortest time between two rounds of passes.
pub const MIN_GAP: Duration = Duration::from_millis(20);
/// Most passes in a row before waiting for news again.
const MAX_PASSES: usize = 8;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Per-VM memory that is not in the replicated state.
#[derive(Debug, Default)]
struct VmMemory {
    reboot_done: Option<u64>,
    shutdown_asked: Option<Instant>,
    failures: u32,
    retry_at: Option<Instant>,
    discovered: bool,
}

pub struct Agent {
    host: Host,
    hv: Hypervisor,
    settings: Settings,
    memory: BTreeMap<String, VmMemory>,
    reboots: Reboots,
}

/// Starts the loop; it waits until the host is a member.
pub fn spawn(host: Host, hv: Hypervisor, settings: Settings) -> tokio::task::JoinHandle<()> {
    let path = settings.state_dir.join("reboots.json");
    let reboots = Reboots::load(&path).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot read the reboot record; reboots asked for while this daemon was down are taken as done");
        Reboots::in_memory()
    });
    let mut agent = Agent {
        host,
        hv,
        settings,
        memory: BTreeMap::new(),
        reboots,
    };
    tokio::spawn(async move { agent.run().await })
}

impl Agent {
    async fn run(&mut self) {
        let mut applied = self.host.applied();
        loop {
            if self.host.is_member() {
                for _ in 0..MAX_PASSES {
                    match self.pass().await {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "reconcile pass failed; will retry");
                            break;
                        }
                    }
                }
            }
            let next_retry = self
                .memory
                .values()
                .filter_map(|m| m.retry_at)
                .min()
                .map(|t| t.saturating_duration_since(Instant::now()));
            let wait = next_retry.unwrap_or(RESYNC).min(RESYNC);
            // A busy log must not turn into a busy libvirt: passes are at least MIN_GAP apart.
            tokio::time::sleep(MIN_GAP).await;
            tokio::select! {
                changed = applied.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One pass; returns how many libvirt steps it took (0: converged or waiting).
    pub async fn pass(&mut self) -> Result<usize, ClusterError> {
        let me = self.host.name().to_string();
        let state = self.host.state()?;
        let internal = ClusterError::internal;
        let cluster = tables::cluster_info(&state)
            .map_err(internal)?
            .map(|c| c.id)
            .unwrap_or_default();
        let mut wanted: BTreeMap<String, Vm> = BTreeMap::new();
        for name in placement::placed_on(&state, &me).map_err(internal)? {
            if let Some(vm) = vms::get(&state, &name).map_err(internal)? {
                wanted.insert(name, vm);
            }
        }
        let domains = self
            .hv
            .list_domains()
            .await
            .map_err(ClusterError::internal)?;
        let mut have: BTreeMap<String, Have> = BTreeMap::new();
        for d in &domains {
            let meta = domain_xml::parse_meta(&d.xml).filter(|m| m.cluster == cluster);
            have.insert(
                d.name.clone(),
                Have {
                    state: d.state,
                    generation: meta.map(|m| m.generation),
                },
            );
        }
        metrics::gauge!("quantix_agent_vms").set(wanted.len() as f64);
        metrics::gauge!("quantix_agent_domains").set(have.len() as f64);
        let names: BTreeSet<String> = wanted.keys().chain(have.keys()).cloned().collect();
        let now = Instant::now();
        let mut taken = 0;
        for name in names {
            let vm = wanted.get(&name);
            let h = have.get(&name);
            let mem = self.memory.entry(name.clone()).or_default();
            if mem.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            // The reboots carried out are on disk. A VM with no record was never rebooted
            // here: a VM starts at reboot_seq 0 on the host it is placed on (VMs do not move),
            // so anything above that was asked for while this daemon could not act on it.
            if let (Some(v), None) = (vm, mem.reboot_done) {
                mem.reboot_done = Some(self.reboots.done_for(&name, v.reboot_seq));
            }
            let placed_elsewhere = vm.is_none()
                && vms::get(&state, &name)
                    .map_err(internal)?
                    .is_some_and(|v| v.placement.as_deref() != Some(me.as_str()));
            let want = vm.map(|v| Want {
                generation: v.generation,
                power: v.power,
                force_stop: v.force_stop,
                reboot_seq: v.reboot_seq,
                status: v.observed.status,
                reason: v.observed.reason.clone(),
                foreign: v.boot == BootMedia::Foreign,
            });
            if h.is_none_or(|h| h.state != DomState::Running) {
                mem.shutdown_asked = None;
            }
            let step = plan::step(
                &name,
                want.as_ref(),
                h,
                Memory {
                    reboot_done: mem.reboot_done.unwrap_or(0),
                    shutdown_asked_ms: mem.shutdown_asked.map(|t| t.elapsed().as_millis() as u64),
                    placed_elsewhere,
                },
            );
            if step == Step::Nothing || (step == Step::Discover && mem.discovered) {
                continue;
            }
            let span = tracing::info_span!("reconcile", host = %me, vm = %name, step = ?step);
            let started = Instant::now();
            let result = tracing::Instrument::instrument(
                self.act(&state, &cluster, &name, vm, h, &step),
                span,
            )
            .await;
            let outcome = if result.is_ok() { "ok" } else { "failed" };
            metrics::counter!("quantix_agent_steps_total", "step" => step.name(), "outcome" => outcome)
                .increment(1);
            metrics::histogram!("quantix_agent_step_seconds", "step" => step.name())
                .record(started.elapsed().as_secs_f64());
            let mem = self.memory.entry(name.clone()).or_default();
            match result {
                Ok(()) => {
                    mem.failures = 0;
                    mem.retry_at = None;
                    match &step {
                        Step::Reboot => {
                            mem.reboot_done = vm.map(|v| v.reboot_seq);
                            if let Some(v) = vm {
                                if let Err(e) = self.reboots.set(&name, v.reboot_seq) {
                                    tracing::warn!(vm = %name, error = %e, "cannot record the reboot");
                                }
                            }
                        }
                        Step::Shutdown => mem.shutdown_asked = Some(Instant::now()),
                        Step::Discover => mem.discovered = true,
                        Step::ReportRemoved | Step::DeleteOrphan => {
                            self.memory.remove(&name);
                            if let Err(e) = self.reboots.forget(&name) {
                                tracing::warn!(vm = %name, error = %e, "cannot record reboots");
                            }
                        }
                        _ => {}
                    }
                    if !matches!(
                        step,
                        Step::Report { .. } | Step::Discover | Step::ReportRemoved
                    ) {
                        taken += 1;
                    }
                }
                Err(e) => {
                    mem.failures += 1;
                    let backoff = Duration::from_millis(500)
                        .saturating_mul(1 << mem.failures.min(7))
                        .min(MAX_BACKOFF);
                    mem.retry_at = Some(Instant::now() + backoff);
                    tracing::warn!(vm = %name, error = %e, retry_in = ?backoff, "reconcile step failed");
                    if let Some(v) = vm {
                        let reason = e.to_string();
                        if v.observed.status != Status::Failed || v.observed.reason != reason {
                            self.observe(&name, Status::Failed, reason).await;
                        }
                    }
                }
            }
        }
        let backing_off = self
            .memory
            .values()
            .filter(|m| m.retry_at.is_some_and(|t| t > Instant::now()))
            .count();
        metrics::gauge!("quantix_agent_backoff_vms").set(backing_off as f64);
        Ok(taken)
    }

    async fn observe(&self, name: &str, status: Status, reason: String) {
        let cmd = Command::Vm(VmCommand::Observe {
            name: name.to_string(),
            host: self.host.name().to_string(),
            status,
            reason,
        });
        if let Err(e) = self.host.write(cmd, None).await {
            tracing::warn!(vm = %name, error = %e, "cannot report the VM's status");
        }
    }

    /// Carries out one step.
    async fn act(
        &self,
        state: &crate::state::redb_kv::RedbRead,
        cluster: &str,
        name: &str,
        vm: Option<&Vm>,
        have: Option<&Have>,
        step: &Step,
    ) -> Result<(), String> {
        let hv = &self.hv;
        let e = |e: crate::hypervisor::HypervisorError| e.to_string();
        match step {
            Step::Create | Step::Redefine => {
                let Some(vm) = vm else { return Ok(()) };
                let layout = self.layout(state, vm)?;
                if *step == Step::Create {
                    self.prepare(state, vm, &layout).await?;
                }
                let spec = desired::domain_spec(vm, &layout, &self.settings, cluster);
                let xml = domain_xml::render(&spec).map_err(|e| e.to_string())?;
                hv.define(&xml).await.map_err(e)
            }
            Step::Start => hv.start(name).await.map_err(e),
            Step::Shutdown => hv.shutdown(name).await.map_err(e),
            Step::Destroy => hv.destroy(name).await.map_err(e),
            Step::Pause => hv.pause(name).await.map_err(e),
            Step::Resume => hv.resume(name).await.map_err(e),
            Step::Reboot => hv.reboot(name).await.map_err(e),
            Step::Delete | Step::DeleteOrphan => {
                hv.undefine(name).await.map_err(e)?;
                if let Some(vm) = vm {
                    self.remove_files(state, vm).await?;
                }
                Ok(())
            }
            Step::ReportRemoved => {
                if let Some(vm) = vm {
                    self.remove_files(state, vm).await?;
                }
                let cmd = Command::Vm(VmCommand::Remove {
                    name: name.to_string(),
                    host: self.host.name().to_string(),
                });
                self.host
                    .write_ok(cmd, None)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            Step::Discover => {
                let Some(h) = have else { return Ok(()) };
                let Some(d) = hv.domain(name).await.map_err(e)? else {
                    return Ok(());
                };
                let (cpus, memory_mib) = discovered_shape(&d.xml);
                let cmd = Command::Vm(VmCommand::Discover {
                    name: name.to_string(),
                    host: self.host.name().to_string(),
                    cpus,
                    memory_mib,
                    power: match h.state {
                        DomState::Running | DomState::ShuttingDown => Power::Running,
                        DomState::Paused => Power::Paused,
                        DomState::ShutOff | DomState::Crashed | DomState::Other => Power::Stopped,
                    },
                });
                match self.host.write(cmd, None).await {
                    Ok(crate::state::Outcome::Rejected(r)) => {
                        tracing::info!(vm = %name, reason = %r.message, "domain not adopted");
                        Ok(())
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            }
            Step::Report { status, reason } => {
                self.observe(name, *status, reason.clone()).await;
                Ok(())
            }
            Step::Nothing => Ok(()),
        }
    }

    fn layout(
        &self,
        state: &crate::state::redb_kv::RedbRead,
        vm: &Vm,
    ) -> Result<desired::Layout, String> {
        desired::layout(
            vm,
            &self.settings,
            |p| pools::get(state, p).ok().flatten(),
            |i| images::get(state, i).ok().flatten(),
        )
    }

    /// Makes the disks and the seed ISO (each step idempotent).
    async fn prepare(
        &self,
        state: &crate::state::redb_kv::RedbRead,
        vm: &Vm,
        layout: &desired::Layout,
    ) -> Result<(), String> {
        for d in &layout.disks {
            match &d.backing {
                Some((backing, format)) => {
                    let format = disks::BackingFormat::parse(format).map_err(|e| e.to_string())?;
                    disks::create_overlay(backing, format, &d.path, d.size_mib).await
                }
                None => disks::create_empty(&d.path, d.size_mib).await,
            }
            .map_err(|e| e.to_string())?;
        }
        if let Some(path) = &layout.seed {
            let mut spec = match &vm.spec {
                Some(s) => specs::get(state, s).map_err(|e| e.to_string())?,
                None => None,
            };
            // Secrets are sealed in the state; only this render sees them in plain.
            if let Some(s) = spec.as_mut().filter(|s| s.config.has_sealed_secrets()) {
                let key = self.host.cluster_key().ok_or_else(|| {
                    format!(
                        "this host has no cluster key to open the secrets of spec {}",
                        s.name
                    )
                })?;
                s.config
                    .open_secrets(|b| key.open(b))
                    .map_err(|e| format!("spec {}: {e}", s.name))?;
            }
            let agent =
                desired::guest_agent_url(vm, &self.settings).map(|url| super::seed::AgentInstall {
                    url,
                    sha256: self.settings.guest_agent_sha256.clone(),
                });
            let seed = super::seed::render(vm, spec.as_ref(), agent.as_ref())
                .map_err(|e| e.to_string())?;
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            super::seed::write_iso(&seed, path)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn remove_files(
        &self,
        state: &crate::state::redb_kv::RedbRead,
        vm: &Vm,
    ) -> Result<(), String> {
        let layout = match self.layout(state, vm) {
            Ok(l) => l,
            // A pool or image record is gone: nothing of ours can be found there.
            Err(_) => return Ok(()),
        };
        for dir in &layout.dirs {
            // Every VM directory is `<parent>/<vm name>` (a pool's, or the scratch dir's).
            if let Some(parent) = dir.parent() {
                disks::remove_vm_files(parent, &vm.name)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

/// vCPUs and memory (MiB) of a foreign domain, from its XML; 1 and 64 MiB when unreadable.
fn discovered_shape(xml: &str) -> (u32, u64) {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return (1, 64);
    };
    let child = |tag: &str| doc.root_element().children().find(|n| n.has_tag_name(tag));
    let cpus = child("vcpu")
        .and_then(|n| n.text()?.trim().parse().ok())
        .unwrap_or(1u32);
    let memory_mib = child("memory")
        .and_then(|n| {
            let v: u64 = n.text()?.trim().parse().ok()?;
            Some(match n.attribute("unit").unwrap_or("KiB") {
                "MiB" | "M" => v,
                "GiB" | "G" => v * 1024,
                "b" | "bytes" => v / (1024 * 1024),
                _ => v / 1024, // KiB, libvirt's default unit
            })
        })
        .unwrap_or(64)
        .max(64);
    (cpus.max(1), memory_mib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovered_shapes() {
        assert_eq!(
            discovered_shape("<domain><memory unit='KiB'>2097152</memory><vcpu placement='static'>2</vcpu></domain>"),
            (2, 2048)
        );
        assert_eq!(
            discovered_shape("<domain><memory unit='MiB'>512</memory><vcpu>1</vcpu></domain>"),
            (1, 512)
        );
        assert_eq!(discovered_shape("<domain/>"), (1, 64));
    }
}
