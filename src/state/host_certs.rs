//! The certificate each member host was issued, by fingerprint (hex SHA-256 of the DER), kept
//! in `meta` under `host_cert/<name>`. Written when a host is admitted (`JoinHost`) or, for
//! the first host, right after bootstrap (`SetHostCert`); dropped with the host (`forget`).
//! The transport refuses a host certificate whose fingerprint is not the recorded one, which
//! is how a removed host is cut off.
//! May use: `state::{kv, tables}`.

use super::command::{Applied, Outcome, RejectKind};
use super::kv::{Kv, KvError, KvRead, Table};
use super::tables;

fn key(host: &str) -> Vec<u8> {
    format!("host_cert/{host}").into_bytes()
}

pub fn get(kv: &impl KvRead, host: &str) -> Result<Option<String>, KvError> {
    tables::get(kv, Table::Meta, "host certificate", &key(host))
}

pub fn put(kv: &mut impl Kv, host: &str, fingerprint: &str) -> Result<(), KvError> {
    tables::put(kv, Table::Meta, &key(host), &fingerprint.to_string())
}

pub fn forget(kv: &mut impl Kv, host: &str) -> Result<(), KvError> {
    kv.delete(Table::Meta, &key(host))
}

/// `SetHostCert`: records the certificate of a member host.
pub fn set(kv: &mut impl Kv, host: &str, fingerprint: &str) -> Result<Outcome, KvError> {
    if tables::host(kv, host)?.is_none() {
        return Ok(Outcome::reject(
            RejectKind::NotFound,
            format!("host {host} is not a member"),
        ));
    }
    let valid = fingerprint.len() == 64 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Ok(Outcome::reject(
            RejectKind::InvalidArgument,
            format!("certificate fingerprint of host {host} must be 64 hex digits"),
        ));
    }
    put(kv, host, &fingerprint.to_ascii_lowercase())?;
    Ok(Outcome::Applied(Applied::Nothing))
}
