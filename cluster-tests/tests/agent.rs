//! The per-host agent end to end on libvirt's test driver (each quantixd its own instance):
//! VMs created through any host become libvirt domains on the host they were placed on,
//! power actions reach them, deletes remove domain and files, and a restarted host converges.

use cluster_tests::{stderr, stdout, wait_for, Cluster, Opts};
use quantix::proto::v1::vm_service_client::VmServiceClient;
use quantix::proto::v1::*;
use std::collections::BTreeMap;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
    stdout(out)
}

async fn statuses(c: &Cluster, node: usize) -> anyhow::Result<BTreeMap<String, Vm>> {
    let mut client = VmServiceClient::new(c.nodes[node].channel().await?);
    let list = client
        .list_vms(ListVmsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await?
        .into_inner()
        .vms;
    Ok(list.into_iter().map(|v| (v.name.clone(), v)).collect())
}

async fn wait_all(c: &Cluster, node: usize, what: &str, want: impl Fn(&Vm) -> bool) {
    let result = wait_for(T, what, || async {
        statuses(c, node)
            .await
            .is_ok_and(|m| !m.is_empty() && m.values().all(&want))
    })
    .await;
    if let Err(e) = result {
        let now = statuses(c, node).await.unwrap_or_default();
        for v in now.values().filter(|v| !want(v)) {
            eprintln!("{}: {} on {:?}: {}", v.name, v.status, v.host, v.reason);
        }
        panic!("{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_vms_run_where_placed_and_survive_a_host_restart() -> anyhow::Result<()> {
    let mut c = Cluster::form(3, 3, Opts::default()).await?;
    let pools = tempfile::tempdir()?;
    let pool_dir = pools.path().join("local");
    let path = pool_dir.display().to_string();
    ok(&c.nodes[0].cli(&["pool", "create", "local", "--type", "dir", "--path", &path]));
    for i in 0..30 {
        let name = format!("vm{i:02}");
        let mut args = vec![
            "vm",
            "create",
            &name,
            "--pxe",
            "--disk-size",
            "1GiB",
            "--pool",
            "local",
            "--memory",
            "256MiB",
        ];
        if i % 10 == 9 {
            args.push("--stopped");
        }
        ok(&c.nodes[i % 3].cli(&args));
    }
    wait_all(&c, 1, "30 VMs to run (or stay stopped) where placed", |v| {
        let want = if v.name.ends_with('9') {
            "stopped"
        } else {
            "running"
        };
        v.status == want && !v.host.is_empty()
    })
    .await;
    let placed = statuses(&c, 0).await?;
    let per_host: BTreeMap<&str, usize> = placed.values().fold(BTreeMap::new(), |mut m, v| {
        *m.entry(v.host.as_str()).or_default() += 1;
        m
    });
    assert_eq!(per_host.len(), 3, "spread over every host: {per_host:?}");
    for v in placed.values() {
        assert!(
            pool_dir.join(&v.name).join("disk0.qcow2").is_file(),
            "{} has no disk",
            v.name
        );
    }

    // Power round trip through a host that does not run the VM.
    let v = &placed["vm00"];
    let other = c.nodes.iter().position(|n| n.name != v.host).unwrap_or(0);
    ok(&c.nodes[other].cli(&["vm", "stop", "vm00"]));
    wait_for(T, "vm00 stopped", || async {
        statuses(&c, other)
            .await
            .is_ok_and(|m| m["vm00"].status == "stopped")
    })
    .await?;
    ok(&c.nodes[other].cli(&["vm", "start", "vm00"]));
    wait_for(T, "vm00 running", || async {
        statuses(&c, other)
            .await
            .is_ok_and(|m| m["vm00"].status == "running")
    })
    .await?;

    // Restart one host's daemon: its domains come back, none twice, none lost.
    let victim = placed["vm01"].host.clone();
    c.node_mut(&victim).kill();
    c.node_mut(&victim).start().await?;
    ok(&c.nodes[0].cli(&[
        "vm",
        "create",
        "late",
        "--pxe",
        "--disk-size",
        "0",
        "--memory",
        "128MiB",
    ]));
    wait_all(&c, 0, "every VM converged after the restart", |v| {
        let want = if v.name.ends_with('9') {
            "stopped"
        } else {
            "running"
        };
        v.status == want
    })
    .await;
    let after = statuses(&c, 0).await?;
    assert_eq!(after.len(), 31);
    for (name, v) in &placed {
        assert_eq!(after[name].host, v.host, "{name} moved");
    }

    // Delete: the domain and its files go, then the record.
    ok(&c.nodes[2].cli(&["vm", "delete", "vm02"]));
    wait_for(T, "vm02 removed", || async {
        statuses(&c, 0).await.is_ok_and(|m| !m.contains_key("vm02"))
    })
    .await?;
    assert!(!pool_dir.join("vm02").exists(), "files of vm02 remain");
    Ok(())
}

/// The guest agent binary reports what `agent::guest` accepts: run here as the guest would
/// (`--once` prints the line instead of writing it to the virtio port).
#[test]
fn the_guest_agent_binary_speaks_the_format_the_host_reads() {
    let out = std::process::Command::new(cluster_tests::bin("quantix-agent"))
        .arg("--once")
        .output()
        .expect("run quantix-agent");
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let info = quantix::model::guest::parse_report(&line).unwrap();
    assert!(!info.hostname.is_empty(), "{line}");
    assert!(info.agent.starts_with("quantix-agent "), "{line}");
}
