//! The replicated placement policy through the CLI and gRPC: the default read from a
//! follower, a partial change made through one host and read back through another, and bad
//! values refused (by the CLI naming the flag, by the server naming the field) while every
//! daemon keeps running.

use cluster_tests::{stderr, stdout, wait_for, Cluster, Node, Opts};
use quantix::proto::v1::{GetPlacementPolicyRequest, ReadConsistency, SetPlacementPolicyRequest};
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// Runs the CLI and parses its JSON output, failing with stderr if it did not succeed.
fn json(n: &Node, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = n.cli(&all);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("one JSON document")
}

/// The policy table as (setting, value) rows.
fn table(n: &Node, args: &[&str]) -> Vec<(String, String)> {
    let out = n.cli(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["SETTING", "VALUE"], "{text}");
    lines
        .map(|l| {
            let mut w = l.split_whitespace();
            let (k, v) = (w.next().unwrap_or_default(), w.next().unwrap_or_default());
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn rows(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs the CLI expecting a one-line refusal that holds `msg`.
fn refused(n: &Node, args: &[&str], msg: &str) {
    let out = n.cli(args);
    let err = stderr(&out);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(err.contains(msg), "{args:?}: wanted '{msg}', got: {err}");
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_policy_is_read_set_and_checked_across_hosts() -> anyhow::Result<()> {
    let mut c = Cluster::form(3, 3, Opts::default()).await?;
    let leader = c.wait_for_leader(T).await?;
    let names: Vec<String> = c.nodes.iter().map(|n| n.name.clone()).collect();
    let followers: Vec<&String> = names.iter().filter(|n| **n != leader).collect();
    let (a, b) = (c.node(followers[0]), c.node(followers[1]));

    // The default, read from a follower (linearizable, through the leader's read index).
    let default = rows(&[
        ("cpu-overcommit", "4"),
        ("memory-overcommit", "1"),
        ("strategy", "spread"),
        ("weight-image-locality", "0.5"),
        ("weight-balance", "0.25"),
        ("weight-spread", "1"),
    ]);
    assert_eq!(table(a, &["cluster", "policy"]), default);
    let doc = json(a, &["cluster", "policy"]);
    assert_eq!(
        doc,
        json!({
            "cpu_overcommit": 4, "memory_overcommit": 1, "strategy": "spread",
            "weight_image_locality": 0.5, "weight_balance": 0.25, "weight_spread": 1,
        })
    );

    // A partial change through one follower; the answer is the whole new policy.
    let set = table(
        a,
        &[
            "cluster",
            "policy",
            "set",
            "--cpu-overcommit",
            "2",
            "--strategy",
            "pack",
        ],
    );
    let changed = rows(&[
        ("cpu-overcommit", "2"),
        ("memory-overcommit", "1"),
        ("strategy", "pack"),
        ("weight-image-locality", "0.5"),
        ("weight-balance", "0.25"),
        ("weight-spread", "1"),
    ]);
    assert_eq!(set, changed);

    // Read back through the other follower and the leader, table and JSON.
    assert_eq!(table(b, &["cluster", "policy"]), changed);
    let doc = json(c.node(&leader), &["cluster", "policy"]);
    assert_eq!(doc["cpu_overcommit"], 2);
    assert_eq!(doc["memory_overcommit"], 1);
    assert_eq!(doc["strategy"], "pack");
    assert_eq!(doc["weight_image_locality"], 0.5);
    // A stale read reaches it too once the host has applied it.
    wait_for(
        T,
        "a stale read on the other follower to show pack",
        || async {
            let out = b.cli(&["cluster", "policy", "--consistency", "stale", "-o", "json"]);
            serde_json::from_str::<serde_json::Value>(&stdout(&out))
                .is_ok_and(|d| d["strategy"] == "pack" && d["cpu_overcommit"] == 2)
        },
    )
    .await?;

    // Bad values: the CLI refuses them before any call, naming the flag.
    refused(
        b,
        &["cluster", "policy", "set", "--cpu-overcommit", "0"],
        "--cpu-overcommit must be between 0.10 and 32.00 (got 0.00)",
    );
    refused(
        b,
        &["cluster", "policy", "set", "--cpu-overcommit", "abc"],
        "--cpu-overcommit must be a number such as 1.5 (got 'abc')",
    );
    refused(
        b,
        &["cluster", "policy", "set", "--strategy", "fill"],
        "--strategy must be 'spread' or 'pack' (got 'fill')",
    );
    refused(
        b,
        &["cluster", "policy", "set", "--weight-balance", "-1"],
        "--weight-balance must be a number",
    );
    refused(b, &["cluster", "policy", "set"], "nothing to change");

    // The server checks too (for clients other than the CLI), naming the field.
    let mut grpc = b.cluster().await?;
    let bad: [(SetPlacementPolicyRequest, &str); 4] = [
        (
            SetPlacementPolicyRequest {
                cpu_overcommit: Some("0".into()),
                ..Default::default()
            },
            "cpu_overcommit must be between 0.10 and 32.00 (got 0.00)",
        ),
        (
            SetPlacementPolicyRequest {
                cpu_overcommit: Some("abc".into()),
                ..Default::default()
            },
            "cpu_overcommit must be a number such as 1.5 (got 'abc')",
        ),
        (
            SetPlacementPolicyRequest {
                strategy: Some("fill".into()),
                ..Default::default()
            },
            "strategy must be 'spread' or 'pack' (got 'fill')",
        ),
        (
            SetPlacementPolicyRequest {
                weight_spread: Some("1.005".into()),
                ..Default::default()
            },
            "weight_spread must be a number",
        ),
    ];
    for (req, msg) in bad {
        let err = grpc
            .set_placement_policy(req.clone())
            .await
            .expect_err("bad policy value");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{req:?}: {err}");
        assert!(err.message().contains(msg), "{req:?}: {}", err.message());
    }

    // A retried request id applies once and answers the first outcome.
    let once = |cpu: &str| SetPlacementPolicyRequest {
        cpu_overcommit: Some(cpu.into()),
        request_id: "policy-retry-1".into(),
        ..Default::default()
    };
    let first = grpc.set_placement_policy(once("3")).await?.into_inner();
    let again = grpc.set_placement_policy(once("5")).await?.into_inner();
    assert_eq!((first.cpu_overcommit.as_str(), again), ("3", first.clone()));
    let now = grpc
        .get_placement_policy(GetPlacementPolicyRequest {
            consistency: ReadConsistency::Linearizable as i32,
        })
        .await?
        .into_inner();
    assert_eq!(now, first);
    assert_eq!(now.strategy, "pack", "unset fields kept their value");

    // Nothing bad took a daemon down, and every host still answers with the same policy.
    for n in &mut c.nodes {
        assert!(n.is_running(), "{} stopped", n.name);
    }
    for n in &c.nodes {
        let doc = json(n, &["cluster", "policy"]);
        assert_eq!(
            (doc["cpu_overcommit"].clone(), doc["strategy"].clone()),
            (json!(3), json!("pack")),
            "{}",
            n.name
        );
    }
    Ok(())
}
