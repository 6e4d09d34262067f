//! VMs found on a host that Quantix did not create (a libvirt domain without our metadata):
//! the host's agent reports each one once and it becomes a VM record in `/Discovered`, placed
//! on that host, so it is visible, counted in the host's allocation and can be powered like
//! any VM. Quantix never redefines such a domain (its XML stays the owner's).
//! May use: `model`, `state::{kv, tables, folders, placement, vms}`.

use super::command::{Applied, Outcome, RejectKind};
use super::kv::{Kv, KvError, Table};
use super::vms::VmApplied;
use super::{folders, placement, tables};
use crate::model::vm::{BootMedia, Observed, Overrides, Power, Status, Vm};
use crate::model::{FolderPath, UnixMillis};

/// Records a discovered domain; refused if a VM of that name exists or the shape is invalid.
pub fn discover(
    kv: &mut impl Kv,
    at: UnixMillis,
    name: &str,
    host: &str,
    cpus: u32,
    memory_mib: u64,
    power: Power,
) -> Result<Outcome, KvError> {
    let refuse = |kind, msg: String| Ok(Outcome::reject(kind, msg));
    if let Err(e) = crate::model::names::validate_label("vm name", name) {
        return refuse(
            RejectKind::InvalidArgument,
            format!("discovered domain: {e}"),
        );
    }
    if let Err(e) = crate::model::vm::validate_shape(cpus, memory_mib) {
        return refuse(
            RejectKind::InvalidArgument,
            format!("discovered domain {name}: {e}"),
        );
    }
    if tables::host(kv, host)?.is_none() {
        return refuse(
            RejectKind::NotFound,
            format!("host {host} is not a member of this cluster"),
        );
    }
    if super::vms::get(kv, name)?.is_some() {
        return refuse(
            RejectKind::AlreadyExists,
            format!("vm {name} already exists; the domain on host {host} is left alone"),
        );
    }
    let Ok(path) = FolderPath::parse("folder", "/Discovered") else {
        return refuse(RejectKind::NotFound, "folder /Discovered is missing".into());
    };
    let Some(folder) = folders::resolve(kv, &path)? else {
        return refuse(RejectKind::NotFound, "folder /Discovered is missing".into());
    };
    let status = match power {
        Power::Running => Status::Running,
        Power::Paused => Status::Paused,
        Power::Stopped => Status::Stopped,
        Power::Deleted => {
            return refuse(
                RejectKind::InvalidArgument,
                format!("discovered domain {name}: power must be running, paused or stopped"),
            )
        }
    };
    let vm = Vm {
        id: tables::next_id(kv)?,
        name: name.to_string(),
        folder,
        cpus,
        memory_mib,
        disks: Vec::new(),
        boot: BootMedia::Foreign,
        nics: Vec::new(),
        spec: None,
        overrides: Overrides::default(),
        host_pin: None,
        anti_affinity: None,
        affinity: None,
        scheduled_at: None,
        power,
        force_stop: false,
        reboot_seq: 0,
        placement: Some(host.to_string()),
        observed: Observed {
            status,
            reason: format!("discovered on host {host}"),
            host: Some(host.to_string()),
            at,
        },
        generation: 1,
        created_at: at,
        updated_at: at,
    };
    placement::record_placement(kv, &vm, host)?;
    tables::put(kv, Table::Vms, vm.name.as_bytes(), &vm)?;
    Ok(Outcome::Applied(Applied::Vm(VmApplied::Created(Box::new(
        vm,
    )))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::apply::tests::init;

    #[test]
    fn a_discovered_domain_becomes_a_placed_vm_in_discovered() {
        let mut kv = init();
        let out = discover(&mut kv, 5, "legacy", "h1", 2, 1024, Power::Running).unwrap();
        assert!(matches!(out, Outcome::Applied(_)), "{out:?}");
        let vm = super::super::vms::get(&kv, "legacy").unwrap().unwrap();
        assert_eq!(vm.placement.as_deref(), Some("h1"));
        assert_eq!(
            (vm.power, vm.observed.status),
            (Power::Running, Status::Running)
        );
        assert_eq!(
            placement::placed_on(&kv, "h1").unwrap(),
            vec!["legacy".to_string()]
        );
        assert!(placement::pending(&kv).unwrap().is_empty());
        let inv = super::super::hosts::inventory(&kv, "h1").unwrap();
        assert_eq!((inv.allocated_cpus, inv.allocated_memory_mib), (2, 1024));
    }

    #[test]
    fn refusals_name_the_problem_and_change_nothing() {
        let mut kv = init();
        discover(&mut kv, 5, "legacy", "h1", 2, 1024, Power::Stopped).unwrap();
        let before = kv.clone();
        for (args, want) in [
            (("legacy", "h1", 2, 1024), "vm legacy already exists"),
            (("Bad_Name", "h1", 2, 1024), "vm name 'Bad_Name'"),
            (("tiny", "h1", 1, 1), "memory must be between"),
            (("other", "h9", 1, 512), "host h9 is not a member"),
        ] {
            let (n, h, c, m) = args;
            match discover(&mut kv, 6, n, h, c, m, Power::Running).unwrap() {
                Outcome::Rejected(r) => assert!(r.message.contains(want), "{}", r.message),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(kv, before);
    }

    #[test]
    fn a_paused_domain_is_kept_paused_and_the_vm_boots_as_its_own_xml_says() {
        let mut kv = init();
        discover(&mut kv, 5, "held", "h1", 1, 512, Power::Paused).unwrap();
        let vm = super::super::vms::get(&kv, "held").unwrap().unwrap();
        assert_eq!(
            (vm.power, vm.observed.status),
            (Power::Paused, Status::Paused)
        );
        assert_eq!(vm.boot, BootMedia::Foreign);
        match discover(&mut kv, 6, "gone", "h1", 1, 512, Power::Deleted).unwrap() {
            Outcome::Rejected(r) => assert!(r.message.contains("power must be"), "{}", r.message),
            other => panic!("{other:?}"),
        }
    }
}
