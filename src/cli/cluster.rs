//! `quantix cluster ...`: membership and status, and the placement policy (`policy`).

mod policy;

use clap::Subcommand;
use serde_json::json;

use super::output::{self, Format};
use super::{connect, request_id, CliError, Consistency};
use crate::proto::v1::cluster_service_client::ClusterServiceClient;
use crate::proto::v1::*;

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Make the host at --endpoint a new one-member cluster.
    Bootstrap {
        /// Most voters the cluster keeps (1, 3, 5 or 7); further hosts join as non-voters.
        #[arg(long, default_value_t = 3)]
        max_voters: u32,
    },
    /// Print a one-time join token (valid on every member).
    Token {
        /// Lifetime, e.g. 30m, 1h, 2h30m.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
    },
    /// Make the host at --endpoint join the cluster the token names.
    Join { token: String },
    /// Members, roles, leader, term and indexes.
    Status {
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
    /// Remove a member; a non-voter is promoted if a voter is removed.
    Remove { name: String },
    /// API credentials: add-client, add-token, credentials, revoke.
    #[command(flatten)]
    Access(super::access::AccessCmd),
    /// Show the placement policy (overcommit, spread or pack, score weights); `set` changes it.
    #[command(args_conflicts_with_subcommands = true)]
    Policy {
        #[command(subcommand)]
        cmd: Option<policy::PolicyCmd>,
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
}

pub async fn run(endpoint: &str, out: Format, cmd: ClusterCmd) -> Result<(), CliError> {
    let mut c = ClusterServiceClient::new(connect(endpoint).await?);
    match cmd {
        ClusterCmd::Bootstrap { max_voters } => {
            let r = c
                .bootstrap(BootstrapRequest { max_voters })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&json!({"cluster_id": r.cluster_id, "host": r.host})),
                Format::Table => {
                    println!("bootstrapped cluster {} on host {}", r.cluster_id, r.host)
                }
            }
        }
        ClusterCmd::Token { ttl } => {
            let r = c
                .create_join_token(CreateJoinTokenRequest {
                    ttl_seconds: ttl.as_secs().max(1),
                    request_id: request_id(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(
                    &json!({"token": r.token, "expires_at": output::time(r.expires_at_ms)}),
                ),
                Format::Table => println!("{}", r.token),
            }
        }
        ClusterCmd::Join { token } => {
            let r = c.join(JoinRequest { token }).await?.into_inner();
            match out {
                Format::Json => output::json(
                    &json!({"cluster_id": r.cluster_id, "host": r.host, "role": r.role}),
                ),
                Format::Table => println!(
                    "host {} joined cluster {} as {}",
                    r.host, r.cluster_id, r.role
                ),
            }
        }
        ClusterCmd::Status { consistency } => {
            let s = c
                .get_status(GetStatusRequest {
                    consistency: consistency.proto(),
                })
                .await?
                .into_inner();
            print_status(out, &s);
        }
        ClusterCmd::Remove { name } => {
            let r = c
                .remove_member(RemoveMemberRequest {
                    name: name.clone(),
                    request_id: request_id(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&json!({"removed": name, "promoted": r.promoted})),
                Format::Table if r.promoted.is_empty() => println!("removed {name}"),
                Format::Table => println!(
                    "removed {name}; promoted {} to voter",
                    r.promoted.join(", ")
                ),
            }
        }
        // Dispatched to `access::run` by `cli::run`.
        ClusterCmd::Access(_) => {}
        ClusterCmd::Policy { cmd, consistency } => {
            policy::run(&mut c, out, cmd, consistency.proto()).await?
        }
    }
    Ok(())
}

fn print_status(out: Format, s: &ClusterStatus) {
    match out {
        Format::Json => output::json(&json!({
            "cluster_id": s.cluster_id,
            "leader": if s.leader.is_empty() { serde_json::Value::Null } else { json!(s.leader) },
            "term": s.term,
            "commit_index": s.commit_index,
            "applied_index": s.applied_index,
            "snapshot_index": s.snapshot_index,
            "purged_index": s.purged_index,
            "max_voters": s.max_voters,
            "answered_by": s.answered_by,
            "members": s.members.iter().map(|m| json!({
                "name": m.name, "id": m.id, "address": m.address, "role": m.role,
                "online": m.online, "leader": m.leader, "matched_index": m.matched_index,
            })).collect::<Vec<_>>(),
        })),
        Format::Table => {
            println!(
                "cluster {}  leader {}  term {}  commit {}  applied {}",
                s.cluster_id,
                if s.leader.is_empty() {
                    "(none)"
                } else {
                    &s.leader
                },
                s.term,
                s.commit_index,
                s.applied_index
            );
            let rows = s
                .members
                .iter()
                .map(|m| {
                    vec![
                        m.name.clone(),
                        m.address.clone(),
                        if m.leader {
                            format!("{} (leader)", m.role)
                        } else {
                            m.role.clone()
                        },
                        if m.online {
                            "online".into()
                        } else {
                            "offline".into()
                        },
                        m.matched_index.to_string(),
                    ]
                })
                .collect();
            output::table(&["name", "address", "role", "state", "matched"], rows);
        }
    }
}
