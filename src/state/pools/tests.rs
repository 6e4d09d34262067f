//! Apply paths and refusals of pool commands.

use super::*;
use crate::model::image::{ImageFormat, ImageKind, ImageSpec};
use crate::model::pool::{PoolFields, PoolKind, PoolType};
use crate::state::apply::tests::init;
use crate::state::command::Rejection;
use crate::state::images::{self, ImageCommand};
use crate::state::MemKv;

fn rejected(out: Outcome) -> Rejection {
    match out {
        Outcome::Rejected(r) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn dir_spec(name: &str, path: &str) -> PoolSpec {
    PoolSpec {
        name: name.into(),
        kind: PoolKind::Dir {
            path: path.into(),
            shared: false,
        },
    }
}

fn nfs_spec(name: &str) -> PoolSpec {
    PoolSpec::new(
        name,
        PoolType::Nfs,
        PoolFields {
            server: "nas.example.com".into(),
            export: "/srv/vm".into(),
            ..PoolFields::default()
        },
    )
    .unwrap()
}

fn observe_cmd(
    pool: &str,
    host: &str,
    reachable: bool,
    reason: &str,
    cap: u64,
    free: u64,
) -> PoolCommand {
    PoolCommand::Observe {
        pool: pool.into(),
        host: host.into(),
        reachable,
        reason: reason.into(),
        capacity_mib: cap,
        free_mib: free,
    }
}

fn with_pool() -> MemKv {
    let mut kv = init();
    let out = apply(
        &mut kv,
        5,
        &PoolCommand::CreatePool(dir_spec("local", "/pools/local")),
    )
    .unwrap();
    assert!(matches!(
        out,
        Outcome::Applied(Applied::Pool(PoolApplied::PoolCreated(_)))
    ));
    kv
}

#[test]
fn create_stores_the_normalised_pool() {
    let mut kv = init();
    let out = apply(
        &mut kv,
        7,
        &PoolCommand::CreatePool(dir_spec("local", "/pools/local/")),
    )
    .unwrap();
    let Outcome::Applied(Applied::Pool(PoolApplied::PoolCreated(p))) = out else {
        panic!("{out:?}");
    };
    assert_eq!(p.spec, dir_spec("local", "/pools/local"));
    assert_eq!(p.created_at, 7);
    assert!(p.hosts.is_empty());
    assert_eq!(get(&kv, "local").unwrap(), Some(p));
    apply(&mut kv, 8, &PoolCommand::CreatePool(nfs_spec("nas"))).unwrap();
    let names: Vec<String> = list(&kv)
        .unwrap()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    assert_eq!(names, ["local", "nas"]);
    assert_eq!(
        get(&kv, "nas").unwrap().unwrap().spec.kind.local_path(),
        "/var/lib/quantix/mnt/nas"
    );
}

#[test]
fn create_refusals() {
    let mut kv = with_pool();
    let cases: Vec<(PoolSpec, RejectKind, &str)> = vec![
        (
            dir_spec("local", "/other"),
            RejectKind::AlreadyExists,
            "pool local already exists",
        ),
        (
            dir_spec("Local", "/x"),
            RejectKind::InvalidArgument,
            "pool name 'Local'",
        ),
        (
            dir_spec("p2", "relative"),
            RejectKind::InvalidArgument,
            "path 'relative'",
        ),
        (dir_spec("p2", "/"), RejectKind::InvalidArgument, "path '/'"),
        (
            PoolSpec {
                name: "p3".into(),
                kind: PoolKind::Nfs {
                    server: "bad server".into(),
                    export: "/srv".into(),
                    mount_point: "/mnt/p3".into(),
                },
            },
            RejectKind::InvalidArgument,
            "nfs server 'bad server'",
        ),
    ];
    for (spec, kind, msg) in cases {
        let r = rejected(apply(&mut kv, 9, &PoolCommand::CreatePool(spec.clone())).unwrap());
        assert_eq!(r.kind, kind, "{spec:?}");
        assert!(r.message.contains(msg), "{spec:?}: {}", r.message);
    }
    assert_eq!(list(&kv).unwrap().len(), 1);
}

#[test]
fn observe_updates_the_per_host_map() {
    let mut kv = with_pool();
    tables::put(
        &mut kv,
        Table::Hosts,
        b"h2",
        &crate::state::apply::tests::host("h2", 2),
    )
    .unwrap();
    let out = apply(
        &mut kv,
        10,
        &observe_cmd("local", "h1", true, "", 1000, 400),
    )
    .unwrap();
    let Outcome::Applied(Applied::Pool(PoolApplied::PoolObserved(p))) = out else {
        panic!("{out:?}");
    };
    assert_eq!(
        p.hosts["h1"],
        PoolObservation {
            reachable: true,
            reason: String::new(),
            capacity_mib: 1000,
            free_mib: 400,
            at: 10
        }
    );
    apply(
        &mut kv,
        11,
        &observe_cmd("local", "h2", false, " mount failed: EACCES ", 5, 5),
    )
    .unwrap();
    let p = get(&kv, "local").unwrap().unwrap();
    assert_eq!(p.reachable_from(), vec!["h1"]);
    assert_eq!(p.hosts["h2"].reason, "mount failed: EACCES");
    assert_eq!((p.hosts["h2"].capacity_mib, p.hosts["h2"].at), (0, 11));
    // A later report replaces the earlier one; a reason left over from a failure is dropped.
    apply(
        &mut kv,
        12,
        &observe_cmd("local", "h2", true, "old", 2000, 2000),
    )
    .unwrap();
    let p = get(&kv, "local").unwrap().unwrap();
    assert_eq!(p.reachable_from(), vec!["h1", "h2"]);
    assert_eq!(p.hosts["h2"].reason, "");
    assert_eq!(p.hosts.len(), 2);
}

#[test]
fn observe_refusals() {
    let mut kv = with_pool();
    let cases: Vec<(PoolCommand, RejectKind, &str)> = vec![
        (
            observe_cmd("nope", "h1", true, "", 1, 1),
            RejectKind::NotFound,
            "pool nope does not exist",
        ),
        (
            observe_cmd("local", "h9", true, "", 1, 1),
            RejectKind::NotFound,
            "host h9 is not a member",
        ),
        (
            observe_cmd("local", "h1", true, "", 1, 2),
            RejectKind::InvalidArgument,
            "free_mib (2) exceeds capacity_mib (1)",
        ),
        (
            observe_cmd("local", "h1", false, " ", 0, 0),
            RejectKind::InvalidArgument,
            "reason must say why host h1",
        ),
    ];
    for (cmd, kind, msg) in cases {
        let r = rejected(apply(&mut kv, 9, &cmd).unwrap());
        assert_eq!(r.kind, kind, "{cmd:?}");
        assert!(r.message.contains(msg), "{cmd:?}: {}", r.message);
    }
    assert!(get(&kv, "local").unwrap().unwrap().hosts.is_empty());
}

#[test]
fn delete_is_refused_while_an_image_uses_the_pool() {
    let mut kv = with_pool();
    let spec = ImageSpec {
        name: "ubuntu-24.04".into(),
        kind: ImageKind::Cloud,
        os: "ubuntu 24.04".into(),
        format: ImageFormat::Qcow2,
        url: "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img".into(),
        sha256: None,
        pool: "local".into(),
    };
    let out = images::apply(&mut kv, 6, &ImageCommand::CreateImage(spec)).unwrap();
    assert!(matches!(out, Outcome::Applied(_)), "{out:?}");
    let r = rejected(
        apply(
            &mut kv,
            7,
            &PoolCommand::DeletePool {
                name: "local".into(),
            },
        )
        .unwrap(),
    );
    assert_eq!(r.kind, RejectKind::FailedPrecondition);
    assert!(
        r.message
            .contains("pool local is in use by image ubuntu-24.04"),
        "{}",
        r.message
    );
    assert!(get(&kv, "local").unwrap().is_some());
    images::apply(
        &mut kv,
        8,
        &ImageCommand::DeleteImage {
            name: "ubuntu-24.04".into(),
        },
    )
    .unwrap();
    assert_eq!(
        apply(
            &mut kv,
            9,
            &PoolCommand::DeletePool {
                name: "local".into()
            }
        )
        .unwrap(),
        Outcome::Applied(Applied::Pool(PoolApplied::PoolDeleted {
            name: "local".into()
        }))
    );
    assert!(get(&kv, "local").unwrap().is_none());
    let r = rejected(
        apply(
            &mut kv,
            10,
            &PoolCommand::DeletePool {
                name: "local".into(),
            },
        )
        .unwrap(),
    );
    assert_eq!(
        (r.kind, r.message.as_str()),
        (RejectKind::NotFound, "pool local does not exist")
    );
}

#[test]
fn referrers_lists_at_most_limit_images() {
    let mut kv = with_pool();
    for i in 0..5 {
        let spec = ImageSpec {
            name: format!("img{i}"),
            kind: ImageKind::Iso,
            os: String::new(),
            format: ImageFormat::Iso,
            url: "https://example.com/x.iso".into(),
            sha256: None,
            pool: "local".into(),
        };
        images::apply(&mut kv, 6, &ImageCommand::CreateImage(spec)).unwrap();
    }
    let users = refs::referrers(&kv, Ref::Pool("local"), 3).unwrap();
    assert_eq!(users, ["image img0", "image img1", "image img2"]);
    assert!(refs::referrers(&kv, Ref::Pool("other"), 3)
        .unwrap()
        .is_empty());
}

#[test]
fn kinds_and_targets() {
    let cmds = [
        (PoolCommand::CreatePool(dir_spec("a", "/a")), "create_pool"),
        (PoolCommand::DeletePool { name: "a".into() }, "delete_pool"),
        (observe_cmd("a", "h1", true, "", 0, 0), "observe_pool"),
    ];
    for (c, kind) in cmds {
        assert_eq!(c.kind(), kind);
        assert_eq!(c.target(), "pool a");
    }
}
