//! Table tests for placement in apply: re-validation of `Place`, the indexes it keeps, and
//! their upkeep when VMs are created, resized, renamed and removed.

use super::*;
use crate::model::image::{HostImageStatus, ImageFormat, ImageKind, ImageSpec};
use crate::model::pool::{PoolFields, PoolSpec, PoolType};
use crate::model::vm::tests::sample;
use crate::model::vm::Disk;
use crate::state::apply::tests::{host, init};
use crate::state::hosts::HostCommand;
use crate::state::images::ImageCommand;
use crate::state::pools::PoolCommand;
use crate::state::vms::{self, PowerAction, VmCommand};
use crate::state::{cluster, MemKv};

fn ok(out: Outcome) {
    assert!(matches!(out, Outcome::Applied(_)), "{out:?}");
}

fn refused(out: Outcome) -> String {
    match out {
        Outcome::Rejected(r) => r.message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn pool(kv: &mut MemKv, name: &str, shared: bool, reachable_from: &[&str]) {
    let spec = PoolSpec::new(
        name,
        PoolType::Dir,
        PoolFields {
            path: format!("/pools/{name}"),
            shared,
            ..PoolFields::default()
        },
    )
    .unwrap();
    ok(super::super::pools::apply(kv, 5, &PoolCommand::CreatePool(spec)).unwrap());
    for h in reachable_from {
        ok(super::super::pools::apply(
            kv,
            6,
            &PoolCommand::Observe {
                pool: name.into(),
                host: h.to_string(),
                reachable: true,
                reason: String::new(),
                capacity_mib: 1 << 20,
                free_mib: 1 << 19,
            },
        )
        .unwrap());
    }
}

fn image(kv: &mut MemKv, name: &str, pool: &str, ready_on: &[&str]) {
    let spec = ImageSpec {
        name: name.into(),
        kind: ImageKind::Cloud,
        os: String::new(),
        format: ImageFormat::Qcow2,
        url: format!("http://example.test/{name}.qcow2"),
        sha256: None,
        pool: pool.into(),
    };
    ok(super::super::images::apply(kv, 7, &ImageCommand::CreateImage(spec)).unwrap());
    for h in ready_on {
        ok(super::super::images::apply(
            kv,
            8,
            &ImageCommand::Observe {
                image: name.into(),
                host: h.to_string(),
                status: HostImageStatus::Ready,
            },
        )
        .unwrap());
    }
}

fn report(kv: &mut MemKv, h: &str, cpus: u32, memory_mib: u64) {
    ok(hosts::apply(
        kv,
        9,
        &HostCommand::ReportInventory {
            host: h.into(),
            cpus,
            memory_mib,
            free_memory_mib: None,
        },
    )
    .unwrap());
}

/// Hosts h1 and h2 with 4 CPUs and 8 GiB each; pool `local` (per host) on both, `nfs`
/// (shared) only on h2; image `ubuntu` ready on h1's local pool, `shared-img` on nfs ready on
/// h2.
fn world() -> MemKv {
    let mut kv = init();
    cluster::create_token(&mut kv, 1, "t", "s", 10).unwrap();
    cluster::consume_token(&mut kv, 2, "t", "s", &host("h2", 2)).unwrap();
    report(&mut kv, "h1", 4, 8192);
    report(&mut kv, "h2", 4, 8192);
    pool(&mut kv, "local", false, &["h1", "h2"]);
    pool(&mut kv, "nfs", true, &["h2"]);
    image(&mut kv, "ubuntu", "local", &["h1"]);
    image(&mut kv, "shared-img", "nfs", &["h2"]);
    kv
}

/// A PXE VM with one disk on `local`.
fn pxe(name: &str, cpus: u32, memory_mib: u64) -> Vm {
    let mut vm = sample(name);
    vm.cpus = cpus;
    vm.memory_mib = memory_mib;
    vm.boot = BootMedia::Pxe;
    vm.disks = vec![Disk {
        size_mib: 1024,
        pool: "local".into(),
        image: None,
    }];
    vm
}

fn create(kv: &mut MemKv, vm: Vm) -> Outcome {
    vms::apply(
        kv,
        100,
        &VmCommand::Create {
            vm: Box::new(vm),
            folder: "/".into(),
        },
    )
    .unwrap()
}

fn place_cmd(kv: &mut MemKv, at: u64, name: &str, host: &str) -> Outcome {
    let generation = vms::get(kv, name).unwrap().map_or(0, |v| v.generation);
    place(kv, at, name, host, generation).unwrap()
}

fn alloc(kv: &MemKv, h: &str) -> (u32, u64) {
    let inv = hosts::inventory(kv, h).unwrap();
    (inv.allocated_cpus, inv.allocated_memory_mib)
}

#[test]
fn place_records_placement_allocation_groups_and_leaves_pending() {
    let mut kv = world();
    let mut vm = pxe("web1", 2, 2048);
    vm.anti_affinity = Some("web".into());
    ok(create(&mut kv, vm));
    assert_eq!(pending(&kv).unwrap(), vec!["web1".to_string()]);
    ok(place_cmd(&mut kv, 200, "web1", "h1"));
    let vm = vms::get(&kv, "web1").unwrap().unwrap();
    assert_eq!(vm.placement.as_deref(), Some("h1"));
    assert_eq!(vm.observed.status, Status::Creating);
    assert_eq!(vm.generation, 2, "placement is a desired-state change");
    assert_eq!(alloc(&kv, "h1"), (2, 2048));
    assert!(pending(&kv).unwrap().is_empty());
    assert_eq!(placed_on(&kv, "h1").unwrap(), vec!["web1".to_string()]);
    assert!(placed_on(&kv, "h2").unwrap().is_empty());
    let g = group(&kv, "web").unwrap().unwrap();
    assert_eq!((g.kind, g.members), (GroupKind::AntiAffinity, 1));
    assert_eq!(g.hosts, BTreeMap::from([("h1".to_string(), 1)]));
}

#[test]
fn place_is_revalidated_and_a_refusal_changes_nothing() {
    // (what, VM edit, target host, set-up, expected refusal text)
    type Case = (
        &'static str,
        fn(&mut Vm),
        &'static str,
        fn(&mut MemKv),
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "too many cpus",
            |v| v.cpus = 17,
            "h1",
            |_| {},
            "needs 17 CPUs, 16 free",
        ),
        (
            "too much memory",
            |v| v.memory_mib = 9000,
            "h1",
            |_| {},
            "needs 9000 MiB memory, 8 GiB free",
        ),
        (
            "pool not reached",
            |v| v.disks[0].pool = "nfs".into(),
            "h1",
            |_| {},
            "does not reach pool nfs",
        ),
        (
            "local image elsewhere",
            |v| v.boot = BootMedia::CloudImage("ubuntu".into()),
            "h2",
            |_| {},
            "image ubuntu is not available",
        ),
        (
            "unknown host",
            |_| {},
            "h9",
            |_| {},
            "host h9 is not a member",
        ),
        (
            "pinned elsewhere",
            |v| v.host_pin = Some("h2".into()),
            "h1",
            |_| {},
            "pinned to host h2",
        ),
        (
            "maintenance",
            |_| {},
            "h1",
            |kv| {
                ok(hosts::apply(
                    kv,
                    1,
                    &HostCommand::SetMaintenance {
                        host: "h1".into(),
                        on: true,
                    },
                )
                .unwrap())
            },
            "in maintenance",
        ),
        (
            "scheduled later",
            |v| v.scheduled_at = Some(10_000),
            "h1",
            |_| {},
            "scheduled for later",
        ),
        (
            "anti-affinity",
            |v| v.anti_affinity = Some("db".into()),
            "h1",
            |kv| {
                let mut other = pxe("db0", 1, 512);
                other.anti_affinity = Some("db".into());
                ok(create(kv, other));
                ok(place_cmd(kv, 200, "db0", "h1"));
            },
            "anti-affinity group db",
        ),
    ];
    for (what, edit, target, setup, want) in cases {
        let mut kv = world();
        setup(&mut kv);
        let mut vm = pxe("web1", 1, 1024);
        edit(&mut vm);
        ok(create(&mut kv, vm));
        let before = kv.clone();
        let msg = refused(place_cmd(&mut kv, 200, "web1", target));
        assert!(msg.contains(want), "{what}: {msg}");
        assert_eq!(kv, before, "{what}: a refused placement changes nothing");
    }
}

#[test]
fn shared_image_is_available_on_every_host_that_reaches_its_pool() {
    let mut kv = world();
    let mut vm = pxe("web1", 1, 1024);
    vm.boot = BootMedia::Iso("shared-img".into());
    vm.disks[0].pool = "nfs".into();
    ok(create(&mut kv, vm));
    // h1 does not reach nfs; h2 does and the image is ready there.
    assert!(refused(place_cmd(&mut kv, 200, "web1", "h1")).contains("pool nfs"));
    ok(place_cmd(&mut kv, 200, "web1", "h2"));
}

#[test]
fn a_second_placement_or_a_stale_generation_is_refused() {
    let mut kv = world();
    ok(create(&mut kv, pxe("web1", 1, 1024)));
    ok(place(&mut kv, 200, "web1", "h1", 1).unwrap());
    // Another leader, working from the same old view, tries h2.
    let msg = refused(place(&mut kv, 201, "web1", "h2", 1).unwrap());
    assert!(msg.contains("already placed on host h1"), "{msg}");
    assert_eq!(alloc(&kv, "h2"), (0, 0));

    ok(create(&mut kv, pxe("web2", 1, 1024)));
    ok(vms::apply(
        &mut kv,
        150,
        &VmCommand::Power {
            name: "web2".into(),
            action: PowerAction::Stop { force: false },
        },
    )
    .unwrap());
    let msg = refused(place(&mut kv, 200, "web2", "h1", 1).unwrap());
    assert!(msg.contains("changed (generation 1 is now 2)"), "{msg}");
}

#[test]
fn capacity_follows_the_replicated_policy() {
    let mut kv = world();
    for i in 0..4 {
        ok(create(&mut kv, pxe(&format!("v{i}"), 4, 512)));
    }
    // 4 CPUs × 4 overcommit = 16: four 4-CPU VMs fit on h1, a fifth does not.
    for i in 0..4 {
        ok(place_cmd(&mut kv, 200, &format!("v{i}"), "h1"));
    }
    ok(create(&mut kv, pxe("v4", 1, 512)));
    assert!(refused(place_cmd(&mut kv, 200, "v4", "h1")).contains("needs 1 CPU, 0 free"));
    // Lowering the ratio to 2 leaves h2 with room for two; h1 is over and takes nothing.
    let p = PlacementPolicy {
        cpu_overcommit_x100: 200,
        ..PlacementPolicy::default()
    };
    ok(set_policy(&mut kv, &p).unwrap());
    assert_eq!(policy(&kv).unwrap(), p);
    ok(place_cmd(&mut kv, 200, "v4", "h2"));
    let bad = PlacementPolicy {
        memory_overcommit_x100: 0,
        ..PlacementPolicy::default()
    };
    assert!(refused(set_policy(&mut kv, &bad).unwrap()).contains("memory_overcommit"));
}

#[test]
fn removing_a_placed_vm_releases_its_host_and_group() {
    let mut kv = world();
    let mut vm = pxe("web1", 2, 2048);
    vm.affinity = Some("app".into());
    ok(create(&mut kv, vm));
    ok(place_cmd(&mut kv, 200, "web1", "h1"));
    ok(vms::apply(
        &mut kv,
        300,
        &VmCommand::Delete {
            name: "web1".into(),
        },
    )
    .unwrap());
    assert_eq!(
        alloc(&kv, "h1"),
        (2, 2048),
        "held until the host removed it"
    );
    ok(vms::apply(
        &mut kv,
        301,
        &VmCommand::Remove {
            name: "web1".into(),
            host: "h1".into(),
        },
    )
    .unwrap());
    assert_eq!(alloc(&kv, "h1"), (0, 0));
    assert!(placed_on(&kv, "h1").unwrap().is_empty());
    assert!(group(&kv, "app").unwrap().is_none(), "last member gone");
    // Deleting a pending VM removes it from the pending set.
    ok(create(&mut kv, pxe("web2", 1, 512)));
    ok(vms::apply(
        &mut kv,
        302,
        &VmCommand::Delete {
            name: "web2".into(),
        },
    )
    .unwrap());
    assert!(pending(&kv).unwrap().is_empty());
    assert!(groups(&kv).unwrap().is_empty());
}

#[test]
fn group_names_have_one_kind() {
    let mut kv = world();
    let mut a = pxe("a", 1, 512);
    a.affinity = Some("web".into());
    ok(create(&mut kv, a));
    let mut b = pxe("b", 1, 512);
    b.anti_affinity = Some("web".into());
    let msg = refused(create(&mut kv, b));
    assert!(msg.contains("web is an affinity group"), "{msg}");
    let mut c = pxe("c", 1, 512);
    c.affinity = Some("x".into());
    c.anti_affinity = Some("x".into());
    assert!(refused(create(&mut kv, c)).contains("cannot be both"));
    assert_eq!(group(&kv, "web").unwrap().unwrap().members, 1);
}

fn stop(kv: &mut MemKv, name: &str) {
    ok(vms::apply(
        kv,
        150,
        &VmCommand::Power {
            name: name.into(),
            action: PowerAction::Stop { force: false },
        },
    )
    .unwrap());
}

/// The VM's host reports it stopped (hardware changes and renames need that).
fn observe_stopped(kv: &mut MemKv, name: &str, host: &str) {
    ok(vms::apply(
        kv,
        155,
        &VmCommand::Observe {
            name: name.into(),
            host: host.into(),
            status: Status::Stopped,
            reason: String::new(),
        },
    )
    .unwrap());
}

fn resize(kv: &mut MemKv, name: &str, cpus: u32, memory_mib: u64) -> Outcome {
    vms::apply(
        kv,
        160,
        &VmCommand::Update {
            name: name.into(),
            cpus: Some(cpus),
            memory_mib: Some(memory_mib),
            new_name: None,
            folder: None,
        },
    )
    .unwrap()
}

#[test]
fn resizing_a_placed_vm_is_checked_against_its_host() {
    let mut kv = world();
    ok(create(&mut kv, pxe("web1", 2, 2048)));
    ok(place_cmd(&mut kv, 200, "web1", "h1"));
    stop(&mut kv, "web1");
    observe_stopped(&mut kv, "web1", "h1");
    let before = kv.clone();
    let msg = refused(resize(&mut kv, "web1", 2, 16_384));
    assert!(msg.contains("host h1 cannot take the new size"), "{msg}");
    assert_eq!(kv, before);
    ok(resize(&mut kv, "web1", 4, 4096));
    assert_eq!(alloc(&kv, "h1"), (4, 4096));
    ok(resize(&mut kv, "web1", 1, 1024));
    assert_eq!(alloc(&kv, "h1"), (1, 1024));
}

#[test]
fn renaming_a_pending_vm_moves_it_in_the_pending_set() {
    let mut kv = world();
    ok(create(&mut kv, pxe("web1", 1, 512)));
    stop(&mut kv, "web1");
    ok(vms::apply(
        &mut kv,
        170,
        &VmCommand::Update {
            name: "web1".into(),
            cpus: None,
            memory_mib: None,
            new_name: Some("web9".into()),
            folder: None,
        },
    )
    .unwrap());
    assert_eq!(pending(&kv).unwrap(), vec!["web9".to_string()]);
}

#[test]
fn unschedulable_reason_only_for_the_vm_the_scheduler_saw() {
    let mut kv = world();
    ok(create(&mut kv, pxe("web1", 1, 512)));
    ok(unschedulable(&mut kv, 200, "web1", 1, "no host reaches pool x").unwrap());
    let vm = vms::get(&kv, "web1").unwrap().unwrap();
    assert_eq!(vm.observed.reason, "no host reaches pool x");
    assert_eq!(vm.generation, 1, "a reason is observed state, not desired");
    assert!(
        refused(unschedulable(&mut kv, 201, "web1", 7, "old").unwrap())
            .contains("no longer pending")
    );
    ok(place_cmd(&mut kv, 202, "web1", "h1"));
    assert!(
        refused(unschedulable(&mut kv, 203, "web1", 2, "late").unwrap())
            .contains("no longer pending")
    );
}

#[test]
fn a_placed_vm_is_not_renamed() {
    let mut kv = world();
    ok(create(&mut kv, pxe("web1", 1, 512)));
    ok(place_cmd(&mut kv, 200, "web1", "h1"));
    stop(&mut kv, "web1");
    observe_stopped(&mut kv, "web1", "h1");
    let before = kv.clone();
    let msg = refused(
        vms::apply(
            &mut kv,
            170,
            &VmCommand::Update {
                name: "web1".into(),
                cpus: None,
                memory_mib: None,
                new_name: Some("web9".into()),
                folder: None,
            },
        )
        .unwrap(),
    );
    assert!(msg.contains("placed on host h1"), "{msg}");
    assert_eq!(kv, before);
}
