//! Cluster-level commands: the first entry (`InitCluster`), join tokens, host records.
//! Raft membership itself is changed by the leader through openraft; these records are what
//! the rest of the state (and users) see. Token checks use the time fixed in the request.
//! Removing a host also drops what is kept per host in other tables (inventory, pool and image
//! reports, pool limits), so a later host of the same name starts clean.

use super::command::{Applied, Outcome, RejectKind};
use super::folders;
use super::kv::{Kv, KvError, KvRead, Table};
use super::tables::{self, meta, ClusterInfo, TokenRecord};
use crate::model::{names, HostRecord, UnixMillis};

/// Allowed voter counts: odd, so a quorum is a strict majority.
pub const VOTER_COUNTS: [u32; 4] = [1, 3, 5, 7];

pub fn init(
    kv: &mut impl Kv,
    at: UnixMillis,
    cluster_id: &str,
    host: &HostRecord,
    max_voters: u32,
) -> Result<Outcome, KvError> {
    if let Some(info) = tables::cluster_info(kv)? {
        return Ok(Outcome::reject(
            RejectKind::AlreadyExists,
            format!("this host already belongs to cluster {}", info.id),
        ));
    }
    if !VOTER_COUNTS.contains(&max_voters) {
        return Ok(Outcome::reject(
            RejectKind::InvalidArgument,
            format!("max_voters must be one of 1, 3, 5, 7 (got {max_voters})"),
        ));
    }
    if let Err(e) = names::validate_label("host name", &host.name) {
        return Ok(Outcome::reject(RejectKind::InvalidArgument, e.to_string()));
    }
    tables::put(kv, Table::Meta, meta::SCHEMA, &tables::SCHEMA_VERSION)?;
    tables::put(
        kv,
        Table::Meta,
        meta::CLUSTER,
        &ClusterInfo {
            id: cluster_id.into(),
            created_at: at,
            max_voters,
        },
    )?;
    tables::put(kv, Table::Hosts, host.name.as_bytes(), host)?;
    folders::create_defaults(kv, at)?;
    super::specs::create_defaults(kv, at)?;
    Ok(Outcome::Applied(Applied::ClusterInitialized {
        cluster_id: cluster_id.into(),
    }))
}

pub fn create_token(
    kv: &mut impl Kv,
    at: UnixMillis,
    id: &str,
    secret_sha256: &str,
    expires_at: UnixMillis,
) -> Result<Outcome, KvError> {
    prune_tokens(kv, at)?;
    if expires_at <= at {
        return Ok(Outcome::reject(
            RejectKind::InvalidArgument,
            "join token lifetime must be positive",
        ));
    }
    let rec = TokenRecord {
        id: id.into(),
        secret_sha256: secret_sha256.into(),
        expires_at,
        created_at: at,
        used_by: None,
    };
    tables::put(kv, Table::Tokens, id.as_bytes(), &rec)?;
    Ok(Outcome::Applied(Applied::TokenCreated {
        token_id: id.into(),
    }))
}

pub fn consume_token(
    kv: &mut impl Kv,
    at: UnixMillis,
    id: &str,
    secret_sha256: &str,
    host: &HostRecord,
) -> Result<Outcome, KvError> {
    let Some(mut tok) = tables::get::<TokenRecord>(kv, Table::Tokens, "join token", id.as_bytes())?
    else {
        return Ok(Outcome::reject(
            RejectKind::PermissionDenied,
            "join token is not known to this cluster (forged, made for another cluster, or expired long ago)",
        ));
    };
    if tok.secret_sha256 != secret_sha256 {
        return Ok(Outcome::reject(
            RejectKind::PermissionDenied,
            "join token secret does not match (forged or altered token)",
        ));
    }
    if let Some(by) = &tok.used_by {
        return Ok(Outcome::reject(
            RejectKind::FailedPrecondition,
            format!("join token was already used by host {by}; tokens are one-time, make a new one with `quantix cluster token`"),
        ));
    }
    if at >= tok.expires_at {
        return Ok(Outcome::reject(
            RejectKind::FailedPrecondition,
            format!(
                "join token expired at {}; make a new one with `quantix cluster token`",
                rfc3339(tok.expires_at)
            ),
        ));
    }
    if let Err(e) = names::validate_label("host name", &host.name) {
        return Ok(Outcome::reject(RejectKind::InvalidArgument, e.to_string()));
    }
    if tables::host(kv, &host.name)?.is_some() {
        return Ok(Outcome::reject(
            RejectKind::AlreadyExists,
            format!("a host named {} is already a member", host.name),
        ));
    }
    if let Some(other) = tables::hosts(kv)?.into_iter().find(|h| h.id == host.id) {
        return Ok(Outcome::reject(
            RejectKind::AlreadyExists,
            format!(
                "host id {} is already used by member {}",
                host.id, other.name
            ),
        ));
    }
    tok.used_by = Some(host.name.clone());
    tables::put(kv, Table::Tokens, id.as_bytes(), &tok)?;
    let rec = HostRecord {
        joined_at: at,
        ..host.clone()
    };
    tables::put(kv, Table::Hosts, host.name.as_bytes(), &rec)?;
    Ok(Outcome::Applied(Applied::HostJoined(rec)))
}

/// Why host `name` cannot be removed yet, or `None`: VMs placed on or pinned to it, or a pool
/// limited to it alone. The leader also asks this before it changes Raft membership, so a
/// refused removal changes nothing; `remove_host` asks again in apply.
pub fn removal_refusal(kv: &impl KvRead, name: &str) -> Result<Option<Outcome>, KvError> {
    if let Some(refusal) =
        super::refs::refuse_if_referenced(kv, super::refs::Ref::Host(name), |vms| {
            format!("host {name} still holds {vms}: move or delete them first")
        })?
    {
        return Ok(Some(refusal));
    }
    // Taking the last host out of a limit would turn it into "every host": refuse instead.
    if let Some(pool) = super::pools::list(kv)?
        .into_iter()
        .find(|p| p.spec.hosts == [name])
    {
        return Ok(Some(Outcome::reject(
            RejectKind::FailedPrecondition,
            format!(
                "pool {} is limited to host {name} only; change its hosts first (`quantix pool set-hosts {} ...`)",
                pool.spec.name, pool.spec.name
            ),
        )));
    }
    Ok(None)
}

/// The old name of `removal_refusal`, still called by `cluster::membership`; it answers the
/// same, so the leader's check and apply's check cannot drift apart.
pub fn vms_hold_host(kv: &impl KvRead, name: &str) -> Result<Option<Outcome>, KvError> {
    removal_refusal(kv, name)
}

/// Removes the host's record and everything kept per host: its inventory, its pool and image
/// reports, and its name in pool limits (a limit naming only this host refuses the removal).
pub fn remove_host(kv: &mut impl Kv, name: &str) -> Result<Outcome, KvError> {
    let Some(host) = tables::host(kv, name)? else {
        return Ok(Outcome::reject(
            RejectKind::NotFound,
            format!("host {name} is not a member"),
        ));
    };
    if let Some(refusal) = removal_refusal(kv, name)? {
        return Ok(refusal);
    }
    if tables::hosts(kv)?.len() <= 1 {
        return Ok(Outcome::reject(
            RejectKind::FailedPrecondition,
            format!("host {name} is the last member and cannot be removed"),
        ));
    }
    // Every refusal is above this line: nothing is written before it.
    kv.delete(Table::Hosts, name.as_bytes())?;
    super::hosts::forget(kv, name)?;
    super::http_addrs::forget(kv, name)?;
    super::host_certs::forget(kv, name)?;
    for mut pool in super::pools::list(kv)? {
        let observed = pool.hosts.remove(name).is_some();
        let before = pool.spec.hosts.len();
        pool.spec.hosts.retain(|h| h != name);
        if observed || pool.spec.hosts.len() != before {
            tables::put(kv, Table::Pools, pool.spec.name.as_bytes(), &pool)?;
        }
    }
    for mut image in super::images::list(kv, None)? {
        if image.hosts.remove(name).is_some() {
            tables::put(kv, Table::Images, image.spec.name.as_bytes(), &image)?;
        }
    }
    Ok(Outcome::Applied(Applied::HostRemoved(host)))
}

/// Drops tokens that expired (used or not), so the table stays small.
fn prune_tokens(kv: &mut impl Kv, at: UnixMillis) -> Result<(), KvError> {
    for (key, value) in kv.prefix(Table::Tokens, b"")? {
        let tok: TokenRecord = super::codec::decode("join token", &value)?;
        if tok.expires_at <= at {
            kv.delete(Table::Tokens, &key)?;
        }
    }
    Ok(())
}

pub fn rfc3339(ms: UnixMillis) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::apply::tests::{host, init as fresh};
    use crate::state::kv::KvRead;

    fn kind(out: &Outcome) -> Option<RejectKind> {
        match out {
            Outcome::Rejected(r) => Some(r.kind),
            Outcome::Applied(_) => None,
        }
    }

    #[test]
    fn init_twice_is_refused() {
        let mut kv = fresh();
        let out = init_again(&mut kv);
        assert_eq!(kind(&out), Some(RejectKind::AlreadyExists));
    }

    fn init_again(kv: &mut impl Kv) -> Outcome {
        init_fn(kv, "c2", 3)
    }

    fn init_fn(kv: &mut impl Kv, id: &str, voters: u32) -> Outcome {
        super::init(kv, 1, id, &host("h9", 9), voters).unwrap()
    }

    #[test]
    fn max_voters_must_be_odd_and_small() {
        for (n, ok) in [
            (1, true),
            (3, true),
            (5, true),
            (7, true),
            (0, false),
            (2, false),
            (9, false),
        ] {
            let mut kv = crate::state::kv::MemKv::default();
            assert_eq!(kind(&init_fn(&mut kv, "c", n)).is_none(), ok, "{n}");
        }
    }

    #[test]
    fn token_table() {
        let mut kv = fresh();
        create_token(&mut kv, 100, "t1", "s1", 1_000).unwrap();
        create_token(&mut kv, 100, "t2", "s2", 200).unwrap();
        // (token id, secret, host name, time, expected refusal, message fragment)
        type Case<'a> = (&'a str, &'a str, &'a str, u64, Option<RejectKind>, &'a str);
        let cases: Vec<Case> = vec![
            (
                "nope",
                "s1",
                "h2",
                150,
                Some(RejectKind::PermissionDenied),
                "not known",
            ),
            (
                "t1",
                "bad",
                "h2",
                150,
                Some(RejectKind::PermissionDenied),
                "does not match",
            ),
            (
                "t2",
                "s2",
                "h2",
                250,
                Some(RejectKind::FailedPrecondition),
                "expired at",
            ),
            (
                "t1",
                "s1",
                "H2",
                150,
                Some(RejectKind::InvalidArgument),
                "host name",
            ),
            (
                "t1",
                "s1",
                "h1",
                150,
                Some(RejectKind::AlreadyExists),
                "already a member",
            ),
            ("t1", "s1", "h2", 150, None, ""),
            (
                "t1",
                "s1",
                "h3",
                160,
                Some(RejectKind::FailedPrecondition),
                "already used by host h2",
            ),
        ];
        for (i, (tok, secret, name, at, want, msg)) in cases.into_iter().enumerate() {
            let out = consume_token(&mut kv, at, tok, secret, &host(name, 10 + i as u64)).unwrap();
            assert_eq!(kind(&out), want, "case {i}: {out:?}");
            if let Outcome::Rejected(r) = out {
                assert!(r.message.contains(msg), "case {i}: {}", r.message);
            }
        }
        assert!(tables::host(&kv, "h2").unwrap().is_some());
    }

    #[test]
    fn expired_tokens_are_pruned_on_next_create() {
        let mut kv = fresh();
        create_token(&mut kv, 100, "old", "s", 200).unwrap();
        create_token(&mut kv, 300, "new", "s", 400).unwrap();
        assert!(kv.get(Table::Tokens, b"old").unwrap().is_none());
        assert!(kv.get(Table::Tokens, b"new").unwrap().is_some());
    }

    #[test]
    fn remove_host_rules() {
        let mut kv = fresh();
        assert_eq!(
            kind(&remove_host(&mut kv, "h1").unwrap()),
            Some(RejectKind::FailedPrecondition)
        );
        assert_eq!(
            kind(&remove_host(&mut kv, "zz").unwrap()),
            Some(RejectKind::NotFound)
        );
        create_token(&mut kv, 1, "t", "s", 10).unwrap();
        consume_token(&mut kv, 2, "t", "s", &host("h2", 2)).unwrap();
        assert!(kind(&remove_host(&mut kv, "h2").unwrap()).is_none());
        assert!(tables::host(&kv, "h2").unwrap().is_none());
    }

    /// h1 (bootstrap) plus h2 and h3 joined; pool `only2` limited to h2, `two` to h2 and h3,
    /// `all` unlimited; each has a report from h2, and image `img` has h2's copy.
    fn with_reports_from_h2() -> crate::state::MemKv {
        use crate::model::image::{HostImageStatus, ImageFormat, ImageKind, ImageSpec};
        use crate::model::pool::{PoolKind, PoolSpec};
        use crate::state::images::{self, ImageCommand};
        use crate::state::pools::{self, PoolCommand};
        let mut kv = fresh();
        create_token(&mut kv, 1, "t", "s", 10).unwrap();
        consume_token(&mut kv, 2, "t", "s", &host("h2", 2)).unwrap();
        create_token(&mut kv, 3, "u", "s", 10).unwrap();
        consume_token(&mut kv, 4, "u", "s", &host("h3", 3)).unwrap();
        for (pool, hosts) in [
            ("only2", vec!["h2"]),
            ("two", vec!["h2", "h3"]),
            ("all", vec![]),
        ] {
            let spec = PoolSpec {
                name: pool.into(),
                kind: PoolKind::Dir {
                    path: format!("/pools/{pool}"),
                    shared: false,
                },
                hosts: hosts.into_iter().map(String::from).collect(),
            };
            let out = pools::apply(&mut kv, 5, &PoolCommand::CreatePool(spec)).unwrap();
            assert!(kind(&out).is_none(), "{out:?}");
            let out = pools::apply(
                &mut kv,
                6,
                &PoolCommand::Observe {
                    pool: pool.into(),
                    host: "h2".into(),
                    reachable: true,
                    reason: String::new(),
                    capacity_mib: 10,
                    free_mib: 5,
                },
            )
            .unwrap();
            assert!(kind(&out).is_none(), "{out:?}");
        }
        let spec = ImageSpec {
            name: "img".into(),
            kind: ImageKind::Iso,
            os: String::new(),
            format: ImageFormat::Iso,
            url: "https://example.com/x.iso".into(),
            sha256: None,
            pool: "all".into(),
        };
        images::apply(&mut kv, 7, &ImageCommand::CreateImage(spec)).unwrap();
        for h in ["h2", "h3"] {
            let out = images::apply(
                &mut kv,
                8,
                &ImageCommand::Observe {
                    image: "img".into(),
                    host: h.into(),
                    status: HostImageStatus::Ready,
                },
            )
            .unwrap();
            assert!(kind(&out).is_none(), "{out:?}");
        }
        kv
    }

    #[test]
    fn remove_host_is_refused_before_any_write_while_a_pool_is_limited_to_it_alone() {
        let mut kv = with_reports_from_h2();
        let before = kv.clone();
        let msg = "pool only2 is limited to host h2 only; change its hosts first";
        // The leader asks first, before it touches Raft membership...
        match removal_refusal(&kv, "h2").unwrap() {
            Some(Outcome::Rejected(r)) => {
                assert_eq!(r.kind, RejectKind::FailedPrecondition);
                assert!(r.message.contains(msg), "{}", r.message);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            vms_hold_host(&kv, "h2").unwrap(),
            removal_refusal(&kv, "h2").unwrap()
        );
        assert_eq!(removal_refusal(&kv, "h3").unwrap(), None);
        // ...and apply refuses the same way, changing nothing.
        match remove_host(&mut kv, "h2").unwrap() {
            Outcome::Rejected(r) => assert!(r.message.contains(msg), "{}", r.message),
            other => panic!("{other:?}"),
        }
        assert_eq!(kv, before);
    }

    #[test]
    fn remove_host_drops_its_reports_and_its_name_in_pool_limits() {
        use crate::state::{images, pools};
        let mut kv = with_reports_from_h2();
        let out = pools::apply(
            &mut kv,
            9,
            &pools::PoolCommand::SetHosts {
                pool: "only2".into(),
                hosts: vec!["h1".into(), "h2".into()],
            },
        )
        .unwrap();
        assert!(kind(&out).is_none(), "{out:?}");
        assert!(kind(&remove_host(&mut kv, "h2").unwrap()).is_none());
        let limits: Vec<(String, Vec<String>, usize)> = pools::list(&kv)
            .unwrap()
            .into_iter()
            .map(|p| (p.spec.name, p.spec.hosts, p.hosts.len()))
            .collect();
        assert_eq!(
            limits,
            [
                ("all".to_string(), vec![], 0),
                ("only2".to_string(), vec!["h1".to_string()], 0),
                ("two".to_string(), vec!["h3".to_string()], 0),
            ]
        );
        let img = images::get(&kv, "img").unwrap().unwrap();
        assert_eq!(img.ready_on(), ["h3"]);
        // A new host of the same name starts with no reports.
        create_token(&mut kv, 20, "v", "s", 30).unwrap();
        consume_token(&mut kv, 21, "v", "s", &host("h2", 22)).unwrap();
        assert!(pools::get(&kv, "all").unwrap().unwrap().hosts.is_empty());
    }
}
