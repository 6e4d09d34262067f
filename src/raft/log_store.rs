//! The Raft log in redb (`log.redb`): entries by index, plus the vote and the purge mark.
//! An append is committed with `Durability::Immediate` (fsync) before openraft is told it is
//! flushed. openraft 0.9 awaits every append's flush before it continues, so concurrent client
//! writes are batched above Raft, into one entry (`cluster::batch`), not here.

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError, Vote,
};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use super::{blocking, Entry, LogId, StorageError, TypeConfig};
use crate::state::codec::{decode, encode};

const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("log_meta");

const VOTE: &str = "vote";
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
    /// The newest entries, durable already: replication to followers reads these instead of
    /// reading and decoding the same entries from redb once per follower.
    tail: Arc<std::sync::Mutex<BTreeMap<u64, Entry>>>,
}

/// Entries kept in `tail`.
const TAIL: usize = 4096;

impl LogStore {
    fn tail(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry>> {
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries `[start, end]` if the tail holds all of them.
    fn read_tail(&self, start: u64, end: u64) -> Option<Vec<Entry>> {
        let tail = self.tail();
        let (&first, _) = tail.first_key_value()?;
        let (&last, _) = tail.last_key_value()?;
        if start < first || start > last {
            return None;
        }
        let end = end.min(last);
        let out: Vec<Entry> = tail.range(start..=end).map(|(_, e)| e.clone()).collect();
        // Only a gap-free run counts; otherwise read redb.
        (out.len() as u64 == end - start + 1).then_some(out)
    }

    pub fn open(path: &Path) -> Result<LogStore, super::OpenError> {
        // The log is written once and read mostly from `tail`: a small page cache will do.
        let db = Database::builder()
            .set_cache_size(16 << 20)
            .create(path)
            .map_err(|e| super::OpenError::new(path, e))?;
        Ok(LogStore {
            db: Arc::new(db),
            tail: Arc::default(),
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
        PURGED => "purged log id",
        _ => "log metadata",
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
        if let Some(entries) = self.read_tail(start, end) {
            return Ok(entries);
        }
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
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.meta_get(PURGED)?;
        let txn = self.db.begin_read().map_err(read_err)?;
        let last = match txn.open_table(LOGS) {
            Ok(table) => match table.last().map_err(read_err)? {
                Some((_, v)) => Some(
                    decode::<Entry>("log entry", v.value())
                        .map_err(read_err)?
                        .log_id,
                ),
                None => None,
            },
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(read_err(e)),
        };
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

    // `save_committed`/`read_committed` keep openraft's defaults (not stored): storing the
    // mark costs a redb write transaction on the Raft core task for every commit. Without it a
    // restarted host re-applies once the leader tells it the commit index, and a restored
    // leader's reads wait for its whole log (see `cluster::write::local_read_index`).

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let encoded: Vec<(u64, Vec<u8>)> = entries
            .iter()
            .map(|e| encode(&e).map(|b| (e.log_id.index, b)))
            .collect::<Result<_, _>>()
            .map_err(write_err)?;
        let result = blocking(|| -> Result<(), StorageError> {
            let mut txn = self.db.begin_write().map_err(write_err)?;
            txn.set_durability(Durability::Immediate)
                .map_err(write_err)?;
            {
                let mut table = txn.open_table(LOGS).map_err(write_err)?;
                for (index, bytes) in &encoded {
                    table.insert(*index, bytes.as_slice()).map_err(write_err)?;
                }
            }
            txn.commit().map_err(write_err)
        });
        if result.is_ok() {
            let mut tail = self.tail();
            for e in entries {
                tail.insert(e.log_id.index, e);
            }
            while tail.len() > TAIL {
                tail.pop_first();
            }
        }
        match &result {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        result
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.tail().split_off(&log_id.index);
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
        {
            let mut tail = self.tail();
            *tail = tail.split_off(&(log_id.index + 1));
        }
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
