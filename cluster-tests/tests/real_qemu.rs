//! Real QEMU guests under TCG (KVM on this kind of machine cannot run real guests; see
//! ENVIRONMENT.md): three hosts, each with its own embedded QEMU driver, run the VMs placed on
//! them as QEMU processes; and one host on the machine's libvirtd (`qemu:///system`, started
//! by `scripts/setup.sh --libvirtd`) runs a VM from an empty disk and one with a cloud-init
//! seed ISO.

use cluster_tests::{stderr, stdout, wait_for, Cluster, Hv, Opts};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// The first start probes QEMU's capabilities, which takes a while under TCG.
const T: Duration = Duration::from_secs(120);

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
    stdout(out)
}

fn vm_json(c: &Cluster, node: usize, name: &str) -> serde_json::Value {
    let out = c.nodes[node].cli(&["vm", "get", name, "-o", "json"]);
    serde_json::from_str(&stdout(&out)).unwrap_or_default()
}

async fn wait_status(c: &Cluster, name: &str, want: &str) {
    let r = wait_for(T, &format!("{name} {want}"), || async {
        vm_json(c, 0, name)["status"] == want
    })
    .await;
    if let Err(e) = r {
        let v = vm_json(c, 0, name);
        for n in &c.nodes {
            eprintln!(
                "--- {} log tail:\n{}",
                n.name,
                n.log()
                    .lines()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        panic!("{e}: {} {}", v["status"], v["reason"]);
    }
}

/// PIDs of QEMU processes whose command line names guest `name`.
fn qemu_processes(name: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("qemu-system") && cmd.contains(&format!("guest={name},")) {
            out.push(pid);
        }
    }
    out
}

fn have_qemu() -> bool {
    std::path::Path::new("/usr/bin/qemu-system-x86_64").exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_run_real_qemu_guests_where_placed() -> anyhow::Result<()> {
    if !have_qemu() {
        eprintln!("SKIP: qemu-system-x86_64 is not installed (run scripts/setup.sh)");
        return Ok(());
    }
    let c = Cluster::form(
        3,
        3,
        Opts {
            hypervisor: Hv::QemuEmbed,
            ..Opts::default()
        },
    )
    .await?;
    let pools = tempfile::tempdir()?;
    let path = pools.path().join("local").display().to_string();
    ok(&c.nodes[0].cli(&["pool", "create", "local", "--type", "dir", "--path", &path]));
    // One per host: anti-affinity spreads them.
    for i in 0..3 {
        let name = format!("q{i}");
        ok(&c.nodes[i].cli(&[
            "vm",
            "create",
            &name,
            "--pxe",
            "--disk-size",
            "64MiB",
            "--pool",
            "local",
            "--memory",
            "128MiB",
            "--anti-affinity",
            "spread",
        ]));
    }
    for i in 0..3 {
        wait_status(&c, &format!("q{i}"), "running").await;
    }
    let mut hosts: Vec<String> = (0..3)
        .map(|i| {
            vm_json(&c, 0, &format!("q{i}"))["host"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["host1", "host2", "host3"]);
    for i in 0..3 {
        assert_eq!(
            qemu_processes(&format!("q{i}")).len(),
            1,
            "one QEMU process for q{i}"
        );
    }
    ok(&c.nodes[1].cli(&["vm", "stop", "q0", "--force"]));
    wait_status(&c, "q0", "stopped").await;
    assert!(qemu_processes("q0").is_empty(), "q0's QEMU still runs");
    ok(&c.nodes[2].cli(&["vm", "delete", "q1"]));
    wait_for(T, "q1 removed", || async {
        !c.nodes[0].cli(&["vm", "get", "q1"]).status.success()
    })
    .await?;
    assert!(qemu_processes("q1").is_empty());
    Ok(())
}

/// `qemu:///system` is there only where libvirtd runs (`scripts/setup.sh --libvirtd`).
fn libvirtd_up() -> bool {
    std::process::Command::new("virsh")
        .args(["-c", "qemu:///system", "version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_on_qemu_system_runs_an_empty_disk_vm_and_a_seeded_one() -> anyhow::Result<()> {
    if !have_qemu() || !libvirtd_up() {
        eprintln!("SKIP: qemu:///system is not reachable (run scripts/setup.sh --libvirtd)");
        return Ok(());
    }
    let c = Cluster::form(
        1,
        1,
        Opts {
            hypervisor: Hv::QemuSystem,
            ..Opts::default()
        },
    )
    .await?;
    // libvirtd's QEMU runs as libvirt-qemu: the pool must be reachable for it.
    let pools = tempfile::tempdir()?;
    std::fs::set_permissions(pools.path(), std::fs::Permissions::from_mode(0o755))?;
    let pool_dir = pools.path().join("local");
    let path = pool_dir.display().to_string();
    // Names unique to this run: qemu:///system is shared by the whole machine.
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (plain, seeded) = (format!("qs-plain-{suffix}"), format!("qs-seed-{suffix}"));
    ok(&c.nodes[0].cli(&["pool", "create", "local", "--type", "dir", "--path", &path]));
    ok(&c.nodes[0].cli(&[
        "vm",
        "create",
        &plain,
        "--pxe",
        "--disk-size",
        "64MiB",
        "--pool",
        "local",
        "--memory",
        "128MiB",
    ]));
    ok(&c.nodes[0].cli(&[
        "vm",
        "create",
        &seeded,
        "--pxe",
        "--disk-size",
        "64MiB",
        "--pool",
        "local",
        "--memory",
        "128MiB",
        "--spec",
        "linux-default",
    ]));
    wait_status(&c, &plain, "running").await;
    wait_status(&c, &seeded, "running").await;
    let xml = std::process::Command::new("virsh")
        .args(["-c", "qemu:///system", "dumpxml", &seeded])
        .output()?;
    let xml = String::from_utf8_lossy(&xml.stdout);
    let seed = pool_dir.join(&seeded).join("seed.iso");
    assert!(
        xml.contains(&seed.display().to_string()),
        "seed ISO not attached:\n{xml}"
    );
    let label = std::process::Command::new("isoinfo")
        .args(["-d", "-i", &seed.display().to_string()])
        .output()?;
    assert!(String::from_utf8_lossy(&label.stdout).contains("Volume id: cidata"));
    // The guest agent: the seed fetches it from this host through the user-mode NIC's
    // gateway, the host serves the binary, and the domain has its channel, whose socket the
    // host's daemon reads.
    let user_data = std::process::Command::new("isoinfo")
        .args(["-R", "-i", &seed.display().to_string(), "-x", "/user-data"])
        .output()?;
    let user_data = String::from_utf8_lossy(&user_data.stdout);
    let url = format!(
        "https://10.0.2.2:{}/agent/quantix-agent",
        c.nodes[0].http_port
    );
    assert!(
        user_data.contains(&url),
        "no agent download in:\n{user_data}"
    );
    let served = c.nodes[0].http_get_bytes("/agent/quantix-agent").await?;
    assert_eq!(served, std::fs::read(cluster_tests::bin("quantix-agent"))?);
    // The guest cannot verify the host's certificate; it checks the binary's SHA-256, which
    // the seed carries, before installing it.
    let sum = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&served));
    assert!(
        user_data.contains(&format!(
            "echo '{sum}  /usr/local/bin/quantix-agent.download' | sha256sum -c -"
        )),
        "no checksum check in:\n{user_data}"
    );
    assert!(
        xml.contains("org.quantix.agent.0"),
        "no guest agent channel:\n{xml}"
    );
    let socket = quantix::hypervisor::domain_xml::guest_agent_socket(&xml)
        .expect("the live XML names the channel's socket");
    assert!(socket.exists(), "{} does not exist", socket.display());
    for name in [&plain, &seeded] {
        ok(&c.nodes[0].cli(&["vm", "stop", name, "--force"]));
        wait_status(&c, name, "stopped").await;
        ok(&c.nodes[0].cli(&["vm", "delete", name]));
    }
    wait_for(T, "both removed from libvirt", || async {
        let out = std::process::Command::new("virsh")
            .args(["-c", "qemu:///system", "list", "--all", "--name"])
            .output();
        out.is_ok_and(|o| {
            let s = String::from_utf8_lossy(&o.stdout);
            !s.contains(&plain) && !s.contains(&seeded)
        })
    })
    .await?;
    // The files go right after the domain (same step), and the records after that.
    wait_for(T, "both VMs' files removed", || async {
        !pool_dir.join(&plain).exists() && !pool_dir.join(&seeded).exists()
    })
    .await?;
    Ok(())
}
