//! Pool commands (`PoolCommand`), their apply, and pools queries. Pools are stored in
//! `Table::Pools` keyed by name, so the name is unique by construction.
//! Invariants kept here: a pool is not deleted while an image or a VM refers to it (scans in
//! `state::refs`); observations come only from member hosts and are kept per host; the hosts a
//! pool is limited to are members when the limit is set, and an observation from a host outside
//! the limit is stored as unreachable (with the limit as its reason), so nothing that reads
//! observations can place work there. `cluster::remove_host` drops a removed host from both.
//! May use: `model`, `state::{kv, tables, codec, refs}`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::codec::decode;
use super::command::{Applied, Outcome, RejectKind};
use super::kv::{Kv, KvError, KvRead, Table};
use super::refs::{self, Ref};
use super::tables;
use crate::model::pool::{validate_hosts, Pool, PoolObservation, PoolSpec};
use crate::model::UnixMillis;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolCommand {
    CreatePool(PoolSpec),
    DeletePool {
        name: String,
    },
    /// A host's report of how it sees a pool (sent by its agent when it changes).
    Observe {
        pool: String,
        host: String,
        reachable: bool,
        reason: String,
        capacity_mib: u64,
        free_mib: u64,
    },
    /// Limits the pool to these hosts (empty: every host may use it).
    SetHosts {
        pool: String,
        hosts: Vec<String>,
    },
}

impl PoolCommand {
    pub fn kind(&self) -> &'static str {
        match self {
            PoolCommand::CreatePool(_) => "create_pool",
            PoolCommand::DeletePool { .. } => "delete_pool",
            PoolCommand::Observe { .. } => "observe_pool",
            PoolCommand::SetHosts { .. } => "set_pool_hosts",
        }
    }

    /// The entity the command is about, for the event log.
    pub fn target(&self) -> String {
        match self {
            PoolCommand::CreatePool(s) => format!("pool {}", s.name),
            PoolCommand::DeletePool { name } => format!("pool {name}"),
            PoolCommand::Observe { pool, .. } | PoolCommand::SetHosts { pool, .. } => {
                format!("pool {pool}")
            }
        }
    }
}

/// What a successful PoolCommand returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolApplied {
    PoolCreated(Pool),
    PoolDeleted { name: String },
    PoolObserved(Pool),
    PoolHostsChanged(Pool),
}

pub fn apply(kv: &mut impl Kv, at: UnixMillis, cmd: &PoolCommand) -> Result<Outcome, KvError> {
    match cmd {
        PoolCommand::CreatePool(spec) => create(kv, at, spec),
        PoolCommand::DeletePool { name } => delete(kv, name),
        PoolCommand::Observe {
            pool,
            host,
            reachable,
            reason,
            capacity_mib,
            free_mib,
        } => observe(
            kv,
            at,
            pool,
            host,
            PoolObservation {
                reachable: *reachable,
                reason: reason.clone(),
                capacity_mib: *capacity_mib,
                free_mib: *free_mib,
                at,
            },
        ),
        PoolCommand::SetHosts { pool, hosts } => set_hosts(kv, at, pool, hosts),
    }
}

fn applied(a: PoolApplied) -> Outcome {
    Outcome::Applied(Applied::Pool(a))
}

fn create(kv: &mut impl Kv, at: UnixMillis, spec: &PoolSpec) -> Result<Outcome, KvError> {
    let spec = match spec.validate() {
        Ok(s) => s,
        Err(e) => return Ok(Outcome::reject(RejectKind::InvalidArgument, e.to_string())),
    };
    if get(kv, &spec.name)?.is_some() {
        return Ok(Outcome::reject(
            RejectKind::AlreadyExists,
            format!("pool {} already exists", spec.name),
        ));
    }
    if let Some(refusal) = unknown_host(kv, &spec.hosts)? {
        return Ok(refusal);
    }
    let pool = Pool {
        spec,
        created_at: at,
        hosts: BTreeMap::new(),
    };
    tables::put(kv, Table::Pools, pool.name().as_bytes(), &pool)?;
    Ok(applied(PoolApplied::PoolCreated(pool)))
}

fn delete(kv: &mut impl Kv, name: &str) -> Result<Outcome, KvError> {
    if get(kv, name)?.is_none() {
        return Ok(Outcome::reject(
            RejectKind::NotFound,
            format!("pool {name} does not exist"),
        ));
    }
    if let Some(refusal) = refs::refuse_if_referenced(kv, Ref::Pool(name), |users| {
        format!("pool {name} is in use by {users}; delete or move those first")
    })? {
        return Ok(refusal);
    }
    kv.delete(Table::Pools, name.as_bytes())?;
    Ok(applied(PoolApplied::PoolDeleted { name: name.into() }))
}

fn observe(
    kv: &mut impl Kv,
    at: UnixMillis,
    name: &str,
    host: &str,
    mut obs: PoolObservation,
) -> Result<Outcome, KvError> {
    let Some(mut pool) = get(kv, name)? else {
        return Ok(Outcome::reject(
            RejectKind::NotFound,
            format!("pool {name} does not exist"),
        ));
    };
    if tables::host(kv, host)?.is_none() {
        return Ok(Outcome::reject(
            RejectKind::NotFound,
            format!("host {host} is not a member (observing pool {name})"),
        ));
    }
    obs.reason = obs.reason.trim().to_string();
    if !pool.spec.allows(host) {
        // Whatever the host says, it must not use the pool.
        obs = limited(&pool.spec, at);
    } else if obs.reachable {
        if obs.free_mib > obs.capacity_mib {
            return Ok(Outcome::reject(
                RejectKind::InvalidArgument,
                format!(
                    "free_mib ({}) exceeds capacity_mib ({}) for pool {name} on host {host}",
                    obs.free_mib, obs.capacity_mib
                ),
            ));
        }
        // A stale reason from an earlier failure would only mislead.
        obs.reason.clear();
    } else if obs.reason.is_empty() {
        return Ok(Outcome::reject(
            RejectKind::InvalidArgument,
            format!("reason must say why host {host} cannot reach pool {name}"),
        ));
    } else {
        obs.capacity_mib = 0;
        obs.free_mib = 0;
    }
    obs.at = at;
    pool.hosts.insert(host.to_string(), obs);
    tables::put(kv, Table::Pools, name.as_bytes(), &pool)?;
    Ok(applied(PoolApplied::PoolObserved(pool)))
}

fn set_hosts(
    kv: &mut impl Kv,
    at: UnixMillis,
    name: &str,
    hosts: &[String],
) -> Result<Outcome, KvError> {
    let Some(mut pool) = get(kv, name)? else {
        return Ok(Outcome::reject(
            RejectKind::NotFound,
            format!("pool {name} does not exist"),
        ));
    };
    let hosts = match validate_hosts(hosts) {
        Ok(h) => h,
        Err(e) => {
            return Ok(Outcome::reject(
                RejectKind::InvalidArgument,
                format!("hosts of pool {name}: {e}"),
            ))
        }
    };
    if let Some(refusal) = unknown_host(kv, &hosts)? {
        return Ok(refusal);
    }
    let before = std::mem::replace(&mut pool.spec.hosts, hosts);
    let was_allowed = |h: &str| before.is_empty() || before.iter().any(|b| b == h);
    let spec = pool.spec.clone();
    pool.hosts.retain(|h, obs| {
        if !spec.allows(h) {
            *obs = limited(&spec, at);
            true
        } else {
            // Only the old limit spoke for a host let in again; its own report is to come.
            was_allowed(h)
        }
    });
    tables::put(kv, Table::Pools, name.as_bytes(), &pool)?;
    Ok(applied(PoolApplied::PoolHostsChanged(pool)))
}

/// The refusal naming the first of `hosts` that is not a member, if any.
fn unknown_host(kv: &impl KvRead, hosts: &[String]) -> Result<Option<Outcome>, KvError> {
    for h in hosts {
        if tables::host(kv, h)?.is_none() {
            return Ok(Some(Outcome::reject(
                RejectKind::NotFound,
                format!("host {h} is not a member of this cluster"),
            )));
        }
    }
    Ok(None)
}

/// The observation stored for a host outside the pool's limit.
fn limited(spec: &PoolSpec, at: UnixMillis) -> PoolObservation {
    PoolObservation {
        reachable: false,
        reason: spec.limited_reason(),
        capacity_mib: 0,
        free_mib: 0,
        at,
    }
}

/// One pool by name.
pub fn get(kv: &impl KvRead, name: &str) -> Result<Option<Pool>, KvError> {
    tables::get(kv, Table::Pools, "pool", name.as_bytes())
}

/// Every pool, in name order.
pub fn list(kv: &impl KvRead) -> Result<Vec<Pool>, KvError> {
    kv.prefix(Table::Pools, b"")?
        .into_iter()
        .map(|(_, v)| decode("pool", &v).map_err(KvError::from))
        .collect()
}

#[cfg(test)]
mod tests;
