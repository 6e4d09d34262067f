//! API credentials in the replicated state (`model::credential`): table `credentials` by name,
//! and `credential_index` from `fp:<certificate sha256>` and `tok:<token id>` to the name, so
//! a caller is looked up in one read per request.
//! May use: `model`, `state::{kv, tables, codec}`.

use super::kv::{KvError, KvRead, Table};
use super::tables;
use crate::model::credential::{Credential, CredentialKind};

/// The index key of a credential.
pub fn index_key(kind: &CredentialKind) -> Vec<u8> {
    match kind {
        CredentialKind::Certificate { fingerprint } => format!("fp:{fingerprint}").into_bytes(),
        CredentialKind::Token { id, .. } => format!("tok:{id}").into_bytes(),
    }
}

pub fn get(kv: &impl KvRead, name: &str) -> Result<Option<Credential>, KvError> {
    tables::get(kv, Table::Credentials, "credential", name.as_bytes())
}

fn by_index(kv: &impl KvRead, key: &[u8]) -> Result<Option<Credential>, KvError> {
    let Some(name): Option<String> =
        tables::get(kv, Table::CredentialIndex, "credential index", key)?
    else {
        return Ok(None);
    };
    get(kv, &name)
}

/// The client certificate credential with this fingerprint (hex SHA-256 of the DER).
pub fn by_fingerprint(kv: &impl KvRead, fingerprint: &str) -> Result<Option<Credential>, KvError> {
    by_index(kv, format!("fp:{fingerprint}").as_bytes())
}

/// The token credential with this public id.
pub fn by_token_id(kv: &impl KvRead, id: &str) -> Result<Option<Credential>, KvError> {
    by_index(kv, format!("tok:{id}").as_bytes())
}

/// Every credential, by name.
pub fn list(kv: &impl KvRead) -> Result<Vec<Credential>, KvError> {
    kv.prefix(Table::Credentials, b"")?
        .into_iter()
        .map(|(_, v)| Ok(super::codec::decode("credential", &v)?))
        .collect()
}
