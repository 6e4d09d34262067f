//! Which hosts realise an image (pure). A local pool: every host that reaches it keeps its own
//! copy. A shared pool (NFS, or a `dir` marked shared): one copy serves every host, so exactly
//! one host fetches: among the hosts that reach the pool, in name order, the first that is
//! online and has not reported a failure; when all of them failed, the first online one (it
//! retries after its back-off). A host that goes offline or fails hands the fetch to the next
//! one; when it comes back first in line, the other stops. Two hosts may still briefly both
//! fetch (their liveness views differ for a moment); that is safe because each writes its own
//! `<file>.<host>.part` and publishing never replaces a file (see `files`).
//! Owns: `Candidates`, `fetches`. Uses: `model::{image, pool}`.

use crate::model::image::{HostImageStatus, Image};
use crate::model::pool::Pool;

/// The hosts that may hold a copy of an image: those whose last report says they reach its
/// pool and that the pool is not limited away from, in name order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates {
    pub shared: bool,
    pub hosts: Vec<String>,
}

impl Candidates {
    pub fn of(pool: &Pool) -> Candidates {
        let hosts = pool
            .hosts
            .iter()
            .filter(|(h, o)| o.reachable && pool.spec.allows(h))
            .map(|(h, _)| h.clone())
            .collect();
        Candidates {
            shared: pool.spec.kind.is_shared(),
            hosts,
        }
    }
}

/// The one host that fetches an image on a shared pool, or `None` when no candidate is online.
pub fn shared_fetcher<'a>(
    c: &'a Candidates,
    image: &Image,
    online: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    let failed = |h: &str| {
        matches!(
            image.hosts.get(h).map(|r| &r.status),
            Some(HostImageStatus::Failed { .. })
        )
    };
    let mut up = c.hosts.iter().map(String::as_str).filter(|h| online(h));
    let first_up = up.clone().next();
    up.find(|h| !failed(h)).or(first_up)
}

/// True if host `me` should hold its own copy (local pool) or fetch the shared one.
/// `online` is the cluster's liveness view; `me` always counts as online.
pub fn fetches(c: &Candidates, image: &Image, me: &str, online: impl Fn(&str) -> bool) -> bool {
    if !c.hosts.iter().any(|h| h == me) {
        return false;
    }
    if !c.shared {
        return true;
    }
    shared_fetcher(c, image, |h| h == me || online(h)) == Some(me)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::image::{HostImage, ImageFormat, ImageKind, ImageSpec};
    use crate::model::pool::{PoolKind, PoolObservation, PoolSpec};
    use std::collections::BTreeMap;

    fn pool(shared: bool, reach: &[(&str, bool)], allowed: &[&str]) -> Pool {
        Pool {
            spec: PoolSpec {
                name: "p".into(),
                kind: PoolKind::Dir {
                    path: "/p".into(),
                    shared,
                },
                hosts: allowed.iter().map(|h| h.to_string()).collect(),
            },
            created_at: 1,
            hosts: reach
                .iter()
                .map(|(h, r)| {
                    (
                        h.to_string(),
                        PoolObservation {
                            reachable: *r,
                            reason: String::new(),
                            capacity_mib: 1,
                            free_mib: 1,
                            at: 1,
                        },
                    )
                })
                .collect(),
        }
    }

    fn image(reports: &[(&str, HostImageStatus)]) -> Image {
        Image {
            spec: ImageSpec {
                name: "img".into(),
                kind: ImageKind::Cloud,
                os: String::new(),
                format: ImageFormat::Qcow2,
                url: "http://x.org/a".into(),
                sha256: None,
                pool: "p".into(),
            },
            size_mib: None,
            created_at: 1,
            hosts: reports
                .iter()
                .map(|(h, s)| {
                    (
                        h.to_string(),
                        HostImage {
                            status: s.clone(),
                            at: 1,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn failed() -> HostImageStatus {
        HostImageStatus::Failed {
            reason: "HTTP 500".into(),
        }
    }

    fn who(p: &Pool, i: &Image, online: &[&str]) -> Vec<&'static str> {
        ["h1", "h2", "h3"]
            .into_iter()
            .filter(|me| fetches(&Candidates::of(p), i, me, |h| online.contains(&h)))
            .collect()
    }

    #[test]
    fn a_local_pool_is_fetched_by_every_host_that_reaches_it() {
        let p = pool(false, &[("h1", true), ("h2", false), ("h3", true)], &[]);
        assert_eq!(who(&p, &image(&[]), &["h1", "h2", "h3"]), ["h1", "h3"]);
        let limited = pool(false, &[("h1", true), ("h2", true), ("h3", true)], &["h2"]);
        assert_eq!(who(&limited, &image(&[]), &["h1", "h2", "h3"]), ["h2"]);
    }

    #[test]
    fn a_shared_pool_is_fetched_by_one_host() {
        let all = ["h1", "h2", "h3"];
        let p = pool(true, &[("h1", true), ("h2", true), ("h3", true)], &[]);
        // The first by name.
        assert_eq!(who(&p, &image(&[]), &all), ["h1"]);
        // The first is offline (as everyone but itself sees it): the next takes over.
        let c = Candidates::of(&p);
        let i = image(&[]);
        let online = |h: &str| h != "h1";
        assert!(!fetches(&c, &i, "h3", online));
        assert!(fetches(&c, &i, "h2", online));
        // A failure hands it on; once everyone failed, the first online one retries.
        assert_eq!(who(&p, &image(&[("h1", failed())]), &all), ["h2"]);
        let all_failed = image(&[("h1", failed()), ("h2", failed()), ("h3", failed())]);
        assert_eq!(who(&p, &all_failed, &all), ["h1"]);
        // h1 came back and retries (downloading again): h2, which had taken over, stops.
        let back = image(&[
            (
                "h1",
                HostImageStatus::Downloading {
                    percent: 1,
                    bytes_done: 1,
                    bytes_total: 100,
                },
            ),
            ("h2", failed()),
        ]);
        assert_eq!(who(&p, &back, &all), ["h1"]);
        // Only hosts that reach the pool count.
        let p = pool(true, &[("h1", false), ("h2", true), ("h3", true)], &[]);
        assert_eq!(who(&p, &image(&[]), &all), ["h2"]);
        // Views that disagree (each sees only itself): both fetch, which `files` makes safe.
        assert_eq!(who(&p, &image(&[]), &[]), ["h2", "h3"]);
    }
}
