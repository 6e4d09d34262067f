//! Group commit for the Raft log. openraft 0.9 hands the log store one `append` per client
//! write on the leader, so an fsync inside `append` would cap the cluster at one write per
//! fsync. Instead `append` queues the entries and returns; this writer thread persists every
//! queued entry in one fsync'd redb transaction and only then tells openraft they are flushed
//! (`LogFlushed`). Until then readers see the entries through the `pending` overlay.
//!
//! Invariant: an entry leaves `pending` only after the transaction that holds it committed, so
//! a reader that copies `pending` first and reads redb second never misses an entry.

use openraft::storage::LogFlushed;
use redb::{Database, Durability};
use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Entry, TypeConfig};
use crate::state::codec::encode;

pub(super) const LOGS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("logs");

enum Job {
    Append {
        entries: Vec<Entry>,
        done: LogFlushed<TypeConfig>,
    },
    /// Answered once everything queued before it is durable.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

pub(super) struct Writer {
    tx: Mutex<Sender<Job>>,
    pending: Arc<Mutex<BTreeMap<u64, Entry>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Writer {
    pub(super) fn start(db: Arc<Database>) -> std::io::Result<Writer> {
        let (tx, rx) = channel();
        let pending = Arc::new(Mutex::new(BTreeMap::new()));
        let p = pending.clone();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || run(db, rx, p))?;
        Ok(Writer {
            tx: Mutex::new(tx),
            pending,
        })
    }

    /// Queues entries; `done` fires once they are durable (or with the error that stopped it).
    pub(super) fn append(&self, entries: Vec<Entry>, done: LogFlushed<TypeConfig>) {
        {
            let mut p = lock(&self.pending);
            for e in &entries {
                p.insert(e.log_id.index, e.clone());
            }
        }
        if let Err(std::sync::mpsc::SendError(Job::Append { done, .. })) =
            lock(&self.tx).send(Job::Append { entries, done })
        {
            done.log_io_completed(Err(std::io::Error::other("raft log writer has stopped")));
        }
    }

    /// Waits until everything queued so far is durable and out of `pending`.
    pub(super) async fn barrier(&self) -> Result<(), std::io::Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.tx)
            .send(Job::Barrier(tx))
            .map_err(|_| std::io::Error::other("raft log writer has stopped"))?;
        rx.await
            .map_err(|_| std::io::Error::other("raft log writer has stopped"))
    }

    /// Queued, not yet durable entries with index in `[from, to]`.
    pub(super) fn pending(&self, from: u64, to: u64) -> BTreeMap<u64, Entry> {
        lock(&self.pending)
            .range(from..=to)
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    pub(super) fn last_pending(&self) -> Option<Entry> {
        lock(&self.pending).last_key_value().map(|(_, v)| v.clone())
    }

    /// Drops queued entries at or after `index` (a truncation, after a barrier).
    pub(super) fn forget_from(&self, index: u64) {
        lock(&self.pending).retain(|k, _| *k < index);
    }
}

fn run(db: Arc<Database>, rx: Receiver<Job>, pending: Arc<Mutex<BTreeMap<u64, Entry>>>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        jobs.extend(rx.try_iter());
        let mut entries = Vec::new();
        let mut dones = Vec::new();
        let mut barriers = Vec::new();
        for job in jobs {
            match job {
                Job::Append { entries: e, done } => {
                    entries.extend(e);
                    dones.push(done);
                }
                Job::Barrier(b) => barriers.push(b),
            }
        }
        let result = if entries.is_empty() {
            Ok(())
        } else {
            persist(&db, &entries)
        };
        if result.is_ok() {
            let mut p = lock(&pending);
            for e in &entries {
                if p.get(&e.log_id.index).is_some_and(|q| q.log_id == e.log_id) {
                    p.remove(&e.log_id.index);
                }
            }
        } else if let Err(e) = &result {
            tracing::error!(error = %e, entries = entries.len(), "raft log append failed");
        }
        for done in dones {
            done.log_io_completed(
                result
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| std::io::Error::other(e.clone())),
            );
        }
        for b in barriers {
            let _ = b.send(());
        }
    }
}

fn persist(db: &Database, entries: &[Entry]) -> Result<(), String> {
    let mut txn = db.begin_write().map_err(|e| e.to_string())?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| e.to_string())?;
    {
        let mut table = txn.open_table(LOGS).map_err(|e| e.to_string())?;
        for e in entries {
            let bytes = encode(e).map_err(|e| e.to_string())?;
            table
                .insert(e.log_id.index, bytes.as_slice())
                .map_err(|e| e.to_string())?;
        }
    }
    txn.commit().map_err(|e| e.to_string())
}
