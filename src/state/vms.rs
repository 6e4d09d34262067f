//! VM commands (`VmCommand`), their apply, and VM queries. VMs are stored by name (unique in
//! the cluster; it is also the libvirt domain name). Invariants kept here: names unique,
//! every reference (folder, spec, images, pools, pinned host) exists when the VM is created
//! or moved, CPU/memory change and rename only while the VM is stopped.
//! May use: `model`, `state::{kv, tables, folders, refs}`.

use serde::{Deserialize, Serialize};

use super::command::{Applied, Outcome, RejectKind};
use super::kv::{Kv, KvError, KvRead, Table};
use super::refs::Ref;
use super::{folders, tables};
use crate::model::vm::{BootMedia, Observed, Power, Status, Vm};
use crate::model::{FolderId, FolderPath, UnixMillis};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmCommand {
    /// `vm.id`, `vm.folder`, `vm.observed` and the times are set by apply.
    Create {
        vm: Box<Vm>,
        folder: String,
    },
    Update {
        name: String,
        cpus: Option<u32>,
        memory_mib: Option<u64>,
        new_name: Option<String>,
        folder: Option<String>,
    },
    Power {
        name: String,
        action: PowerAction,
    },
    /// Removes the record at once if no host holds the VM; otherwise asks its host to.
    Delete {
        name: String,
    },
    /// A host reports what it sees of a VM placed on it.
    Observe {
        name: String,
        host: String,
        status: Status,
        reason: String,
    },
    /// The VM's host removed its domain and disks after a delete.
    Remove {
        name: String,
        host: String,
    },
    /// The leader's scheduler places a pending VM; re-validated in apply (see `placement`).
    Place {
        name: String,
        host: String,
        generation: u64,
    },
    /// A host found a libvirt domain Quantix did not create (see `state::discover`).
    Discover {
        name: String,
        host: String,
        cpus: u32,
        memory_mib: u64,
        /// What the domain is doing: running, paused or stopped (kept as the VM's power).
        power: Power,
    },
    /// The leader's scheduler says why a pending VM cannot be placed yet.
    Unschedulable {
        name: String,
        generation: u64,
        reason: String,
    },
    /// A host relays what the guest agent of a VM placed on it reported (`state::guest`).
    Guest {
        name: String,
        host: String,
        info: crate::model::guest::GuestInfo,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerAction {
    Start,
    Stop { force: bool },
    Reboot,
    Pause,
    Resume,
}

impl VmCommand {
    pub fn kind(&self) -> &'static str {
        match self {
            VmCommand::Create { .. } => "create_vm",
            VmCommand::Update { .. } => "update_vm",
            VmCommand::Power { action, .. } => match action {
                PowerAction::Start => "start_vm",
                PowerAction::Stop { force: false } => "stop_vm",
                PowerAction::Stop { force: true } => "force_stop_vm",
                PowerAction::Reboot => "reboot_vm",
                PowerAction::Pause => "pause_vm",
                PowerAction::Resume => "resume_vm",
            },
            VmCommand::Delete { .. } => "delete_vm",
            VmCommand::Observe { .. } => "observe_vm",
            VmCommand::Remove { .. } => "remove_vm",
            VmCommand::Place { .. } => "place_vm",
            VmCommand::Discover { .. } => "discover_vm",
            VmCommand::Unschedulable { .. } => "vm_unschedulable",
            VmCommand::Guest { .. } => "guest_report",
        }
    }

    pub fn target(&self) -> String {
        match self {
            VmCommand::Create { vm, .. } => vm.name.clone(),
            VmCommand::Update { name, .. }
            | VmCommand::Power { name, .. }
            | VmCommand::Delete { name }
            | VmCommand::Observe { name, .. }
            | VmCommand::Remove { name, .. }
            | VmCommand::Place { name, .. }
            | VmCommand::Discover { name, .. }
            | VmCommand::Unschedulable { name, .. }
            | VmCommand::Guest { name, .. } => name.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmApplied {
    Created(Box<Vm>),
    Updated(Box<Vm>),
    /// `removed`: the record is gone; otherwise its host is removing the VM.
    Deleted {
        removed: bool,
    },
    Observed,
}

fn reject(kind: RejectKind, msg: impl Into<String>) -> Result<Outcome, KvError> {
    Ok(Outcome::reject(kind, msg))
}

fn done(a: VmApplied) -> Result<Outcome, KvError> {
    Ok(Outcome::Applied(Applied::Vm(a)))
}

pub fn get(kv: &impl KvRead, name: &str) -> Result<Option<Vm>, KvError> {
    tables::get(kv, Table::Vms, "vm", name.as_bytes())
}

fn put(kv: &mut impl Kv, vm: &Vm) -> Result<(), KvError> {
    tables::put(kv, Table::Vms, vm.name.as_bytes(), vm)
}

pub fn apply(kv: &mut impl Kv, at: UnixMillis, cmd: &VmCommand) -> Result<Outcome, KvError> {
    match cmd {
        VmCommand::Create { vm, folder } => create(kv, at, vm, folder),
        VmCommand::Update {
            name,
            cpus,
            memory_mib,
            new_name,
            folder,
        } => update(
            kv,
            at,
            name,
            *cpus,
            *memory_mib,
            new_name.as_deref(),
            folder.as_deref(),
        ),
        VmCommand::Power { name, action } => power(kv, at, name, *action),
        VmCommand::Delete { name } => delete(kv, at, name),
        VmCommand::Observe {
            name,
            host,
            status,
            reason,
        } => observe(kv, at, name, host, *status, reason),
        VmCommand::Remove { name, host } => remove(kv, name, host),
        VmCommand::Place {
            name,
            host,
            generation,
        } => super::placement::place(kv, at, name, host, *generation),
        VmCommand::Unschedulable {
            name,
            generation,
            reason,
        } => super::placement::unschedulable(kv, at, name, *generation, reason),
        VmCommand::Discover {
            name,
            host,
            cpus,
            memory_mib,
            power: p,
        } => super::discover::discover(kv, at, name, host, *cpus, *memory_mib, *p),
        VmCommand::Guest { name, host, info } => super::guest::record(kv, at, name, host, info),
    }
}

fn resolve_folder(kv: &impl KvRead, path: &str) -> Result<Result<FolderId, String>, KvError> {
    let p = match FolderPath::parse("folder", path) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e.to_string())),
    };
    Ok(folders::resolve(kv, &p)?.ok_or_else(|| format!("folder {p} does not exist")))
}

/// The first reference of `vm` that does not exist, as a message.
fn missing_reference(kv: &impl KvRead, vm: &Vm) -> Result<Option<String>, KvError> {
    if let Some(spec) = &vm.spec {
        if kv.get(Table::Specs, spec.as_bytes())?.is_none() {
            return Ok(Some(format!("customization spec {spec} does not exist")));
        }
    }
    let mut images: Vec<&str> = vm.disks.iter().filter_map(|d| d.image.as_deref()).collect();
    match &vm.boot {
        BootMedia::CloudImage(i) | BootMedia::Iso(i) => images.push(i),
        BootMedia::Pxe | BootMedia::Foreign => {}
    }
    for image in images {
        if kv.get(Table::Images, image.as_bytes())?.is_none() {
            return Ok(Some(format!("image {image} does not exist")));
        }
    }
    for d in &vm.disks {
        if kv.get(Table::Pools, d.pool.as_bytes())?.is_none() {
            return Ok(Some(format!("storage pool {} does not exist", d.pool)));
        }
    }
    if let Some(h) = &vm.host_pin {
        if tables::host(kv, h)?.is_none() {
            return Ok(Some(format!("host {h} is not a member of the cluster")));
        }
    }
    Ok(None)
}

fn create(kv: &mut impl Kv, at: UnixMillis, vm: &Vm, folder: &str) -> Result<Outcome, KvError> {
    if let Err(e) = vm.validate() {
        return reject(RejectKind::InvalidArgument, e.to_string());
    }
    if vm.boot == BootMedia::Foreign {
        return reject(
            RejectKind::InvalidArgument,
            "boot: only a host's discovery report makes a foreign VM",
        );
    }
    // An empty disk pool is the backing image's pool, read at this log position.
    let mut vm = vm.clone();
    for (index, d) in vm.disks.iter_mut().enumerate() {
        if d.pool.is_empty() {
            let image = d.image.as_deref().unwrap_or_default();
            match super::images::get(kv, image)? {
                Some(img) => d.pool = img.spec.pool,
                None => {
                    return reject(
                        RejectKind::NotFound,
                        format!("disk {index}: image {image} does not exist"),
                    )
                }
            }
        }
    }
    let vm = &vm;
    if get(kv, &vm.name)?.is_some() {
        return reject(
            RejectKind::AlreadyExists,
            format!("vm {} already exists", vm.name),
        );
    }
    let folder = match resolve_folder(kv, folder)? {
        Ok(f) => f,
        Err(msg) => return reject(RejectKind::NotFound, msg),
    };
    if let Some(msg) = missing_reference(kv, vm)? {
        return reject(RejectKind::NotFound, msg);
    }
    if matches!(vm.power, Power::Deleted) {
        return reject(
            RejectKind::InvalidArgument,
            "a new vm's power state must be running, stopped or paused",
        );
    }
    let reason = match vm.scheduled_at {
        Some(t) if t > at => format!("scheduled for {}", super::cluster::rfc3339(t)),
        _ => "waiting for the scheduler to place it".to_string(),
    };
    let new = Vm {
        id: tables::next_id(kv)?,
        folder,
        placement: None,
        reboot_seq: 0,
        observed: Observed {
            status: Status::Pending,
            reason,
            host: None,
            at,
        },
        generation: 1,
        created_at: at,
        updated_at: at,
        ..vm.clone()
    };
    if let Err(msg) = super::placement::on_create(kv, &new)? {
        return reject(RejectKind::InvalidArgument, msg);
    }
    put(kv, &new)?;
    done(VmApplied::Created(Box::new(new)))
}

/// Stopped for the purpose of changing hardware: wanted stopped and not seen running.
fn is_stopped(vm: &Vm) -> bool {
    vm.power == Power::Stopped
        && matches!(
            vm.observed.status,
            Status::Stopped | Status::Pending | Status::Failed
        )
}

fn update(
    kv: &mut impl Kv,
    at: UnixMillis,
    name: &str,
    cpus: Option<u32>,
    memory_mib: Option<u64>,
    new_name: Option<&str>,
    folder: Option<&str>,
) -> Result<Outcome, KvError> {
    let Some(mut vm) = get(kv, name)? else {
        return reject(RejectKind::NotFound, format!("vm {name} does not exist"));
    };
    if vm.power == Power::Deleted {
        return reject(
            RejectKind::FailedPrecondition,
            format!("vm {name} is being deleted"),
        );
    }
    let hardware =
        cpus.is_some_and(|c| c != vm.cpus) || memory_mib.is_some_and(|m| m != vm.memory_mib);
    let renamed = new_name.is_some_and(|n| n != vm.name);
    if (hardware || renamed) && !is_stopped(&vm) {
        let what = if hardware {
            "cpus and memory"
        } else {
            "the name"
        };
        return reject(
            RejectKind::FailedPrecondition,
            format!(
                "vm {name} must be stopped to change {what} (it is {})",
                vm.observed.status.as_str()
            ),
        );
    }
    if let Err(e) = crate::model::vm::validate_shape(
        cpus.unwrap_or(vm.cpus),
        memory_mib.unwrap_or(vm.memory_mib),
    ) {
        return reject(RejectKind::InvalidArgument, e.to_string());
    }
    let old = vm.clone();
    vm.cpus = cpus.unwrap_or(vm.cpus);
    vm.memory_mib = memory_mib.unwrap_or(vm.memory_mib);
    if let Some(path) = folder {
        match resolve_folder(kv, path)? {
            Ok(f) => vm.folder = f,
            Err(msg) => return reject(RejectKind::NotFound, msg),
        }
    }
    let rename = new_name.filter(|n| *n != vm.name);
    if let (Some(_), Some(host)) = (rename, &vm.placement) {
        // The domain and its files on the host are named after the VM; until the agent can
        // rename them, a rename would orphan them.
        return reject(
            RejectKind::FailedPrecondition,
            format!("vm {name} is placed on host {host}; a placed VM cannot be renamed yet"),
        );
    }
    if let Some(n) = rename {
        if let Err(e) = crate::model::names::validate_label("vm name", n) {
            return reject(RejectKind::InvalidArgument, e.to_string());
        }
        if crate::model::vm::RESERVED_NAMES.contains(&n) {
            return reject(
                RejectKind::InvalidArgument,
                crate::model::vm::VmError::Reserved(n.to_string()).to_string(),
            );
        }
        if get(kv, n)?.is_some() {
            return reject(RejectKind::AlreadyExists, format!("vm {n} already exists"));
        }
    }
    // The last check; only writes follow it, so a refusal leaves nothing half-done.
    if hardware {
        if let Err(msg) = super::placement::on_resize(kv, &old, &vm)? {
            return reject(RejectKind::FailedPrecondition, msg);
        }
    }
    if let Some(n) = rename {
        kv.delete(Table::Vms, vm.name.as_bytes())?;
        vm.name = n.to_string();
        super::placement::on_rename(kv, &old.name, &vm)?;
    }
    vm.generation += 1;
    vm.updated_at = at;
    put(kv, &vm)?;
    done(VmApplied::Updated(Box::new(vm)))
}

fn power(
    kv: &mut impl Kv,
    at: UnixMillis,
    name: &str,
    action: PowerAction,
) -> Result<Outcome, KvError> {
    let Some(mut vm) = get(kv, name)? else {
        return reject(RejectKind::NotFound, format!("vm {name} does not exist"));
    };
    let refuse = |why: &str| reject(RejectKind::FailedPrecondition, format!("vm {name} {why}"));
    match (action, vm.power) {
        (_, Power::Deleted) => return refuse("is being deleted"),
        (PowerAction::Start, _) => vm.power = Power::Running,
        (PowerAction::Stop { force }, _) => {
            vm.power = Power::Stopped;
            vm.force_stop = force;
        }
        (PowerAction::Reboot, Power::Running) => vm.reboot_seq += 1,
        (PowerAction::Reboot, _) => return refuse("is not running; start it instead"),
        (PowerAction::Pause, Power::Running) => vm.power = Power::Paused,
        (PowerAction::Pause, _) => return refuse("is not running, so it cannot be paused"),
        (PowerAction::Resume, Power::Paused) => vm.power = Power::Running,
        (PowerAction::Resume, _) => return refuse("is not paused"),
    }
    vm.generation += 1;
    vm.updated_at = at;
    put(kv, &vm)?;
    done(VmApplied::Updated(Box::new(vm)))
}

fn delete(kv: &mut impl Kv, at: UnixMillis, name: &str) -> Result<Outcome, KvError> {
    let Some(mut vm) = get(kv, name)? else {
        return reject(RejectKind::NotFound, format!("vm {name} does not exist"));
    };
    match &vm.placement {
        None => {
            super::placement::on_forget(kv, &vm)?;
            kv.delete(Table::Vms, name.as_bytes())?;
            done(VmApplied::Deleted { removed: true })
        }
        Some(host) => {
            vm.observed.reason = format!("waiting for host {host} to remove it");
            vm.observed.status = Status::Deleting;
            vm.power = Power::Deleted;
            vm.generation += 1;
            vm.updated_at = at;
            put(kv, &vm)?;
            done(VmApplied::Deleted { removed: false })
        }
    }
}

fn observe(
    kv: &mut impl Kv,
    at: UnixMillis,
    name: &str,
    host: &str,
    status: Status,
    reason: &str,
) -> Result<Outcome, KvError> {
    let Some(mut vm) = get(kv, name)? else {
        return reject(RejectKind::NotFound, format!("vm {name} does not exist"));
    };
    if vm.placement.as_deref() != Some(host) {
        return reject(
            RejectKind::FailedPrecondition,
            format!(
                "vm {name} is not placed on host {host} (placement: {})",
                vm.placement.as_deref().unwrap_or("none")
            ),
        );
    }
    // A host's late report must not undo a delete in progress.
    let status = if vm.power == Power::Deleted {
        Status::Deleting
    } else {
        status
    };
    vm.observed = Observed {
        status,
        reason: reason.to_string(),
        host: Some(host.to_string()),
        at,
    };
    put(kv, &vm)?;
    done(VmApplied::Observed)
}

fn remove(kv: &mut impl Kv, name: &str, host: &str) -> Result<Outcome, KvError> {
    let Some(vm) = get(kv, name)? else {
        return reject(RejectKind::NotFound, format!("vm {name} does not exist"));
    };
    if vm.power != Power::Deleted || vm.placement.as_deref() != Some(host) {
        return reject(
            RejectKind::FailedPrecondition,
            format!("vm {name} is not being deleted by host {host}"),
        );
    }
    super::placement::on_forget(kv, &vm)?;
    super::guest::forget(kv, name)?;
    kv.delete(Table::Vms, name.as_bytes())?;
    done(VmApplied::Deleted { removed: true })
}

/// Filters for `list`; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub folder: Option<FolderId>,
    pub host: Option<String>,
    pub status: Option<Status>,
}

impl Filter {
    fn matches(&self, vm: &Vm) -> bool {
        self.folder.is_none_or(|f| vm.folder == f)
            && self.host.as_deref().is_none_or(|h| {
                vm.placement.as_deref() == Some(h) || vm.observed.host.as_deref() == Some(h)
            })
            && self.status.is_none_or(|s| vm.observed.status == s)
    }
}

/// One page of VMs in name order, starting after `after`; the second value is the name to
/// continue after, if there may be more.
pub fn list(
    kv: &impl KvRead,
    filter: &Filter,
    after: Option<&str>,
    page_size: usize,
) -> Result<(Vec<Vm>, Option<String>), KvError> {
    const CHUNK: usize = 512;
    let mut out = Vec::new();
    let mut from: Vec<u8> = after
        .map(|a| [a.as_bytes(), &[0]].concat())
        .unwrap_or_default();
    loop {
        let chunk = kv.range(Table::Vms, &from, None, CHUNK)?;
        let last = chunk.len() < CHUNK;
        for (key, value) in &chunk {
            let vm: Vm = super::codec::decode("vm", value)?;
            if filter.matches(&vm) {
                out.push(vm);
                if out.len() == page_size {
                    let more = !(last && key == &chunk[chunk.len() - 1].0);
                    return Ok((out, more.then(|| String::from_utf8_lossy(key).into_owned())));
                }
            }
        }
        match chunk.last() {
            Some((key, _)) if !last => from = [key.as_slice(), &[0]].concat(),
            _ => return Ok((out, None)),
        }
    }
}

/// VMs that refer to `r` (see `state::refs`), as "vm NAME".
pub fn referrers(kv: &impl KvRead, r: Ref<'_>, limit: usize) -> Result<Vec<String>, KvError> {
    let mut out = Vec::new();
    for (_, value) in kv.prefix(Table::Vms, b"")? {
        let vm: Vm = super::codec::decode("vm", &value)?;
        let hit = match r {
            Ref::Folder(id) => vm.folder == id,
            Ref::Spec(s) => vm.spec.as_deref() == Some(s),
            Ref::Image(i) => {
                vm.disks.iter().any(|d| d.image.as_deref() == Some(i))
                    || matches!(&vm.boot, BootMedia::CloudImage(b) | BootMedia::Iso(b) if b == i)
            }
            Ref::Pool(p) => vm.disks.iter().any(|d| d.pool == p),
            Ref::Host(h) => vm.placement.as_deref() == Some(h) || vm.host_pin.as_deref() == Some(h),
        };
        if hit {
            out.push(format!("vm {}", vm.name));
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "vms_tests.rs"]
mod tests;
