//! Where each host's HTTP listener (metrics, gRPC-web, the dashboard) is reached by browsers:
//! `meta` key `http_addr/<host name>` → `host:port`. Each host writes its own at start when
//! the stored one differs (`web::publish_http_addr`); followers redirect browsers to the
//! leader's, and an open dashboard page moves to another host's when its own stops answering.
//! Kept beside the host record rather than in it, so membership records and joins stay as
//! they are. `RemoveHost` drops the key. Not published on the change feed.

use super::command::{Applied, Outcome, RejectKind};
use super::kv::{Kv, KvError, KvRead, Table};
use super::tables;

fn key(host: &str) -> Vec<u8> {
    let mut k = b"http_addr/".to_vec();
    k.extend_from_slice(host.as_bytes());
    k
}

/// `SetHttpAddr`: refused for a host that is not a member and for an address that is not
/// `host:port`.
pub fn set(kv: &mut impl Kv, host: &str, addr: &str) -> Result<Outcome, KvError> {
    if tables::host(kv, host)?.is_none() {
        return Ok(Outcome::reject(
            RejectKind::NotFound,
            format!("host {host} is not a member of this cluster"),
        ));
    }
    let ok = addr.len() <= 255
        && addr
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
    if !ok {
        return Ok(Outcome::reject(
            RejectKind::InvalidArgument,
            format!("http address '{addr}' is not host:port"),
        ));
    }
    tables::put(kv, Table::Meta, &key(host), &addr.to_string())?;
    Ok(Outcome::Applied(Applied::Nothing))
}

/// The host's HTTP address, if it has published one.
pub fn get(kv: &impl KvRead, host: &str) -> Result<Option<String>, KvError> {
    tables::get(kv, Table::Meta, "http address", &key(host))
}

/// Drops the host's address (on removal).
pub fn forget(kv: &mut impl Kv, host: &str) -> Result<(), KvError> {
    kv.delete(Table::Meta, &key(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HostRecord;
    use crate::state::MemKv;

    #[test]
    fn set_get_forget() {
        let mut kv = MemKv::default();
        assert!(matches!(
            set(&mut kv, "h1", "127.0.0.1:7481").unwrap(),
            Outcome::Rejected(r) if r.kind == RejectKind::NotFound
        ));
        let rec = HostRecord {
            id: 1,
            name: "h1".into(),
            address: "127.0.0.1:7401".into(),
            joined_at: 1,
        };
        tables::put(&mut kv, Table::Hosts, b"h1", &rec).unwrap();
        for bad in ["", "nohost", ":80", "h:0", "h:x"] {
            assert!(
                matches!(set(&mut kv, "h1", bad).unwrap(), Outcome::Rejected(r) if r.kind == RejectKind::InvalidArgument),
                "{bad}"
            );
        }
        assert_eq!(get(&kv, "h1").unwrap(), None);
        assert!(matches!(
            set(&mut kv, "h1", "127.0.0.1:7481").unwrap(),
            Outcome::Applied(Applied::Nothing)
        ));
        assert_eq!(get(&kv, "h1").unwrap().as_deref(), Some("127.0.0.1:7481"));
        forget(&mut kv, "h1").unwrap();
        assert_eq!(get(&kv, "h1").unwrap(), None);
    }
}
