//! How this host sees a storage pool: reachable or not (and why), capacity and free space.
//! A non-shared directory pool is made if missing (each host has its own); a shared directory
//! must already be there; an NFS pool must be mounted (`nfs::Mounter` mounts it first).
//! Owns: `check`, `worth_reporting`.
//! Uses: `model::pool`, the file system (stat, statvfs, /proc/self/mountinfo).

use std::path::Path;

use crate::model::pool::{PoolKind, PoolSpec};

/// What a host found, before it becomes a `PoolCommand::Observe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub reachable: bool,
    pub reason: String,
    pub capacity_mib: u64,
    pub free_mib: u64,
}

impl Seen {
    pub fn unreachable(reason: String) -> Seen {
        Seen {
            reachable: false,
            reason,
            capacity_mib: 0,
            free_mib: 0,
        }
    }
}

/// Looks at `spec` from host `host`.
pub fn check(spec: &PoolSpec, host: &str) -> Seen {
    if !spec.allows(host) {
        // The same words `apply` records for such a host, so nothing changes on each look.
        return Seen::unreachable(spec.limited_reason());
    }
    let path = Path::new(spec.kind.local_path());
    match &spec.kind {
        PoolKind::Dir { shared: false, .. } => {
            if let Err(e) = std::fs::create_dir_all(path) {
                return Seen::unreachable(format!("cannot create {}: {e}", path.display()));
            }
        }
        PoolKind::Dir { shared: true, .. } => {}
        PoolKind::Nfs {
            server,
            export,
            mount_point,
        } => {
            if !super::nfs::is_nfs_mount(Path::new(mount_point)) {
                return Seen::unreachable(format!(
                    "{server}:{export} is not mounted at {mount_point}"
                ));
            }
        }
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Seen::unreachable(format!("{} is not a directory", path.display())),
        Err(e) => return Seen::unreachable(format!("{}: {e}", path.display())),
    }
    match rustix::fs::statvfs(path) {
        Ok(s) => Seen {
            reachable: true,
            reason: String::new(),
            capacity_mib: s.f_blocks.saturating_mul(s.f_frsize) / (1024 * 1024),
            free_mib: s.f_bavail.saturating_mul(s.f_frsize) / (1024 * 1024),
        },
        Err(e) => Seen::unreachable(format!("statvfs {}: {e}", path.display())),
    }
}

/// True if `new` differs enough from what the state holds to be worth a Raft write:
/// reachability or reason changed, capacity changed, or free space moved by more than 1/64 of
/// the capacity (so a busy pool does not turn into a busy log).
pub fn worth_reporting(stored: Option<&crate::model::pool::PoolObservation>, new: &Seen) -> bool {
    let Some(old) = stored else {
        return true;
    };
    old.reachable != new.reachable
        || old.reason != new.reason
        || old.capacity_mib != new.capacity_mib
        || old.free_mib.abs_diff(new.free_mib) > new.capacity_mib / 64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pool::{PoolFields, PoolObservation, PoolType};

    fn dir_pool(path: &Path, shared: bool, hosts: &[&str]) -> PoolSpec {
        PoolSpec::new(
            "p1",
            PoolType::Dir,
            PoolFields {
                path: path.display().to_string(),
                shared,
                hosts: hosts.iter().map(|h| h.to_string()).collect(),
                ..PoolFields::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn a_local_dir_pool_is_made_and_measured() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("pools/local");
        let seen = check(&dir_pool(&path, false, &[]), "h1");
        assert!(seen.reachable, "{seen:?}");
        assert!(path.is_dir());
        assert!(seen.capacity_mib > 0 && seen.free_mib <= seen.capacity_mib);
    }

    #[test]
    fn unreachable_pools_say_why() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("not-there");
        let seen = check(&dir_pool(&missing, true, &[]), "h1");
        assert!(!seen.reachable);
        assert!(seen.reason.contains("not-there"), "{}", seen.reason);
        assert!(!missing.exists(), "a shared directory is never made");

        let seen = check(&dir_pool(tmp.path(), false, &["h2", "h3"]), "h1");
        assert_eq!(seen.reason, "pool p1 is limited to hosts h2, h3");

        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let seen = check(&dir_pool(&file, true, &[]), "h1");
        assert!(
            seen.reason.contains("is not a directory"),
            "{}",
            seen.reason
        );

        let nfs = PoolSpec::new(
            "n1",
            PoolType::Nfs,
            PoolFields {
                server: "10.0.0.9".into(),
                export: "/srv/x".into(),
                mount_point: tmp.path().display().to_string(),
                ..PoolFields::default()
            },
        )
        .unwrap();
        let seen = check(&nfs, "h1");
        assert!(
            seen.reason.contains("10.0.0.9:/srv/x is not mounted at"),
            "{}",
            seen.reason
        );
    }

    #[test]
    fn small_free_space_changes_are_not_reported() {
        let stored = PoolObservation {
            reachable: true,
            reason: String::new(),
            capacity_mib: 64_000,
            free_mib: 32_000,
            at: 1,
        };
        let seen = |free_mib, reachable| Seen {
            reachable,
            reason: String::new(),
            capacity_mib: 64_000,
            free_mib,
        };
        assert!(worth_reporting(None, &seen(32_000, true)));
        assert!(!worth_reporting(Some(&stored), &seen(32_000, true)));
        assert!(!worth_reporting(Some(&stored), &seen(31_500, true)));
        assert!(worth_reporting(Some(&stored), &seen(30_000, true)));
        assert!(worth_reporting(Some(&stored), &seen(32_000, false)));
    }
}
