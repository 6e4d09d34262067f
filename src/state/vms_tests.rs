//! Table tests for VM apply and queries.

use super::*;
use crate::model::vm::tests::sample;
use crate::state::apply::tests::init;
use crate::state::command::Rejection;
use crate::state::MemKv;

/// A cluster with pool `local`, image `ubuntu-24.04`, iso `alpine-iso` and spec `linux-default`.
/// Other entities' records are opaque here: VMs only check that they exist.
fn world() -> MemKv {
    let mut kv = init();
    kv.put(Table::Pools, b"local", b"pool").unwrap();
    kv.put(Table::Images, b"ubuntu-24.04", b"image").unwrap();
    kv.put(Table::Images, b"alpine-iso", b"image").unwrap();
    kv.put(Table::Specs, b"linux-default", b"spec").unwrap();
    crate::state::folders::create(&mut kv, 1, "/prod", false).unwrap();
    kv
}

fn create_cmd(vm: Vm, folder: &str) -> VmCommand {
    VmCommand::Create {
        vm: Box::new(vm),
        folder: folder.into(),
    }
}

fn rejected(out: Outcome) -> Rejection {
    match out {
        Outcome::Rejected(r) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn vm(kv: &MemKv, name: &str) -> Vm {
    get(kv, name)
        .unwrap()
        .unwrap_or_else(|| panic!("vm {name} missing"))
}

#[test]
fn create_table() {
    // (name, folder, edit of the sample, expected refusal)
    type Case<'a> = (&'a str, &'a str, fn(&mut Vm), Option<(RejectKind, &'a str)>);
    let cases: Vec<Case> = vec![
        ("web1", "/", |_| {}, None),
        (
            "web1",
            "/",
            |_| {},
            Some((RejectKind::AlreadyExists, "vm web1 already exists")),
        ),
        (
            "web2",
            "/prod",
            |v| v.spec = Some("linux-default".into()),
            None,
        ),
        (
            "web3",
            "/nope",
            |_| {},
            Some((RejectKind::NotFound, "folder /nope does not exist")),
        ),
        (
            "web4",
            "/",
            |v| v.spec = Some("nospec".into()),
            Some((RejectKind::NotFound, "customization spec nospec")),
        ),
        (
            "web5",
            "/",
            |v| v.boot = BootMedia::Iso("noiso".into()),
            Some((RejectKind::NotFound, "image noiso")),
        ),
        (
            "web6",
            "/",
            |v| v.disks[0].pool = "nfs-a".into(),
            Some((RejectKind::NotFound, "storage pool nfs-a")),
        ),
        (
            "web7",
            "/",
            |v| v.host_pin = Some("h9".into()),
            Some((RejectKind::NotFound, "host h9 is not a member")),
        ),
        ("web8", "/", |v| v.host_pin = Some("h1".into()), None),
        (
            "Web9",
            "/",
            |_| {},
            Some((RejectKind::InvalidArgument, "vm name")),
        ),
        (
            "web10",
            "/",
            |v| v.cpus = 0,
            Some((RejectKind::InvalidArgument, "cpus")),
        ),
        (
            "web11",
            "/",
            |v| {
                v.boot = BootMedia::Pxe;
                v.disks[0].image = None
            },
            None,
        ),
        (
            "web12",
            "relative",
            |_| {},
            Some((RejectKind::NotFound, "must start with '/'")),
        ),
    ];
    let mut kv = world();
    for (name, folder, edit, want) in cases {
        let mut v = sample(name);
        edit(&mut v);
        let out = apply(&mut kv, 100, &create_cmd(v, folder)).unwrap();
        match (want, out) {
            (None, Outcome::Applied(Applied::Vm(VmApplied::Created(v)))) => {
                assert_eq!(v.observed.status, Status::Pending, "{name}");
                assert!(
                    v.observed.reason.contains("scheduler"),
                    "{name}: {}",
                    v.observed.reason
                );
                assert_eq!(v.created_at, 100);
                assert!(v.id > 0);
            }
            (Some((kind, msg)), Outcome::Rejected(r)) => {
                assert_eq!(r.kind, kind, "{name}: {}", r.message);
                assert!(r.message.contains(msg), "{name}: {}", r.message);
            }
            (want, got) => panic!("{name}: wanted {want:?}, got {got:?}"),
        }
    }
    assert_eq!(
        vm(&kv, "web2").folder,
        crate::state::folders::resolve(&kv, &FolderPath::parse("f", "/prod").unwrap())
            .unwrap()
            .unwrap()
    );
}

#[test]
fn scheduled_create_says_when() {
    let mut kv = world();
    let mut v = sample("later");
    v.scheduled_at = Some(1_800_000_000_000);
    apply(&mut kv, 100, &create_cmd(v, "/")).unwrap();
    assert!(
        vm(&kv, "later")
            .observed
            .reason
            .starts_with("scheduled for 2027-01-15"),
        "{}",
        vm(&kv, "later").observed.reason
    );
}

#[test]
fn hardware_and_rename_only_when_stopped() {
    let mut kv = world();
    apply(&mut kv, 1, &create_cmd(sample("web1"), "/")).unwrap();
    let upd = |cpus, new_name: Option<&str>| VmCommand::Update {
        name: "web1".into(),
        cpus,
        memory_mib: None,
        new_name: new_name.map(String::from),
        folder: None,
    };
    let r = rejected(apply(&mut kv, 2, &upd(Some(4), None)).unwrap());
    assert_eq!(r.kind, RejectKind::FailedPrecondition);
    assert!(
        r.message
            .contains("must be stopped to change cpus and memory"),
        "{}",
        r.message
    );
    assert_eq!(
        rejected(apply(&mut kv, 2, &upd(None, Some("web9"))).unwrap()).kind,
        RejectKind::FailedPrecondition
    );
    // Moving folders is fine while running.
    let mv = VmCommand::Update {
        name: "web1".into(),
        cpus: None,
        memory_mib: None,
        new_name: None,
        folder: Some("/prod".into()),
    };
    assert!(matches!(
        apply(&mut kv, 3, &mv).unwrap(),
        Outcome::Applied(_)
    ));
    apply(
        &mut kv,
        4,
        &VmCommand::Power {
            name: "web1".into(),
            action: PowerAction::Stop { force: false },
        },
    )
    .unwrap();
    assert!(matches!(
        apply(&mut kv, 5, &upd(Some(4), Some("web9"))).unwrap(),
        Outcome::Applied(_)
    ));
    assert!(get(&kv, "web1").unwrap().is_none());
    let v = vm(&kv, "web9");
    assert_eq!((v.cpus, v.generation), (4, 4));
    let bad = VmCommand::Update {
        name: "web9".into(),
        cpus: Some(0),
        memory_mib: None,
        new_name: None,
        folder: None,
    };
    assert_eq!(
        rejected(apply(&mut kv, 6, &bad).unwrap()).kind,
        RejectKind::InvalidArgument
    );
}

#[test]
fn power_transitions() {
    let mut kv = world();
    apply(&mut kv, 1, &create_cmd(sample("web1"), "/")).unwrap();
    let p = |kv: &mut MemKv, a| {
        apply(
            kv,
            2,
            &VmCommand::Power {
                name: "web1".into(),
                action: a,
            },
        )
        .unwrap()
    };
    assert!(matches!(
        p(&mut kv, PowerAction::Reboot),
        Outcome::Applied(_)
    ));
    assert_eq!(vm(&kv, "web1").reboot_seq, 1);
    assert!(rejected(p(&mut kv, PowerAction::Resume))
        .message
        .contains("is not paused"));
    p(&mut kv, PowerAction::Pause);
    assert_eq!(vm(&kv, "web1").power, Power::Paused);
    assert!(rejected(p(&mut kv, PowerAction::Reboot))
        .message
        .contains("not running"));
    p(&mut kv, PowerAction::Resume);
    p(&mut kv, PowerAction::Stop { force: true });
    let v = vm(&kv, "web1");
    assert!(v.power == Power::Stopped && v.force_stop);
    assert!(rejected(p(&mut kv, PowerAction::Pause))
        .message
        .contains("cannot be paused"));
    assert_eq!(
        rejected(
            apply(
                &mut kv,
                3,
                &VmCommand::Power {
                    name: "x".into(),
                    action: PowerAction::Start
                }
            )
            .unwrap()
        )
        .kind,
        RejectKind::NotFound
    );
}

#[test]
fn delete_unplaced_removes_placed_waits_for_its_host() {
    let mut kv = world();
    apply(&mut kv, 1, &create_cmd(sample("a"), "/")).unwrap();
    apply(&mut kv, 1, &create_cmd(sample("b"), "/")).unwrap();
    assert_eq!(
        apply(&mut kv, 2, &VmCommand::Delete { name: "a".into() }).unwrap(),
        Outcome::Applied(Applied::Vm(VmApplied::Deleted { removed: true }))
    );
    assert!(get(&kv, "a").unwrap().is_none());
    // Pretend the scheduler placed b on h1 (the scheduler issue adds the command).
    let mut b = vm(&kv, "b");
    b.placement = Some("h1".into());
    put(&mut kv, &b).unwrap();
    assert_eq!(
        apply(&mut kv, 3, &VmCommand::Delete { name: "b".into() }).unwrap(),
        Outcome::Applied(Applied::Vm(VmApplied::Deleted { removed: false }))
    );
    let b = vm(&kv, "b");
    assert_eq!(
        (b.power, b.observed.status),
        (Power::Deleted, Status::Deleting)
    );
    // A late report from the host does not resurrect it; another host cannot remove it.
    apply(
        &mut kv,
        4,
        &VmCommand::Observe {
            name: "b".into(),
            host: "h1".into(),
            status: Status::Running,
            reason: String::new(),
        },
    )
    .unwrap();
    assert_eq!(vm(&kv, "b").observed.status, Status::Deleting);
    assert_eq!(
        rejected(
            apply(
                &mut kv,
                5,
                &VmCommand::Remove {
                    name: "b".into(),
                    host: "h2".into()
                }
            )
            .unwrap()
        )
        .kind,
        RejectKind::FailedPrecondition
    );
    assert!(matches!(
        apply(
            &mut kv,
            5,
            &VmCommand::Remove {
                name: "b".into(),
                host: "h1".into()
            }
        )
        .unwrap(),
        Outcome::Applied(_)
    ));
    assert!(get(&kv, "b").unwrap().is_none());
}

#[test]
fn observe_only_from_the_placed_host() {
    let mut kv = world();
    apply(&mut kv, 1, &create_cmd(sample("a"), "/")).unwrap();
    let obs = VmCommand::Observe {
        name: "a".into(),
        host: "h1".into(),
        status: Status::Running,
        reason: String::new(),
    };
    assert_eq!(
        rejected(apply(&mut kv, 2, &obs).unwrap()).kind,
        RejectKind::FailedPrecondition
    );
    let mut a = vm(&kv, "a");
    a.placement = Some("h1".into());
    put(&mut kv, &a).unwrap();
    apply(&mut kv, 3, &obs).unwrap();
    let a = vm(&kv, "a");
    assert_eq!(
        (a.observed.status, a.observed.host.as_deref(), a.observed.at),
        (Status::Running, Some("h1"), 3)
    );
}

#[test]
fn list_filters_and_pages() {
    let mut kv = world();
    for i in 0..25 {
        let folder = if i % 2 == 0 { "/" } else { "/prod" };
        apply(
            &mut kv,
            1,
            &create_cmd(sample(&format!("vm{i:02}")), folder),
        )
        .unwrap();
    }
    let all = Filter::default();
    let (page1, next) = list(&kv, &all, None, 10).unwrap();
    assert_eq!(page1.len(), 10);
    assert_eq!(page1[0].name, "vm00");
    let (page2, next2) = list(&kv, &all, next.as_deref(), 10).unwrap();
    assert_eq!(page2[0].name, "vm10");
    let (page3, next3) = list(&kv, &all, next2.as_deref(), 10).unwrap();
    assert_eq!((page3.len(), next3), (5, None));
    let prod =
        crate::state::folders::resolve(&kv, &FolderPath::parse("f", "/prod").unwrap()).unwrap();
    let (odd, _) = list(
        &kv,
        &Filter {
            folder: prod,
            ..Default::default()
        },
        None,
        100,
    )
    .unwrap();
    assert_eq!(odd.len(), 12);
    let (none, _) = list(
        &kv,
        &Filter {
            status: Some(Status::Running),
            ..Default::default()
        },
        None,
        100,
    )
    .unwrap();
    assert!(none.is_empty());
    // An exact page boundary at the end reports no further page.
    let (_, next) = list(&kv, &all, None, 25).unwrap();
    assert_eq!(next, None);
}

#[test]
fn referrers_name_the_vm() {
    let mut kv = world();
    let mut v = sample("web1");
    v.spec = Some("linux-default".into());
    apply(&mut kv, 1, &create_cmd(v, "/prod")).unwrap();
    let prod = crate::state::folders::resolve(&kv, &FolderPath::parse("f", "/prod").unwrap())
        .unwrap()
        .unwrap();
    for r in [
        Ref::Spec("linux-default"),
        Ref::Image("ubuntu-24.04"),
        Ref::Pool("local"),
        Ref::Folder(prod),
    ] {
        assert_eq!(
            referrers(&kv, r, 3).unwrap(),
            vec!["vm web1".to_string()],
            "{r:?}"
        );
    }
    assert!(referrers(&kv, Ref::Pool("other"), 3).unwrap().is_empty());
}
