//! The `Kv` surface over redb transactions. Every table is `&[u8] -> &[u8]`; a table that was
//! never written reads as empty.

use redb::{
    ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, TableError,
    WriteTransaction,
};

use super::kv::{Kv, KvError, KvRead, Pairs, Table};

pub fn def(t: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(t.name())
}

pub(crate) fn storage<E: std::fmt::Display>(e: E) -> KvError {
    KvError::Storage(e.to_string())
}

fn collect<T: ReadableTable<&'static [u8], &'static [u8]>>(
    table: &T,
    from: &[u8],
    to: Option<&[u8]>,
    limit: usize,
) -> Result<Pairs, KvError> {
    let iter = match to {
        Some(to) => table.range::<&[u8]>(from..to),
        None => table.range::<&[u8]>(from..),
    }
    .map_err(storage)?;
    let mut out = Vec::new();
    for item in iter.take(limit) {
        let (k, v) = item.map_err(storage)?;
        out.push((k.value().to_vec(), v.value().to_vec()));
    }
    Ok(out)
}

/// Writes inside one redb write transaction. Every table is opened once, when this is made,
/// and closed when it is dropped (before the commit): opening a table per operation cost
/// more than the operation.
pub struct RedbWrite<'txn> {
    tables: Vec<redb::Table<'txn, &'static [u8], &'static [u8]>>,
}

impl<'txn> RedbWrite<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<RedbWrite<'txn>, KvError> {
        let tables = Table::ALL
            .iter()
            .map(|t| txn.open_table(def(*t)).map_err(storage))
            .collect::<Result<_, _>>()?;
        Ok(RedbWrite { tables })
    }

    fn table(&self, t: Table) -> &redb::Table<'txn, &'static [u8], &'static [u8]> {
        &self.tables[t as usize]
    }
}

impl KvRead for RedbWrite<'_> {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let value = self.table(t).get(key).map_err(storage)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn range(
        &self,
        t: Table,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, KvError> {
        collect(self.table(t), from, to, limit)
    }

    fn len(&self, t: Table) -> Result<u64, KvError> {
        self.table(t).len().map_err(storage)
    }
}

impl Kv for RedbWrite<'_> {
    fn put(&mut self, t: Table, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        self.tables[t as usize]
            .insert(key, value)
            .map_err(storage)?;
        Ok(())
    }

    fn delete(&mut self, t: Table, key: &[u8]) -> Result<(), KvError> {
        self.tables[t as usize].remove(key).map_err(storage)?;
        Ok(())
    }
}

/// A consistent point-in-time view (redb MVCC): readers never block the applier.
pub struct RedbRead {
    pub txn: ReadTransaction,
}

impl KvRead for RedbRead {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        match self.txn.open_table(def(t)) {
            Ok(table) => Ok(table.get(key).map_err(storage)?.map(|v| v.value().to_vec())),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(storage(e)),
        }
    }

    fn range(
        &self,
        t: Table,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, KvError> {
        match self.txn.open_table(def(t)) {
            Ok(table) => collect(&table, from, to, limit),
            Err(TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            Err(e) => Err(storage(e)),
        }
    }

    fn len(&self, t: Table) -> Result<u64, KvError> {
        match self.txn.open_table(def(t)) {
            Ok(table) => table.len().map_err(storage),
            Err(TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(storage(e)),
        }
    }
}
