//! Unit tests for spec apply: every command's success path and every refusal, secrets kept
//! out of outcomes, and deterministic replay.

use super::*;
use crate::model::spec::check::tests::{key_line, linux_spec, windows_spec};
use crate::model::spec::{Membership, Network, Secret, WindowsSpec};
use crate::state::apply::tests::init;
use crate::state::command::{Command, Rejection, Request};
use crate::state::kv::MemKv;

const ADMIN_PW: &str = "admin-secret-1";
const JOIN_PW: &str = "join-secret-1";
const KEY: &str = "ABCDE-12345-FGHIJ-67890-KLMNO";

fn linux() -> Box<SpecConfig> {
    Box::new(SpecConfig::Linux(linux_spec()))
}

fn windows() -> Box<SpecConfig> {
    Box::new(SpecConfig::Windows(windows_spec()))
}

fn create_cmd(name: &str, config: Box<SpecConfig>) -> SpecCommand {
    SpecCommand::CreateSpec {
        name: name.into(),
        description: format!("{name} spec"),
        config,
    }
}

fn update_cmd(name: &str, config: Box<SpecConfig>, clear: Vec<SecretField>) -> SpecCommand {
    SpecCommand::UpdateSpec {
        name: name.into(),
        description: "updated".into(),
        config,
        clear,
        expected_revision: None,
    }
}

fn run(kv: &mut MemKv, at: u64, cmd: SpecCommand) -> Outcome {
    apply(kv, at, &cmd).unwrap()
}

fn rejected(out: Outcome) -> Rejection {
    match out {
        Outcome::Rejected(r) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn expect_reject(out: Outcome, kind: RejectKind, fragments: &[&str]) {
    let r = rejected(out);
    assert_eq!(r.kind, kind, "{}", r.message);
    for f in fragments {
        assert!(
            r.message.contains(f),
            "{:?} should mention {f:?}",
            r.message
        );
    }
}

fn win(s: &Spec) -> &WindowsSpec {
    match &s.config {
        SpecConfig::Windows(w) => w,
        SpecConfig::Linux(_) => panic!("{} is not windows", s.name),
    }
}

fn stored(kv: &MemKv, name: &str) -> Spec {
    get(kv, name).unwrap().expect("spec stored")
}

#[test]
fn built_ins_exist_after_init() {
    let kv = init();
    let names: Vec<String> = list(&kv).unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, [spec::LINUX_DEFAULT, spec::WINDOWS_DEFAULT]);
    let l = stored(&kv, spec::LINUX_DEFAULT);
    assert!(l.built_in);
    assert_eq!(l.revision, 1);
    assert_eq!(l.created_at, 1_000, "built-ins carry InitCluster's time");
    assert!(
        matches!(&l.config, SpecConfig::Linux(c) if c.install_agent && c.network == Network::Dhcp)
    );
    let w = stored(&kv, spec::WINDOWS_DEFAULT);
    assert_eq!(
        win(&w).membership,
        Membership::Workgroup("WORKGROUP".into())
    );
}

#[test]
fn create_table() {
    let mut bad_tz = linux_spec();
    bad_tz.timezone = "Not a zone".into();
    let mut bad_key = windows_spec();
    bad_key.product_key = Some(Secret::new("12345"));
    let mut bad_user = linux_spec();
    bad_user.users[0].ssh_keys = vec!["ssh-dss AAAA".into()];
    type Case = (SpecCommand, Option<(RejectKind, Vec<&'static str>)>);
    let cases: Vec<Case> = vec![
        (create_cmd("web", linux()), None),
        (create_cmd("win", windows()), None),
        (
            create_cmd("web", windows()),
            Some((RejectKind::AlreadyExists, vec!["spec web already exists"])),
        ),
        (
            create_cmd("linux-default", linux()),
            Some((RejectKind::AlreadyExists, vec!["linux-default"])),
        ),
        (
            create_cmd("Web_1", linux()),
            Some((RejectKind::InvalidArgument, vec!["spec name", "lower-case"])),
        ),
        (
            create_cmd("", linux()),
            Some((
                RejectKind::InvalidArgument,
                vec!["spec name must not be empty"],
            )),
        ),
        (
            create_cmd("tz", Box::new(SpecConfig::Linux(bad_tz))),
            Some((RejectKind::InvalidArgument, vec!["timezone", "IANA"])),
        ),
        (
            create_cmd("key", Box::new(SpecConfig::Windows(bad_key))),
            Some((
                RejectKind::InvalidArgument,
                vec!["product_key", "five groups"],
            )),
        ),
        (
            create_cmd("usr", Box::new(SpecConfig::Linux(bad_user))),
            Some((
                RejectKind::InvalidArgument,
                vec!["users[alice].ssh_keys[0]", "ssh-ed25519"],
            )),
        ),
        (
            SpecCommand::CreateSpec {
                name: "long".into(),
                description: "x".repeat(check::MAX_DESCRIPTION + 1),
                config: linux(),
            },
            Some((RejectKind::InvalidArgument, vec!["description"])),
        ),
    ];
    let mut kv = init();
    for (i, (cmd, want)) in cases.into_iter().enumerate() {
        let out = run(&mut kv, 5, cmd);
        match want {
            None => assert!(
                matches!(
                    out,
                    Outcome::Applied(Applied::Spec(SpecApplied::SpecCreated(_)))
                ),
                "case {i}: {out:?}"
            ),
            Some((kind, frags)) => expect_reject(out, kind, &frags),
        }
    }
    let names: Vec<String> = list(&kv).unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["linux-default", "web", "win", "windows-default"]);
    let web = stored(&kv, "web");
    assert_eq!((web.revision, web.created_at, web.updated_at), (1, 5, 5));
    assert!(!web.built_in);
    assert_eq!(web.config, *linux());
}

#[test]
fn create_normalizes_and_outcome_is_redacted() {
    let mut kv = init();
    let mut w = windows_spec();
    w.product_key = Some(Secret::new("abcde-12345-fghij-67890-klmno"));
    let mut l = linux_spec();
    l.ssh_keys = vec![format!("  {}  ", key_line("ssh-rsa", "a  b"))];
    run(&mut kv, 5, create_cmd("l", Box::new(SpecConfig::Linux(l))));
    let out = run(
        &mut kv,
        5,
        create_cmd("w", Box::new(SpecConfig::Windows(w))),
    );
    let Outcome::Applied(Applied::Spec(SpecApplied::SpecCreated(s))) = out else {
        panic!("{out:?}");
    };
    let w = win(&s);
    assert_eq!(w.admin_password, Some(Secret::redacted()));
    assert_eq!(w.product_key, Some(Secret::redacted()));
    assert_eq!(
        win(&stored(&kv, "w"))
            .product_key
            .as_ref()
            .map(Secret::expose),
        Some(KEY)
    );
    let SpecConfig::Linux(l) = stored(&kv, "l").config else {
        panic!("not linux");
    };
    assert_eq!(l.ssh_keys[0], key_line("ssh-rsa", "a b"));
}

#[test]
fn remembered_outcomes_hold_no_secret() {
    let mut kv = init();
    let req = Request {
        id: Some("r1".into()),
        by: "h1".into(),
        at: 9,
        cmd: Command::Spec(create_cmd("w", windows())),
    };
    crate::state::apply(&mut kv, 2, &req).unwrap();
    let update = Request {
        id: Some("r2".into()),
        cmd: Command::Spec(update_cmd("w", windows(), vec![])),
        ..req
    };
    crate::state::apply(&mut kv, 3, &update).unwrap();
    let requests = &kv.tables[&Table::Requests];
    assert_eq!(requests.len(), 2);
    for bytes in requests.values() {
        for secret in [ADMIN_PW, JOIN_PW, KEY] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a remembered outcome holds {secret}"
            );
        }
    }
}

#[test]
fn update_replaces_fields_and_keeps_secrets() {
    let mut kv = init();
    run(&mut kv, 5, create_cmd("w", windows()));
    let mut new = windows_spec();
    new.timezone = "Asia/Tokyo".into();
    new.admin_password = None;
    new.product_key = None;
    if let Membership::Domain(d) = &mut new.membership {
        d.password = None;
    }
    let out = run(
        &mut kv,
        8,
        update_cmd("w", Box::new(SpecConfig::Windows(new.clone())), vec![]),
    );
    assert!(
        matches!(out, Outcome::Applied(Applied::Spec(SpecApplied::SpecUpdated(ref s))) if s.revision == 2),
        "{out:?}"
    );
    let s = stored(&kv, "w");
    assert_eq!((s.revision, s.created_at, s.updated_at), (2, 5, 8));
    assert_eq!(s.description, "updated");
    let w = win(&s);
    assert_eq!(w.timezone, "Asia/Tokyo");
    assert_eq!(
        w.admin_password.as_ref().map(Secret::expose),
        Some(ADMIN_PW)
    );
    assert_eq!(w.product_key.as_ref().map(Secret::expose), Some(KEY));
    let Membership::Domain(d) = &w.membership else {
        panic!("membership lost");
    };
    assert_eq!(d.password.as_ref().map(Secret::expose), Some(JOIN_PW));

    // New secrets replace; cleared ones go.
    let mut newer = new.clone();
    newer.admin_password = Some(Secret::new("another-pw-2"));
    run(
        &mut kv,
        9,
        update_cmd(
            "w",
            Box::new(SpecConfig::Windows(newer)),
            vec![SecretField::ProductKey],
        ),
    );
    let w = win(&stored(&kv, "w")).clone();
    assert_eq!(
        w.admin_password.as_ref().map(Secret::expose),
        Some("another-pw-2")
    );
    assert_eq!(w.product_key, None);

    // Leaving the domain drops the join password; joining again needs it.
    let mut wg = new.clone();
    wg.membership = Membership::Workgroup("LAB".into());
    run(
        &mut kv,
        10,
        update_cmd("w", Box::new(SpecConfig::Windows(wg)), vec![]),
    );
    assert_eq!(
        win(&stored(&kv, "w")).membership,
        Membership::Workgroup("LAB".into())
    );
    let out = run(
        &mut kv,
        11,
        update_cmd("w", Box::new(SpecConfig::Windows(new)), vec![]),
    );
    expect_reject(
        out,
        RejectKind::InvalidArgument,
        &["domain_join.password", "required"],
    );
    assert_eq!(
        stored(&kv, "w").revision,
        4,
        "a refused update changes nothing"
    );
}

#[test]
fn update_refusals() {
    let mut kv = init();
    run(&mut kv, 5, create_cmd("web", linux()));
    expect_reject(
        run(&mut kv, 6, update_cmd("nope", linux(), vec![])),
        RejectKind::NotFound,
        &["spec nope does not exist"],
    );
    expect_reject(
        run(&mut kv, 6, update_cmd("web", windows(), vec![])),
        RejectKind::FailedPrecondition,
        &["os", "linux spec", "cannot become a windows spec"],
    );
    let mut bad = linux_spec();
    bad.hostname_pattern = "web-{id}".into();
    expect_reject(
        run(
            &mut kv,
            6,
            update_cmd("web", Box::new(SpecConfig::Linux(bad)), vec![]),
        ),
        RejectKind::InvalidArgument,
        &["hostname_pattern", "unknown placeholder {id}"],
    );
    let stale = SpecCommand::UpdateSpec {
        name: "web".into(),
        description: String::new(),
        config: linux(),
        clear: vec![],
        expected_revision: Some(7),
    };
    expect_reject(
        run(&mut kv, 6, stale),
        RejectKind::FailedPrecondition,
        &["changed since it was read", "revision 1 now, 7 expected"],
    );
    assert_eq!(stored(&kv, "web").revision, 1);
    let fresh = SpecCommand::UpdateSpec {
        name: "web".into(),
        description: String::new(),
        config: linux(),
        clear: vec![],
        expected_revision: Some(1),
    };
    assert!(matches!(run(&mut kv, 7, fresh), Outcome::Applied(_)));
    assert_eq!(stored(&kv, "web").revision, 2);
}

#[test]
fn built_ins_can_be_updated_but_stay_built_in() {
    let mut kv = init();
    let mut l = linux_spec();
    l.timezone = "Europe/Paris".into();
    let out = run(
        &mut kv,
        5,
        update_cmd(spec::LINUX_DEFAULT, Box::new(SpecConfig::Linux(l)), vec![]),
    );
    assert!(matches!(out, Outcome::Applied(_)), "{out:?}");
    let s = stored(&kv, spec::LINUX_DEFAULT);
    assert!(s.built_in);
    assert_eq!(s.config.timezone(), "Europe/Paris");
}

#[test]
fn delete_rules() {
    let mut kv = init();
    run(&mut kv, 5, create_cmd("web", linux()));
    for name in [spec::LINUX_DEFAULT, spec::WINDOWS_DEFAULT] {
        expect_reject(
            run(&mut kv, 6, SpecCommand::DeleteSpec { name: name.into() }),
            RejectKind::FailedPrecondition,
            &[name, "built in and cannot be deleted"],
        );
    }
    expect_reject(
        run(
            &mut kv,
            6,
            SpecCommand::DeleteSpec {
                name: "nope".into(),
            },
        ),
        RejectKind::NotFound,
        &["spec nope does not exist"],
    );
    assert_eq!(
        run(&mut kv, 6, SpecCommand::DeleteSpec { name: "web".into() }),
        Outcome::Applied(Applied::Spec(SpecApplied::SpecDeleted {
            name: "web".into()
        }))
    );
    assert!(get(&kv, "web").unwrap().is_none());
    // The name is free again.
    assert!(matches!(
        run(&mut kv, 7, create_cmd("web", windows())),
        Outcome::Applied(_)
    ));
}

#[test]
fn kinds_and_targets() {
    let cmds = [
        (create_cmd("a", linux()), "create_spec"),
        (update_cmd("a", linux(), vec![]), "update_spec"),
        (SpecCommand::DeleteSpec { name: "a".into() }, "delete_spec"),
    ];
    for (c, kind) in cmds {
        assert_eq!(c.kind(), kind);
        assert_eq!(c.target(), "spec a");
    }
}

#[test]
fn replaying_spec_commands_gives_identical_state() {
    let log = [
        create_cmd("a", linux()),
        create_cmd("b", windows()),
        create_cmd("a", windows()),
        update_cmd("b", windows(), vec![SecretField::AdminPassword]),
        SpecCommand::DeleteSpec { name: "a".into() },
        SpecCommand::DeleteSpec {
            name: "linux-default".into(),
        },
    ];
    let replay = || {
        let mut kv = init();
        let outs: Vec<Outcome> = log
            .iter()
            .enumerate()
            .map(|(i, c)| apply(&mut kv, 10 + i as u64, c).unwrap())
            .collect();
        (kv, outs)
    };
    assert_eq!(replay(), replay());
}

#[test]
fn delete_refused_while_a_vm_refers_to_it() {
    let mut kv = init();
    run(&mut kv, 5, create_cmd("web", linux()));
    // The sample VM also names a pool and an image; VMs check only that those exist.
    kv.put(Table::Pools, b"local", b"pool").unwrap();
    kv.put(Table::Images, b"ubuntu-24.04", b"image").unwrap();
    let mut vm = crate::model::vm::tests::sample("web1");
    vm.spec = Some("web".into());
    let create = crate::state::vms::VmCommand::Create {
        vm: Box::new(vm),
        folder: "/".into(),
    };
    let out = crate::state::vms::apply(&mut kv, 6, &create).unwrap();
    assert!(matches!(out, Outcome::Applied(_)), "{out:?}");
    expect_reject(
        run(&mut kv, 7, SpecCommand::DeleteSpec { name: "web".into() }),
        RejectKind::FailedPrecondition,
        &["spec web is in use by vm web1"],
    );
    assert!(get(&kv, "web").unwrap().is_some());
}
