//! Pools and images are replicated state: a restarted host knows every pool and image from its
//! own disk before it talks to anyone, and realises its pools alone (the old design's node
//! daemons forgot their pools on every restart and waited for the control plane to push them
//! again).

// The images tests' fixture; this test uses only part of it.
#[allow(dead_code)]
mod images_fixture;

use cluster_tests::{stderr, wait_for, Cluster, Opts};
use images_fixture::Files;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

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

/// The image's per-host states, from `image get -o json`.
fn ready_on(img: &Value) -> Vec<String> {
    let mut v: Vec<String> = img["hosts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|h| h["state"] == "ready")
                .filter_map(|h| h["host"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_restarted_alone_knows_its_pools_and_images_and_realises_them() -> anyhow::Result<()>
{
    let dirs = tempfile::tempdir()?;
    let srv = Files::default();
    let base = srv.serve().await;
    let bytes: Vec<u8> = (0..2 << 20).map(|i: u32| (i % 251) as u8).collect();
    let sha = hex::encode(Sha256::digest(&bytes));
    srv.put("/tools.iso", bytes);

    let mut c = Cluster::form(3, 3, Opts::default()).await?;
    let shared = dirs.path().join("shared");
    let local = dirs.path().join("local");
    let scratch = dirs.path().join("scratch");
    std::fs::create_dir_all(&shared)?;
    let n = &c.nodes[0];
    for (name, path, extra) in [
        ("shared", &shared, Some("--shared")),
        ("local", &local, None),
        ("scratch", &scratch, None),
    ] {
        let p = path.display().to_string();
        let mut a = vec!["pool", "create", name, "--type", "dir", "--path", &p];
        a.extend(extra);
        let out = n.cli(&a);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let all: Vec<String> = c.nodes.iter().map(|n| n.name.clone()).collect();
    wait_for(T, "every pool reachable from every host", || async {
        ["shared", "local", "scratch"]
            .iter()
            .all(|p| reachable_from(&c.nodes[0].cli_json(&["pool", "get", p])) == all)
    })
    .await?;
    let url = format!("{base}/tools.iso");
    let out = n.cli(&[
        "image", "download", "tools", "--url", &url, "--sha256", &sha, "--kind", "iso", "--pool",
        "local", "--wait",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for(T, "the image ready on every host", || async {
        ready_on(&c.nodes[0].cli_json(&["image", "get", "tools"])) == all
    })
    .await?;

    for node in &mut c.nodes {
        node.stop()?;
    }
    // The scratch pool's directory goes while every host is down; the host that comes back
    // alone (no quorum, so no one can tell it anything) makes it again from its own state.
    std::fs::remove_dir_all(&scratch)?;
    let last = c.nodes.len() - 1;
    c.nodes[last].start().await?;
    let h = &c.nodes[last];
    let stale = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--consistency", "stale"]);
        h.cli_json(&a)
    };
    let pools = stale(&["pool", "list"]);
    let names: Vec<&str> = pools["pools"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["local", "scratch", "shared"], "{pools}");
    for p in pools["pools"].as_array().into_iter().flatten() {
        assert_eq!(reachable_from(p), all, "{p}");
    }
    let img = stale(&["image", "get", "tools"]);
    assert_eq!(ready_on(&img), all, "{img}");
    let file = local.join("images/tools.iso");
    assert_eq!(hex::encode(Sha256::digest(std::fs::read(&file)?)), sha);
    wait_for(
        T,
        "the scratch pool's directory made again by the lone host",
        || async { scratch.is_dir() },
    )
    .await?;
    // Still there after the host has looked at its images again on its own.
    assert!(file.exists(), "{}", file.display());
    Ok(())
}
