//! `apply`: the one deterministic function from (state, log entry) to (new state, outcome).
//! It reads nothing but the state and the request: no clock, randomness, network or libvirt.
//! Retries are answered from the request table; old request ids are evicted oldest first, by
//! count, so every host evicts the same ones.

use super::codec::decode;
use super::command::{Command, Outcome, RejectKind, Request};
use super::kv::{Kv, KvError, Table};
use super::tables::{self, meta};
use super::{cluster, events, folders};

/// How many request ids are remembered for retries.
pub const REMEMBERED_REQUESTS: u64 = 50_000;

/// Applies the request at log position `index`.
pub fn apply(kv: &mut impl Kv, index: u64, req: &Request) -> Result<Outcome, KvError> {
    if let Some(id) = &req.id {
        if let Some(bytes) = kv.get(Table::Requests, id.as_bytes())? {
            let (_, first): (u64, Outcome) = decode("remembered outcome", &bytes)?;
            return Ok(first);
        }
    }
    let mut recording = events::Recording::new(kv);
    let outcome = dispatch(&mut recording, req)?;
    let changes = recording.into_changes();
    events::record(kv, req, &outcome, changes)?;
    if let Some(id) = &req.id {
        remember(kv, index, id, &outcome)?;
    }
    Ok(outcome)
}

fn dispatch(kv: &mut impl Kv, req: &Request) -> Result<Outcome, KvError> {
    if !matches!(req.cmd, Command::InitCluster { .. } | Command::Noop)
        && tables::cluster_info(kv)?.is_none()
    {
        return Ok(Outcome::reject(
            RejectKind::FailedPrecondition,
            "the cluster is not bootstrapped yet",
        ));
    }
    let at = req.at;
    match &req.cmd {
        Command::InitCluster {
            cluster_id,
            host,
            max_voters,
        } => cluster::init(kv, at, cluster_id, host, *max_voters),
        Command::CreateJoinToken {
            token_id,
            secret_sha256,
            expires_at,
        } => cluster::create_token(kv, at, token_id, secret_sha256, *expires_at),
        Command::ConsumeJoinToken {
            token_id,
            secret_sha256,
            host,
        } => cluster::consume_token(kv, at, token_id, secret_sha256, host),
        Command::RemoveHost { name } => cluster::remove_host(kv, name),
        Command::CreateFolder { path, parents } => folders::create(kv, at, path, *parents),
        Command::DeleteFolder { path } => folders::delete(kv, path),
        Command::Noop => Ok(Outcome::Applied(super::command::Applied::Nothing)),
        Command::SetPlacementPolicy(p) => super::placement::set_policy(kv, p),
        Command::SetHttpAddr { host, addr } => super::http_addrs::set(kv, host, addr),
        Command::Folder(c) => folders::apply(kv, at, c),
        Command::Host(c) => super::hosts::apply(kv, at, c),
        Command::Vm(c) => super::vms::apply(kv, at, c),
        Command::Spec(c) => super::specs::apply(kv, at, c),
        Command::Image(c) => super::images::apply(kv, at, c),
        Command::Pool(c) => super::pools::apply(kv, at, c),
        Command::JoinHost {
            token_id,
            secret_sha256,
            host,
            cert_fingerprint,
        } => {
            let out = cluster::consume_token(kv, at, token_id, secret_sha256, host)?;
            if matches!(out, Outcome::Applied(_)) {
                super::host_certs::put(kv, &host.name, cert_fingerprint)?;
            }
            Ok(out)
        }
        Command::SetHostCert { host, fingerprint } => super::host_certs::set(kv, host, fingerprint),
        Command::Credential(c) => super::credentials::apply(kv, c),
    }
}

fn remember(kv: &mut impl Kv, index: u64, id: &str, outcome: &Outcome) -> Result<(), KvError> {
    tables::put(kv, Table::Requests, id.as_bytes(), &(index, outcome))?;
    let mut order = index.to_be_bytes().to_vec();
    order.extend_from_slice(id.as_bytes());
    kv.put(Table::RequestOrder, &order, &[])?;
    let count: u64 =
        tables::get(kv, Table::Meta, "request count", meta::REQUEST_COUNT)?.unwrap_or(0) + 1;
    let excess = count.saturating_sub(REMEMBERED_REQUESTS);
    if excess > 0 {
        for (key, _) in kv.range(Table::RequestOrder, &[], None, excess as usize)? {
            kv.delete(Table::RequestOrder, &key)?;
            kv.delete(Table::Requests, &key[8..])?;
        }
    }
    tables::put(kv, Table::Meta, meta::REQUEST_COUNT, &(count - excess))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::HostRecord;
    use crate::state::command::Applied;
    use crate::state::kv::{KvRead, MemKv};

    pub(crate) fn host(name: &str, id: u64) -> HostRecord {
        HostRecord {
            id,
            name: name.into(),
            address: format!("127.0.0.1:{}", 7400 + id),
            joined_at: 1,
        }
    }

    pub(crate) fn init() -> MemKv {
        let mut kv = MemKv::default();
        let req = Request {
            by: String::new(),
            id: None,
            at: 1_000,
            cmd: Command::InitCluster {
                cluster_id: "c1".into(),
                host: host("h1", 1),
                max_voters: 3,
            },
        };
        let out = apply(&mut kv, 1, &req).unwrap();
        assert_eq!(
            out,
            Outcome::Applied(Applied::ClusterInitialized {
                cluster_id: "c1".into()
            })
        );
        kv
    }

    fn folder_req(id: Option<&str>, path: &str) -> Request {
        Request {
            by: String::new(),
            id: id.map(String::from),
            at: 2_000,
            cmd: Command::CreateFolder {
                path: path.into(),
                parents: false,
            },
        }
    }

    #[test]
    fn refuses_everything_before_bootstrap() {
        let mut kv = MemKv::default();
        let out = apply(&mut kv, 1, &folder_req(None, "/a")).unwrap();
        assert!(matches!(out, Outcome::Rejected(r) if r.kind == RejectKind::FailedPrecondition));
    }

    #[test]
    fn retried_request_returns_first_outcome_and_applies_once() {
        let mut kv = init();
        let first = apply(&mut kv, 2, &folder_req(Some("r1"), "/a")).unwrap();
        assert!(matches!(
            first,
            Outcome::Applied(Applied::FoldersCreated(_))
        ));
        let folders_before = kv.len(Table::Folders).unwrap();
        let retry = apply(&mut kv, 3, &folder_req(Some("r1"), "/a")).unwrap();
        assert_eq!(retry, first, "a retry must not turn into AlreadyExists");
        assert_eq!(kv.len(Table::Folders).unwrap(), folders_before);
        // A different id for the same path is a new request and is refused.
        let other = apply(&mut kv, 4, &folder_req(Some("r2"), "/a")).unwrap();
        assert!(matches!(other, Outcome::Rejected(r) if r.kind == RejectKind::AlreadyExists));
    }

    #[test]
    fn request_table_is_bounded_and_evicts_oldest() {
        let mut kv = init();
        let n = REMEMBERED_REQUESTS + 5;
        for i in 0..n {
            let req = Request {
                by: String::new(),
                id: Some(format!("q{i}")),
                at: 3,
                cmd: Command::Noop,
            };
            apply(&mut kv, 10 + i, &req).unwrap();
        }
        assert_eq!(kv.len(Table::Requests).unwrap(), REMEMBERED_REQUESTS);
        assert_eq!(kv.len(Table::RequestOrder).unwrap(), REMEMBERED_REQUESTS);
        assert!(kv.get(Table::Requests, b"q0").unwrap().is_none());
        assert!(kv.get(Table::Requests, b"q4").unwrap().is_none());
        assert!(kv.get(Table::Requests, b"q5").unwrap().is_some());
    }

    #[test]
    fn replaying_the_same_log_gives_identical_state() {
        let log: Vec<Request> = vec![
            Request {
                by: String::new(),
                id: None,
                at: 1,
                cmd: Command::InitCluster {
                    cluster_id: "c".into(),
                    host: host("h1", 1),
                    max_voters: 3,
                },
            },
            folder_req(Some("a"), "/a"),
            folder_req(Some("b"), "/a/b"),
            folder_req(Some("a"), "/a"),
            folder_req(None, "/missing/x"),
            Request {
                by: String::new(),
                id: Some("d".into()),
                at: 5,
                cmd: Command::DeleteFolder {
                    path: "/a/b".into(),
                },
            },
            Request {
                by: String::new(),
                id: None,
                at: 6,
                cmd: Command::CreateJoinToken {
                    token_id: "t".into(),
                    secret_sha256: "s".into(),
                    expires_at: 100,
                },
            },
            Request {
                by: String::new(),
                id: None,
                at: 7,
                cmd: Command::ConsumeJoinToken {
                    token_id: "t".into(),
                    secret_sha256: "s".into(),
                    host: host("h2", 2),
                },
            },
        ];
        let run = || {
            let mut kv = MemKv::default();
            let outs: Vec<Outcome> = log
                .iter()
                .enumerate()
                .map(|(i, r)| apply(&mut kv, i as u64 + 1, r).unwrap())
                .collect();
            (kv, outs)
        };
        let (a, oa) = run();
        let (b, ob) = run();
        assert_eq!(a, b);
        assert_eq!(oa, ob);
    }
}
