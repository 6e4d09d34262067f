//! Table tests: each scorer, `place` and the `Unschedulable` text.

use super::*;

// ---- scorers ----

#[test]
fn image_locality_table() {
    let cases: &[(&[&str], Option<&str>, f64)] = &[
        (&[], None, 0.0),
        (&["ubuntu"], None, 0.0),
        (&["ubuntu"], Some("ubuntu"), 1.0),
        (&["debian"], Some("ubuntu"), 0.0),
    ];
    for (local, image, want) in cases {
        let h = HostView {
            images: set(local),
            ..host("h1")
        };
        let v = VmDemand {
            image: image.map(str::to_string),
            ..vm("v")
        };
        assert_eq!(scores::image_locality(&h, &v), *want, "{local:?} {image:?}");
    }
}

#[test]
fn balance_and_spread_table() {
    // Host 8 CPUs / 16 GiB, no overcommit. (alloc cpus, alloc MiB, vm cpus, vm MiB,
    // balance, spread score, pack score)
    let cases = [
        (0, 0, 0, 0, 1.0, 1.0, 0.0),
        (0, 0, 8, 16384, 1.0, 0.0, 1.0),
        (0, 0, 4, 8192, 1.0, 0.5, 0.5),
        (0, 0, 8, 0, 0.0, 0.5, 0.5),
        (2, 0, 2, 4096, 0.75, 0.625, 0.375),
        (6, 12288, 2, 0, 0.75, 0.125, 0.875),
    ];
    for (ac, am, vc, vmem, bal, spr, pack) in cases {
        let h = HostView {
            alloc_cpus: ac,
            alloc_memory_mib: am,
            ..host("h1")
        };
        let v = VmDemand {
            cpus: vc,
            memory_mib: vmem,
            ..vm("v")
        };
        let spread = no_overcommit();
        let packing = Policy {
            spread: false,
            ..no_overcommit()
        };
        let label = format!("alloc {ac}/{am}, vm {vc}/{vmem}");
        assert_eq!(scores::balance(&h, &v, &spread), bal, "balance {label}");
        assert_eq!(scores::spread(&h, &v, &spread), spr, "spread {label}");
        assert_eq!(scores::spread(&h, &v, &packing), pack, "pack {label}");
    }
}

#[test]
fn utilisation_counts_overcommit_and_empty_hosts_as_full() {
    let p = Policy::default(); // CPUs ×4
    let v = VmDemand {
        cpus: 8,
        memory_mib: 4096,
        ..vm("v")
    };
    assert_eq!(scores::utilisation_after(&host("h1"), &v, &p), (0.25, 0.25));
    let empty = HostView {
        cpus: 0,
        memory_mib: 0,
        ..host("h0")
    };
    assert_eq!(scores::utilisation_after(&empty, &v, &p), (1.0, 1.0));
}

#[test]
fn score_is_the_weighted_sum() {
    let p = Policy {
        weight_image_locality: 0.7,
        weight_balance: 0.3,
        weight_spread: 1.9,
        ..Policy::default()
    };
    let h = HostView {
        alloc_cpus: 3,
        alloc_memory_mib: 5000,
        images: set(&["ubuntu"]),
        ..host("h1")
    };
    for image in [None, Some("ubuntu".to_string())] {
        for spread in [true, false] {
            let p = Policy {
                spread,
                ..p.clone()
            };
            let v = VmDemand {
                image: image.clone(),
                ..vm("v")
            };
            let want = 0.7 * scores::image_locality(&h, &v)
                + 0.3 * scores::balance(&h, &v, &p)
                + 1.9 * scores::spread(&h, &v, &p);
            assert_eq!(scores::score(&h, &v, &p), want, "{image:?} spread={spread}");
        }
    }
}

// ---- place ----

#[test]
fn place_table() {
    let big = HostView {
        cpus: 32,
        memory_mib: 65536,
        ..host("h-big")
    };
    let busy = HostView {
        alloc_cpus: 20,
        alloc_memory_mib: 12288,
        ..host("h-busy")
    };
    let with_image = HostView {
        images: set(&["ubuntu"]),
        ..host("h-img")
    };
    let s = snapshot(vec![big, busy, with_image]);
    let spread = Policy::default();
    let pack = Policy {
        spread: false,
        ..Policy::default()
    };
    let cases = [
        ("spread goes to the emptiest", vm("v"), &spread, "h-big"),
        ("pack goes to the fullest", vm("v"), &pack, "h-busy"),
        (
            "a local image outweighs emptiness",
            VmDemand {
                image: Some("ubuntu".into()),
                ..vm("v")
            },
            &spread,
            "h-img",
        ),
        (
            "pin",
            VmDemand {
                host_pin: Some("h-busy".into()),
                ..vm("v")
            },
            &spread,
            "h-busy",
        ),
    ];
    for (label, v, p, want) in cases {
        assert_eq!(place(&s, &v, p).as_deref(), Ok(want), "{label}");
    }
}

#[test]
fn ties_go_to_the_smallest_host_name() {
    let s = snapshot(vec![host("h3"), host("h1"), host("h2")]);
    assert_eq!(place(&s, &vm("v"), &Policy::default()).as_deref(), Ok("h1"));
    let pack = Policy {
        spread: false,
        ..Policy::default()
    };
    assert_eq!(place(&s, &vm("v"), &pack).as_deref(), Ok("h1"));
}

#[test]
fn affinity_narrows_to_the_group_host() {
    let mut s = snapshot(vec![host("h1"), host("h2"), host("h3")]);
    s.groups.insert("db".into(), set(&["h3"]));
    let v = VmDemand {
        affinity: Some("db".into()),
        ..vm("v")
    };
    assert_eq!(place(&s, &v, &Policy::default()).as_deref(), Ok("h3"));
}

fn unschedulable(considered: usize, reasons: &[(&str, &[&str])]) -> Unschedulable {
    Unschedulable {
        considered,
        reasons: reasons
            .iter()
            .map(|(k, h)| (k.to_string(), h.iter().map(|s| s.to_string()).collect()))
            .collect(),
    }
}

#[test]
fn unschedulable_summary_table() {
    let cases: &[(Unschedulable, &str)] = &[
        (
            unschedulable(
                3,
                &[
                    ("maintenance", &["h3"]),
                    ("memory:8192", &["h1", "h2"]),
                    ("pool:nfs-a", &["h1", "h2", "h3"]),
                ],
            ),
            "no host reaches pool nfs-a; 2 hosts lack 8 GiB memory; host h3 is in maintenance",
        ),
        (unschedulable(0, &[]), "no hosts in the cluster"),
        (unschedulable(2, &[]), "no host fits"),
        (
            unschedulable(1, &[("pool:nfs-a", &["h1"])]),
            "host h1 cannot reach pool nfs-a",
        ),
        (
            unschedulable(3, &[("pool:nfs-a", &["h1", "h2"])]),
            "2 hosts cannot reach pool nfs-a",
        ),
        (
            unschedulable(2, &[("image:ubuntu", &["h1", "h2"])]),
            "no host has image ubuntu",
        ),
        (
            unschedulable(3, &[("image:ubuntu", &["h2"])]),
            "host h2 lacks image ubuntu",
        ),
        (
            unschedulable(3, &[("cpu:1", &["h1"]), ("cpu:1x", &["h2", "h3"])]),
            "host h1 lacks 1 CPU; 2 hosts lack 1x CPUs",
        ),
        (
            unschedulable(3, &[("cpu:4", &["h1", "h2", "h3"])]),
            "all 3 hosts lack 4 CPUs",
        ),
        (
            unschedulable(5, &[("memory:1536", &["h1", "h2"])]),
            "2 hosts lack 1.5 GiB memory",
        ),
        (
            unschedulable(5, &[("memory:100", &["h1"])]),
            "host h1 lacks 100 MiB memory",
        ),
        (
            unschedulable(2, &[("pinned:h9", &["h1", "h2"])]),
            "pinned to host h9, which is not in the cluster",
        ),
        (
            unschedulable(3, &[("pinned:h2", &["h1", "h3"]), ("memory:4096", &["h2"])]),
            "pinned to host h2; host h2 lacks 4 GiB memory",
        ),
        (
            unschedulable(
                3,
                &[("anti-affinity:web", &["h1", "h2"]), ("offline", &["h3"])],
            ),
            "2 hosts already run a member of anti-affinity group web; host h3 is offline",
        ),
        (
            unschedulable(3, &[("affinity:db", &["h1", "h2"]), ("cpu:8", &["h3"])]),
            "host h3 lacks 8 CPUs; 2 hosts are not where affinity group db runs",
        ),
        (
            unschedulable(2, &[("offline", &["h1", "h2"])]),
            "all 2 hosts are offline",
        ),
        (
            unschedulable(4, &[("maintenance", &["h1", "h2"])]),
            "2 hosts are in maintenance",
        ),
        (
            unschedulable(4, &[("strange", &["h1"])]),
            "host h1: strange",
        ),
    ];
    for (u, want) in cases {
        assert_eq!(u.to_string(), *want, "{u:?}");
    }
}

#[test]
fn explain_matches_the_example_from_the_issue() {
    let s = snapshot(vec![
        host("h1"),
        host("h2"),
        HostView {
            maintenance: true,
            memory_mib: 65536,
            ..host("h3")
        },
    ]);
    let v = VmDemand {
        memory_mib: 24576,
        cpus: 1,
        pools: set(&["nfs-a"]),
        ..vm("v")
    };
    let err = place(&s, &v, &Policy::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no host reaches pool nfs-a; 2 hosts lack 24 GiB memory; host h3 is in maintenance"
    );
    assert_eq!(
        err,
        unschedulable(
            3,
            &[
                ("maintenance", &["h3"]),
                ("memory:24576", &["h1", "h2"]),
                ("pool:nfs-a", &["h1", "h2", "h3"]),
            ]
        )
    );
}

#[test]
fn explain_pinned_to_unknown_host() {
    let s = snapshot(vec![host("h1"), host("h2")]);
    let v = VmDemand {
        host_pin: Some("h9".into()),
        ..vm("v")
    };
    let err = place(&s, &v, &Policy::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pinned to host h9, which is not in the cluster"
    );
    assert_eq!(
        place(&Snapshot::default(), &vm("v"), &Policy::default())
            .unwrap_err()
            .to_string(),
        "no hosts in the cluster"
    );
}
