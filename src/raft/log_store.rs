//! The Raft log in redb (`log.redb`): entries by index, plus vote, committed and purge marks.
//! Appends go through the group-commit writer (`log_writer`): openraft is told an entry is
//! flushed only after an fsync'd transaction holds it, and concurrent appends share one fsync.

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError, Vote,
};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use super::{blocking, Entry, LogId, StorageError, TypeConfig};
use crate::state::codec::{decode, encode};

use super::log_writer::{Writer, LOGS};
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("log_meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "last_purged";

fn io_err(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError {
    StorageError::IO {
        source: StorageIOError::new(subject, verb, AnyError::new(&e)),
    }
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Read, e)
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Write, e)
}

/// Cheap to clone: clones share the database. A clone is also the log reader.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    writer: Arc<Writer>,
}

impl LogStore {
    pub fn open(path: &Path) -> Result<LogStore, super::OpenError> {
        let db = Arc::new(Database::create(path).map_err(|e| super::OpenError::new(path, e))?);
        let writer = Writer::start(db.clone()).map_err(|e| super::OpenError::new(path, e))?;
        Ok(LogStore {
            db,
            writer: Arc::new(writer),
        })
    }

    fn meta_get<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, StorageError> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(read_err(e)),
        };
        match table.get(key).map_err(read_err)? {
            Some(v) => Ok(Some(decode(key_what(key), v.value()).map_err(read_err)?)),
            None => Ok(None),
        }
    }

    fn meta_put<T: serde::Serialize>(
        &self,
        key: &'static str,
        value: &T,
        durability: Durability,
    ) -> Result<(), StorageError> {
        let bytes = encode(value).map_err(write_err)?;
        blocking(|| {
            let mut txn = self.db.begin_write().map_err(write_err)?;
            txn.set_durability(durability).map_err(write_err)?;
            txn.open_table(META)
                .map_err(write_err)?
                .insert(key, bytes.as_slice())
                .map_err(write_err)?;
            txn.commit().map_err(write_err)
        })
    }

    /// A value of this host's own, kept beside the log (its id and name).
    pub fn local_get<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, StorageError> {
        self.meta_get(key)
    }

    pub fn local_put<T: serde::Serialize>(
        &self,
        key: &'static str,
        value: &T,
    ) -> Result<(), StorageError> {
        self.meta_put(key, value, Durability::Immediate)
    }
}

fn key_what(key: &str) -> &'static str {
    match key {
        VOTE => "vote",
        COMMITTED => "committed log id",
        PURGED => "purged log id",
        _ => "log metadata",
    }
}

impl LogStore {
    /// Durable entries with index in `[start, end]` (end inclusive, `u64::MAX` for open).
    fn durable_range(&self, start: u64, end: u64) -> Result<Vec<Entry>, StorageError> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = match txn.open_table(LOGS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(read_err(e)),
        };
        let mut out = Vec::new();
        for item in table.range(start..=end).map_err(read_err)? {
            let (_, v) = item.map_err(read_err)?;
            out.push(decode::<Entry>("log entry", v.value()).map_err(read_err)?);
        }
        Ok(out)
    }

    fn last_durable(&self) -> Result<Option<LogId>, StorageError> {
        let txn = self.db.begin_read().map_err(read_err)?;
        match txn.open_table(LOGS) {
            Ok(table) => match table.last().map_err(read_err)? {
                Some((_, v)) => Ok(Some(
                    decode::<Entry>("log entry", v.value())
                        .map_err(read_err)?
                        .log_id,
                )),
                None => Ok(None),
            },
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(read_err(e)),
        }
    }

    async fn barrier(&self) -> Result<(), StorageError> {
        self.writer.barrier().await.map_err(write_err)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e,
            Bound::Excluded(&0) => return Ok(Vec::new()),
            Bound::Excluded(&e) => e - 1,
            Bound::Unbounded => u64::MAX,
        };
        if start > end {
            return Ok(Vec::new());
        }
        // Pending first, then redb: see the invariant in `log_writer`.
        let pending = self.writer.pending(start, end);
        let mut merged: std::collections::BTreeMap<u64, Entry> = self
            .durable_range(start, end)?
            .into_iter()
            .map(|e| (e.log_id.index, e))
            .collect();
        merged.extend(pending);
        Ok(merged.into_values().collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.meta_get(PURGED)?;
        let pending = self.writer.last_pending().map(|e| e.log_id);
        let last = pending.max(self.last_durable()?);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        self.meta_put(VOTE, vote, Durability::Immediate)
            .map_err(|e| {
                io_err(
                    ErrorSubject::Vote,
                    ErrorVerb::Write,
                    std::io::Error::other(e.to_string()),
                )
            })
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        self.meta_get(VOTE)
    }

    /// Not fsynced: losing it only means re-applying from the state machine's own mark (and
    /// a restored leader's read floor, see `cluster::write`).
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.meta_put(COMMITTED, &committed, Durability::None)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.meta_get::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.writer.append(entries.into_iter().collect(), callback);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.barrier().await?;
        self.writer.forget_from(log_id.index);
        blocking(|| {
            let mut txn = self.db.begin_write().map_err(write_err)?;
            txn.set_durability(Durability::Immediate)
                .map_err(write_err)?;
            txn.open_table(LOGS)
                .map_err(write_err)?
                .retain_in(log_id.index.., |_, _| false)
                .map_err(write_err)?;
            txn.commit().map_err(write_err)
        })
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.barrier().await?;
        let bytes = encode(&log_id).map_err(write_err)?;
        blocking(|| {
            let mut txn = self.db.begin_write().map_err(write_err)?;
            // Purging is safe to lose in a crash: the entries come back and are purged again.
            txn.set_durability(Durability::None).map_err(write_err)?;
            txn.open_table(META)
                .map_err(write_err)?
                .insert(PURGED, bytes.as_slice())
                .map_err(write_err)?;
            txn.open_table(LOGS)
                .map_err(write_err)?
                .retain_in(..=log_id.index, |_, _| false)
                .map_err(write_err)?;
            txn.commit().map_err(write_err)
        })
    }
}
