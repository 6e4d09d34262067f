//! What guests say about themselves (hostname, addresses), as their hosts report it: kept
//! beside the VM record under `guest/<vm>` in the meta table, so a guest's chatter never
//! rewrites the VM record. Only the VM's own host may report; the record goes with the VM.
//! May use: `model::guest`, `state::{kv, tables, vms}`.

use super::command::{Outcome, RejectKind};
use super::kv::{Kv, KvError, KvRead, Table};
use super::tables;
use super::vms::VmApplied;
use crate::model::guest::GuestInfo;
use crate::model::UnixMillis;

fn key(vm: &str) -> Vec<u8> {
    let mut k = b"guest/".to_vec();
    k.extend_from_slice(vm.as_bytes());
    k
}

/// The guest's last report, if its agent ever sent one.
pub fn get(kv: &impl KvRead, vm: &str) -> Result<Option<GuestInfo>, KvError> {
    tables::get(kv, Table::Meta, "guest info", &key(vm))
}

/// Drops the report of a VM that is gone.
pub fn forget(kv: &mut impl Kv, vm: &str) -> Result<(), KvError> {
    kv.delete(Table::Meta, &key(vm))
}

/// A host records what the guest of a VM placed on it reported.
pub fn record(
    kv: &mut impl Kv,
    at: UnixMillis,
    name: &str,
    host: &str,
    info: &GuestInfo,
) -> Result<Outcome, KvError> {
    let Some(vm) = super::vms::get(kv, name)? else {
        return Ok(Outcome::reject(
            RejectKind::NotFound,
            format!("vm {name} does not exist"),
        ));
    };
    if vm.placement.as_deref() != Some(host) {
        return Ok(Outcome::reject(
            RejectKind::FailedPrecondition,
            format!("vm {name} is not placed on host {host}"),
        ));
    }
    if let Err(e) = info.validate() {
        return Ok(Outcome::reject(
            RejectKind::InvalidArgument,
            format!("vm {name}: {e}"),
        ));
    }
    let mut info = info.clone();
    info.at = at;
    tables::put(kv, Table::Meta, &key(name), &info)?;
    Ok(Outcome::Applied(super::command::Applied::Vm(
        VmApplied::Observed,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::apply::tests::init;
    use crate::state::discover::discover;

    #[test]
    fn only_the_vms_host_records_and_bad_reports_change_nothing() {
        let mut kv = init();
        discover(
            &mut kv,
            5,
            "legacy",
            "h1",
            1,
            512,
            crate::model::vm::Power::Running,
        )
        .unwrap();
        let info = GuestInfo {
            hostname: "legacy".into(),
            addresses: vec!["10.0.2.15".into()],
            agent: "quantix-agent 0.1.0".into(),
            at: 0,
        };
        let before = kv.clone();
        for (n, h, i, want) in [
            ("nope", "h1", info.clone(), "vm nope does not exist"),
            ("legacy", "h2", info.clone(), "not placed on host h2"),
            (
                "legacy",
                "h1",
                GuestInfo {
                    addresses: vec!["x".into()],
                    ..info.clone()
                },
                "'x' is not an IP address",
            ),
        ] {
            match record(&mut kv, 6, n, h, &i).unwrap() {
                Outcome::Rejected(r) => assert!(r.message.contains(want), "{}", r.message),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(kv, before);
        assert!(matches!(
            record(&mut kv, 7, "legacy", "h1", &info).unwrap(),
            Outcome::Applied(_)
        ));
        let got = get(&kv, "legacy").unwrap().unwrap();
        assert!(got.same_as(&info));
        assert_eq!(got.at, 7);
        forget(&mut kv, "legacy").unwrap();
        assert_eq!(get(&kv, "legacy").unwrap(), None);
    }
}
