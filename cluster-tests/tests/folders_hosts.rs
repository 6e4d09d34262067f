//! Folder rename/move/recursive delete and the host inventory, end to end: real daemons, the
//! real CLI and gRPC client, asserting behaviour and the one-line errors with their codes.

use cluster_tests::{stderr, stdout, wait_for, Cluster, Node, Opts};
use quantix::proto::v1::host_service_client::HostServiceClient;
use quantix::proto::v1::{
    GetHostRequest, MoveFolderRequest, ReadConsistency, RenameFolderRequest, SetMaintenanceRequest,
};
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

fn paths(n: &Node) -> Vec<String> {
    json(n, &["folder", "list"])["folders"]
        .as_array()
        .expect("folders")
        .iter()
        .filter_map(|f| f["path"].as_str().map(String::from))
        .collect()
}

/// Runs the CLI expecting a refusal: one stderr line holding `msg` and the code `(code)`.
fn refused(n: &Node, args: &[&str], msg: &str, code: &str) {
    let out = n.cli(args);
    let err = stderr(&out);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(
        err.contains(msg) && err.contains(&format!("({code})")),
        "{args:?}: wanted '{msg}' ({code}), got: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_rename_move_and_delete_recursively() -> anyhow::Result<()> {
    let mut c = Cluster::form(1, 1, Opts::default()).await?;
    c.wait_for_leader(T).await?;
    let n = &c.nodes[0];
    for p in ["/a/b/c", "/d", "/x"] {
        let out = n.cli(&["folder", "create", "-p", p]);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    // Rename keeps the id and carries the subtree along.
    let before = json(n, &["folder", "get", "/a"]);
    let renamed = json(n, &["folder", "rename", "/a", "prod"]);
    assert_eq!(renamed["path"], "/prod");
    assert_eq!(renamed["id"], before["id"]);
    let out = n.cli(&["folder", "rename", "/prod/b", "web"]);
    assert!(
        stdout(&out).contains("renamed folder /prod/b to /prod/web"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        paths(n),
        [
            "/",
            "/Discovered",
            "/d",
            "/prod",
            "/prod/web",
            "/prod/web/c",
            "/x"
        ]
    );
    refused(
        n,
        &["folder", "rename", "/prod", "x"],
        "folder /x already exists",
        "AlreadyExists",
    );
    refused(
        n,
        &["folder", "rename", "/Discovered", "found"],
        "folder /Discovered is built in and cannot be renamed",
        "FailedPrecondition",
    );
    refused(
        n,
        &["folder", "rename", "/", "top"],
        "built in",
        "FailedPrecondition",
    );
    refused(
        n,
        &["folder", "rename", "/prod", "a/b"],
        "new folder name 'a/b' may contain only",
        "InvalidArgument",
    );
    refused(
        n,
        &["folder", "rename", "/nope", "y"],
        "folder /nope does not exist",
        "NotFound",
    );

    // Move, and the refusals: cycles, clashes, missing parent, built-ins.
    let moved = json(n, &["folder", "move", "/prod/web", "/d"]);
    assert_eq!(moved["path"], "/d/web");
    assert_eq!(moved["parent"], "/d");
    refused(
        n,
        &["folder", "move", "/d", "/d/web/c"],
        "cannot move folder /d into its own subfolder /d/web/c",
        "FailedPrecondition",
    );
    refused(
        n,
        &["folder", "move", "/d", "/d"],
        "into itself",
        "FailedPrecondition",
    );
    let out = n.cli(&["folder", "create", "/x/web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    refused(
        n,
        &["folder", "move", "/x/web", "/d"],
        "folder /d/web already exists",
        "AlreadyExists",
    );
    refused(
        n,
        &["folder", "move", "/x", "/nowhere"],
        "new parent folder /nowhere does not exist",
        "NotFound",
    );
    refused(
        n,
        &["folder", "move", "/Discovered", "/x"],
        "cannot be moved",
        "FailedPrecondition",
    );
    refused(
        n,
        &["folder", "move", "/x", "relative"],
        "must start with '/'",
        "InvalidArgument",
    );
    // Moving into /Discovered is allowed; it is an ordinary parent.
    let moved = json(n, &["folder", "move", "/x", "/Discovered"]);
    assert_eq!(moved["path"], "/Discovered/x");

    // Delete: refused while non-empty, unless recursive.
    refused(
        n,
        &["folder", "delete", "/d"],
        "folder /d is not empty: it holds folder /d/web",
        "FailedPrecondition",
    );
    refused(
        n,
        &["folder", "delete", "--recursive", "/Discovered"],
        "built in",
        "FailedPrecondition",
    );
    let v = json(n, &["folder", "delete", "--recursive", "/d"]);
    assert_eq!(v["deleted"], "/d");
    assert_eq!(
        v["folders"],
        serde_json::json!(["/d/web/c", "/d/web", "/d"])
    );
    // A plain delete of an empty folder still works, and reports the one folder.
    let v = json(n, &["folder", "delete", "/prod"]);
    assert_eq!(v["folders"], serde_json::json!(["/prod"]));
    refused(
        n,
        &["folder", "delete", "-r", "/d"],
        "folder /d does not exist",
        "NotFound",
    );
    assert_eq!(
        paths(n),
        ["/", "/Discovered", "/Discovered/x", "/Discovered/x/web"]
    );

    // The same over gRPC directly, with retries by request id applying once.
    let mut folders = n.folders().await?;
    let req = RenameFolderRequest {
        path: "/Discovered/x".into(),
        new_name: "y".into(),
        request_id: "rename-once".into(),
    };
    let first = folders.rename_folder(req.clone()).await?.into_inner();
    let retry = folders.rename_folder(req).await?.into_inner();
    assert_eq!(first, retry, "a retry returns the first answer");
    assert_eq!(first.path, "/Discovered/y");
    let err = folders
        .move_folder(MoveFolderRequest {
            path: "/Discovered/y".into(),
            new_parent: "/Discovered/y/web".into(),
            request_id: String::new(),
        })
        .await
        .expect_err("a cycle");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_list_get_and_maintenance() -> anyhow::Result<()> {
    let mut c = Cluster::form(1, 1, Opts::default()).await?;
    c.wait_for_leader(T).await?;
    let n = &c.nodes[0];

    let v = json(n, &["host", "list"]);
    let hosts = v["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 1, "{v}");
    let h = &hosts[0];
    assert_eq!(h["name"], "host1");
    assert_eq!(h["role"], "voter");
    assert_eq!(h["online"], true);
    assert_eq!(h["leader"], true);
    assert_eq!(h["maintenance"], false);
    assert_eq!(h["address"], format!("127.0.0.1:{}", n.port));
    // Nothing reported yet: no capacity, nothing allocated, no pools.
    assert_eq!(h["cpus"], 0);
    assert_eq!(h["allocated_memory_mib"], 0);
    assert_eq!(h["pools"], serde_json::json!([]));
    assert!(h["reported_at"].is_null(), "{h}");
    assert!(h["joined_at"].as_str().is_some_and(|t| t.ends_with('Z')));

    let out = n.cli(&["host", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(
        table.contains("NAME") && table.contains("MAINTENANCE") && table.contains("host1"),
        "{table}"
    );
    assert!(table.contains("voter (leader)"), "{table}");

    // The same record through get; the inventory may have been reported in between.
    let mut got = json(n, &["host", "get", "host1"]);
    let mut listed = h.clone();
    for v in [&mut got, &mut listed] {
        if let Some(o) = v.as_object_mut() {
            for k in ["cpus", "memory_mib", "free_memory_mib", "reported_at"] {
                o.remove(k);
            }
        }
    }
    assert_eq!(got, listed);

    // Maintenance on and off, seen by get and list.
    let out = n.cli(&["host", "maintenance", "host1", "on"]);
    assert!(
        stdout(&out).contains("host host1 is in maintenance"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(json(n, &["host", "get", "host1"])["maintenance"], true);
    assert_eq!(
        json(n, &["host", "list", "--consistency", "stale"])["hosts"][0]["maintenance"],
        true
    );
    let v = json(n, &["host", "maintenance", "host1", "off"]);
    assert_eq!(v["maintenance"], false);
    assert_eq!(json(n, &["host", "list"])["hosts"][0]["maintenance"], false);

    refused(
        n,
        &["host", "get", "ghost"],
        "host ghost is not a member",
        "NotFound",
    );
    refused(
        n,
        &["host", "maintenance", "ghost", "on"],
        "host ghost is not a member",
        "NotFound",
    );
    refused(
        n,
        &["host", "get", "Bad_Name"],
        "host name 'Bad_Name'",
        "InvalidArgument",
    );
    let out = n.cli(&["host", "maintenance", "host1", "maybe"]);
    assert!(
        !out.status.success(),
        "clap refuses a state other than on|off"
    );

    // gRPC: a retried SetMaintenance applies once and answers the same.
    let mut hosts = HostServiceClient::new(n.channel().await?);
    let req = SetMaintenanceRequest {
        name: "host1".into(),
        on: true,
        request_id: "m-once".into(),
    };
    let a = hosts.set_maintenance(req.clone()).await?.into_inner();
    let b = hosts.set_maintenance(req).await?.into_inner();
    assert!(a.maintenance && b.maintenance);
    assert_eq!(a.name, b.name);
    let err = hosts
        .get_host(GetHostRequest {
            name: "nope".into(),
            consistency: ReadConsistency::Linearizable as i32,
        })
        .await
        .expect_err("unknown host");
    assert_eq!(err.code(), tonic::Code::NotFound);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_listed_with_roles_and_online_on_every_host() -> anyhow::Result<()> {
    let mut c = Cluster::form(3, 3, Opts::default()).await?;
    let leader = c.wait_for_leader(T).await?;
    let summary = |n: &Node| -> Vec<(String, String, bool, bool)> {
        json(n, &["host", "list"])["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .map(|h| {
                (
                    h["name"].as_str().unwrap_or("").to_string(),
                    h["role"].as_str().unwrap_or("").to_string(),
                    h["online"] == true,
                    h["leader"] == true,
                )
            })
            .collect()
    };
    let want: Vec<(String, String, bool, bool)> = ["host1", "host2", "host3"]
        .iter()
        .map(|h| (h.to_string(), "voter".into(), true, *h == leader))
        .collect();
    for n in &c.nodes {
        // Online comes from the leader's view, which fills in with the first heartbeats.
        wait_for(T, &format!("{} to list 3 online voters", n.name), || {
            let ok = summary(n) == want;
            async move { ok }
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}; last: {:?}", summary(n)))?;
    }
    // A write through one follower is seen by a linearizable read on another.
    let followers: Vec<&Node> = c.nodes.iter().filter(|n| n.name != leader).collect();
    let out = followers[0].cli(&["host", "maintenance", "host3", "on"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(followers[1], &["host", "get", "host3"]);
    assert_eq!(v["maintenance"], true, "{v}");
    assert_eq!(v["role"], "voter");
    Ok(())
}
