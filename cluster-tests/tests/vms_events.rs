//! VMs, the event log and Watch, end to end over real gRPC and the CLI.

use cluster_tests::{stderr, stdout, Cluster, Opts};
use quantix::proto::v1::event_service_client::EventServiceClient;
use quantix::proto::v1::vm_service_client::VmServiceClient;
use quantix::proto::v1::*;
use std::time::Duration;

fn pxe(name: &str) -> CreateVmRequest {
    CreateVmRequest {
        name: name.into(),
        cpus: 1,
        memory_mib: 512,
        boot: Some(BootMedia {
            media: Some(boot_media::Media::Pxe(true)),
        }),
        nics: vec![Nic {
            network: "user".into(),
            mac: String::new(),
        }],
        ..Default::default()
    }
}

async fn next(s: &mut tonic::Streaming<Change>) -> anyhow::Result<Option<Change>> {
    Ok(tokio::time::timeout(Duration::from_secs(10), s.message()).await??)
}

/// The next change that is a deletion, skipping updates.
async fn next_deleted(s: &mut tonic::Streaming<Change>) -> anyhow::Result<Change> {
    loop {
        let c = next(s)
            .await?
            .ok_or_else(|| anyhow::anyhow!("stream ended"))?;
        if c.deleted {
            return Ok(c);
        }
    }
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_lifecycle_through_the_cli() -> anyhow::Result<()> {
    let c = Cluster::form(1, 1, Opts::default()).await?;
    let n = &c.nodes[0];
    assert!(n.cli(&["folder", "create", "/prod"]).status.success());
    let v = json(&n.cli(&[
        "vm",
        "create",
        "web1",
        "--pxe",
        "--disk-size",
        "0",
        "--cpus",
        "2",
        "--memory",
        "2GiB",
        "--folder",
        "/prod",
        "-o",
        "json",
    ]));
    assert_eq!(
        (
            v["name"].as_str(),
            v["folder"].as_str(),
            v["power"].as_str(),
            v["status"].as_str()
        ),
        (
            Some("web1"),
            Some("/prod"),
            Some("running"),
            Some("pending")
        )
    );
    assert!(v["host"].is_null());
    assert_eq!(v["memory_mib"], 2048);
    assert!(
        v["reason"]
            .as_str()
            .unwrap_or("")
            .contains("waiting for the scheduler"),
        "{v}"
    );

    // CPU changes need a stopped VM, and the refusal says so.
    let out = n.cli(&["vm", "update", "web1", "--cpus", "4"]);
    assert!(
        stderr(&out).contains(
            "must be stopped to change cpus and memory (it is pending) (FailedPrecondition)"
        ),
        "{}",
        stderr(&out)
    );
    assert!(n.cli(&["vm", "stop", "web1"]).status.success());
    let v = json(&n.cli(&[
        "vm", "update", "web1", "--cpus", "4", "--rename", "web2", "-o", "json",
    ]));
    assert_eq!(
        (v["name"].as_str(), v["cpus"].as_u64(), v["power"].as_str()),
        (Some("web2"), Some(4), Some("stopped"))
    );
    let out = n.cli(&["vm", "pause", "web2"]);
    assert!(
        stderr(&out).contains("cannot be paused"),
        "{}",
        stderr(&out)
    );
    for step in [
        ["start", "web2"],
        ["pause", "web2"],
        ["resume", "web2"],
        ["reboot", "web2"],
    ] {
        let out = n.cli(&["vm", step[0], step[1]]);
        assert!(out.status.success(), "{step:?}: {}", stderr(&out));
    }
    let v = json(&n.cli(&["vm", "get", "web2", "-o", "json"]));
    assert_eq!(v["power"], "running");

    // Bad input names the field; references must exist.
    let cases: [(&[&str], &str); 5] = [
        (
            &["vm", "create", "Bad_Name", "--pxe", "--disk-size", "0"],
            "vm name 'Bad_Name'",
        ),
        (
            &[
                "vm",
                "create",
                "x1",
                "--pxe",
                "--disk-size",
                "0",
                "--folder",
                "/nope",
            ],
            "folder /nope does not exist (NotFound)",
        ),
        (
            &[
                "vm",
                "create",
                "x2",
                "--pxe",
                "--disk-size",
                "0",
                "--spec",
                "nospec",
            ],
            "customization spec nospec does not exist (NotFound)",
        ),
        (
            &[
                "vm",
                "create",
                "x3",
                "--pxe",
                "--disk-size",
                "0",
                "--memory",
                "2GB",
            ],
            "ambiguous",
        ),
        (&["vm", "create", "x4"], "choose what the VM boots"),
    ];
    for (args, want) in cases {
        let out = n.cli(args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out).lines().count(),
            1,
            "{args:?}: one line: {}",
            stderr(&out)
        );
    }
    // A folder holding a VM is not deleted.
    let out = n.cli(&["folder", "delete", "/prod"]);
    assert!(!out.status.success());

    let list = json(&n.cli(&["vm", "list", "--folder", "/prod", "-o", "json"]));
    assert_eq!(list["vms"].as_array().map(Vec::len), Some(1));
    // web2 may already be placed and running (the agent is on): then its host removes it.
    json(&n.cli(&["vm", "delete", "web2", "-o", "json"]));
    cluster_tests::wait_for(Duration::from_secs(30), "web2 removed", || async {
        !n.cli(&["vm", "get", "web2"]).status.success()
    })
    .await?;
    let out = n.cli(&["vm", "get", "web2"]);
    assert!(
        stderr(&out).contains("vm web2 does not exist (NotFound)"),
        "{}",
        stderr(&out)
    );

    // Every command above left an event, refusals included.
    let ev = json(&n.cli(&["events", "list", "--limit", "200", "-o", "json"]));
    let evs = ev["events"].as_array().expect("events");
    let find = |what: &str, ok: bool| {
        evs.iter()
            .any(|e| e["what"] == what && e["ok"] == ok && e["by"] == "host1")
    };
    assert!(
        find("create_vm", true) && find("update_vm", false) && find("delete_vm", true),
        "{ev}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_and_concurrent_creates_of_one_name() -> anyhow::Result<()> {
    let c = Cluster::form(1, 1, Opts::default()).await?;
    let mut vms = VmServiceClient::new(c.nodes[0].channel().await?);
    // Two concurrent creates of the same name: exactly one wins.
    let (mut v1, mut v2) = (vms.clone(), vms.clone());
    let (a, b) = tokio::join!(v1.create_vm(pxe("twin")), v2.create_vm(pxe("twin")));
    assert_eq!([a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(), 1);
    let err = a.err().or(b.err()).expect("one refusal");
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    for i in 0..7 {
        vms.create_vm(pxe(&format!("p{i}"))).await?;
    }
    let mut token = String::new();
    let mut seen = Vec::new();
    loop {
        let r = vms
            .list_vms(ListVmsRequest {
                page_size: 3,
                page_token: token,
                ..Default::default()
            })
            .await?
            .into_inner();
        assert!(r.vms.len() <= 3);
        seen.extend(r.vms.into_iter().map(|v| v.name));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(seen, ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "twin"]);
    let err = vms
        .list_vms(ListVmsRequest {
            status: "sleeping".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad status");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_changes_and_resumes_on_any_host() -> anyhow::Result<()> {
    let mut c = Cluster::form(3, 3, Opts::default()).await?;
    c.wait_for_leader(Duration::from_secs(20)).await?;
    let mut vms = VmServiceClient::new(c.nodes[1].channel().await?);
    let rev = vms
        .list_vms(ListVmsRequest::default())
        .await?
        .into_inner()
        .revision;
    let mut events = EventServiceClient::new(c.nodes[2].channel().await?);
    let mut stream = events
        .watch(WatchRequest {
            from_revision: rev,
            entities: vec!["vm".into()],
        })
        .await?
        .into_inner();
    vms.create_vm(pxe("w1")).await?;
    vms.delete_vm(DeleteVmRequest {
        name: "w1".into(),
        request_id: String::new(),
    })
    .await?;
    let first = next(&mut stream).await?.expect("a change");
    assert_eq!(
        (first.entity.as_str(), first.key.as_str(), first.deleted),
        ("vm", "w1", false)
    );
    // The scheduler may change w1 in between (placement, reason): skip to the delete.
    let second = next_deleted(&mut stream).await?;
    assert!(second.revision > first.revision);
    // Reconnect elsewhere from the first change: the second comes again, nothing is lost.
    let mut again = EventServiceClient::new(c.nodes[0].channel().await?)
        .watch(WatchRequest {
            from_revision: first.revision,
            entities: vec!["vm".into()],
        })
        .await?
        .into_inner();
    let replay = next_deleted(&mut again).await?;
    assert_eq!(replay.revision, second.revision);
    let err = events
        .watch(WatchRequest {
            from_revision: 0,
            entities: vec!["bogus".into()],
        })
        .await
        .expect_err("bad entity");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_follow_prints_new_events_as_they_happen() -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader};
    let c = Cluster::form(1, 1, Opts::default()).await?;
    let n = &c.nodes[0];
    let mut follow = n
        .cli_command()
        .args(["events", "list", "--limit", "1", "--follow"])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = follow.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // The first line is the newest existing event; then make a new one and wait for it.
    let first = rx.recv_timeout(Duration::from_secs(10))?;
    assert!(!first.contains("/followed"), "{first}");
    assert!(n.cli(&["folder", "create", "/followed"]).status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = false;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("create_folder") && line.contains("/followed") => {
                seen = true;
                break;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(
        seen,
        "quantix events --follow did not print the new event within 10 s"
    );
    Ok(())
}
