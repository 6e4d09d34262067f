//! Pools are replicated state: a restarted host knows every pool from its own disk before it
//! talks to anyone, and realises them alone (the old design's node daemons forgot their pools
//! on every restart and waited for the control plane to push them again).

use cluster_tests::{stderr, wait_for, Cluster, Opts};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn json(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn reachable_from(p: &Value) -> Vec<String> {
    let mut v: Vec<String> = p["reachable_from"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_restarted_alone_knows_and_realises_its_pools() -> anyhow::Result<()> {
    let mut c = Cluster::form(3, 3, Opts::default()).await?;
    let dirs = tempfile::tempdir()?;
    let shared = dirs.path().join("shared");
    let local = dirs.path().join("local");
    std::fs::create_dir_all(&shared)?;
    let n = &c.nodes[0];
    for args in [
        vec![
            "pool", "create", "shared", "--type", "dir", "--shared", "--path",
        ],
        vec!["pool", "create", "local", "--type", "dir", "--path"],
    ] {
        let path = if args.contains(&"shared") {
            &shared
        } else {
            &local
        };
        let mut a = args.clone();
        let p = path.display().to_string();
        a.push(&p);
        let out = n.cli(&a);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let all: Vec<String> = c.nodes.iter().map(|n| n.name.clone()).collect();
    wait_for(T, "both pools reachable from every host", || async {
        ["shared", "local"].iter().all(|p| {
            reachable_from(&json(&c.nodes[0].cli(&["pool", "get", p, "-o", "json"]))) == all
        })
    })
    .await?;
    for node in &mut c.nodes {
        node.stop()?;
    }
    // The local pool's directory goes while every host is down; the host that comes back
    // alone (no quorum, so no one can tell it anything) makes it again from its own state.
    std::fs::remove_dir_all(&local)?;
    let last = c.nodes.len() - 1;
    c.nodes[last].start().await?;
    let h = &c.nodes[last];
    let pools = json(&h.cli(&["pool", "list", "--consistency", "stale", "-o", "json"]));
    let names: Vec<&str> = pools["pools"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["local", "shared"], "{pools}");
    for p in pools["pools"].as_array().into_iter().flatten() {
        assert_eq!(reachable_from(p), all, "{p}");
    }
    wait_for(
        T,
        "the local pool's directory made again by the lone host",
        || async { local.is_dir() },
    )
    .await?;
    Ok(())
}
