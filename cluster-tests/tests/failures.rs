//! Faults with real daemons: the leader SIGKILLed under concurrent writes, a host that falls
//! behind a purged log and catches up by snapshot, the whole cluster restarted.

use cluster_tests::{stderr, wait_for, Cluster, Node, Opts};
use quantix::proto::v1::folder_service_client::FolderServiceClient;
use quantix::proto::v1::{
    CreateFolderRequest, GetFolderRequest, ListFoldersRequest, ReadConsistency,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const T: Duration = Duration::from_secs(30);

/// Every folder path under `/` that `node` holds, read locally (stale) after convergence.
async fn paths_on(node: &Node) -> anyhow::Result<Vec<String>> {
    let r = node
        .folders()
        .await?
        .list_folders(ListFoldersRequest {
            under: String::new(),
            consistency: ReadConsistency::Stale as i32,
        })
        .await?
        .into_inner();
    Ok(r.folders.into_iter().map(|f| f.path).collect())
}

/// A host's address and the TLS config to reach it as `admin`.
type Target = (String, std::sync::Arc<rustls::ClientConfig>);

async fn connect_any(
    endpoints: &[Target],
    start: usize,
) -> Option<(usize, FolderServiceClient<Channel>)> {
    for k in 0..endpoints.len() {
        let i = (start + k) % endpoints.len();
        let (addr, tls) = &endpoints[i];
        let connector = quantix::tls::connector::Connector::fixed(tls.clone());
        if let Ok(ch) = quantix::raft::network::endpoint(addr)
            .ok()?
            .connect_timeout(Duration::from_millis(300))
            .connect_with_connector(connector)
            .await
        {
            return Some((i, FolderServiceClient::new(ch)));
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sigkill_under_writes_loses_nothing_acknowledged() -> anyhow::Result<()> {
    let mut c = Cluster::form(3, 3, Opts::default()).await?;
    let leader = c.wait_for_leader(T).await?;
    let endpoints: Vec<Target> = c
        .nodes
        .iter()
        .map(|n| Ok((n.addr(), n.admin_tls()?)))
        .collect::<anyhow::Result<_>>()?;
    let acked = Arc::new(Mutex::new(Vec::<(String, Instant)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..6usize {
        let (endpoints, acked, stop) = (endpoints.clone(), acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut at = w;
            let mut client = None;
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if client.is_none() {
                    client = connect_any(&endpoints, at).await;
                }
                let Some((i, c)) = client.as_mut() else {
                    continue;
                };
                let path = format!("/w{w}-{n}");
                let req = CreateFolderRequest {
                    path: path.clone(),
                    parents: false,
                    request_id: format!("w{w}-{n}"),
                };
                match c.create_folder(req).await {
                    Ok(_) => {
                        acked.lock().expect("acked").push((path, Instant::now()));
                        n += 1;
                    }
                    // Retry the same request id elsewhere: it must not apply twice.
                    Err(_) => {
                        at = *i + 1;
                        client = None;
                    }
                }
            }
        }));
    }
    let count = |a: &Arc<Mutex<Vec<(String, Instant)>>>| a.lock().expect("acked").len();
    wait_for(T, "writes to flow before the kill", || async {
        count(&acked) >= 50
    })
    .await?;
    let killed_at = Instant::now();
    c.node_mut(&leader).kill();
    wait_for(
        T,
        "a write acknowledged after the leader was killed",
        || async {
            acked
                .lock()
                .expect("acked")
                .iter()
                .any(|(_, t)| *t > killed_at)
        },
    )
    .await?;
    let failover = acked
        .lock()
        .expect("acked")
        .iter()
        .map(|(_, t)| *t)
        .find(|t| *t > killed_at)
        .map(|t| t - killed_at);
    let failover = failover.expect("a write after the kill");
    assert!(
        failover < Duration::from_secs(5),
        "new leader took writes only after {failover:?}"
    );
    let before = count(&acked);
    wait_for(T, "more writes on the new leader", || async {
        count(&acked) >= before + 50
    })
    .await?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await?;
    }
    c.node_mut(&leader).start().await?;
    c.wait_converged(T).await?;
    let acked: Vec<String> = acked
        .lock()
        .expect("acked")
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    for node in &c.nodes {
        let have: std::collections::BTreeSet<String> = paths_on(node).await?.into_iter().collect();
        let missing: Vec<&String> = acked.iter().filter(|p| !have.contains(*p)).collect();
        assert!(
            missing.is_empty(),
            "{} lost {} acknowledged writes, e.g. {:?}",
            node.name,
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
    eprintln!("failover: first write committed {failover:?} after SIGKILL of {leader}; {} writes acknowledged", acked.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_behind_a_purged_log_catches_up_by_snapshot() -> anyhow::Result<()> {
    let opts = Opts {
        snapshot_after_entries: 50,
        keep_entries_after_snapshot: 10,
        ..Opts::default()
    };
    let mut c = Cluster::form(3, 3, opts).await?;
    let leader = c.wait_for_leader(T).await?;
    let lagger = c
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .find(|n| *n != leader)
        .expect("a follower");
    let lag_index = c.node(&lagger).status(true).await?.applied_index;
    c.node_mut(&lagger).kill();
    let writer = c
        .nodes
        .iter()
        .find(|n| n.name != lagger)
        .expect("a live host");
    let mut client = writer.folders().await?;
    for i in 0..300 {
        client
            .create_folder(CreateFolderRequest {
                path: format!("/s{i}"),
                parents: false,
                request_id: String::new(),
            })
            .await?;
    }
    let leader_node = c.node(&leader);
    wait_for(
        T,
        "the leader to purge its log past the stopped host",
        || async {
            leader_node
                .status(false)
                .await
                .is_ok_and(|s| s.purged_index > lag_index + 50)
        },
    )
    .await?;
    c.node_mut(&lagger).start().await?;
    c.wait_converged(T).await?;
    let node = c.node(&lagger);
    assert!(
        node.log().contains("installed snapshot"),
        "{lagger} caught up without a snapshot:\n{}",
        node.log()
    );
    let paths = paths_on(node).await?;
    assert!(
        (0..300).all(|i| paths.contains(&format!("/s{i}"))),
        "{lagger} is missing folders after catch-up"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_restart_keeps_all_state() -> anyhow::Result<()> {
    let mut c = Cluster::form(
        3,
        3,
        Opts {
            snapshot_after_entries: 40,
            keep_entries_after_snapshot: 5,
            ..Opts::default()
        },
    )
    .await?;
    c.wait_for_leader(T).await?;
    let mut client = c.nodes[1].folders().await?;
    for i in 0..100 {
        client
            .create_folder(CreateFolderRequest {
                path: format!("/r{i}"),
                parents: false,
                request_id: String::new(),
            })
            .await?;
    }
    c.wait_converged(T).await?;
    let before = paths_on(&c.nodes[0]).await?;
    // One host killed outright, the others stopped cleanly.
    c.nodes[0].kill();
    c.nodes[1].stop()?;
    c.nodes[2].stop()?;
    for n in &mut c.nodes {
        n.start().await?;
    }
    c.wait_for_leader(T).await?;
    c.wait_converged(T).await?;
    for n in &c.nodes {
        assert_eq!(
            paths_on(n).await?,
            before,
            "state differs on {} after restart",
            n.name
        );
    }
    // And the cluster still takes writes, with the same members.
    let out = c.nodes[2].cli(&["folder", "create", "/after-restart"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = c.nodes[0].status(false).await?;
    assert_eq!(s.members.len(), 3);
    let f = c.nodes[0]
        .folders()
        .await?
        .get_folder(GetFolderRequest {
            path: "/after-restart".into(),
            consistency: 0,
        })
        .await?
        .into_inner();
    assert_eq!(f.path, "/after-restart");
    Ok(())
}
