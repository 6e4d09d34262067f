//! Benchmark: schedule and commit 10,000 VMs onto 1,000 hosts (DESIGN.md target: ≤ 2 s).
//!
//! A real single-host Quantix (openraft, redb log and state files with fsync) holds 1,000
//! synthetic host records with their inventory and pool reports, and 10,000 pending VMs. Then
//! one scheduling round is timed: build the plan from the state, `place_batch`, propose every
//! `Place` through Raft, and wait until all are applied (each re-validated in `apply`). The
//! synthetic hosts are not Raft members, so the round is told they are all online.
//!
//! Run: `cargo bench --bench schedule` (env BENCH_HOSTS, BENCH_VMS to change the sizes).

use std::time::Instant;

use futures::StreamExt;
use quantix::cluster::{now_ms, Host};
use quantix::model::pool::{PoolFields, PoolSpec, PoolType};
use quantix::model::vm::{BootMedia, Disk, Observed, Overrides, Power, Status, Vm};
use quantix::model::{FolderId, HostRecord};
use quantix::state::hosts::HostCommand;
use quantix::state::pools::PoolCommand;
use quantix::state::vms::VmCommand;
use quantix::state::{Command, Outcome};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn write_all(host: &Host, cmds: Vec<Command>) -> anyhow::Result<()> {
    let mut s = futures::stream::iter(cmds)
        .map(|c| host.write(c, None))
        .buffer_unordered(2048);
    while let Some(r) = s.next().await {
        if let Outcome::Rejected(r) = r? {
            anyhow::bail!("setup write refused: {}", r.message);
        }
    }
    Ok(())
}

fn vm(i: usize) -> Vm {
    Vm {
        id: 0,
        name: format!("vm{i:06}"),
        folder: FolderId::ROOT,
        cpus: (i % 8) as u32 + 1,
        memory_mib: ((i % 16) as u64 + 1) * 1024,
        disks: vec![Disk {
            size_mib: 10_240,
            pool: if i % 3 == 0 {
                "local".into()
            } else {
                format!("nfs-{}", i % 4)
            },
            image: None,
        }],
        boot: BootMedia::Pxe,
        nics: vec![],
        spec: None,
        overrides: Overrides::default(),
        host_pin: None,
        anti_affinity: (i % 10 == 0).then(|| format!("aa-{}", i / 10 % 100)),
        affinity: (i % 50 == 7).then(|| format!("af-{}", i / 50 % 40)),
        scheduled_at: None,
        power: Power::Running,
        force_stop: false,
        reboot_seq: 0,
        placement: None,
        observed: Observed {
            status: Status::Pending,
            reason: String::new(),
            host: None,
            at: 0,
        },
        generation: 0,
        created_at: 0,
        updated_at: 0,
    }
}

async fn run() -> anyhow::Result<()> {
    let hosts = env("BENCH_HOSTS", 1_000);
    let vms = env("BENCH_VMS", 10_000);
    let dir = tempfile::tempdir()?;
    let cfg_path = dir.path().join("quantixd.toml");
    let text = format!(
        "name = \"bench\"\ndata_dir = \"{}\"\ngrpc_addr = \"127.0.0.1:7999\"\n",
        dir.path().join("data").display()
    );
    let cfg = quantix::config::Config::parse(&cfg_path, &text)?;
    let host = Host::start(&cfg).await?;
    host.bootstrap(1).await?;

    let setup = Instant::now();
    let mut cmds = Vec::new();
    for i in 0..hosts {
        let secret = format!("{i:064x}");
        cmds.push(Command::CreateJoinToken {
            token_id: format!("t{i}"),
            secret_sha256: secret.clone(),
            expires_at: now_ms() + 3_600_000,
        });
    }
    write_all(&host, cmds).await?;
    let mut cmds = Vec::new();
    for i in 0..hosts {
        cmds.push(Command::ConsumeJoinToken {
            token_id: format!("t{i}"),
            secret_sha256: format!("{i:064x}"),
            host: HostRecord {
                id: 10_000 + i as u64,
                name: format!("h{i:05}"),
                address: format!("10.0.{}.{}:7443", i / 250, i % 250),
                joined_at: 0,
            },
        });
    }
    write_all(&host, cmds).await?;
    let mut cmds = Vec::new();
    let mut pools = vec![("local".to_string(), false)];
    pools.extend((0..4).map(|n| (format!("nfs-{n}"), true)));
    for (name, shared) in &pools {
        let spec = PoolSpec::new(
            name,
            PoolType::Dir,
            PoolFields {
                path: format!("/pools/{name}"),
                shared: *shared,
                ..PoolFields::default()
            },
        )?;
        cmds.push(Command::Pool(PoolCommand::CreatePool(spec)));
    }
    write_all(&host, cmds).await?;
    let mut cmds = Vec::new();
    for i in 0..hosts {
        let name = format!("h{i:05}");
        cmds.push(Command::Host(HostCommand::ReportInventory {
            host: name.clone(),
            cpus: [32, 64, 96][i % 3],
            memory_mib: [128, 256, 512][i % 3] * 1024,
            free_memory_mib: None,
        }));
        for pool in ["local".to_string(), format!("nfs-{}", i % 4)] {
            cmds.push(Command::Pool(PoolCommand::Observe {
                pool,
                host: name.clone(),
                reachable: true,
                reason: String::new(),
                capacity_mib: 1 << 22,
                free_mib: 1 << 21,
            }));
        }
    }
    write_all(&host, cmds).await?;
    let cmds = (0..vms)
        .map(|i| {
            Command::Vm(VmCommand::Create {
                vm: Box::new(vm(i)),
                folder: "/".into(),
            })
        })
        .collect();
    write_all(&host, cmds).await?;
    println!(
        "setup: {hosts} hosts, {vms} pending VMs through Raft in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let start = Instant::now();
    let report = quantix::scheduler::leader::round(&host, |_| true).await?;
    let took = start.elapsed();
    println!(
        "schedule+commit: {} of {} VMs placed on {hosts} hosts in {:.3} s ({:.0} placements/s; {} refused at apply, {} explained)",
        report.placed,
        report.due,
        took.as_secs_f64(),
        report.placed as f64 / took.as_secs_f64(),
        report.refused,
        report.explained,
    );
    println!(
        "  plan from state {:.0} ms, place_batch {:.0} ms, propose and commit {:.0} ms",
        report.plan_time.as_secs_f64() * 1e3,
        report.place_time.as_secs_f64() * 1e3,
        report.commit_time.as_secs_f64() * 1e3
    );
    let again = quantix::scheduler::leader::round(&host, |_| true).await?;
    println!(
        "second round: {} due, {} placed (nothing is placed twice)",
        again.due, again.placed
    );
    host.shutdown().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}
