//! A running host: opens its stores, runs openraft, and offers the operations the API needs —
//! writes that work on any host (forwarded to the leader), linearizable or stale reads,
//! bootstrap, join tokens, joins, removal, status. Owns: the host's identity file entries and
//! its Raft instance. May use: `raft`, `state`, `model`, `config`.

mod batch;
pub mod certs;
pub mod error;
mod join;
mod membership;
mod status;
pub mod token;
mod transport;
mod write;

pub use error::ClusterError;
pub use join::JoinAnswer;
pub use status::{ClusterStatus, MemberStatus};
pub use transport::TransportService;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

use crate::config::Config;
use crate::model::{HostId, UnixMillis};
use crate::raft::log_store::LogStore;
use crate::raft::network::{NetworkFactory, Peers};
use crate::raft::state_machine::StateMachineStore;
use crate::raft::{Member, Raft};
use crate::state::redb_kv::RedbRead;

/// How long a write or read waits for a leader before giving up with `NoLeader`.
pub const LEADER_WAIT: Duration = Duration::from_secs(10);

pub fn now_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Cheap to clone; clones share the running host.
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

struct Inner {
    id: HostId,
    name: String,
    addr: String,
    raft: Raft,
    sm: StateMachineStore,
    peers: Peers,
    /// Packs concurrent writes into one log entry.
    batcher: batch::Batcher,
    /// Serialises membership changes made by this host while it leads.
    membership_lock: Mutex<()>,
    /// A peer that answered within this long counts as online.
    online_within: Duration,
    /// (term, index): reads in that term wait at least for that index. See `local_read_index`.
    read_floor: std::sync::Mutex<(u64, u64)>,
    /// `<data_dir>/tls`: the cluster key (and, later, certificates).
    tls_dir: crate::tls::files::TlsDir,
    /// Seals spec secrets (`tls::sealing`); made at bootstrap, received at join.
    cluster_key: std::sync::RwLock<Option<crate::tls::sealing::ClusterKey>>,
}

impl Host {
    /// Opens (or creates) the data directory and starts Raft. Refuses a data directory that
    /// belongs to a host of another name.
    pub async fn start(cfg: &Config) -> Result<Host, ClusterError> {
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
            ClusterError::Internal(format!(
                "cannot create data_dir {}: {e}",
                cfg.data_dir.display()
            ))
        })?;
        let log = LogStore::open(&cfg.data_dir.join("log.redb")).map_err(ClusterError::internal)?;
        let sm = StateMachineStore::open(
            &cfg.data_dir.join("state.redb"),
            &cfg.data_dir.join("snapshot.bin"),
        )
        .map_err(ClusterError::internal)?;
        let id = identity(&log, &cfg.name, &cfg.data_dir)?;
        let r = &cfg.raft;
        let raft_config = openraft::Config {
            cluster_name: "quantix".into(),
            heartbeat_interval: r.heartbeat_ms,
            election_timeout_min: r.election_timeout_min_ms,
            election_timeout_max: r.election_timeout_max_ms,
            install_snapshot_timeout: 5_000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(r.snapshot_after_entries),
            max_in_snapshot_log_to_keep: r.keep_entries_after_snapshot,
            purge_batch_size: 256,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ClusterError::InvalidArgument(format!("raft settings: {e}")))?;
        let tls_dir = crate::tls::files::TlsDir::new(&cfg.data_dir);
        let peers = Peers::new(crate::tls::connector::Connector::host(tls_dir.clone()));
        let network = NetworkFactory {
            peers: peers.clone(),
        };
        let raft = Raft::new(id, Arc::new(raft_config), network, log, sm.clone())
            .await
            .map_err(ClusterError::internal)?;
        let cluster_key = crate::tls::sealing::ClusterKey::load(&tls_dir)
            .map_err(|e| ClusterError::Internal(format!("cluster key: {e}")))?;
        let inner = Inner {
            tls_dir,
            cluster_key: std::sync::RwLock::new(cluster_key),
            batcher: batch::Batcher::start(raft.clone()),
            id,
            name: cfg.name.clone(),
            addr: cfg.advertised(),
            raft,
            sm,
            peers,
            membership_lock: Mutex::new(()),
            online_within: Duration::from_millis(
                r.election_timeout_max_ms.max(3 * r.heartbeat_ms) + 500,
            ),
            read_floor: std::sync::Mutex::new((0, 0)),
        };
        let host = Host {
            inner: Arc::new(inner),
        };
        host.spawn_membership_controller();
        Ok(host)
    }

    pub fn id(&self) -> HostId {
        self.inner.id
    }

    pub(crate) fn tls_dir(&self) -> &crate::tls::files::TlsDir {
        &self.inner.tls_dir
    }

    /// The cluster key, once this host bootstrapped or joined a cluster.
    pub fn cluster_key(&self) -> Option<crate::tls::sealing::ClusterKey> {
        self.inner.cluster_key.read().ok().and_then(|k| k.clone())
    }

    /// Keeps the cluster key on disk (0600) and in memory.
    pub(crate) fn install_cluster_key(
        &self,
        key: crate::tls::sealing::ClusterKey,
    ) -> Result<(), ClusterError> {
        key.store(&self.inner.tls_dir)
            .map_err(|e| ClusterError::Internal(format!("cannot keep the cluster key: {e}")))?;
        if let Ok(mut k) = self.inner.cluster_key.write() {
            *k = Some(key);
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// True while this host is the Raft leader.
    pub fn is_leader(&self) -> bool {
        self.inner.raft.metrics().borrow().current_leader == Some(self.inner.id)
    }

    /// The current Raft term as this host knows it.
    pub fn term(&self) -> u64 {
        self.inner.raft.metrics().borrow().current_term
    }

    /// Liveness of a member by name, as this host sees it (see `is_online`); a name that is
    /// not in the Raft membership is offline.
    pub fn is_online_by_name(&self, name: &str) -> bool {
        let (nodes, _) = self.membership();
        nodes
            .iter()
            .find(|(_, m)| m.name == name)
            .is_some_and(|(id, _)| self.is_online(*id))
    }

    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    pub fn peers(&self) -> &Peers {
        &self.inner.peers
    }

    pub fn member(&self) -> Member {
        Member {
            name: self.inner.name.clone(),
            addr: self.inner.addr.clone(),
        }
    }

    /// The local state as of now (no freshness guarantee; see `read_barrier`).
    pub fn state(&self) -> Result<RedbRead, ClusterError> {
        self.inner.sm.read().map_err(ClusterError::internal)
    }

    /// The index of the last entry applied here; changes after every applied batch.
    pub fn applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.sm.applied()
    }

    /// Members as the current Raft membership has them.
    pub fn membership(&self) -> (BTreeMap<HostId, Member>, std::collections::BTreeSet<HostId>) {
        let m = self.inner.raft.metrics().borrow().membership_config.clone();
        let nodes = m.nodes().map(|(id, n)| (*id, n.clone())).collect();
        let voters = m.voter_ids().collect();
        (nodes, voters)
    }

    /// True once this host is part of a cluster (bootstrapped or joined).
    pub fn is_member(&self) -> bool {
        self.inner
            .raft
            .metrics()
            .borrow()
            .membership_config
            .nodes()
            .any(|(id, _)| *id == self.inner.id)
    }

    pub fn require_member(&self) -> Result<(), ClusterError> {
        if self.is_member() {
            Ok(())
        } else {
            Err(ClusterError::NotInitialized {
                host: self.inner.name.clone(),
            })
        }
    }

    /// Stops Raft and makes the applied state durable. For SIGTERM.
    pub async fn shutdown(&self) {
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        if let Err(e) = self.inner.sm.make_durable() {
            tracing::warn!(error = %e, "final state flush");
        }
    }
}

const ID_KEY: &str = "host_id";
const NAME_KEY: &str = "host_name";

/// This host's Raft id, chosen at random the first time the data directory is used.
fn identity(log: &LogStore, name: &str, dir: &std::path::Path) -> Result<HostId, ClusterError> {
    let stored_name: Option<String> = log.local_get(NAME_KEY).map_err(ClusterError::internal)?;
    if let Some(stored) = &stored_name {
        if stored != name {
            return Err(ClusterError::FailedPrecondition(format!(
                "data_dir {} belongs to host '{stored}', but the config names this host '{name}'",
                dir.display()
            )));
        }
    }
    if let Some(id) = log
        .local_get::<HostId>(ID_KEY)
        .map_err(ClusterError::internal)?
    {
        return Ok(id);
    }
    // Non-zero and below 2^53 so it survives JSON tooling unchanged.
    let id = rand::random::<u64>() % ((1 << 53) - 1) + 1;
    log.local_put(ID_KEY, &id).map_err(ClusterError::internal)?;
    log.local_put(NAME_KEY, &name.to_string())
        .map_err(ClusterError::internal)?;
    Ok(id)
}
