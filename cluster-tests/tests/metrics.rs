//! Prometheus metrics and the liveness probe on `http_addr`.

use cluster_tests::{Cluster, Opts};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_raft_state_and_writes_on_every_host() -> anyhow::Result<()> {
    let mut c = Cluster::form(3, 3, Opts::default()).await?;
    let leader = c.wait_for_leader(Duration::from_secs(20)).await?;
    let follower = c
        .nodes
        .iter()
        .find(|n| n.name != leader)
        .expect("a follower");
    assert!(follower.cli(&["folder", "create", "/m"]).status.success());
    assert_eq!(follower.http_get("/healthz").await?, "ok\n");
    let text = follower.http_get("/metrics").await?;
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .map(str::to_string)
    };
    let term = line("quantix_raft_term").expect("term gauge");
    assert!(
        term.contains(&format!("host=\"{}\"", follower.name)),
        "{term}"
    );
    assert!(
        line("quantix_raft_is_leader").is_some_and(|l| l.ends_with(" 0")),
        "{text}"
    );
    let writes = text
        .lines()
        .find(|l| {
            l.starts_with("quantix_writes_total")
                && l.contains("kind=\"create_folder\"")
                && l.contains("outcome=\"applied\"")
        })
        .expect("a counted write");
    assert!(writes.ends_with(" 1"), "{writes}");
    assert!(
        line("quantix_leader_calls_forwarded_total").is_some(),
        "the write went through the leader: {text}"
    );
    let leader_text = c.node(&leader).http_get("/metrics").await?;
    assert!(
        leader_text
            .lines()
            .any(|l| l.starts_with("quantix_raft_is_leader") && l.ends_with(" 1")),
        "{leader_text}"
    );
    assert!(
        leader_text.contains("quantix_raft_follower_lag_entries"),
        "{leader_text}"
    );
    Ok(())
}

/// The agent counts its steps by kind and outcome and shows how many VMs it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_counts_its_steps() -> anyhow::Result<()> {
    let c = Cluster::form(1, 1, Opts::default()).await?;
    let n = &c.nodes[0];
    let out = n.cli(&[
        "vm",
        "create",
        "m1",
        "--pxe",
        "--disk-size",
        "0",
        "--memory",
        "256MiB",
    ]);
    assert!(out.status.success(), "{}", cluster_tests::stderr(&out));
    cluster_tests::wait_for(Duration::from_secs(30), "m1 running", || async {
        cluster_tests::stdout(&n.cli(&["vm", "get", "m1", "-o", "json"]))
            .contains("\"status\": \"running\"")
    })
    .await?;
    let text = n.http_get("/metrics").await?;
    let has = |prefix: &str, labels: &[&str]| {
        text.lines().any(|l| {
            l.starts_with(prefix) && labels.iter().all(|x| l.contains(x)) && !l.ends_with(" 0")
        })
    };
    assert!(
        has(
            "quantix_agent_steps_total",
            &["step=\"create\"", "outcome=\"ok\""]
        ),
        "{text}"
    );
    assert!(
        has("quantix_agent_steps_total", &["step=\"start\""]),
        "{text}"
    );
    assert!(has("quantix_agent_vms", &[]), "{text}");
    assert!(text.contains("quantix_agent_step_seconds_bucket"), "{text}");
    Ok(())
}
