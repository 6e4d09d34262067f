//! Table tests: capacity arithmetic and each filter.

use super::*;

// ---- capacity arithmetic ----

#[test]
fn capacity_table() {
    let cases: &[(f64, u32, u32, f64, u64, u64)] = &[
        // cpu ratio, cpus, cpu capacity, memory ratio, memory, memory capacity
        (1.0, 8, 8, 1.0, 16384, 16384),
        (4.0, 8, 32, 1.5, 1000, 1500),
        (1.5, 3, 4, 1.25, 3, 3), // floor
        (0.5, 3, 1, 0.5, 3, 1),
        (0.0, 8, 0, 0.0, 8, 0),
        (-2.0, 8, 0, -1.0, 8, 0),
        (f64::NAN, 8, 0, f64::NAN, 8, 0),
        (f64::INFINITY, 1, u32::MAX, f64::INFINITY, 1, u64::MAX),
        (4.0, u32::MAX, u32::MAX, 1.0, u64::MAX, u64::MAX),
    ];
    for &(cr, cpus, ccap, mr, mem, mcap) in cases {
        let p = Policy {
            cpu_overcommit: cr,
            memory_overcommit: mr,
            ..Policy::default()
        };
        assert_eq!(p.cpu_capacity(cpus), ccap, "cpu {cpus} × {cr}");
        assert_eq!(p.memory_capacity(mem), mcap, "memory {mem} × {mr}");
    }
}

#[test]
fn free_never_underflows() {
    let h = HostView {
        alloc_cpus: 100,
        alloc_memory_mib: 100_000,
        ..host("h1")
    };
    assert_eq!(h.free_cpus(&no_overcommit()), 0);
    assert_eq!(h.free_memory_mib(&no_overcommit()), 0);
}

// ---- filters, one table each ----

#[test]
fn online_and_maintenance_table() {
    let cases = [
        (true, false, Ok(()), Ok(())),
        (false, false, Err(Reject::Offline), Ok(())),
        (true, true, Ok(()), Err(Reject::Maintenance)),
        (false, true, Err(Reject::Offline), Err(Reject::Maintenance)),
    ];
    for (online, maintenance, want_online, want_maint) in cases {
        let h = HostView {
            online,
            maintenance,
            ..host("h1")
        };
        assert_eq!(filters::online(&h), want_online, "online={online}");
        assert_eq!(
            filters::not_in_maintenance(&h),
            want_maint,
            "maintenance={maintenance}"
        );
    }
}

#[test]
fn cpu_table() {
    // (host cpus, allocated, ratio, need, expected)
    let cases = [
        (8, 0, 1.0, 8, Ok(())),
        (8, 0, 1.0, 9, Err(Reject::Cpu { need: 9, free: 8 })),
        (8, 6, 1.0, 2, Ok(())),
        (8, 6, 1.0, 3, Err(Reject::Cpu { need: 3, free: 2 })),
        (8, 6, 4.0, 26, Ok(())),
        (8, 6, 4.0, 27, Err(Reject::Cpu { need: 27, free: 26 })),
        (3, 0, 1.5, 4, Ok(())),
        (3, 0, 1.5, 5, Err(Reject::Cpu { need: 5, free: 4 })),
        (8, 40, 4.0, 1, Err(Reject::Cpu { need: 1, free: 0 })),
        (0, 0, 4.0, 0, Ok(())),
        (0, 0, 4.0, 1, Err(Reject::Cpu { need: 1, free: 0 })),
    ];
    for (cpus, alloc, ratio, need, want) in cases {
        let h = HostView {
            cpus,
            alloc_cpus: alloc,
            ..host("h1")
        };
        let v = VmDemand {
            cpus: need,
            ..vm("v")
        };
        let p = Policy {
            cpu_overcommit: ratio,
            ..Policy::default()
        };
        assert_eq!(
            filters::cpu(&h, &v, &p),
            want,
            "{cpus} cpus, {alloc} allocated, ×{ratio}, need {need}"
        );
    }
}

#[test]
fn memory_table() {
    let m = |need_mib, free_mib| Err(Reject::Memory { need_mib, free_mib });
    // (host MiB, allocated, ratio, need, expected)
    let cases = [
        (16384, 0, 1.0, 16384, Ok(())),
        (16384, 0, 1.0, 16385, m(16385, 16384)),
        (16384, 8192, 1.0, 8192, Ok(())),
        (16384, 8192, 1.0, 8193, m(8193, 8192)),
        (16384, 8192, 1.5, 16384, Ok(())),
        (16384, 8192, 1.5, 16385, m(16385, 16384)),
        (1000, 0, 1.25, 1250, Ok(())),
        (16384, 20000, 1.0, 1, m(1, 0)),
    ];
    for (mem, alloc, ratio, need, want) in cases {
        let h = HostView {
            memory_mib: mem,
            alloc_memory_mib: alloc,
            ..host("h1")
        };
        let v = VmDemand {
            memory_mib: need,
            ..vm("v")
        };
        let p = Policy {
            memory_overcommit: ratio,
            ..Policy::default()
        };
        assert_eq!(
            filters::memory(&h, &v, &p),
            want,
            "{mem} MiB, {alloc} allocated, ×{ratio}, need {need}"
        );
    }
}

#[test]
fn pools_table() {
    let cases: &[(Names, Names, Want)] = &[
        (&["local"], &[], Ok(())),
        (&["local"], &["local"], Ok(())),
        (&["local", "nfs-a"], &["local", "nfs-a"], Ok(())),
        (&["local"], &["nfs-a"], Err(Reject::Pool("nfs-a".into()))),
        // The first missing pool by name is named.
        (
            &["local"],
            &["nfs-b", "nfs-a", "local"],
            Err(Reject::Pool("nfs-a".into())),
        ),
        (&[], &["local"], Err(Reject::Pool("local".into()))),
    ];
    for (reach, need, want) in cases {
        let h = HostView {
            pools: set(reach),
            ..host("h1")
        };
        let v = VmDemand {
            pools: set(need),
            ..vm("v")
        };
        assert_eq!(
            &filters::pools(&h, &v),
            want,
            "reach {reach:?}, need {need:?}"
        );
    }
}

#[test]
fn image_table() {
    // (local images, shared images, VM image, expected)
    let cases: &[(Names, Names, Option<&str>, Want)] = &[
        (&[], &[], None, Ok(())),
        (&["ubuntu"], &[], Some("ubuntu"), Ok(())),
        (&[], &["ubuntu"], Some("ubuntu"), Ok(())),
        (&["ubuntu"], &["ubuntu"], Some("ubuntu"), Ok(())),
        (
            &["debian"],
            &["alma"],
            Some("ubuntu"),
            Err(Reject::Image("ubuntu".into())),
        ),
    ];
    for (local, shared, image, want) in cases {
        let h = HostView {
            images: set(local),
            ..host("h1")
        };
        let s = Snapshot {
            shared_images: set(shared),
            ..Snapshot::default()
        };
        let v = VmDemand {
            image: image.map(str::to_string),
            ..vm("v")
        };
        assert_eq!(
            &filters::image(&h, &v, &s),
            want,
            "local {local:?}, shared {shared:?}, image {image:?}"
        );
    }
}

#[test]
fn pin_table() {
    let cases = [
        (None, Ok(())),
        (Some("h1"), Ok(())),
        (Some("h2"), Err(Reject::Pinned("h2".into()))),
    ];
    for (pin, want) in cases {
        let v = VmDemand {
            host_pin: pin.map(str::to_string),
            ..vm("v")
        };
        assert_eq!(filters::pinned(&host("h1"), &v,), want, "pin {pin:?}");
    }
}

#[test]
fn anti_affinity_table() {
    // (group on the VM, groups in the snapshot, expected on h1)
    let cases: &[(Option<&str>, GroupRows, Want)] = &[
        (None, &[("web", &["h1"])], Ok(())),
        (Some("web"), &[], Ok(())),
        (Some("web"), &[("web", &[])], Ok(())),
        (Some("web"), &[("web", &["h2", "h3"])], Ok(())),
        (Some("web"), &[("db", &["h1"])], Ok(())),
        (
            Some("web"),
            &[("web", &["h1", "h2"])],
            Err(Reject::AntiAffinity("web".into())),
        ),
    ];
    for (group, groups, want) in cases {
        let s = Snapshot {
            groups: groups
                .iter()
                .map(|(g, h)| (g.to_string(), set(h)))
                .collect(),
            ..Snapshot::default()
        };
        let v = VmDemand {
            anti_affinity: group.map(str::to_string),
            ..vm("v")
        };
        assert_eq!(
            &filters::anti_affinity(&host("h1"), &v, &s),
            want,
            "group {group:?}, groups {groups:?}"
        );
    }
}

#[test]
fn affinity_table() {
    let cases: &[(Option<&str>, GroupRows, Want)] = &[
        (None, &[("db", &["h2"])], Ok(())),
        // The first member goes anywhere.
        (Some("db"), &[], Ok(())),
        (Some("db"), &[("db", &[])], Ok(())),
        (Some("db"), &[("db", &["h1"])], Ok(())),
        (Some("db"), &[("web", &["h2"])], Ok(())),
        (
            Some("db"),
            &[("db", &["h2"])],
            Err(Reject::Affinity("db".into())),
        ),
        // A group that already spans hosts (placed by hand) admits any of them.
        (Some("db"), &[("db", &["h1", "h2"])], Ok(())),
    ];
    for (group, groups, want) in cases {
        let s = Snapshot {
            groups: groups
                .iter()
                .map(|(g, h)| (g.to_string(), set(h)))
                .collect(),
            ..Snapshot::default()
        };
        let v = VmDemand {
            affinity: group.map(str::to_string),
            ..vm("v")
        };
        assert_eq!(
            &filters::affinity(&host("h1"), &v, &s),
            want,
            "group {group:?}, groups {groups:?}"
        );
    }
}

#[test]
fn reject_keys_and_text() {
    let cases = [
        (Reject::Offline, "offline", "host is offline"),
        (Reject::Maintenance, "maintenance", "host is in maintenance"),
        (
            Reject::Cpu { need: 4, free: 1 },
            "cpu:4",
            "needs 4 CPUs, 1 free",
        ),
        (
            Reject::Cpu { need: 1, free: 0 },
            "cpu:1",
            "needs 1 CPU, 0 free",
        ),
        (
            Reject::Memory {
                need_mib: 8192,
                free_mib: 512,
            },
            "memory:8192",
            "needs 8 GiB memory, 512 MiB free",
        ),
        (
            Reject::Pool("nfs-a".into()),
            "pool:nfs-a",
            "host does not reach pool nfs-a",
        ),
        (
            Reject::Image("ubuntu".into()),
            "image:ubuntu",
            "image ubuntu is not available on the host",
        ),
        (
            Reject::Pinned("h2".into()),
            "pinned:h2",
            "VM is pinned to host h2",
        ),
        (
            Reject::AntiAffinity("web".into()),
            "anti-affinity:web",
            "host already runs a member of anti-affinity group web",
        ),
        (
            Reject::Affinity("db".into()),
            "affinity:db",
            "host does not run the members of affinity group db",
        ),
    ];
    for (r, key, text) in &cases {
        assert_eq!(r.key(), *key);
        assert_eq!(r.to_string(), *text);
        for (other, other_key, _) in &cases {
            assert_eq!(r.same_key(other), key == other_key, "{r:?} vs {other:?}");
        }
    }
    // The free amount is per host; the key is not.
    assert!(Reject::Cpu { need: 4, free: 1 }.same_key(&Reject::Cpu { need: 4, free: 3 }));
}

#[test]
fn filters_check_reports_the_first_failure_and_each_reject_all() {
    let h = HostView {
        online: false,
        maintenance: true,
        cpus: 1,
        memory_mib: 1024,
        ..host("h1")
    };
    let v = VmDemand {
        pools: set(&["nfs-a"]),
        image: Some("ubuntu".into()),
        ..vm("v")
    };
    let s = Snapshot::default();
    let p = no_overcommit();
    let f = Filters::new(&s, &v, &p);
    assert_eq!(f.check(&h), Err(Reject::Offline));
    let mut all = Vec::new();
    f.each_reject(&h, |r| all.push(r.key()));
    assert_eq!(
        all,
        [
            "offline",
            "maintenance",
            "cpu:2",
            "memory:2048",
            "pool:nfs-a",
            "image:ubuntu"
        ]
    );
    // Not the pinned host: only the pin is reported.
    let pinned = VmDemand {
        host_pin: Some("h2".into()),
        ..v.clone()
    };
    let f = Filters::new(&s, &pinned, &p);
    let mut all = Vec::new();
    f.each_reject(&h, |r| all.push(r.key()));
    assert_eq!(all, ["pinned:h2"]);
}
