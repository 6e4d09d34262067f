//! NFS pools are realised by every host: mounted at the pool's mount point, reported reachable
//! with capacity, or unreachable with mount's own words. Loopback only. A real NFS export is
//! served on 127.0.0.1 (Debian's nfs-kernel-server) where the kernel has NFS; this machine's
//! kernel may have none, and then that test says why and stops (a shared directory pool stands
//! in for shared storage elsewhere in the suite).

use cluster_tests::{wait_for, Cluster, Opts};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `pool create nas --type nfs` for an export on 127.0.0.1, mounted at `mp`.
fn create_nfs_pool(n: &cluster_tests::Node, export: &str, mp: &std::path::Path) {
    ok(&n.cli(&[
        "pool",
        "create",
        "nas",
        "--type",
        "nfs",
        "--server",
        "127.0.0.1",
        "--export",
        export,
        "--mount-point",
        &mp.display().to_string(),
    ]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nfs_pool_that_cannot_be_mounted_is_unreachable_with_the_reason() -> anyhow::Result<()> {
    let c = Cluster::form(1, 1, Opts::default()).await?;
    let n = &c.nodes[0];
    let mnt = tempfile::tempdir()?;
    let mp = mnt.path().join("nas");
    create_nfs_pool(n, "/srv/quantix-nothing-exported-here", &mp);
    wait_for(T, "the host's report on the pool", || async {
        let p = n.cli_json(&["pool", "get", "nas"]);
        p["hosts"]
            .as_array()
            .is_some_and(|h| h.iter().any(|r| r["host"] == n.name.as_str()))
    })
    .await?;
    let p = n.cli_json(&["pool", "get", "nas"]);
    let report = &p["hosts"][0];
    assert_eq!(report["reachable"], false, "{p}");
    let reason = report["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with(&format!(
            "cannot mount 127.0.0.1:/srv/quantix-nothing-exported-here at {}",
            mp.display()
        )),
        "{reason}"
    );
    // A VM on that pool waits, and says which pool.
    ok(&n.cli(&[
        "vm",
        "create",
        "on-nas",
        "--pxe",
        "--disk-size",
        "64MiB",
        "--pool",
        "nas",
    ]));
    wait_for(T, "the reason names the pool", || async {
        let v = n.cli_json(&["vm", "get", "on-nas"]);
        v["status"] == "pending" && v["reason"].as_str().is_some_and(|r| r.contains("nas"))
    })
    .await?;
    Ok(())
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    match std::process::Command::new(cmd).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{cmd}: {e}")),
    }
}

/// Serves `dir` over NFS on 127.0.0.1, or says why it cannot here.
fn serve_nfs(dir: &std::path::Path) -> Result<(), String> {
    if !quantix::agent::nfs::kernel_has_nfs() {
        return Err("this kernel has no NFS file system (/proc/filesystems)".into());
    }
    std::fs::create_dir_all("/etc/exports.d").map_err(|e| e.to_string())?;
    std::fs::write(
        "/etc/exports.d/quantix-test.exports",
        format!(
            "{} 127.0.0.1(rw,sync,no_root_squash,no_subtree_check,fsid=77)\n",
            dir.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let _ = run("mount", &["-t", "nfsd", "nfsd", "/proc/fs/nfsd"]);
    let _ = run("rpcbind", &[]);
    run("exportfs", &["-ra"])?;
    run("rpc.nfsd", &["8"])?;
    run("rpc.mountd", &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nfs_export_on_loopback_is_mounted_and_used() -> anyhow::Result<()> {
    let export = tempfile::tempdir()?;
    if let Err(why) = serve_nfs(export.path()) {
        eprintln!("SKIP: cannot serve NFS on loopback here: {why}");
        return Ok(());
    }
    let c = Cluster::form(1, 1, Opts::default()).await?;
    let n = &c.nodes[0];
    let mnt = tempfile::tempdir()?;
    let mp = mnt.path().join("nas");
    create_nfs_pool(n, &export.path().display().to_string(), &mp);
    wait_for(T, "the pool mounted and reachable", || async {
        let p = n.cli_json(&["pool", "get", "nas"]);
        p["reachable_from"]
            .as_array()
            .is_some_and(|h| h.iter().any(|x| x == n.name.as_str()))
    })
    .await?;
    ok(&n.cli(&[
        "vm",
        "create",
        "on-nas",
        "--pxe",
        "--disk-size",
        "64MiB",
        "--pool",
        "nas",
    ]));
    wait_for(T, "the VM running with its disk on the export", || async {
        let v = n.cli_json(&["vm", "get", "on-nas"]);
        v["status"] == "running" && export.path().join("on-nas/disk0.qcow2").exists()
    })
    .await?;
    ok(&n.cli(&["vm", "delete", "on-nas"]));
    wait_for(T, "the VM gone", || async {
        !n.cli(&["vm", "get", "on-nas"]).status.success()
    })
    .await?;
    ok(&n.cli(&["pool", "delete", "nas"]));
    wait_for(
        T,
        "the export unmounted after the pool is deleted",
        || async { !quantix::agent::nfs::is_nfs_mount(&mp) },
    )
    .await
}
