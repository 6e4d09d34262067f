//! The state machine in redb (`state.redb`): `state::apply` runs inside one write transaction
//! per batch of entries, and the applied log id and membership are written in that same
//! transaction, so they can never disagree with the data.
//!
//! Applies commit with `Durability::None` and a durable commit follows at least every
//! `DURABLE_EVERY` batches, before every snapshot and at shutdown. After a crash the state
//! falls back to its last durable commit and openraft re-applies the rest from the log, which
//! is never purged past a snapshot, and a snapshot is only taken of durable state.

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, StorageIOError,
};
use redb::{Database, Durability, ReadableDatabase};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

use super::{
    blocking, Entry, LogId, OpenError, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::state::codec::{decode, encode};
use crate::state::kv::{Kv, KvRead, Pairs, Table};
use crate::state::redb_kv::{def, RedbRead, RedbWrite};
use crate::state::tables::{self, meta};
use crate::state::Outcomes;

/// redb page cache for the state file.
const STATE_CACHE: usize = 64 << 20;

/// Make the state durable at least every this many applied batches.
const DURABLE_EVERY: u64 = 256;

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    let io = std::io::Error::other(e.to_string());
    StorageError::IO {
        source: StorageIOError::new(ErrorSubject::StateMachine, verb, AnyError::new(&io)),
    }
}

fn snap_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    let io = std::io::Error::other(e.to_string());
    StorageError::IO {
        source: StorageIOError::new(ErrorSubject::Snapshot(None), verb, AnyError::new(&io)),
    }
}

/// The snapshot payload: every table of the state, as of one applied log id.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    tables: Vec<(String, Pairs)>,
}

/// What the snapshot file on disk holds.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

#[derive(Clone)]
pub struct StateMachineStore {
    db: Arc<Database>,
    snapshot_path: PathBuf,
    batches_since_durable: Arc<AtomicU64>,
    snapshot_seq: Arc<AtomicU64>,
    applied_tx: Arc<watch::Sender<u64>>,
}

impl StateMachineStore {
    pub fn open(state_path: &Path, snapshot_path: &Path) -> Result<StateMachineStore, OpenError> {
        // redb caches up to 1 GiB by default; reads are point lookups and short scans.
        let db = Arc::new(
            Database::builder()
                .set_cache_size(STATE_CACHE)
                .create(state_path)
                .map_err(|e| OpenError::new(state_path, e))?,
        );
        let view = RedbRead {
            txn: db.begin_read().map_err(|e| OpenError::new(state_path, e))?,
        };
        let schema: Option<u32> = tables::get(&view, Table::Meta, "schema version", meta::SCHEMA)
            .map_err(|e| OpenError::new(state_path, e))?;
        if let Some(v) = schema.filter(|v| *v > tables::SCHEMA_VERSION) {
            return Err(OpenError::new(
                state_path,
                format!("state schema version {v} is newer than this build reads ({}); upgrade quantixd", tables::SCHEMA_VERSION),
            ));
        }
        let start: u64 = tables::get::<Option<LogId>>(&view, Table::Meta, "applied", meta::APPLIED)
            .map_err(|e| OpenError::new(state_path, e))?
            .flatten()
            .map_or(0, |l| l.index);
        Ok(StateMachineStore {
            db,
            snapshot_path: snapshot_path.to_path_buf(),
            batches_since_durable: Arc::new(AtomicU64::new(0)),
            snapshot_seq: Arc::new(AtomicU64::new(0)),
            applied_tx: Arc::new(watch::channel(start).0),
        })
    }

    /// A consistent read view of the current state.
    pub fn read(&self) -> Result<RedbRead, crate::state::KvError> {
        Ok(RedbRead {
            txn: self
                .db
                .begin_read()
                .map_err(crate::state::redb_kv::storage)?,
        })
    }

    /// Index of the last applied entry, updated after each batch commits.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied_tx.subscribe()
    }

    /// Commits everything applied so far durably (an empty fsync'd transaction).
    pub fn make_durable(&self) -> Result<(), StorageError> {
        blocking(|| {
            let mut txn = self
                .db
                .begin_write()
                .map_err(|e| sm_err(ErrorVerb::Write, e))?;
            txn.set_durability(Durability::Immediate)
                .map_err(|e| sm_err(ErrorVerb::Write, e))?;
            txn.commit().map_err(|e| sm_err(ErrorVerb::Write, e))
        })?;
        self.batches_since_durable.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn read_applied(&self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let r = self.read().map_err(|e| sm_err(ErrorVerb::Read, e))?;
        let applied: Option<Option<LogId>> = tables::get(&r, Table::Meta, "applied", meta::APPLIED)
            .map_err(|e| sm_err(ErrorVerb::Read, e))?;
        let membership = tables::get(&r, Table::Meta, "membership", meta::MEMBERSHIP)
            .map_err(|e| sm_err(ErrorVerb::Read, e))?;
        Ok((applied.flatten(), membership.unwrap_or_default()))
    }

    fn load_snapshot_file(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        match std::fs::read(&self.snapshot_path) {
            Ok(bytes) => Ok(Some(
                decode("snapshot file", &bytes).map_err(|e| snap_err(ErrorVerb::Read, e))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(snap_err(ErrorVerb::Read, e)),
        }
    }

    /// Writes the snapshot file atomically: a temp file, fsync, rename.
    fn save_snapshot_file(&self, snap: &StoredSnapshot) -> Result<(), StorageError> {
        let bytes = encode(snap).map_err(|e| snap_err(ErrorVerb::Write, e))?;
        let tmp = self.snapshot_path.with_extension("tmp");
        blocking(|| -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.snapshot_path)?;
            if let Some(dir) = self.snapshot_path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })
        .map_err(|e| snap_err(ErrorVerb::Write, e))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // The log is purged behind the snapshot, so what it covers must survive a crash: take
        // the read view first, then a durable commit persists everything up to (and beyond) it.
        let r = self.read().map_err(|e| snap_err(ErrorVerb::Read, e))?;
        self.make_durable()?;
        let applied: Option<LogId> =
            tables::get::<Option<LogId>>(&r, Table::Meta, "applied", meta::APPLIED)
                .map_err(|e| snap_err(ErrorVerb::Read, e))?
                .flatten();
        let membership: StoredMembership =
            tables::get(&r, Table::Meta, "membership", meta::MEMBERSHIP)
                .map_err(|e| snap_err(ErrorVerb::Read, e))?
                .unwrap_or_default();
        let mut data = SnapshotData { tables: Vec::new() };
        for t in Table::ALL {
            let pairs = r.prefix(t, b"").map_err(|e| snap_err(ErrorVerb::Read, e))?;
            data.tables.push((t.name().to_string(), pairs));
        }
        let bytes = encode(&data).map_err(|e| snap_err(ErrorVerb::Write, e))?;
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, seq),
            None => format!("0-0-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: applied,
            last_membership: membership,
            snapshot_id,
        };
        self.save_snapshot_file(&StoredSnapshot {
            meta: meta.clone(),
            data: bytes.clone(),
        })?;
        tracing::info!(snapshot = %meta.snapshot_id, bytes = bytes.len(), "built snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        self.read_applied()
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcomes>, StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else {
            return Ok(Vec::new());
        };
        let durable =
            self.batches_since_durable.fetch_add(1, Ordering::Relaxed) + 1 >= DURABLE_EVERY;
        let outcomes = blocking(|| -> Result<Vec<Outcomes>, StorageError> {
            let w = |e: &dyn std::fmt::Display| sm_err(ErrorVerb::Write, e);
            let mut txn = self.db.begin_write().map_err(|e| w(&e))?;
            let level = if durable {
                Durability::Immediate
            } else {
                Durability::None
            };
            txn.set_durability(level).map_err(|e| w(&e))?;
            let mut outcomes = Vec::with_capacity(entries.len());
            {
                let mut kv = RedbWrite::open(&txn).map_err(|e| w(&e))?;
                for entry in &entries {
                    let outcome = match &entry.payload {
                        EntryPayload::Blank => Outcomes::default(),
                        EntryPayload::Normal(proposal) => {
                            let mut outs = Vec::with_capacity(proposal.requests.len());
                            for req in &proposal.requests {
                                let out = crate::state::apply(&mut kv, entry.log_id.index, req)
                                    .map_err(|e| StorageError::IO {
                                        source: StorageIOError::apply(
                                            entry.log_id,
                                            AnyError::new(&e),
                                        ),
                                    })?;
                                outs.push(out);
                            }
                            Outcomes(outs)
                        }
                        EntryPayload::Membership(m) => {
                            let stored = StoredMembership::new(Some(entry.log_id), m.clone());
                            tables::put(&mut kv, Table::Meta, meta::MEMBERSHIP, &stored)
                                .map_err(|e| w(&e))?;
                            Outcomes::default()
                        }
                    };
                    outcomes.push(outcome);
                }
                tables::put(&mut kv, Table::Meta, meta::APPLIED, &Some(last)).map_err(|e| w(&e))?;
            }
            txn.commit().map_err(|e| w(&e))?;
            Ok(outcomes)
        })?;
        if durable {
            self.batches_since_durable.store(0, Ordering::Relaxed);
        }
        self.applied_tx.send_replace(last.index);
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachineStore {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let data: SnapshotData =
            decode("snapshot", &bytes).map_err(|e| snap_err(ErrorVerb::Read, e))?;
        blocking(|| -> Result<(), StorageError> {
            let w = |e: &dyn std::fmt::Display| sm_err(ErrorVerb::Write, e);
            let txn = self.db.begin_write().map_err(|e| w(&e))?;
            for t in Table::ALL {
                txn.delete_table(def(t)).map_err(|e| w(&e))?;
            }
            {
                let mut kv = RedbWrite::open(&txn).map_err(|e| w(&e))?;
                for (name, pairs) in &data.tables {
                    let Some(t) = Table::from_name(name) else {
                        return Err(snap_err(
                            ErrorVerb::Read,
                            format!("snapshot holds unknown table {name}"),
                        ));
                    };
                    for (k, v) in pairs {
                        kv.put(t, k, v).map_err(|e| w(&e))?;
                    }
                }
                tables::put(&mut kv, Table::Meta, meta::APPLIED, &meta.last_log_id)
                    .map_err(|e| w(&e))?;
                tables::put(
                    &mut kv,
                    Table::Meta,
                    meta::MEMBERSHIP,
                    &meta.last_membership,
                )
                .map_err(|e| w(&e))?;
            }
            txn.commit().map_err(|e| w(&e))
        })?;
        self.save_snapshot_file(&StoredSnapshot {
            meta: meta.clone(),
            data: bytes,
        })?;
        self.batches_since_durable.store(0, Ordering::Relaxed);
        self.applied_tx
            .send_replace(meta.last_log_id.map_or(0, |l| l.index));
        tracing::info!(snapshot = %meta.snapshot_id, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.load_snapshot_file()?.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
