//! `quantix vm ...`

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{self, Format};
use super::{connect, request_id, CliError, Consistency};
use crate::model::size::{format_mib, parse_mib};
use crate::proto::v1::vm_service_client::VmServiceClient;
use crate::proto::v1::*;

#[derive(Subcommand)]
pub enum VmCmd {
    /// Create a VM; it is placed by the scheduler (or on --host) and started unless --stopped.
    Create(Box<CreateArgs>),
    /// List VMs (all pages unless --page-size is given).
    List {
        #[arg(long)]
        folder: Option<String>,
        #[arg(long)]
        host: Option<String>,
        /// pending, creating, running, stopped, paused, failed or deleting.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        page_size: Option<u32>,
        #[arg(long)]
        page_token: Option<String>,
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
    /// Show one VM: desired state, observed status and the reason for anything not done.
    Get {
        name: String,
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
    /// Change CPUs or memory (VM stopped), rename it (stopped) or move it to another folder.
    Update {
        name: String,
        #[arg(long)]
        cpus: Option<u32>,
        /// MiB, or with a unit (2GiB).
        #[arg(long)]
        memory: Option<String>,
        #[arg(long)]
        rename: Option<String>,
        #[arg(long)]
        folder: Option<String>,
    },
    Start {
        name: String,
    },
    /// Ask the guest to shut down (or pull the plug with --force).
    Stop {
        name: String,
        #[arg(long)]
        force: bool,
    },
    Reboot {
        name: String,
    },
    Pause {
        name: String,
    },
    Resume {
        name: String,
    },
    Delete {
        name: String,
    },
}

#[derive(Args)]
pub struct CreateArgs {
    name: String,
    #[arg(long, default_value_t = 1)]
    cpus: u32,
    /// MiB, or with a unit (2GiB).
    #[arg(long, default_value = "1024")]
    memory: String,
    #[arg(long, default_value = "/")]
    folder: String,
    /// Boot a cloud image (the first disk is an overlay on it).
    #[arg(long, conflicts_with_all = ["iso", "pxe"])]
    image: Option<String>,
    /// Boot an ISO from a cdrom.
    #[arg(long, conflicts_with = "pxe")]
    iso: Option<String>,
    /// Boot from the network.
    #[arg(long)]
    pxe: bool,
    /// Storage pool for the disk.
    #[arg(long)]
    pool: Option<String>,
    /// Size of the first disk (MiB, or with a unit). 0 = no disk (ISO or PXE only).
    #[arg(long, default_value = "10GiB")]
    disk_size: String,
    /// More empty disks, as SIZE (on --pool) or SIZE@POOL.
    #[arg(long = "disk")]
    disks: Vec<String>,
    /// NICs by network: `user`, or a libvirt network or bridge. Default: one `user` NIC.
    #[arg(long = "nic")]
    nics: Vec<String>,
    #[arg(long)]
    spec: Option<String>,
    #[arg(long)]
    hostname: Option<String>,
    #[arg(long)]
    timezone: Option<String>,
    #[arg(long = "ssh-key")]
    ssh_keys: Vec<String>,
    /// Extra cloud-init user-data (a file with @PATH).
    #[arg(long)]
    user_data: Option<String>,
    /// Place only on this host.
    #[arg(long)]
    host: Option<String>,
    /// Run on a different host from every other VM of this group.
    #[arg(long)]
    anti_affinity: Option<String>,
    /// Run on the same host as every other VM of this group.
    #[arg(long)]
    affinity: Option<String>,
    /// Create at this time (RFC 3339, e.g. 2026-12-01T03:00:00Z).
    #[arg(long)]
    at: Option<String>,
    /// Create it stopped.
    #[arg(long)]
    stopped: bool,
}

fn size(field: &'static str, v: &str) -> Result<u64, CliError> {
    parse_mib(field, v).map_err(|e| CliError::Usage(e.to_string()))
}

fn text_or_file(v: String) -> Result<String, CliError> {
    match v.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("cannot read {path}: {e}"))),
        None => Ok(v),
    }
}

fn create_request(a: CreateArgs) -> Result<CreateVmRequest, CliError> {
    let boot = match (&a.image, &a.iso, a.pxe) {
        (Some(i), _, _) => boot_media::Media::CloudImage(i.clone()),
        (_, Some(i), _) => boot_media::Media::Iso(i.clone()),
        (_, _, true) => boot_media::Media::Pxe(true),
        _ => {
            return Err(CliError::Usage(
                "choose what the VM boots: --image NAME, --iso NAME or --pxe".into(),
            ))
        }
    };
    let pool = a.pool.clone().unwrap_or_default();
    let mut disks = Vec::new();
    let first = size("--disk-size", &a.disk_size)?;
    if first > 0 {
        disks.push(Disk {
            size_mib: first,
            pool: pool.clone(),
            image: a.image.clone().unwrap_or_default(),
        });
    }
    for d in &a.disks {
        let (s, p) = d.split_once('@').unwrap_or((d, &pool));
        disks.push(Disk {
            size_mib: size("--disk", s)?,
            pool: p.to_string(),
            image: String::new(),
        });
    }
    let nics = if a.nics.is_empty() {
        vec!["user".to_string()]
    } else {
        a.nics.clone()
    };
    let scheduled_at_ms = match &a.at {
        None => 0,
        Some(t) => {
            let when = humantime::parse_rfc3339_weak(t).map_err(|e| {
                CliError::Usage(format!(
                    "--at '{t}' is not an RFC 3339 time like 2026-12-01T03:00:00Z: {e}"
                ))
            })?;
            when.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        }
    };
    let ssh_keys = a
        .ssh_keys
        .into_iter()
        .map(text_or_file)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CreateVmRequest {
        name: a.name,
        folder: a.folder,
        cpus: a.cpus,
        memory_mib: size("--memory", &a.memory)?,
        disks,
        boot: Some(BootMedia { media: Some(boot) }),
        nics: nics
            .into_iter()
            .map(|network| Nic {
                network,
                mac: String::new(),
            })
            .collect(),
        spec: a.spec.unwrap_or_default(),
        overrides: Some(Overrides {
            hostname: a.hostname.unwrap_or_default(),
            timezone: a.timezone.unwrap_or_default(),
            ssh_keys,
            user_data: a
                .user_data
                .map(text_or_file)
                .transpose()?
                .unwrap_or_default(),
        }),
        host_pin: a.host.unwrap_or_default(),
        anti_affinity: a.anti_affinity.unwrap_or_default(),
        affinity: a.affinity.unwrap_or_default(),
        scheduled_at_ms,
        stopped: a.stopped,
        request_id: request_id(),
    })
}

fn boot_text(b: &Option<BootMedia>) -> String {
    match b.as_ref().and_then(|b| b.media.as_ref()) {
        Some(boot_media::Media::CloudImage(i)) => format!("image {i}"),
        Some(boot_media::Media::Iso(i)) => format!("iso {i}"),
        Some(boot_media::Media::Pxe(_)) => "pxe".into(),
        Some(boot_media::Media::Foreign(_)) => "as defined outside Quantix".into(),
        None => String::new(),
    }
}

fn vm_json(v: &Vm) -> serde_json::Value {
    let ov = v.overrides.clone().unwrap_or_default();
    json!({
        "name": v.name, "id": v.id, "folder": v.folder, "cpus": v.cpus, "memory_mib": v.memory_mib,
        "disks": v.disks.iter().map(|d| json!({"size_mib": d.size_mib, "pool": d.pool, "image": d.image})).collect::<Vec<_>>(),
        "boot": boot_text(&v.boot),
        "nics": v.nics.iter().map(|n| json!({"network": n.network, "mac": n.mac})).collect::<Vec<_>>(),
        "spec": v.spec, "overrides": {"hostname": ov.hostname, "timezone": ov.timezone, "ssh_keys": ov.ssh_keys},
                "host_pin": v.host_pin, "anti_affinity": v.anti_affinity, "affinity": v.affinity,
        "scheduled_at": (v.scheduled_at_ms > 0).then(|| output::time(v.scheduled_at_ms)),
        "host": (!v.host.is_empty()).then(|| v.host.clone()),
        "power": v.power, "status": v.status, "reason": v.reason, "generation": v.generation,
        "created_at": output::time(v.created_at_ms), "updated_at": output::time(v.updated_at_ms),
        "guest": v.guest.as_ref().map(|g| json!({
            "hostname": g.hostname, "addresses": g.addresses, "agent": g.agent,
            "reported_at": output::time(g.reported_at_ms),
        })),
    })
}

fn print_vm(out: Format, v: &Vm) {
    match out {
        Format::Json => output::json(&vm_json(v)),
        Format::Table => {
            let disks: Vec<String> = v
                .disks
                .iter()
                .map(|d| {
                    format!(
                        "{} on {}{}",
                        format_mib(d.size_mib),
                        d.pool,
                        if d.image.is_empty() {
                            String::new()
                        } else {
                            format!(" (overlay on {})", d.image)
                        }
                    )
                })
                .collect();
            let rows = vec![
                vec!["name".into(), v.name.clone()],
                vec!["folder".into(), v.folder.clone()],
                vec!["cpus".into(), v.cpus.to_string()],
                vec!["memory".into(), format_mib(v.memory_mib)],
                vec!["boot".into(), boot_text(&v.boot)],
                vec!["disks".into(), disks.join(", ")],
                vec!["spec".into(), v.spec.clone()],
                vec!["power (desired)".into(), v.power.clone()],
                vec!["status (observed)".into(), v.status.clone()],
                vec!["reason".into(), v.reason.clone()],
                vec!["host".into(), v.host.clone()],
            ];
            let mut rows = rows;
            if let Some(g) = &v.guest {
                rows.push(vec!["guest hostname".into(), g.hostname.clone()]);
                rows.push(vec!["guest addresses".into(), g.addresses.join(", ")]);
                rows.push(vec!["guest agent".into(), g.agent.clone()]);
            }
            output::table(&["field", "value"], rows);
        }
    }
}

pub async fn run(endpoint: &str, out: Format, cmd: VmCmd) -> Result<(), CliError> {
    let mut c = VmServiceClient::new(connect(endpoint).await?);
    let power = |name: String| VmPowerRequest {
        name,
        request_id: request_id(),
    };
    let vm = match cmd {
        VmCmd::Create(a) => c.create_vm(create_request(*a)?).await?.into_inner(),
        VmCmd::Get { name, consistency } => c
            .get_vm(GetVmRequest {
                name,
                consistency: consistency.proto(),
            })
            .await?
            .into_inner(),
        VmCmd::List {
            folder,
            host,
            status,
            page_size,
            page_token,
            consistency,
        } => {
            let mut req = ListVmsRequest {
                folder: folder.unwrap_or_default(),
                host: host.unwrap_or_default(),
                status: status.unwrap_or_default(),
                page_size: page_size.unwrap_or(1000),
                page_token: page_token.unwrap_or_default(),
                consistency: consistency.proto(),
            };
            let mut all = Vec::new();
            let next = loop {
                let resp = c.list_vms(req.clone()).await?.into_inner();
                all.extend(resp.vms);
                if resp.next_page_token.is_empty() || page_size.is_some() {
                    break resp.next_page_token;
                }
                req.page_token = resp.next_page_token;
            };
            match out {
                Format::Json => output::json(&json!({
                    "vms": all.iter().map(vm_json).collect::<Vec<_>>(),
                    "next_page_token": (!next.is_empty()).then_some(next),
                })),
                Format::Table => output::table(
                    &[
                        "name", "folder", "cpus", "memory", "power", "status", "host", "reason",
                    ],
                    all.iter()
                        .map(|v| {
                            vec![
                                v.name.clone(),
                                v.folder.clone(),
                                v.cpus.to_string(),
                                format_mib(v.memory_mib),
                                v.power.clone(),
                                v.status.clone(),
                                v.host.clone(),
                                v.reason.clone(),
                            ]
                        })
                        .collect(),
                ),
            }
            return Ok(());
        }
        VmCmd::Update {
            name,
            cpus,
            memory,
            rename,
            folder,
        } => {
            let memory_mib = memory
                .map(|m| size("--memory", &m))
                .transpose()?
                .unwrap_or(0);
            let req = UpdateVmRequest {
                name,
                cpus: cpus.unwrap_or(0),
                memory_mib,
                new_name: rename.unwrap_or_default(),
                folder: folder.unwrap_or_default(),
                request_id: request_id(),
            };
            c.update_vm(req).await?.into_inner()
        }
        VmCmd::Start { name } => c.start_vm(power(name)).await?.into_inner(),
        VmCmd::Stop { name, force } => c
            .stop_vm(StopVmRequest {
                name,
                force,
                request_id: request_id(),
            })
            .await?
            .into_inner(),
        VmCmd::Reboot { name } => c.reboot_vm(power(name)).await?.into_inner(),
        VmCmd::Pause { name } => c.pause_vm(power(name)).await?.into_inner(),
        VmCmd::Resume { name } => c.resume_vm(power(name)).await?.into_inner(),
        VmCmd::Delete { name } => {
            let r = c
                .delete_vm(DeleteVmRequest {
                    name: name.clone(),
                    request_id: request_id(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&json!({"deleted": name, "removed": r.removed})),
                Format::Table if r.removed => println!("deleted vm {name}"),
                Format::Table => println!("deleting vm {name}: its host is removing it"),
            }
            return Ok(());
        }
    };
    print_vm(out, &vm);
    Ok(())
}
