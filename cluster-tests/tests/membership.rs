//! Bootstrap, join tokens, roles, removal and promotion with real daemons.

use cluster_tests::{stderr, stdout, wait_for, Cluster, Opts};
use quantix::cluster::token::JoinToken;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_form_a_cluster_and_agree_on_status() -> anyhow::Result<()> {
    let mut c = Cluster::form(3, 3, Opts::default()).await?;
    let leader = c.wait_for_leader(T).await?;
    for n in &c.nodes {
        let out = n.cli(&["cluster", "status", "-o", "json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
        assert_eq!(
            v["leader"],
            leader.as_str(),
            "{} sees another leader",
            n.name
        );
        assert!(v["term"].as_u64().unwrap_or(0) >= 1);
        let members = v["members"].as_array().expect("members");
        assert_eq!(members.len(), 3);
        assert!(members.iter().all(|m| m["role"] == "voter"), "{members:?}");
        assert_eq!(members.iter().filter(|m| m["leader"] == true).count(), 1);
        let mut names: Vec<&str> = members
            .iter()
            .map(|m| m["name"].as_str().unwrap_or(""))
            .collect();
        names.sort();
        assert_eq!(names, ["host1", "host2", "host3"]);
        assert!(members.iter().all(|m| m["online"] == true), "{members:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_any_host_are_visible_on_every_host() -> anyhow::Result<()> {
    let mut c = Cluster::form(3, 3, Opts::default()).await?;
    c.wait_for_leader(T).await?;
    for (i, n) in c.nodes.iter().enumerate() {
        let out = n.cli(&["folder", "create", &format!("/from-{i}")]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for n in &c.nodes {
        // The default read is linearizable: no waiting needed to see the writes above.
        let out = n.cli(&["folder", "list", "-o", "json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
        let paths: Vec<&str> = v["folders"]
            .as_array()
            .expect("folders")
            .iter()
            .filter_map(|f| f["path"].as_str())
            .collect();
        assert_eq!(
            paths,
            ["/", "/Discovered", "/from-0", "/from-1", "/from-2"],
            "on {}",
            n.name
        );
    }
    // Refusals come back through forwarding with their own code and message.
    let out = c.nodes[2].cli(&["folder", "create", "/from-0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("folder /from-0 already exists (AlreadyExists)"),
        "{}",
        stderr(&out)
    );
    let out = c.nodes[1].cli(&["folder", "create", "relative/path"]);
    assert!(
        stderr(&out).contains("must start with '/'") && stderr(&out).contains("InvalidArgument"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stderr(&out).lines().count(),
        1,
        "one clear line: {}",
        stderr(&out)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_and_join_refusals() -> anyhow::Result<()> {
    let c = Cluster::start(3, Opts::default()).await?;
    // Nothing works before bootstrap, with a message that says what to do.
    let out = c.nodes[0].cli(&["folder", "create", "/x"]);
    assert!(
        stderr(&out).contains("not part of a cluster yet"),
        "{}",
        stderr(&out)
    );

    assert!(c.nodes[0].cli(&["cluster", "bootstrap"]).status.success());
    let again = c.nodes[0].cli(&["cluster", "bootstrap"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already belongs to cluster"),
        "{}",
        stderr(&again)
    );

    let token = c.token(0)?;
    assert!(c.nodes[1]
        .cli(&["cluster", "join", &token])
        .status
        .success());
    // A member cannot bootstrap or join again.
    let out = c.nodes[1].cli(&["cluster", "bootstrap"]);
    assert!(
        stderr(&out).contains("already belongs to cluster"),
        "{}",
        stderr(&out)
    );
    // Reused token.
    let out = c.nodes[2].cli(&["cluster", "join", &token]);
    assert!(
        stderr(&out).contains("already used by host host2"),
        "{}",
        stderr(&out)
    );
    // Forged: a real token id with a different secret.
    let mut forged = JoinToken::decode(&c.token(1)?)?;
    forged.secret = "00".repeat(32);
    let out = c.nodes[2].cli(&["cluster", "join", &forged.encode()]);
    assert!(
        stderr(&out).contains("PermissionDenied"),
        "{}",
        stderr(&out)
    );
    // Garbage.
    let out = c.nodes[2].cli(&["cluster", "join", "not-a-token"]);
    assert!(stderr(&out).contains("malformed"), "{}", stderr(&out));
    // Expired: a one-second token, used after its expiry.
    let out = c.nodes[1].cli(&["cluster", "token", "--ttl", "1s", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    let short = v["token"].as_str().expect("token").to_string();
    let expires = JoinToken::decode(&short)?.expires_at;
    wait_for(Duration::from_secs(5), "the token to expire", || async {
        quantix::cluster::now_ms() > expires
    })
    .await?;
    let out = c.nodes[2].cli(&["cluster", "join", &short]);
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
    // A fresh token made on the non-leader member works: tokens are valid cluster-wide.
    let out = c.nodes[2].cli(&["cluster", "join", &c.token(1)?]);
    assert!(out.status.success(), "{}", stderr(&out));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_hosts_join_as_non_voters_and_are_promoted_when_a_voter_leaves() -> anyhow::Result<()>
{
    let mut c = Cluster::form(5, 3, Opts::default()).await?;
    let leader = c.wait_for_leader(T).await?;
    let roles = |s: &quantix::proto::v1::ClusterStatus| {
        let mut r: Vec<(String, String)> = s
            .members
            .iter()
            .map(|m| (m.name.clone(), m.role.clone()))
            .collect();
        r.sort();
        r
    };
    let s = c.node(&leader).status(false).await?;
    let voters: Vec<_> = roles(&s)
        .into_iter()
        .filter(|(_, r)| r == "voter")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(voters, ["host1", "host2", "host3"], "{:?}", roles(&s));
    assert_eq!(
        roles(&s).iter().filter(|(_, r)| r == "non-voter").count(),
        2
    );

    // A powered-off non-voter never blocks writes.
    c.node_mut("host5").kill();
    let out = c
        .node("host2")
        .cli(&["folder", "create", "/while-host5-down"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Remove a voter that is not the leader: host4 (the online non-voter) takes its place.
    let victim = ["host1", "host2", "host3"]
        .into_iter()
        .find(|n| *n != leader)
        .expect("a follower");
    let out = c.node(&leader).cli(&["cluster", "remove", victim]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("promoted host4"), "{}", stdout(&out));
    c.node_mut(victim).kill();
    let s = c.node(&leader).status(false).await?;
    let r = roles(&s);
    assert!(
        !r.iter().any(|(n, _)| n == victim),
        "{victim} still listed: {r:?}"
    );
    assert_eq!(
        r.iter().filter(|(_, role)| role == "voter").count(),
        3,
        "{r:?}"
    );
    assert!(r.contains(&("host4".into(), "voter".into())), "{r:?}");
    // host5 is down: it is shown offline once it has missed heartbeats.
    let leader_node = c.node(&leader);
    wait_for(T, "host5 to be shown offline", || async {
        leader_node
            .status(false)
            .await
            .is_ok_and(|s| s.members.iter().any(|m| m.name == "host5" && !m.online))
    })
    .await?;
    // Writes still commit with the new voter set.
    let out = c.node("host4").cli(&["folder", "create", "/after-removal"]);
    assert!(out.status.success(), "{}", stderr(&out));
    Ok(())
}
