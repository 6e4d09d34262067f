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
        hosts: Vec::new(),
    }
}

fn limited_spec(name: &str, hosts: &[&str]) -> PoolSpec {
    PoolSpec {
        hosts: strings(hosts),
        ..dir_spec(name, &format!("/pools/{name}"))
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A cluster with members h1 (from `init`), h2 and h3.
fn three_hosts() -> MemKv {
    let mut kv = init();
    for (name, id) in [("h2", 2), ("h3", 3)] {
        let rec = crate::state::apply::tests::host(name, id);
        tables::put(&mut kv, Table::Hosts, name.as_bytes(), &rec).unwrap();
    }
    kv
}

fn set_hosts_cmd(pool: &str, hosts: &[&str]) -> PoolCommand {
    PoolCommand::SetHosts {
        pool: pool.into(),
        hosts: strings(hosts),
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
                hosts: Vec::new(),
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
        (set_hosts_cmd("a", &["h1"]), "set_pool_hosts"),
    ];
    for (c, kind) in cmds {
        assert_eq!(c.kind(), kind);
        assert_eq!(c.target(), "pool a");
    }
}

#[test]
fn create_with_hosts_stores_them_sorted_and_checks_membership() {
    let mut kv = three_hosts();
    let out = apply(
        &mut kv,
        5,
        &PoolCommand::CreatePool(limited_spec("p", &["h3", "h1", "h3"])),
    )
    .unwrap();
    let Outcome::Applied(Applied::Pool(PoolApplied::PoolCreated(p))) = out else {
        panic!("{out:?}");
    };
    assert_eq!(p.spec.hosts, ["h1", "h3"]);
    assert_eq!(get(&kv, "p").unwrap(), Some(p));

    let before = kv.clone();
    let cases: Vec<(PoolSpec, RejectKind, &str)> = vec![
        (
            limited_spec("q", &["h1", "h9"]),
            RejectKind::NotFound,
            "host h9 is not a member of this cluster",
        ),
        (
            limited_spec("q", &["H1"]),
            RejectKind::InvalidArgument,
            "host name 'H1'",
        ),
    ];
    for (spec, kind, msg) in cases {
        let r = rejected(apply(&mut kv, 6, &PoolCommand::CreatePool(spec.clone())).unwrap());
        assert_eq!(r.kind, kind, "{spec:?}");
        assert!(r.message.contains(msg), "{spec:?}: {}", r.message);
    }
    assert_eq!(kv, before, "a refusal changes nothing");
}

#[test]
fn observe_from_a_host_outside_the_limit_is_stored_unreachable() {
    let mut kv = three_hosts();
    apply(
        &mut kv,
        5,
        &PoolCommand::CreatePool(limited_spec("p", &["h1", "h2"])),
    )
    .unwrap();
    // Whatever h3 reports (even numbers that would be refused from an allowed host)...
    for cmd in [
        observe_cmd("p", "h3", true, "", 1000, 400),
        observe_cmd("p", "h3", true, "", 1, 2),
        observe_cmd("p", "h3", false, "", 0, 0),
    ] {
        let out = apply(&mut kv, 10, &cmd).unwrap();
        let Outcome::Applied(Applied::Pool(PoolApplied::PoolObserved(p))) = out else {
            panic!("{cmd:?}: {out:?}");
        };
        // ...it is kept as unreachable, with the limit as the reason.
        assert_eq!(
            p.hosts["h3"],
            PoolObservation {
                reachable: false,
                reason: "pool p is limited to hosts h1, h2".into(),
                capacity_mib: 0,
                free_mib: 0,
                at: 10
            },
            "{cmd:?}"
        );
    }
    apply(&mut kv, 11, &observe_cmd("p", "h1", true, "", 100, 50)).unwrap();
    let p = get(&kv, "p").unwrap().unwrap();
    assert_eq!(p.reachable_from(), ["h1"]);
    // A host outside the limit must still be a member.
    let r = rejected(apply(&mut kv, 12, &observe_cmd("p", "h9", true, "", 1, 1)).unwrap());
    assert_eq!(r.kind, RejectKind::NotFound);
}

#[test]
fn set_hosts_changes_the_limit_and_the_observations() {
    let mut kv = three_hosts();
    apply(&mut kv, 5, &PoolCommand::CreatePool(limited_spec("p", &[]))).unwrap();
    for h in ["h1", "h2", "h3"] {
        apply(&mut kv, 6, &observe_cmd("p", h, true, "", 100, 50)).unwrap();
    }
    let out = apply(&mut kv, 7, &set_hosts_cmd("p", &["h2", "h1"])).unwrap();
    let Outcome::Applied(Applied::Pool(PoolApplied::PoolHostsChanged(p))) = out else {
        panic!("{out:?}");
    };
    assert_eq!(p.spec.hosts, ["h1", "h2"]);
    assert_eq!(p.reachable_from(), ["h1", "h2"]);
    assert_eq!(
        (
            p.hosts["h3"].reachable,
            p.hosts["h3"].reason.as_str(),
            p.hosts["h3"].at
        ),
        (false, "pool p is limited to hosts h1, h2", 7)
    );
    assert_eq!(p.hosts["h1"].at, 6, "allowed hosts keep their report");
    assert_eq!(get(&kv, "p").unwrap(), Some(p));

    // Narrowing further re-words the reason for every host outside the limit.
    apply(&mut kv, 8, &set_hosts_cmd("p", &["h1"])).unwrap();
    let p = get(&kv, "p").unwrap().unwrap();
    assert_eq!(p.reachable_from(), ["h1"]);
    for h in ["h2", "h3"] {
        assert_eq!(p.hosts[h].reason, "pool p is limited to host h1", "{h}");
    }

    // Clearing the limit drops the observations only the limit made: those hosts report anew.
    apply(&mut kv, 9, &set_hosts_cmd("p", &[])).unwrap();
    let p = get(&kv, "p").unwrap().unwrap();
    assert!(p.spec.hosts.is_empty());
    assert_eq!(p.hosts.keys().collect::<Vec<_>>(), ["h1"]);
    apply(&mut kv, 10, &observe_cmd("p", "h3", true, "", 100, 50)).unwrap();
    assert_eq!(
        get(&kv, "p").unwrap().unwrap().reachable_from(),
        ["h1", "h3"]
    );
}

#[test]
fn set_hosts_refusals_change_nothing() {
    let mut kv = three_hosts();
    apply(
        &mut kv,
        5,
        &PoolCommand::CreatePool(limited_spec("p", &["h1"])),
    )
    .unwrap();
    let before = kv.clone();
    let cases: Vec<(PoolCommand, RejectKind, &str)> = vec![
        (
            set_hosts_cmd("nope", &["h1"]),
            RejectKind::NotFound,
            "pool nope does not exist",
        ),
        (
            set_hosts_cmd("p", &["h2", "h9"]),
            RejectKind::NotFound,
            "host h9 is not a member of this cluster",
        ),
        (
            set_hosts_cmd("p", &["h_2"]),
            RejectKind::InvalidArgument,
            "hosts of pool p: host name 'h_2'",
        ),
    ];
    for (cmd, kind, msg) in cases {
        let r = rejected(apply(&mut kv, 9, &cmd).unwrap());
        assert_eq!(r.kind, kind, "{cmd:?}");
        assert!(r.message.contains(msg), "{cmd:?}: {}", r.message);
    }
    assert_eq!(kv, before);
}
