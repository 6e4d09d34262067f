//! Storage pools: where disks and images live. A pool is a directory (`dir`, local to each
//! host unless marked shared) or an NFS export mounted on every host (`nfs`, always shared).
//! Owns: the pool record, what each host last observed of it, the hosts it is limited to
//! (like Proxmox's per-storage `nodes`), and the validation of what a user asks for.
//! May use: `model::names`. Realising a pool on a host is the agent's job; this
//! module only says what the pool is and what hosts reported.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use thiserror::Error;

use super::names::{self, NameError};
use super::UnixMillis;

/// Where an NFS pool is mounted when the user does not say: one directory per pool, so two
/// pools never share a mount point.
pub const DEFAULT_MOUNT_ROOT: &str = "/var/lib/quantix/mnt";

/// Longest path accepted (Linux `PATH_MAX`).
pub const MAX_PATH: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PoolError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("{field} '{value}' must be an absolute path (starting with '/')")]
    NotAbsolute { field: &'static str, value: String },
    #[error("{field} '{value}' {rule}")]
    BadPath {
        field: &'static str,
        value: String,
        rule: &'static str,
    },
    #[error("nfs server '{value}' must be a host name (such as nas.example.com) or an IP address")]
    BadServer { value: String },
    #[error("{field} is required for pool type {pool_type}")]
    Missing {
        field: &'static str,
        pool_type: &'static str,
    },
    #[error("{field} does not apply to pool type {pool_type}")]
    NotApplicable {
        field: &'static str,
        pool_type: &'static str,
    },
    #[error("pool type '{value}' is not one of dir, nfs")]
    BadType { value: String },
}

/// The two kinds of pool, without their settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolType {
    Dir,
    Nfs,
}

impl PoolType {
    pub fn as_str(self) -> &'static str {
        match self {
            PoolType::Dir => "dir",
            PoolType::Nfs => "nfs",
        }
    }

    pub fn parse(s: &str) -> Result<PoolType, PoolError> {
        match s {
            "dir" => Ok(PoolType::Dir),
            "nfs" => Ok(PoolType::Nfs),
            other => Err(PoolError::BadType {
                value: other.to_string(),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolKind {
    /// A directory. `shared`: the same storage is visible at `path` on every host (a cluster
    /// file system or a mount made outside Quantix); otherwise each host has its own.
    Dir { path: String, shared: bool },
    /// An NFS export, mounted by each host at `mount_point`.
    Nfs {
        server: String,
        export: String,
        mount_point: String,
    },
}

impl PoolKind {
    pub fn pool_type(&self) -> PoolType {
        match self {
            PoolKind::Dir { .. } => PoolType::Dir,
            PoolKind::Nfs { .. } => PoolType::Nfs,
        }
    }

    /// True if every host sees the same bytes (NFS always does).
    pub fn is_shared(&self) -> bool {
        match self {
            PoolKind::Dir { shared, .. } => *shared,
            PoolKind::Nfs { .. } => true,
        }
    }

    /// The directory on a host where the pool's files are.
    pub fn local_path(&self) -> &str {
        match self {
            PoolKind::Dir { path, .. } => path,
            PoolKind::Nfs { mount_point, .. } => mount_point,
        }
    }
}

/// What a user asks for: a validated, normalised pool definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    pub name: String,
    pub kind: PoolKind,
    /// The only hosts that may use the pool, sorted and without duplicates; empty means every
    /// host. (Not to be confused with `Pool::hosts`, the hosts' observations.)
    pub hosts: Vec<String>,
}

/// The fields of a create request as they arrive (flat, all optional), before they are
/// checked against the pool type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolFields {
    pub path: String,
    pub shared: bool,
    pub server: String,
    pub export: String,
    pub mount_point: String,
    /// Host names the pool is limited to; empty for every host.
    pub hosts: Vec<String>,
}

impl PoolSpec {
    /// Checks the fields against the pool type and each field's rule; fills in the default
    /// mount point and normalises paths (no trailing '/').
    pub fn new(name: &str, ty: PoolType, f: PoolFields) -> Result<PoolSpec, PoolError> {
        names::validate_label("pool name", name)?;
        let pool_type = ty.as_str();
        let present = |field: &'static str, v: &str| -> Result<(), PoolError> {
            if v.trim().is_empty() {
                return Err(PoolError::Missing { field, pool_type });
            }
            Ok(())
        };
        let absent = |field: &'static str, v: &str| -> Result<(), PoolError> {
            if !v.is_empty() {
                return Err(PoolError::NotApplicable { field, pool_type });
            }
            Ok(())
        };
        let kind = match ty {
            PoolType::Dir => {
                present("path", &f.path)?;
                absent("server", &f.server)?;
                absent("export", &f.export)?;
                absent("mount point", &f.mount_point)?;
                PoolKind::Dir {
                    path: validate_path("path", &f.path, false)?,
                    shared: f.shared,
                }
            }
            PoolType::Nfs => {
                absent("path", &f.path)?;
                present("server", &f.server)?;
                present("export", &f.export)?;
                let mount_point = if f.mount_point.is_empty() {
                    format!("{DEFAULT_MOUNT_ROOT}/{name}")
                } else {
                    validate_path("mount point", &f.mount_point, false)?
                };
                PoolKind::Nfs {
                    server: validate_server(&f.server)?,
                    // An NFSv4 export may be the server's pseudo-root "/".
                    export: validate_path("export", &f.export, true)?,
                    mount_point,
                }
            }
        };
        Ok(PoolSpec {
            name: name.to_string(),
            kind,
            hosts: validate_hosts(&f.hosts)?,
        })
    }

    /// True if `host` may use the pool.
    pub fn allows(&self, host: &str) -> bool {
        self.hosts.is_empty() || self.hosts.iter().any(|h| h == host)
    }

    /// Why a host outside the restriction cannot use the pool, e.g. "pool nas is limited to
    /// hosts h1, h2" (only meaningful when `hosts` is not empty).
    pub fn limited_reason(&self) -> String {
        let noun = if self.hosts.len() == 1 {
            "host"
        } else {
            "hosts"
        };
        format!(
            "pool {} is limited to {noun} {}",
            self.name,
            self.hosts.join(", ")
        )
    }

    /// Re-checks a spec that came through the log (apply does not trust the proposer).
    pub fn validate(&self) -> Result<PoolSpec, PoolError> {
        let f = match &self.kind {
            PoolKind::Dir { path, shared } => PoolFields {
                path: path.clone(),
                shared: *shared,
                hosts: self.hosts.clone(),
                ..PoolFields::default()
            },
            PoolKind::Nfs {
                server,
                export,
                mount_point,
            } => PoolFields {
                server: server.clone(),
                export: export.clone(),
                mount_point: mount_point.clone(),
                hosts: self.hosts.clone(),
                ..PoolFields::default()
            },
        };
        PoolSpec::new(&self.name, self.kind.pool_type(), f)
    }
}

/// What one host last reported about a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolObservation {
    pub reachable: bool,
    /// Why it is not reachable (empty when it is).
    pub reason: String,
    pub capacity_mib: u64,
    pub free_mib: u64,
    /// When the report was committed.
    pub at: UnixMillis,
}

/// A pool as stored: the definition plus each host's last observation, by host name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub spec: PoolSpec,
    pub created_at: UnixMillis,
    pub hosts: BTreeMap<String, PoolObservation>,
}

impl Pool {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Hosts whose last report says they reach the pool and that may use it, in name order.
    pub fn reachable_from(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|(h, o)| o.reachable && self.spec.allows(h))
            .map(|(h, _)| h.as_str())
            .collect()
    }
}

/// Checks each name of a host restriction and returns them sorted, without duplicates.
pub fn validate_hosts(hosts: &[String]) -> Result<Vec<String>, PoolError> {
    for h in hosts {
        names::validate_label("host name", h)?;
    }
    let mut out = hosts.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Validates an absolute path and returns it without a trailing '/'. `allow_root`: whether
/// "/" itself is acceptable (it is for an NFS export, never for a directory Quantix writes in).
pub fn validate_path(
    field: &'static str,
    value: &str,
    allow_root: bool,
) -> Result<String, PoolError> {
    let bad = |rule| PoolError::BadPath {
        field,
        value: value.to_string(),
        rule,
    };
    if value.is_empty() {
        return Err(PoolError::Name(NameError::Empty { field }));
    }
    if !value.starts_with('/') {
        return Err(PoolError::NotAbsolute {
            field,
            value: value.to_string(),
        });
    }
    if value.len() > MAX_PATH {
        return Err(bad("is longer than 4096 bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(bad("must not contain control characters"));
    }
    let trimmed = if value.len() > 1 {
        value.trim_end_matches('/')
    } else {
        value
    };
    if trimmed.is_empty() || trimmed == "/" {
        if allow_root {
            return Ok("/".into());
        }
        return Err(bad("must not be the root directory '/'"));
    }
    for seg in trimmed[1..].split('/') {
        if seg.is_empty() {
            return Err(bad("has an empty segment (double '/')"));
        }
        if seg == "." || seg == ".." {
            return Err(bad("must not contain '.' or '..' segments"));
        }
    }
    Ok(trimmed.to_string())
}

/// An NFS server: an IP address (IPv6 with or without brackets) or a DNS host name
/// (case-insensitive labels, stored lower-case). No port: NFS finds its ports itself.
pub fn validate_server(value: &str) -> Result<String, PoolError> {
    let bad = || PoolError::BadServer {
        value: value.to_string(),
    };
    let unbracketed = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    if value.is_empty() || value.len() > 253 {
        return Err(bad());
    }
    let lower = value.to_ascii_lowercase();
    for label in lower.trim_end_matches('.').split('.') {
        if names::validate_label("nfs server", label).is_err() {
            return Err(bad());
        }
    }
    Ok(lower.trim_end_matches('.').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(path: &str) -> PoolFields {
        PoolFields {
            path: path.into(),
            ..PoolFields::default()
        }
    }

    fn nfs(server: &str, export: &str, mount: &str) -> PoolFields {
        PoolFields {
            server: server.into(),
            export: export.into(),
            mount_point: mount.into(),
            ..PoolFields::default()
        }
    }

    #[test]
    fn dir_pools() {
        let p =
            PoolSpec::new("local", PoolType::Dir, dir("/var/lib/quantix/pools/local/")).unwrap();
        assert_eq!(
            p.kind,
            PoolKind::Dir {
                path: "/var/lib/quantix/pools/local".into(),
                shared: false
            }
        );
        assert!(!p.kind.is_shared());
        let shared = PoolFields {
            shared: true,
            ..dir("/gfs")
        };
        assert!(PoolSpec::new("gfs", PoolType::Dir, shared)
            .unwrap()
            .kind
            .is_shared());
    }

    #[test]
    fn nfs_pools_default_their_mount_point_and_are_shared() {
        let p = PoolSpec::new("nas", PoolType::Nfs, nfs("NAS.example.com", "/srv/vm", "")).unwrap();
        assert_eq!(
            p.kind,
            PoolKind::Nfs {
                server: "nas.example.com".into(),
                export: "/srv/vm".into(),
                mount_point: "/var/lib/quantix/mnt/nas".into()
            }
        );
        assert!(p.kind.is_shared());
        assert_eq!(p.kind.local_path(), "/var/lib/quantix/mnt/nas");
        let p = PoolSpec::new("n6", PoolType::Nfs, nfs("[fd00::1]", "/", "/mnt/n6")).unwrap();
        assert_eq!(
            p.kind,
            PoolKind::Nfs {
                server: "fd00::1".into(),
                export: "/".into(),
                mount_point: "/mnt/n6".into()
            }
        );
        assert_eq!(p.validate().unwrap(), p, "validation is idempotent");
    }

    #[test]
    fn refusals_name_the_field() {
        let cases: Vec<(&str, PoolType, PoolFields, &str)> = vec![
            ("Bad", PoolType::Dir, dir("/x"), "pool name 'Bad'"),
            (
                "p",
                PoolType::Dir,
                dir(""),
                "path is required for pool type dir",
            ),
            (
                "p",
                PoolType::Dir,
                dir("rel/x"),
                "path 'rel/x' must be an absolute path",
            ),
            (
                "p",
                PoolType::Dir,
                dir("/"),
                "path '/' must not be the root",
            ),
            ("p", PoolType::Dir, dir("/a/../b"), "'..' segments"),
            ("p", PoolType::Dir, dir("/a//b"), "empty segment"),
            ("p", PoolType::Dir, dir("/a\nb"), "control characters"),
            (
                "p",
                PoolType::Dir,
                PoolFields {
                    server: "x".into(),
                    ..dir("/x")
                },
                "server does not apply to pool type dir",
            ),
            (
                "p",
                PoolType::Nfs,
                nfs("", "/srv", ""),
                "server is required for pool type nfs",
            ),
            ("p", PoolType::Nfs, nfs("nas", "", ""), "export is required"),
            (
                "p",
                PoolType::Nfs,
                nfs("bad_host!", "/srv", ""),
                "nfs server 'bad_host!'",
            ),
            (
                "p",
                PoolType::Nfs,
                nfs("nas:2049", "/srv", ""),
                "nfs server",
            ),
            (
                "p",
                PoolType::Nfs,
                nfs("nas", "srv", ""),
                "export 'srv' must be an absolute",
            ),
            (
                "p",
                PoolType::Nfs,
                nfs("nas", "/srv", "mnt"),
                "mount point 'mnt'",
            ),
            (
                "p",
                PoolType::Nfs,
                PoolFields {
                    path: "/x".into(),
                    ..nfs("nas", "/srv", "")
                },
                "path does not apply to pool type nfs",
            ),
            (
                "p",
                PoolType::Dir,
                PoolFields {
                    hosts: vec!["h1".into(), "H2".into()],
                    ..dir("/x")
                },
                "host name 'H2'",
            ),
            (
                "p",
                PoolType::Nfs,
                PoolFields {
                    hosts: vec![String::new()],
                    ..nfs("nas", "/srv", "")
                },
                "host name",
            ),
        ];
        for (name, ty, fields, msg) in cases {
            let e = PoolSpec::new(name, ty, fields.clone())
                .expect_err(&format!("{fields:?} must be refused"))
                .to_string();
            assert!(e.contains(msg), "{fields:?}: {e}");
        }
        assert!(PoolType::parse("lvm")
            .unwrap_err()
            .to_string()
            .contains("pool type 'lvm'"));
    }

    #[test]
    fn host_restrictions_are_sorted_and_deduplicated() {
        // (hosts given, stored, allows h1, allows h3)
        let cases: Vec<(&[&str], &[&str], bool, bool)> = vec![
            (&[], &[], true, true),
            (&["h2", "h1", "h2"], &["h1", "h2"], true, false),
            (&["h3"], &["h3"], false, true),
        ];
        for (given, stored, h1, h3) in cases {
            let f = PoolFields {
                hosts: given.iter().map(|h| h.to_string()).collect(),
                ..dir("/p")
            };
            let p = PoolSpec::new("p", PoolType::Dir, f).unwrap();
            assert_eq!(p.hosts, stored, "{given:?}");
            assert_eq!((p.allows("h1"), p.allows("h3")), (h1, h3), "{given:?}");
            assert_eq!(p.validate().unwrap(), p, "validation is idempotent");
        }
        let one = PoolSpec::new(
            "nas",
            PoolType::Nfs,
            PoolFields {
                hosts: vec!["h2".into()],
                ..nfs("nas", "/srv", "")
            },
        )
        .unwrap();
        assert_eq!(one.limited_reason(), "pool nas is limited to host h2");
        let two = PoolSpec {
            hosts: vec!["a".into(), "b".into()],
            ..one
        };
        assert_eq!(two.limited_reason(), "pool nas is limited to hosts a, b");
        // A spec from the log is re-checked, restriction included.
        let bad = PoolSpec {
            hosts: vec!["b".into(), "Bad".into()],
            ..two
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("host name 'Bad'"));
    }

    #[test]
    fn reachable_from_lists_reachable_hosts_only() {
        let mut pool = Pool {
            spec: PoolSpec::new("p", PoolType::Dir, dir("/p")).unwrap(),
            created_at: 1,
            hosts: BTreeMap::new(),
        };
        let obs = |reachable| PoolObservation {
            reachable,
            reason: String::new(),
            capacity_mib: 10,
            free_mib: 5,
            at: 2,
        };
        pool.hosts.insert("h2".into(), obs(true));
        pool.hosts.insert("h1".into(), obs(false));
        pool.hosts.insert("h3".into(), obs(true));
        assert_eq!(pool.reachable_from(), vec!["h2", "h3"]);
        // A host outside the restriction never counts, whatever it reported.
        pool.spec.hosts = vec!["h1".into(), "h2".into()];
        assert_eq!(pool.reachable_from(), vec!["h2"]);
    }
}
