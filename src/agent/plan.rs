//! The reconcile plan: for one VM, what the host wants (`Want`, from the replicated state) and
//! what libvirt has (`Have`) give the next `Step`. Pure and table-tested; the agent runs one
//! step per VM per pass and looks again, so every step is small and idempotent and a crash
//! between steps only repeats one.
//!
//! Owns: `Want`, `Have`, `Step`, `step`, `observed`. Uses: `model::vm`, `hypervisor::domains::DomState`.

use crate::hypervisor::domains::DomState;
use crate::model::vm::{Power, Status};

/// How long a guest gets to shut down when asked before the plug is pulled.
pub const SHUTDOWN_GRACE_MS: u64 = 60_000;

/// A VM placed on this host, as the state has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub generation: u64,
    pub power: Power,
    pub force_stop: bool,
    pub reboot_seq: u64,
    /// What the state shows now, so a report is sent only when it changes.
    pub status: Status,
    pub reason: String,
    /// The VM was made from a domain found on this host (boot media `Foreign`): its domain has
    /// no Quantix metadata and that is expected. For any other VM such a domain is someone
    /// else's, in the way.
    pub foreign: bool,
}

/// A domain as libvirt has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Have {
    pub state: DomState,
    /// The generation in our metadata; `None` for a domain Quantix did not define.
    pub generation: Option<u64>,
}

/// What the agent does next for one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Make the disks and seed, then define the domain.
    Create,
    /// Define again with the current desired state (hardware or config changed).
    Redefine,
    Start,
    /// Ask the guest to shut down.
    Shutdown,
    /// Pull the plug.
    Destroy,
    Pause,
    Resume,
    Reboot,
    /// Undefine the domain and remove its files (VM deleted).
    Delete,
    /// The domain and files are gone: tell the cluster so the record goes.
    ReportRemoved,
    /// A domain Quantix does not know: report it into /Discovered.
    Discover,
    /// Our domain, whose VM no longer exists anywhere: remove it.
    DeleteOrphan,
    /// Tell the cluster what the VM is now.
    Report {
        status: Status,
        reason: String,
    },
    Nothing,
}

impl Step {
    /// The step's name in metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::Redefine => "redefine",
            Step::Start => "start",
            Step::Shutdown => "shutdown",
            Step::Destroy => "destroy",
            Step::Pause => "pause",
            Step::Resume => "resume",
            Step::Reboot => "reboot",
            Step::Delete => "delete",
            Step::ReportRemoved => "report_removed",
            Step::Discover => "discover",
            Step::DeleteOrphan => "delete_orphan",
            Step::Report { .. } => "report",
            Step::Nothing => "nothing",
        }
    }
}

/// Context the plan needs beyond want and have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// The last reboot request this host carried out (or adopted).
    pub reboot_done: u64,
    /// How long ago this host asked the guest to shut down, if it did and it still runs.
    pub shutdown_asked_ms: Option<u64>,
    /// The VM exists in the state but is placed on another host.
    pub placed_elsewhere: bool,
}

/// The reason a VM shows while a domain of its name that Quantix did not define is in the way.
pub fn conflict_reason(name: &str) -> String {
    format!(
        "a libvirt domain named {name} that Quantix did not define exists on this host; \
         Quantix leaves it alone: rename or undefine it (virsh undefine {name}), or delete this VM"
    )
}

/// The status and reason a domain in `have` shows (no domain: creating).
pub fn observed(have: Option<&Have>) -> (Status, String) {
    match have.map(|h| h.state) {
        None => (Status::Creating, "defining the domain".into()),
        Some(DomState::Running) => (Status::Running, String::new()),
        Some(DomState::ShuttingDown) => (Status::Running, "shutting down".into()),
        Some(DomState::Paused) => (Status::Paused, String::new()),
        Some(DomState::ShutOff) => (Status::Stopped, String::new()),
        Some(DomState::Crashed) => (Status::Failed, "the guest crashed".into()),
        Some(DomState::Other) => (Status::Failed, "libvirt reports an unknown state".into()),
    }
}

/// The next step for one VM. `name` only words the conflict reason.
pub fn step(name: &str, want: Option<&Want>, have: Option<&Have>, mem: Memory) -> Step {
    let Some(want) = want else {
        return match have {
            None => Step::Nothing,
            Some(h) if h.generation.is_none() => Step::Discover,
            Some(_) if mem.placed_elsewhere => Step::Nothing,
            Some(_) => Step::DeleteOrphan,
        };
    };
    // Someone else's domain of this VM's name: never touch it, say why the VM cannot run.
    let in_the_way = have.is_some_and(|h| h.generation.is_none()) && !want.foreign;
    if want.power == Power::Deleted {
        return match have {
            Some(_) if !in_the_way => Step::Delete,
            _ => Step::ReportRemoved,
        };
    }
    if in_the_way {
        let reason = conflict_reason(name);
        return if want.status == Status::Failed && want.reason == reason {
            Step::Nothing
        } else {
            Step::Report {
                status: Status::Failed,
                reason,
            }
        };
    }
    let Some(h) = have else {
        return Step::Create;
    };
    // Only a domain we defined is redefined; a discovered one keeps its own XML.
    if h.generation.is_some_and(|g| g != want.generation) {
        return Step::Redefine;
    }
    let s = h.state;
    let next = match (want.power, s) {
        (_, DomState::ShuttingDown) if want.power != Power::Stopped => Step::Nothing,
        (Power::Running, DomState::ShutOff | DomState::Crashed) => Step::Start,
        (Power::Running, DomState::Paused) => Step::Resume,
        (Power::Running, DomState::Running) if want.reboot_seq > mem.reboot_done => Step::Reboot,
        (Power::Stopped, DomState::Running | DomState::Paused | DomState::ShuttingDown) => {
            match mem.shutdown_asked_ms {
                _ if want.force_stop || s == DomState::Paused => Step::Destroy,
                Some(ms) if ms >= SHUTDOWN_GRACE_MS => Step::Destroy,
                Some(_) => Step::Nothing,
                None => Step::Shutdown,
            }
        }
        (Power::Paused, DomState::Running) => Step::Pause,
        (Power::Paused, DomState::ShutOff | DomState::Crashed) => Step::Start,
        _ => Step::Nothing,
    };
    if next != Step::Nothing {
        return next;
    }
    let (status, reason) = observed(Some(h));
    let waiting = mem.shutdown_asked_ms.is_some() && want.power == Power::Stopped;
    if waiting || (status == want.status && reason == want.reason) {
        Step::Nothing
    } else {
        Step::Report { status, reason }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
