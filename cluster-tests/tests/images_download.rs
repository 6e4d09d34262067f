//! Images realised on hosts, end to end: real quantixd processes download from a small HTTP
//! server the test runs on loopback (a fixture that serves files with Range support, logs
//! every request's Range header and can stall a response mid-file), verify checksums, resume
//! after a daemon restart, take uploads, import files found by a pool scan, and remove files
//! when an image is deleted. VMs on a local pool's image go only where the image is ready.

mod images_fixture;

use cluster_tests::{stderr, stdout, wait_for, Cluster, Node, Opts};
use images_fixture::Files;
use quantix::proto::v1::image_service_client::ImageServiceClient;
use quantix::proto::v1::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
    stdout(out)
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Bytes of a fresh qcow2 file made by qemu-img (size grows with `mib` of written data).
fn qcow2(dir: &Path, mib: usize) -> Vec<u8> {
    let raw = dir.join("src.raw");
    let data: Vec<u8> = (0..mib * 1024 * 1024)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    std::fs::write(&raw, data).expect("write raw");
    let out_path = dir.join("src.qcow2");
    let out = std::process::Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&out_path)
        .output()
        .expect("qemu-img (scripts/setup.sh installs it)");
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::read(out_path).expect("read qcow2")
}

/// Pseudo-random bytes standing in for an ISO (the agent does not look inside).
fn iso(mib: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed) + 1;
    (0..mib * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

async fn image(n: &Node, name: &str) -> Option<Image> {
    let mut c = ImageServiceClient::new(n.channel().await.ok()?);
    c.get_image(GetImageRequest {
        name: name.into(),
        consistency: ReadConsistency::Stale as i32,
    })
    .await
    .ok()
    .map(|r| r.into_inner())
}

fn host_state(i: &Image, host: &str) -> Option<ImageState> {
    i.hosts
        .iter()
        .find(|h| h.host == host)
        .and_then(|h| h.progress.as_ref())
        .and_then(|p| ImageState::try_from(p.state).ok())
}

async fn wait_ready_on(n: &Node, name: &str, hosts: &[&str]) {
    let what = format!("image {name} ready on {hosts:?}");
    let r = wait_for(T, &what, || async {
        image(n, name).await.is_some_and(|i| {
            hosts
                .iter()
                .all(|h| host_state(&i, h) == Some(ImageState::Ready))
        })
    })
    .await;
    if let Err(e) = r {
        panic!("{e}; image now: {:?}", image(n, name).await);
    }
}

fn pool_create(n: &Node, name: &str, dir: &Path, extra: &[&str]) {
    let path = dir.display().to_string();
    let mut args = vec!["pool", "create", name, "--type", "dir", "--path", &path];
    args.extend_from_slice(extra);
    ok(&n.cli(&args));
}

/// Waits until `hosts` report pool `name` reachable.
async fn wait_pool(n: &Node, name: &str, hosts: &[&str]) {
    wait_for(
        T,
        &format!("pool {name} reachable from {hosts:?}"),
        || async {
            let out = n.cli(&["pool", "get", name, "-o", "json"]);
            let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
            hosts.iter().all(|h| {
                v["reachable_from"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == h))
            })
        },
    )
    .await
    .expect("pool reachable");
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_to_a_local_pool_places_vms_only_where_ready_and_delete_removes_files(
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let srv = Files::default();
    let base = srv.serve().await;
    let disk = qcow2(tmp.path(), 3);
    let cd = iso(2, 1);
    srv.put("/base.qcow2", disk.clone());
    srv.put("/install.iso", cd.clone());

    let c = Cluster::form(3, 3, Opts::default()).await?;
    let pool_dir = tmp.path().join("local");
    // A local pool that only host1 and host2 may use: host3 never gets a copy.
    pool_create(&c.nodes[0], "local", &pool_dir, &["--hosts", "host1,host2"]);
    wait_pool(&c.nodes[0], "local", &["host1", "host2"]).await;

    let url = format!("{base}/base.qcow2");
    let out = ok(&c.nodes[2].cli(&[
        "image",
        "download",
        "base",
        "--url",
        &url,
        "--sha256",
        &sha(&disk),
        "--pool",
        "local",
        "--wait",
    ]));
    assert!(out.contains("image base ready on"), "{out}");
    wait_ready_on(&c.nodes[0], "base", &["host1", "host2"]).await;
    let i = image(&c.nodes[0], "base").await.unwrap();
    assert_eq!(host_state(&i, "host3"), None, "host3 may not use the pool");
    assert_eq!(i.size_mib, Some((disk.len() as u64).div_ceil(1 << 20)));
    let final_path = pool_dir.join("images/base.qcow2");
    assert_eq!(sha(&std::fs::read(&final_path)?), sha(&disk));

    // Without a checksum: the first verified copy pins it. `create` still works.
    let url = format!("{base}/install.iso");
    ok(&c.nodes[0].cli(&[
        "image", "create", "install", "--url", &url, "--kind", "iso", "--pool", "local",
    ]));
    wait_ready_on(&c.nodes[0], "install", &["host1", "host2"]).await;
    let i = image(&c.nodes[1], "install").await.unwrap();
    assert_eq!(i.sha256, sha(&cd));
    // (On one machine the "local" pool is one directory for both hosts, so the second may
    // take over the copy the first published instead of downloading its own.)
    assert!(!srv.ranges("/install.iso").is_empty());

    // VMs on the image go only to hosts that have it ready.
    for k in 0..4 {
        ok(&c.nodes[k % 3].cli(&[
            "vm",
            "create",
            &format!("v{k}"),
            "--image",
            "base",
            "--pool",
            "local",
            "--disk-size",
            "1GiB",
            "--memory",
            "256MiB",
        ]));
    }
    let vms = || async {
        let out = c.nodes[0].cli(&["vm", "list", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
        v["vms"].as_array().cloned().unwrap_or_default()
    };
    wait_for(T, "4 VMs placed", || async {
        let l = vms().await;
        l.len() == 4
            && l.iter()
                .all(|v| v["host"].as_str().is_some_and(|h| !h.is_empty()))
    })
    .await?;
    for v in vms().await {
        assert_ne!(v["host"], "host3", "{v}");
    }
    for k in 0..4 {
        ok(&c.nodes[0].cli(&["vm", "delete", &format!("v{k}")]));
    }
    wait_for(T, "VMs deleted", || async { vms().await.is_empty() }).await?;

    // Delete: every host removes its files; nothing else in images/ is touched.
    std::fs::write(pool_dir.join("images/not-ours.iso"), b"user file")?;
    ok(&c.nodes[1].cli(&["image", "delete", "base"]));
    ok(&c.nodes[1].cli(&["image", "delete", "install"]));
    let images_dir = pool_dir.join("images");
    wait_for(T, "image files removed", || async {
        files_in(&images_dir) == ["not-ours.iso"]
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}: {:?}", files_in(&images_dir)))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_mismatch_and_http_errors_fail_with_the_reason() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let srv = Files::default();
    let base = srv.serve().await;
    let cd = iso(1, 2);
    srv.put("/a.iso", cd.clone());
    let c = Cluster::form(1, 1, Opts::default()).await?;
    let n = &c.nodes[0];
    let pool_dir = tmp.path().join("p");
    pool_create(n, "p", &pool_dir, &[]);
    wait_pool(n, "p", &["host1"]).await;

    let wrong = "ab".repeat(32);
    let url = format!("{base}/a.iso");
    let out = n.cli(&[
        "image", "download", "bad", "--url", &url, "--sha256", &wrong, "--kind", "iso", "--pool",
        "p", "--wait",
    ]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let want = format!(
        "checksum mismatch: expected sha256 {wrong}, got {}",
        sha(&cd)
    );
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    assert!(
        !files_in(&pool_dir.join("images"))
            .iter()
            .any(|f| f.starts_with("bad.iso")),
        "no file of a failed download: {:?}",
        files_in(&pool_dir.join("images"))
    );

    let url = format!("{base}/missing.iso");
    let out = n.cli(&[
        "image", "download", "gone", "--url", &url, "--kind", "iso", "--pool", "p", "--wait",
    ]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("HTTP 404 Not Found from"),
        "{}",
        stderr(&out)
    );

    // A URL outside [images] url_hosts is refused without a connection.
    let out = n.cli(&[
        "image",
        "download",
        "far",
        "--url",
        "http://example.com/x.iso",
        "--kind",
        "iso",
        "--pool",
        "p",
        "--wait",
    ]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("downloads from example.com are not allowed"),
        "{}",
        stderr(&out)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_download_resumes_after_a_daemon_restart() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let srv = Files::default();
    let base = srv.serve().await;
    let cd = iso(6, 3);
    srv.put("/big.iso", cd.clone());
    let stall_at = 2 * 1024 * 1024;
    *srv.stall.lock().expect("fixture lock") = Some(("/big.iso".into(), stall_at));
    let mut c = Cluster::form(1, 1, Opts::default()).await?;
    let pool_dir = tmp.path().join("p");
    pool_create(&c.nodes[0], "p", &pool_dir, &[]);
    wait_pool(&c.nodes[0], "p", &["host1"]).await;
    let url = format!("{base}/big.iso");
    ok(&c.nodes[0].cli(&[
        "image",
        "download",
        "big",
        "--url",
        &url,
        "--sha256",
        &sha(&cd),
        "--kind",
        "iso",
        "--pool",
        "p",
    ]));
    let part: PathBuf = pool_dir.join("images/big.iso.host1.part");
    wait_for(T, "the stalled download to hold 2 MiB", || async {
        std::fs::metadata(&part).is_ok_and(|m| m.len() as usize >= stall_at)
    })
    .await?;

    // Kill the daemon mid-download; the server recovers; the restarted host resumes.
    c.nodes[0].kill();
    *srv.stall.lock().expect("fixture lock") = None;
    // The rest comes slowly (4 MiB at about 1.6 MiB/s), to see progress reported on the way.
    *srv.throttle.lock().expect("fixture lock") = Some(Duration::from_millis(40));
    let restarted = std::time::Instant::now();
    c.nodes[0].start().await?;
    c.wait_for_leader(T).await?;
    wait_ready_on(&c.nodes[0], "big", &["host1"]).await;
    let took = restarted.elapsed().as_secs();
    let final_path = pool_dir.join("images/big.iso");
    assert_eq!(sha(&std::fs::read(&final_path)?), sha(&cd));
    let ranges = srv.ranges("/big.iso");
    assert_eq!(ranges[0], None, "the first request is for the whole file");
    let resumed = ranges.iter().flatten().any(|r| {
        r.strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n >= stall_at)
    });
    assert!(
        resumed,
        "resumed with a Range from the part's end: {ranges:?}"
    );
    assert!(!part.exists(), "the part is gone once published");

    // Progress went through Raft on the way, at most about once a second.
    let out = ok(&c.nodes[0].cli(&["events", "list", "--limit", "1000", "-o", "json"]));
    let v: serde_json::Value = serde_json::from_str(&out)?;
    let reports = v["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["what"] == "observe_image" && e["target"] == "image big")
                .count()
        })
        .unwrap_or(0);
    eprintln!("{reports} progress reports; the download ended {took} s after the restart");
    assert!(
        reports >= 2,
        "progress reports after the restart: {reports}"
    );
    assert!(
        reports as u64 <= 2 * (took + 4),
        "{reports} progress reports for a download of about {took} s"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_round_trip_and_pool_scan() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let c = Cluster::form(2, 1, Opts::default()).await?;
    let pool_dir = tmp.path().join("local");
    pool_create(&c.nodes[0], "local", &pool_dir, &[]);
    wait_pool(&c.nodes[0], "local", &["host1", "host2"]).await;

    // Upload to host2: only it has the image (a local pool), bytes identical.
    let cd = iso(3, 4);
    let file = tmp.path().join("My Installer.iso");
    std::fs::write(&file, &cd)?;
    let out = ok(&c.nodes[1].cli(&["image", "upload", file.to_str().unwrap(), "--pool", "local"]));
    assert!(out.contains("uploaded image my-installer"), "{out}");
    assert!(out.contains("only host2 has this image"), "{out}");
    let i = image(&c.nodes[0], "my-installer").await.unwrap();
    assert_eq!(i.sha256, sha(&cd));
    assert_eq!(host_state(&i, "host2"), Some(ImageState::Ready));
    assert_eq!(host_state(&i, "host1"), None);
    assert_eq!(i.url, "upload://host2/My_Installer.iso");
    assert_eq!(std::fs::read(pool_dir.join("images/my-installer.iso"))?, cd);
    // The same name again is refused; nothing is left behind.
    let out = c.nodes[0].cli(&[
        "image",
        "upload",
        file.to_str().unwrap(),
        "--pool",
        "local",
        "--name",
        "my-installer",
    ]);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    // A scan imports files at the pool's top level; they stay where they are.
    let disk = qcow2(tmp.path(), 1);
    std::fs::write(pool_dir.join("Debian-12.iso"), iso(1, 5))?;
    std::fs::write(pool_dir.join("jammy.img"), &disk)?;
    std::fs::write(pool_dir.join("notes.txt"), b"hello")?;
    let out = ok(&c.nodes[0].cli(&["pool", "scan", "local"]));
    assert!(out.contains("2 of 3 files imported"), "{out}");
    wait_ready_on(&c.nodes[0], "debian-12", &["host1", "host2"]).await;
    wait_ready_on(&c.nodes[0], "jammy", &["host1", "host2"]).await;
    let j = image(&c.nodes[0], "jammy").await.unwrap();
    assert_eq!(
        (j.url.as_str(), j.sha256.as_str()),
        ("pool:jammy.img", sha(&disk).as_str())
    );
    assert_eq!(std::fs::read(pool_dir.join("images/jammy.qcow2"))?, disk);
    let again = ok(&c.nodes[1].cli(&["pool", "scan", "local"]));
    assert!(again.contains("already imported as image jammy"), "{again}");

    // Deleting a scanned image removes Quantix's link, never the user's file.
    ok(&c.nodes[0].cli(&["image", "delete", "jammy"]));
    wait_for(T, "the link of jammy removed", || async {
        !pool_dir.join("images/jammy.qcow2").exists()
    })
    .await?;
    assert_eq!(std::fs::read(pool_dir.join("jammy.img"))?, disk);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_pool_is_fetched_by_one_host_and_another_takes_over() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let srv = Files::default();
    let base = srv.serve().await;
    let cd = iso(4, 6);
    srv.put("/shared.iso", cd.clone());
    let stall_at = 1024 * 1024;
    *srv.stall.lock().expect("fixture lock") = Some(("/shared.iso".into(), stall_at));
    let mut c = Cluster::form(3, 3, Opts::default()).await?;
    let pool_dir = tmp.path().join("shared");
    std::fs::create_dir_all(&pool_dir)?;
    pool_create(&c.nodes[0], "nas", &pool_dir, &["--shared"]);
    wait_pool(&c.nodes[0], "nas", &["host1", "host2", "host3"]).await;
    let url = format!("{base}/shared.iso");
    ok(&c.nodes[1].cli(&[
        "image",
        "download",
        "shared",
        "--url",
        &url,
        "--sha256",
        &sha(&cd),
        "--kind",
        "iso",
        "--pool",
        "nas",
    ]));
    // One host fetches: the first by name.
    let part1 = pool_dir.join("images/shared.iso.host1.part");
    wait_for(T, "host1 to fetch into its own part", || async {
        std::fs::metadata(&part1).is_ok_and(|m| m.len() as usize >= stall_at)
    })
    .await?;
    assert_eq!(srv.ranges("/shared.iso").len(), 1, "only one host fetches");

    // host1 dies mid-download: another host takes over, into its own part.
    c.nodes[0].kill();
    *srv.stall.lock().expect("fixture lock") = None;
    c.wait_for_leader(T).await?;
    wait_ready_on(&c.nodes[1], "shared", &["host2"]).await;
    let i = image(&c.nodes[1], "shared").await.expect("image");
    assert_eq!(host_state(&i, "host3"), None, "host3 never fetched");
    assert_eq!(
        sha(&std::fs::read(pool_dir.join("images/shared.iso"))?),
        sha(&cd)
    );

    // A VM on the shared image may run on a host without a report of its own.
    ok(&c.nodes[1].cli(&[
        "vm",
        "create",
        "on3",
        "--iso",
        "shared",
        "--pool",
        "nas",
        "--disk-size",
        "1GiB",
        "--memory",
        "128MiB",
        "--host",
        "host3",
    ]));
    wait_for(T, "on3 placed on host3", || async {
        let out = c.nodes[1].cli(&["vm", "get", "on3", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
        v["host"] == "host3"
    })
    .await?;

    // host1 comes back first in line: it takes the published copy over (no new download)
    // and drops its own part.
    let requests = srv.ranges("/shared.iso").len();
    c.nodes[0].start().await?;
    wait_ready_on(&c.nodes[1], "shared", &["host1", "host2"]).await;
    assert_eq!(srv.ranges("/shared.iso").len(), requests, "no new download");
    wait_for(T, "host1's part removed", || async { !part1.exists() }).await?;
    Ok(())
}
