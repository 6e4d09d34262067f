//! `quantix host ...`: list and show hosts with their inventory, and maintenance on/off.

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::output::{self, Format};
use super::{connect, request_id, CliError, Consistency};
use crate::proto::v1::host_service_client::HostServiceClient;
use crate::proto::v1::*;

#[derive(Subcommand)]
pub enum HostCmd {
    /// List the hosts: role, online, maintenance, capacity and allocation.
    List {
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
    /// Show one host.
    Get {
        name: String,
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
    /// Put a host into maintenance (no new VMs are placed on it) or take it out.
    Maintenance { name: String, state: OnOff },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

fn host_json(h: &Host) -> serde_json::Value {
    json!({
        "name": h.name,
        "id": h.id,
        "address": h.address,
        "role": h.role,
        "online": h.online,
        "leader": h.leader,
        "maintenance": h.maintenance,
        "cpus": h.cpus,
        "memory_mib": h.memory_mib,
        "allocated_cpus": h.allocated_cpus,
        "allocated_memory_mib": h.allocated_memory_mib,
        "free_memory_mib": h.free_memory_mib,
        "pools": h.pools,
        "joined_at": output::time(h.joined_at_ms),
        "reported_at": if h.reported_at_ms == 0 { serde_json::Value::Null } else { output::time(h.reported_at_ms).into() },
    })
}

const HEADERS: [&str; 10] = [
    "name",
    "role",
    "online",
    "maintenance",
    "cpus",
    "memory",
    "free",
    "pools",
    "address",
    "joined",
];

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

fn row(h: &Host) -> Vec<String> {
    let role = if h.leader {
        format!("{} (leader)", h.role)
    } else {
        h.role.clone()
    };
    vec![
        h.name.clone(),
        role,
        yes_no(h.online),
        yes_no(h.maintenance),
        format!("{}/{}", h.allocated_cpus, h.cpus),
        format!("{}/{} MiB", h.allocated_memory_mib, h.memory_mib),
        h.free_memory_mib
            .map_or_else(|| "-".into(), |m| format!("{m} MiB")),
        if h.pools.is_empty() {
            "-".into()
        } else {
            h.pools.join(",")
        },
        h.address.clone(),
        output::time(h.joined_at_ms),
    ]
}

pub async fn run(endpoint: &str, out: Format, cmd: HostCmd) -> Result<(), CliError> {
    let mut c = HostServiceClient::new(connect(endpoint).await?);
    match cmd {
        HostCmd::List { consistency } => {
            let r = c
                .list_hosts(ListHostsRequest {
                    consistency: consistency.proto(),
                })
                .await?
                .into_inner();
            output::list(out, "hosts", &r.hosts, host_json, &HEADERS, row)
        }
        HostCmd::Get { name, consistency } => {
            let h = c
                .get_host(GetHostRequest {
                    name,
                    consistency: consistency.proto(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&host_json(&h)),
                Format::Table => output::table(&HEADERS, vec![row(&h)]),
            }
        }
        HostCmd::Maintenance { name, state } => {
            let h = c
                .set_maintenance(SetMaintenanceRequest {
                    name,
                    on: matches!(state, OnOff::On),
                    request_id: request_id(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&host_json(&h)),
                Format::Table => println!(
                    "host {} is {} maintenance",
                    h.name,
                    if h.maintenance { "in" } else { "out of" }
                ),
            }
        }
    }
    Ok(())
}
