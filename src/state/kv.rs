//! The key-value surface `apply` runs against, so `apply` stays a pure function of
//! (state, command): redb in the daemon (see `state::redb_kv`), a `BTreeMap` in unit tests.
//! All tables map bytes to bytes; typed access lives in `state::tables`.

use std::collections::BTreeMap;
use std::ops::Bound;
use thiserror::Error;

use super::codec::CodecError;

/// Every table of the replicated state. The snapshot walks `Table::ALL`, so a new table is
/// added here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Meta,
    Hosts,
    Tokens,
    Folders,
    FolderNames,
    Requests,
    RequestOrder,
    Vms,
    Specs,
    Images,
    Pools,
    Events,
    Changes,
    /// API credentials by name (`state::credentials`).
    Credentials,
    /// `fp:<sha256>` and `tok:<id>` to a credential's name.
    CredentialIndex,
}

impl Table {
    /// In declaration order: `t as usize` indexes this array.
    pub const ALL: [Table; 15] = [
        Table::Meta,
        Table::Hosts,
        Table::Tokens,
        Table::Folders,
        Table::FolderNames,
        Table::Requests,
        Table::RequestOrder,
        Table::Vms,
        Table::Specs,
        Table::Images,
        Table::Pools,
        Table::Events,
        Table::Changes,
        Table::Credentials,
        Table::CredentialIndex,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Hosts => "hosts",
            Table::Tokens => "tokens",
            Table::Folders => "folders",
            Table::FolderNames => "folder_names",
            Table::Requests => "requests",
            Table::RequestOrder => "request_order",
            Table::Vms => "vms",
            Table::Specs => "specs",
            Table::Images => "images",
            Table::Pools => "pools",
            Table::Events => "events",
            Table::Changes => "changes",
            Table::Credentials => "credentials",
            Table::CredentialIndex => "credential_index",
        }
    }

    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }
}

#[derive(Debug, Error)]
pub enum KvError {
    #[error("storage: {0}")]
    Storage(String),
    #[error(transparent)]
    Codec(#[from] CodecError),
}

pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Read access.
pub trait KvRead {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError>;
    /// Pairs with keys in `[from, to)` (or to the end), in key order, at most `limit`.
    fn range(
        &self,
        t: Table,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, KvError>;
    fn len(&self, t: Table) -> Result<u64, KvError>;

    fn prefix(&self, t: Table, prefix: &[u8]) -> Result<Pairs, KvError> {
        let end = prefix_end(prefix);
        self.range(t, prefix, end.as_deref(), usize::MAX)
    }
}

/// Read and write access, inside one transaction.
pub trait Kv: KvRead {
    fn put(&mut self, t: Table, key: &[u8], value: &[u8]) -> Result<(), KvError>;
    fn delete(&mut self, t: Table, key: &[u8]) -> Result<(), KvError>;
}

/// The smallest key greater than every key starting with `prefix`; `None` if there is none.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// In-memory state for unit tests and for checking that replays are deterministic.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemKv {
    pub tables: BTreeMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl KvRead for MemKv {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.tables.get(&t).and_then(|m| m.get(key)).cloned())
    }

    fn range(
        &self,
        t: Table,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, KvError> {
        let Some(m) = self.tables.get(&t) else {
            return Ok(Vec::new());
        };
        let upper = match to {
            Some(to) => Bound::Excluded(to.to_vec()),
            None => Bound::Unbounded,
        };
        Ok(m.range((Bound::Included(from.to_vec()), upper))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn len(&self, t: Table) -> Result<u64, KvError> {
        Ok(self.tables.get(&t).map_or(0, |m| m.len() as u64))
    }
}

impl Kv for MemKv {
    fn put(&mut self, t: Table, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        self.tables
            .entry(t)
            .or_default()
            .insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, t: Table, key: &[u8]) -> Result<(), KvError> {
        if let Some(m) = self.tables.get_mut(&t) {
            m.remove(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_table() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn table_names_round_trip() {
        for (i, t) in Table::ALL.into_iter().enumerate() {
            assert_eq!(t as usize, i, "Table::ALL must follow declaration order");
            assert_eq!(Table::from_name(t.name()), Some(t));
        }
    }

    #[test]
    fn mem_prefix_scan() {
        let mut kv = MemKv::default();
        for k in [&b"a1"[..], b"a2", b"b1"] {
            kv.put(Table::Hosts, k, b"v").unwrap();
        }
        let got: Vec<_> = kv
            .prefix(Table::Hosts, b"a")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(got, vec![b"a1".to_vec(), b"a2".to_vec()]);
    }
}
