//! `quantix pool ...`: create, list, get and delete storage pools, and limit them to hosts.

use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};

use super::output::{self, Format};
use super::{connect, request_id, CliError, Consistency};
use crate::model::size::format_mib;
use crate::proto::v1::pool_service_client::PoolServiceClient;
use crate::proto::v1::*;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PoolTypeArg {
    /// A directory on each host (or on storage all hosts share, with --shared).
    Dir,
    /// An NFS export every host mounts.
    Nfs,
}

#[derive(Subcommand)]
pub enum PoolCmd {
    /// Create a pool: `--type dir --path P [--shared]` or
    /// `--type nfs --server S --export /srv/x [--mount-point M]`.
    Create {
        name: String,
        #[arg(long = "type", value_enum)]
        pool_type: PoolTypeArg,
        /// dir: the directory (absolute).
        #[arg(long)]
        path: Option<String>,
        /// dir: the directory is on storage every host shares.
        #[arg(long)]
        shared: bool,
        /// nfs: server host name or IP address.
        #[arg(long)]
        server: Option<String>,
        /// nfs: the exported path (absolute).
        #[arg(long)]
        export: Option<String>,
        /// nfs: where hosts mount it (default /var/lib/quantix/mnt/NAME).
        #[arg(long)]
        mount_point: Option<String>,
        /// Only these member hosts may use the pool (comma-separated; default: every host).
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<String>,
    },
    /// List pools and which hosts reach them.
    List {
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
    /// Show one pool with each host's report.
    Get {
        name: String,
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
    /// Delete a pool no image or VM uses.
    Delete { name: String },
    /// Limit a pool to some member hosts (`h1,h2`), or let every host use it (`--all`).
    /// Import the .iso, .qcow2 and .img files at the top level of the pool's directory (as the
    /// host at --endpoint sees it) as images. The files stay where they are.
    Scan { name: String },
    SetHosts {
        name: String,
        /// The hosts, comma-separated.
        #[arg(
            value_delimiter = ',',
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        hosts: Vec<String>,
        /// Lift the limit: every host may use the pool.
        #[arg(long)]
        all: bool,
    },
}

fn type_name(p: &Pool) -> &'static str {
    match PoolType::try_from(p.r#type) {
        Ok(PoolType::Dir) => "dir",
        Ok(PoolType::Nfs) => "nfs",
        _ => "unknown",
    }
}

/// Where the pool's storage comes from, in one column.
fn source(p: &Pool) -> String {
    match PoolType::try_from(p.r#type) {
        Ok(PoolType::Nfs) => format!("{}:{} on {}", p.server, p.export, p.mount_point),
        _ => p.path.clone(),
    }
}

fn pool_json(p: &Pool) -> Value {
    let mut v = json!({
        "name": p.name,
        "type": type_name(p),
        "shared": p.shared,
        "created_at": output::time(p.created_at_ms),
        "allowed_hosts": p.allowed_hosts,
        "reachable_from": p.reachable_from,
        "hosts": p.hosts.iter().map(|h| json!({
            "host": h.host,
            "reachable": h.reachable,
            "reason": h.reason,
            "capacity_mib": h.capacity_mib,
            "free_mib": h.free_mib,
            "at": output::time(h.at_ms),
        })).collect::<Vec<_>>(),
    });
    if PoolType::try_from(p.r#type) == Ok(PoolType::Nfs) {
        v["server"] = json!(p.server);
        v["export"] = json!(p.export);
        v["mount_point"] = json!(p.mount_point);
    } else {
        v["path"] = json!(p.path);
    }
    v
}

fn reachable(p: &Pool) -> String {
    if p.reachable_from.is_empty() {
        "-".into()
    } else {
        p.reachable_from.join(",")
    }
}

/// The hosts that may use the pool, in one column.
fn allowed(p: &Pool) -> String {
    if p.allowed_hosts.is_empty() {
        "all".into()
    } else {
        p.allowed_hosts.join(",")
    }
}

fn pool_row(p: &Pool) -> Vec<String> {
    vec![
        p.name.clone(),
        type_name(p).into(),
        source(p),
        if p.shared { "yes" } else { "no" }.into(),
        allowed(p),
        reachable(p),
    ]
}

const HEADERS: [&str; 6] = [
    "name",
    "type",
    "source",
    "shared",
    "hosts",
    "reachable from",
];

pub async fn run(endpoint: &str, out: Format, cmd: PoolCmd) -> Result<(), CliError> {
    let mut c = PoolServiceClient::new(connect(endpoint).await?);
    match cmd {
        PoolCmd::Create {
            name,
            pool_type,
            path,
            shared,
            server,
            export,
            mount_point,
            hosts,
        } => {
            let p = c
                .create_pool(CreatePoolRequest {
                    name,
                    r#type: match pool_type {
                        PoolTypeArg::Dir => PoolType::Dir,
                        PoolTypeArg::Nfs => PoolType::Nfs,
                    } as i32,
                    path: path.unwrap_or_default(),
                    shared,
                    server: server.unwrap_or_default(),
                    export: export.unwrap_or_default(),
                    mount_point: mount_point.unwrap_or_default(),
                    allowed_hosts: hosts,
                    request_id: request_id(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&pool_json(&p)),
                Format::Table => {
                    let limit = if p.allowed_hosts.is_empty() {
                        String::new()
                    } else {
                        format!(", limited to {}", allowed(&p))
                    };
                    println!(
                        "created {} pool {} ({}){limit}",
                        type_name(&p),
                        p.name,
                        source(&p)
                    )
                }
            }
        }
        PoolCmd::List { consistency } => {
            let r = c
                .list_pools(ListPoolsRequest {
                    consistency: consistency.proto(),
                })
                .await?
                .into_inner();
            output::list(out, "pools", &r.pools, pool_json, &HEADERS, pool_row)
        }
        PoolCmd::Get { name, consistency } => {
            let p = c
                .get_pool(GetPoolRequest {
                    name,
                    consistency: consistency.proto(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&pool_json(&p)),
                Format::Table => {
                    output::table(&HEADERS, vec![pool_row(&p)]);
                    if !p.hosts.is_empty() {
                        println!();
                        output::table(
                            &[
                                "host",
                                "reachable",
                                "capacity",
                                "free",
                                "reported",
                                "reason",
                            ],
                            p.hosts
                                .iter()
                                .map(|h| {
                                    vec![
                                        h.host.clone(),
                                        if h.reachable { "yes" } else { "no" }.into(),
                                        format_mib(h.capacity_mib),
                                        format_mib(h.free_mib),
                                        output::time(h.at_ms),
                                        h.reason.clone(),
                                    ]
                                })
                                .collect(),
                        );
                    }
                }
            }
        }
        PoolCmd::Delete { name } => {
            c.delete_pool(DeletePoolRequest {
                name: name.clone(),
                request_id: request_id(),
            })
            .await?;
            match out {
                Format::Json => output::json(&json!({"deleted": name})),
                Format::Table => println!("deleted pool {name}"),
            }
        }
        PoolCmd::Scan { name } => {
            let r = c
                .scan_pool(ScanPoolRequest {
                    name: name.clone(),
                    request_id: request_id(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&json!({
                    "pool": name,
                    "host": r.host,
                    "files": r.files.iter().map(|f| json!({
                        "file": f.file,
                        "image": f.image,
                        "imported": f.imported,
                        "reason": (!f.reason.is_empty()).then_some(&f.reason),
                    })).collect::<Vec<_>>(),
                })),
                Format::Table => {
                    let imported = r.files.iter().filter(|f| f.imported).count();
                    println!(
                        "scanned pool {name} on host {}: {imported} of {} files imported",
                        r.host,
                        r.files.len()
                    );
                    if !r.files.is_empty() {
                        output::table(
                            &["file", "image", "result"],
                            r.files
                                .iter()
                                .map(|f| {
                                    vec![
                                        f.file.clone(),
                                        if f.image.is_empty() {
                                            "-".into()
                                        } else {
                                            f.image.clone()
                                        },
                                        if f.imported {
                                            "imported".into()
                                        } else {
                                            format!("skipped: {}", f.reason)
                                        },
                                    ]
                                })
                                .collect(),
                        );
                    }
                }
            }
        }
        PoolCmd::SetHosts { name, hosts, all } => {
            let p = c
                .set_pool_hosts(SetPoolHostsRequest {
                    name,
                    allowed_hosts: if all { Vec::new() } else { hosts },
                    request_id: request_id(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&pool_json(&p)),
                Format::Table => println!("pool {} hosts: {}", p.name, allowed(&p)),
            }
        }
    }
    Ok(())
}
