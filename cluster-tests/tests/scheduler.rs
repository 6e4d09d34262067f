//! The leader's scheduler, end to end: real quantixd processes whose sizes come from libvirt's
//! test driver, pools each host really checks, placement through Raft re-validated in apply,
//! a leader SIGKILLed in the middle, and scheduled creation across a leader change.

use cluster_tests::{stderr, stdout, wait_for, Cluster, Opts};
use quantix::proto::v1::host_service_client::HostServiceClient;
use quantix::proto::v1::vm_service_client::VmServiceClient;
use quantix::proto::v1::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn vm_request(name: &str, pool: &str, anti_affinity: &str) -> CreateVmRequest {
    CreateVmRequest {
        name: name.into(),
        cpus: 1,
        memory_mib: 256,
        disks: vec![Disk {
            size_mib: 1024,
            pool: pool.into(),
            image: String::new(),
        }],
        boot: Some(BootMedia {
            media: Some(boot_media::Media::Pxe(true)),
        }),
        anti_affinity: anti_affinity.into(),
        request_id: format!("create-{name}"),
        ..Default::default()
    }
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
    stdout(out)
}

fn json(out: &std::process::Output) -> serde_json::Value {
    let s = ok(out);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// Every VM, read linearizably through `node`.
async fn all_vms(c: &Cluster, node: usize) -> anyhow::Result<Vec<Vm>> {
    let mut client = VmServiceClient::new(c.nodes[node].channel().await?);
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_vms(ListVmsRequest {
                page_size: 500,
                page_token: token.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        out.extend(page.vms);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        token = page.next_page_token;
    }
}

async fn hosts(c: &Cluster, node: usize) -> anyhow::Result<BTreeMap<String, Host>> {
    let mut client = HostServiceClient::new(c.nodes[node].channel().await?);
    let list = client
        .list_hosts(ListHostsRequest::default())
        .await?
        .into_inner()
        .hosts;
    Ok(list.into_iter().map(|h| (h.name.clone(), h)).collect())
}

/// Waits until every host reports its libvirt size and reaches `pools`.
async fn wait_for_inventory(c: &Cluster, sizes: &[(u32, u64)], pools: &[(&str, &[&str])]) {
    wait_for(T, "hosts to report inventory and pools", || async {
        let Ok(hs) = hosts(c, 0).await else {
            return false;
        };
        let sized = sizes.iter().enumerate().all(|(i, (cpus, mem))| {
            hs.get(&format!("host{}", i + 1))
                .is_some_and(|h| h.cpus == *cpus && h.memory_mib == *mem)
        });
        let pooled = pools.iter().all(|(pool, on)| {
            on.iter().all(|h| {
                hs.get(*h)
                    .is_some_and(|h| h.pools.iter().any(|p| p == pool))
            })
        });
        sized && pooled
    })
    .await
    .expect("inventory");
}

async fn create_with_retry(c: &Cluster, node: usize, req: CreateVmRequest) {
    // The same request id makes a retry after a lost answer return the first outcome.
    wait_for(T, "create to succeed", || {
        let req = req.clone();
        async move {
            let Ok(ch) = c.nodes[node].channel().await else {
                return false;
            };
            VmServiceClient::new(ch).create_vm(req).await.is_ok()
        }
    })
    .await
    .expect("create");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_vms_land_only_where_allowed_across_a_leader_kill() -> anyhow::Result<()> {
    let sizes = vec![(8, 16_384), (4, 8_192), (16, 32_768)];
    let mut c = Cluster::form(
        3,
        3,
        Opts {
            sizes: sizes.clone(),
            ..Opts::default()
        },
    )
    .await?;
    let pools = tempfile::tempdir()?;
    let local = pools.path().join("local");
    let fast = pools.path().join("fast");
    let n0 = &c.nodes[0];
    ok(&n0.cli(&[
        "pool",
        "create",
        "local",
        "--type",
        "dir",
        "--path",
        &local.display().to_string(),
    ]));
    ok(&n0.cli(&[
        "pool",
        "create",
        "fast",
        "--type",
        "dir",
        "--path",
        &fast.display().to_string(),
        "--hosts",
        "host1,host3",
    ]));
    // 8 vCPUs per CPU: 224 vCPUs for 200 one-vCPU VMs; memory is not overcommitted.
    ok(&n0.cli(&["cluster", "policy", "set", "--cpu-overcommit", "8"]));
    wait_for_inventory(
        &c,
        &sizes,
        &[
            ("local", &["host1", "host2", "host3"]),
            ("fast", &["host1", "host3"]),
        ],
    )
    .await;

    // 200 VMs: every 4th on pool `fast`; six anti-affinity groups of three (one per host);
    // group `quad` has four members, so one must stay pending.
    let mut reqs = Vec::new();
    for i in 0..200 {
        // Group members stay on `local`: a group of three spread over three hosts cannot
        // also need a pool only two of them reach.
        let pool = if i % 4 == 0 && i >= 22 {
            "fast"
        } else {
            "local"
        };
        let group = match i {
            0..=17 => format!("aa{}", i / 3),
            18..=21 => "quad".to_string(),
            _ => String::new(),
        };
        reqs.push(vm_request(&format!("vm{i:03}"), pool, &group));
    }
    let leader = c.wait_for_leader(T).await?;
    let leader_idx = c.nodes.iter().position(|n| n.name == leader).unwrap_or(0);
    let others: Vec<usize> = (0..3).filter(|i| *i != leader_idx).collect();
    for (i, req) in reqs.iter().take(100).enumerate() {
        create_with_retry(&c, i % 3, req.clone()).await;
    }
    // SIGKILL the leader mid-way: creates and placements continue on the others.
    c.node_mut(&leader).kill();
    for (i, req) in reqs.iter().skip(100).enumerate() {
        create_with_retry(&c, others[i % 2], req.clone()).await;
    }
    c.node_mut(&leader).start().await?;
    c.wait_for_leader(T).await?;

    // All but one `quad` member get placed.
    let placed = wait_for(T, "199 placements", || async {
        all_vms(&c, others[0])
            .await
            .is_ok_and(|v| v.iter().filter(|v| !v.host.is_empty()).count() == 199)
    })
    .await;
    if let Err(e) = placed {
        for h in hosts(&c, others[0]).await?.values() {
            eprintln!(
                "{} cpus {}/{} memory {}/{}",
                h.name, h.allocated_cpus, h.cpus, h.allocated_memory_mib, h.memory_mib
            );
        }
        for v in all_vms(&c, others[0]).await? {
            if v.host.is_empty() {
                eprintln!("pending {}: {}", v.name, v.reason);
            }
        }
        for n in &c.nodes {
            eprintln!(
                "--- {} log tail:\n{}",
                n.name,
                n.log()
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        return Err(e);
    }
    c.wait_converged(T).await?;
    let vms = all_vms(&c, leader_idx).await?;
    assert_eq!(vms.len(), 200, "none lost");
    let hs = hosts(&c, leader_idx).await?;
    for h in hs.values() {
        eprintln!(
            "{}: {}/{} CPUs, {}/{} MiB",
            h.name, h.allocated_cpus, h.cpus, h.allocated_memory_mib, h.memory_mib
        );
    }

    let mut cpus: BTreeMap<&str, u64> = BTreeMap::new();
    let mut mem: BTreeMap<&str, u64> = BTreeMap::new();
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for v in &vms {
        if v.host.is_empty() {
            assert_eq!(v.anti_affinity, "quad", "{} pending: {}", v.name, v.reason);
            assert!(
                v.reason.contains("anti-affinity group quad"),
                "{}",
                v.reason
            );
            continue;
        }
        assert!(
            ["creating", "running"].contains(&v.status.as_str()),
            "{}: {}",
            v.name,
            v.status
        );
        if v.disks[0].pool == "fast" {
            assert_ne!(
                v.host, "host2",
                "{} uses pool fast, which host2 may not use",
                v.name
            );
        }
        *cpus.entry(&v.host).or_default() += u64::from(v.cpus);
        *mem.entry(&v.host).or_default() += v.memory_mib;
        if !v.anti_affinity.is_empty() {
            groups.entry(&v.anti_affinity).or_default().push(&v.host);
        }
    }
    for (g, on) in &groups {
        let distinct: BTreeSet<_> = on.iter().collect();
        assert_eq!(distinct.len(), on.len(), "group {g} shares a host: {on:?}");
    }
    for (name, h) in &hs {
        let (c_used, m_used) = (
            cpus.get(name.as_str()).copied().unwrap_or(0),
            mem.get(name.as_str()).copied().unwrap_or(0),
        );
        // Placed exactly once: the host's allocation is the sum of the VMs on it.
        assert_eq!(u64::from(h.allocated_cpus), c_used, "{name} cpu allocation");
        assert_eq!(h.allocated_memory_mib, m_used, "{name} memory allocation");
        assert!(
            c_used <= u64::from(h.cpus) * 8,
            "{name} overcommitted: {c_used} vCPUs"
        );
        assert!(m_used <= h.memory_mib, "{name} memory overcommitted");
    }
    assert!(
        cpus.len() == 3,
        "the spread policy uses every host: {cpus:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_vm_is_created_once_at_its_time_across_a_leader_change() -> anyhow::Result<()> {
    let mut c = Cluster::form(3, 3, Opts::default()).await?;
    let pools = tempfile::tempdir()?;
    let path = pools.path().join("local").display().to_string();
    ok(&c.nodes[0].cli(&["pool", "create", "local", "--type", "dir", "--path", &path]));
    wait_for_inventory(
        &c,
        &[(4, 8192), (4, 8192), (4, 8192)],
        &[("local", &["host1", "host2", "host3"])],
    )
    .await;

    let at_ms = quantix::cluster::now_ms() + 4_000;
    let at = humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(at_ms))
        .to_string();
    let v = json(&c.nodes[1].cli(&[
        "vm",
        "create",
        "nightly",
        "--pxe",
        "--disk-size",
        "1GiB",
        "--pool",
        "local",
        "--at",
        &at,
        "-o",
        "json",
    ]));
    assert_eq!(v["status"], "pending");
    assert!(
        v["reason"].as_str().unwrap_or("").contains("scheduled for"),
        "{v}"
    );

    // Change the leader before the time comes.
    let leader = c.wait_for_leader(T).await?;
    c.node_mut(&leader).kill();
    let survivor = c.nodes.iter().position(|n| n.name != leader).unwrap_or(0);
    let v = json(&c.nodes[survivor].cli(&["vm", "get", "nightly", "-o", "json"]));
    assert!(v["host"].is_null(), "placed before its time: {v}");

    wait_for(T, "the scheduled VM to be placed", || async {
        let out = c.nodes[survivor].cli(&["vm", "get", "nightly", "-o", "json"]);
        out.status.success()
            && serde_json::from_str::<serde_json::Value>(&stdout(&out))
                .is_ok_and(|v| v["host"].is_string())
    })
    .await?;
    c.node_mut(&leader).start().await?;
    c.wait_converged(T).await?;
    let mut client = VmServiceClient::new(c.nodes[survivor].channel().await?);
    let vm = client
        .get_vm(GetVmRequest {
            name: "nightly".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(
        vm.updated_at_ms >= at_ms,
        "placed at {} before {at_ms}",
        vm.updated_at_ms
    );
    // Exactly once: one place_vm event, and the allocation is one VM's worth.
    let events = ok(&c.nodes[survivor].cli(&["events", "list", "--limit", "1000", "-o", "json"]));
    let placed = events.matches("\"place_vm\"").count();
    assert_eq!(placed, 1, "{events}");
    let hs = hosts(&c, survivor).await?;
    let total: u64 = hs.values().map(|h| h.allocated_memory_mib).sum();
    assert_eq!(total, vm.memory_mib);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_vm_says_why_and_is_placed_when_the_cluster_changes() -> anyhow::Result<()> {
    let c = Cluster::form(2, 3, Opts::default()).await?;
    let pools = tempfile::tempdir()?;
    let path = pools.path().join("p").display().to_string();
    let n = &c.nodes[0];
    ok(&n.cli(&[
        "pool", "create", "nfs-a", "--type", "dir", "--path", &path, "--hosts", "host1",
    ]));
    ok(&n.cli(&["host", "maintenance", "host1", "on"]));
    wait_for_inventory(&c, &[(4, 8192), (4, 8192)], &[("nfs-a", &["host1"])]).await;
    ok(&n.cli(&[
        "vm",
        "create",
        "big",
        "--pxe",
        "--disk-size",
        "1GiB",
        "--pool",
        "nfs-a",
        "--memory",
        "6GiB",
    ]));
    let reason = |want: &'static str| {
        let node = &c.nodes[1];
        async move {
            let out = node.cli(&["vm", "get", "big", "-o", "json"]);
            let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
            v["reason"].as_str().is_some_and(|r| r.contains(want))
        }
    };
    wait_for(T, "reason naming the pool and the maintenance", || async {
        reason("host host2 cannot reach pool nfs-a").await && reason("in maintenance").await
    })
    .await?;
    // The table shows it too.
    let table = ok(&c.nodes[1].cli(&["vm", "get", "big"]));
    assert!(table.contains("cannot reach pool nfs-a"), "{table}");

    ok(&n.cli(&["host", "maintenance", "host1", "off"]));
    wait_for(T, "placement on host1 after maintenance ends", || async {
        let out = c.nodes[1].cli(&["vm", "get", "big", "-o", "json"]);
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).is_ok_and(|v| v["host"] == "host1")
    })
    .await?;
    // A second one no longer fits in host1's memory: the reason says so.
    ok(&n.cli(&[
        "vm",
        "create",
        "big2",
        "--pxe",
        "--disk-size",
        "1GiB",
        "--pool",
        "nfs-a",
        "--memory",
        "6GiB",
    ]));
    wait_for(T, "a memory reason", || async {
        let out = c.nodes[1].cli(&["vm", "get", "big2", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
        v["reason"]
            .as_str()
            .is_some_and(|r| r.contains("6 GiB memory"))
    })
    .await?;
    Ok(())
}
