//! The whole model through the API: cross-entity references, the same state on every host,
//! and the service list as an off-the-shelf client sees it through server reflection.

use cluster_tests::{stderr, stdout, Cluster, Opts};
use std::time::Duration;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_across_entities_and_the_same_state_on_every_host() -> anyhow::Result<()> {
    let mut c = Cluster::form(3, 3, Opts::default()).await?;
    c.wait_for_leader(Duration::from_secs(20)).await?;
    let (h1, h2, h3) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    // Each entity made through a different host.
    ok(h1.cli(&[
        "pool",
        "create",
        "local",
        "--type",
        "dir",
        "--path",
        "/var/lib/quantix/pools/local",
    ]));
    ok(h2.cli(&["image", "create", "ubuntu-24.04", "--pool", "local"]));
    ok(h3.cli(&["folder", "create", "/prod"]));
    ok(h3.cli(&[
        "spec",
        "create",
        "web",
        "--os",
        "linux",
        "--timezone",
        "Europe/Berlin",
    ]));
    ok(h1.cli(&[
        "vm",
        "create",
        "web1",
        "--image",
        "ubuntu-24.04",
        "--spec",
        "web",
        "--folder",
        "/prod",
    ]));
    // The disk took the image's pool.
    let v: serde_json::Value =
        serde_json::from_str(&ok(h2.cli(&["vm", "get", "web1", "-o", "json"])))?;
    assert_eq!(v["disks"][0]["pool"], "local", "{v}");
    assert_eq!(v["disks"][0]["image"], "ubuntu-24.04");
    // Deleting what the VM uses is refused, naming the VM.
    for (args, code) in [
        (
            vec!["image", "delete", "ubuntu-24.04"],
            "FailedPrecondition",
        ),
        (vec!["pool", "delete", "local"], "FailedPrecondition"),
        (vec!["spec", "delete", "web"], "FailedPrecondition"),
        (
            vec!["folder", "delete", "/prod", "--recursive"],
            "FailedPrecondition",
        ),
    ] {
        let out = h3.cli(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("web1") && err.contains(code),
            "{args:?}: {err}"
        );
    }
    // Every host answers every read with the same state. Hosts and the scheduler keep writing
    // in the background (pool reports, pending reasons), so wait for a quiet moment.
    for what in [
        ["vm", "list"],
        ["image", "list"],
        ["pool", "list"],
        ["spec", "list"],
        ["folder", "list"],
    ] {
        let agree = || async {
            let answers: Vec<String> = c
                .nodes
                .iter()
                .map(|n| ok(n.cli(&[what[0], what[1], "-o", "json"])))
                .collect();
            answers.windows(2).all(|w| w[0] == w[1])
        };
        cluster_tests::wait_for(Duration::from_secs(20), "hosts to agree", agree)
            .await
            .unwrap_or_else(|e| panic!("{what:?} differs between hosts: {e}"));
    }
    // Once the VM is gone, everything it used can go.
    ok(h2.cli(&["vm", "delete", "web1"]));
    ok(h3.cli(&["image", "delete", "ubuntu-24.04"]));
    ok(h1.cli(&["pool", "delete", "local"]));
    ok(h2.cli(&["spec", "delete", "web"]));

    // Every host applied the same log: stop them and compare their state files table by table.
    c.wait_converged(Duration::from_secs(20)).await?;
    let dumps: Vec<_> = {
        for n in &mut c.nodes {
            n.stop()?;
        }
        c.nodes
            .iter()
            .map(|n| dump(&n.dir.join("data/state.redb")))
            .collect::<anyhow::Result<_>>()?
    };
    assert!(
        dumps[0].values().map(Vec::len).sum::<usize>() > 50,
        "suspiciously empty state"
    );
    for (i, d) in dumps.iter().enumerate().skip(1) {
        assert!(d == &dumps[0], "host{} state differs from host1", i + 1);
    }
    Ok(())
}

/// Table name -> raw (key, value) rows.
type Dump = std::collections::BTreeMap<&'static str, Vec<(Vec<u8>, Vec<u8>)>>;

/// Every table of a state file, as raw key/value bytes.
fn dump(path: &std::path::Path) -> anyhow::Result<Dump> {
    use redb::ReadableDatabase;
    let db = redb::Database::open(path)?;
    let txn = db.begin_read()?;
    let mut out = std::collections::BTreeMap::new();
    for t in quantix::state::Table::ALL {
        let mut rows = Vec::new();
        if let Ok(table) = txn.open_table(quantix::state::redb_kv::def(t)) {
            for item in table.range::<&[u8]>(..)? {
                let (k, v) = item?;
                rows.push((k.value().to_vec(), v.value().to_vec()));
            }
        }
        out.insert(t.name(), rows);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_every_service() -> anyhow::Result<()> {
    let c = Cluster::form(1, 1, Opts::default()).await?;
    let mut client = ServerReflectionClient::new(c.nodes[0].channel().await?);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await?
        .into_inner();
    let resp = stream.message().await?.expect("a reflection answer");
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        anyhow::bail!("unexpected reflection answer: {:?}", resp.message_response);
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "quantix.v1.ClusterService",
        "quantix.v1.FolderService",
        "quantix.v1.HostService",
        "quantix.v1.VmService",
        "quantix.v1.SpecService",
        "quantix.v1.ImageService",
        "quantix.v1.PoolService",
        "quantix.v1.EventService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_holding_vms_is_not_removed_and_maintenance_reaches_watch() -> anyhow::Result<()> {
    use quantix::proto::v1::event_service_client::EventServiceClient;
    use quantix::proto::v1::WatchRequest;
    let c = Cluster::form(2, 3, Opts::default()).await?;
    let (h1, h2) = (&c.nodes[0], &c.nodes[1]);
    ok(h1.cli(&[
        "vm",
        "create",
        "pinned",
        "--pxe",
        "--disk-size",
        "0",
        "--host",
        "host2",
    ]));
    let out = h1.cli(&["cluster", "remove", "host2"]);
    assert!(
        stderr(&out).contains(
            "host host2 still holds vm pinned: move or delete them first (FailedPrecondition)"
        ),
        "{}",
        stderr(&out)
    );
    // Refused before Raft membership changed: host2 is still a voter.
    let s = h1.status(false).await?;
    assert!(
        s.members
            .iter()
            .any(|m| m.name == "host2" && m.role == "voter"),
        "{s:?}"
    );

    let mut w = EventServiceClient::new(h2.channel().await?)
        .watch(WatchRequest {
            from_revision: 0,
            entities: vec!["host".into()],
        })
        .await?
        .into_inner();
    ok(h1.cli(&["host", "maintenance", "host2", "on"]));
    // Other hosts' reports (inventory, free memory) may come first: wait for host2's.
    let change = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match w.message().await? {
                Some(c) if c.key != "host2" => continue,
                other => return Ok::<_, tonic::Status>(other),
            }
        }
    })
    .await??
    .expect("a host change");
    assert_eq!(
        (change.entity.as_str(), change.key.as_str()),
        ("host", "host2")
    );
    // A placed VM's delete finishes when its host has removed the domain.
    ok(h1.cli(&["vm", "delete", "pinned"]));
    cluster_tests::wait_for(Duration::from_secs(30), "the VM gone", || async {
        !h1.cli(&["vm", "get", "pinned"]).status.success()
    })
    .await?;
    ok(h1.cli(&["cluster", "remove", "host2"]));
    Ok(())
}
