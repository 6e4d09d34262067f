//! Typed access to the tables: key layouts and value types. Keys are chosen so that scans come
//! out in a useful order (big-endian ids, parent id before child name).

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::codec::{decode, encode};
use super::kv::{Kv, KvError, KvRead, Table};
use crate::model::{Folder, FolderId, HostRecord, UnixMillis};

/// Version of the table layout. Bump with a migration when a key or value layout changes.
pub const SCHEMA_VERSION: u32 = 1;

pub mod meta {
    pub const SCHEMA: &[u8] = b"schema";
    pub const CLUSTER: &[u8] = b"cluster";
    pub const NEXT_ID: &[u8] = b"next_id";
    pub const REQUEST_COUNT: &[u8] = b"request_count";
    /// Written by the Raft state-machine adapter in the same transaction as the entries.
    pub const APPLIED: &[u8] = b"applied";
    pub const MEMBERSHIP: &[u8] = b"membership";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub id: String,
    pub created_at: UnixMillis,
    pub max_voters: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub secret_sha256: String,
    pub expires_at: UnixMillis,
    pub created_at: UnixMillis,
    pub used_by: Option<String>,
}

pub fn get<T: DeserializeOwned>(
    kv: &impl KvRead,
    t: Table,
    what: &'static str,
    key: &[u8],
) -> Result<Option<T>, KvError> {
    match kv.get(t, key)? {
        Some(bytes) => Ok(Some(decode(what, &bytes)?)),
        None => Ok(None),
    }
}

pub fn put<T: Serialize>(kv: &mut impl Kv, t: Table, key: &[u8], value: &T) -> Result<(), KvError> {
    kv.put(t, key, &encode(value)?)
}

pub fn cluster_info(kv: &impl KvRead) -> Result<Option<ClusterInfo>, KvError> {
    get(kv, Table::Meta, "cluster info", meta::CLUSTER)
}

/// Allocates the next entity id (deterministic: a counter in the replicated state).
pub fn next_id(kv: &mut impl Kv) -> Result<u64, KvError> {
    let id: u64 = get(kv, Table::Meta, "next id", meta::NEXT_ID)?.unwrap_or(FolderId::ROOT.0 + 1);
    put(kv, Table::Meta, meta::NEXT_ID, &(id + 1))?;
    Ok(id)
}

pub fn folder_key(id: FolderId) -> [u8; 8] {
    id.0.to_be_bytes()
}

pub fn folder_name_key(parent: FolderId, name: &str) -> Vec<u8> {
    let mut k = parent.0.to_be_bytes().to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

pub fn folder(kv: &impl KvRead, id: FolderId) -> Result<Option<Folder>, KvError> {
    get(kv, Table::Folders, "folder", &folder_key(id))
}

pub fn child_folder(
    kv: &impl KvRead,
    parent: FolderId,
    name: &str,
) -> Result<Option<FolderId>, KvError> {
    get(
        kv,
        Table::FolderNames,
        "folder name",
        &folder_name_key(parent, name),
    )
}

pub fn put_folder(kv: &mut impl Kv, f: &Folder) -> Result<(), KvError> {
    put(kv, Table::Folders, &folder_key(f.id), f)?;
    if let Some(parent) = f.parent {
        put(
            kv,
            Table::FolderNames,
            &folder_name_key(parent, &f.name),
            &f.id,
        )?;
    }
    Ok(())
}

pub fn host(kv: &impl KvRead, name: &str) -> Result<Option<HostRecord>, KvError> {
    get(kv, Table::Hosts, "host", name.as_bytes())
}

pub fn hosts(kv: &impl KvRead) -> Result<Vec<HostRecord>, KvError> {
    kv.prefix(Table::Hosts, b"")?
        .into_iter()
        .map(|(_, v)| decode("host", &v).map_err(KvError::from))
        .collect()
}

/// The path of folder `id`, walking up its parents; `None` if it does not exist.
pub fn folder_path(
    kv: &impl KvRead,
    id: FolderId,
) -> Result<Option<crate::model::FolderPath>, KvError> {
    let mut names: Vec<String> = Vec::new();
    let mut cur = id;
    for _ in 0..=crate::model::folder::MAX_DEPTH {
        let Some(f) = folder(kv, cur)? else {
            return Ok(None);
        };
        match f.parent {
            None => {
                let mut p = crate::model::FolderPath::root();
                for n in names.iter().rev() {
                    p = p.join(n);
                }
                return Ok(Some(p));
            }
            Some(parent) => {
                names.push(f.name);
                cur = parent;
            }
        }
    }
    Err(KvError::Storage(format!(
        "folder {} is nested deeper than allowed or in a cycle",
        id.0
    )))
}
