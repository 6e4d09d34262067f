//! Realises NFS pools on this host: mounts each NFS pool the host may use at the pool's mount
//! point (`mount -t nfs`, soft, with a time limit so a dead server cannot hang the agent), and
//! unmounts what it mounted once the pool is gone. A failed mount is retried after
//! `RETRY`, not on every look, and its words become the pool's unreachable reason.
//! Owns: `Mounter`. Uses: `model::pool`, the `mount`/`umount` programs, /proc/self/mountinfo.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::model::pool::{PoolKind, PoolSpec};

/// How long after a failed mount the next attempt is made.
pub const RETRY: Duration = Duration::from_secs(60);
/// Longest a mount or unmount may take.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(30);
/// Soft mount: I/O to a dead server fails after timeo × retrans instead of hanging forever.
/// `retry=0`: one attempt per call (the agent retries after `RETRY`), not mount.nfs's two
/// minutes of retrying in the foreground.
const OPTIONS: &str = "soft,timeo=100,retrans=3,retry=0";

/// What this host mounted, and the mounts that failed lately.
#[derive(Debug, Default)]
pub struct Mounter {
    failed: BTreeMap<String, (Instant, String)>,
    ours: BTreeMap<String, PathBuf>,
    /// Mounts tried, for tests of the retry rule.
    attempts: u32,
}

impl Mounter {
    /// Makes sure an NFS pool is mounted; `Err(reason)` if it is not. Other pools: `Ok`.
    pub fn ensure(&mut self, spec: &PoolSpec, host: &str) -> Result<(), String> {
        let PoolKind::Nfs {
            server,
            export,
            mount_point,
        } = &spec.kind
        else {
            return Ok(());
        };
        if !spec.allows(host) {
            return Ok(());
        }
        let dir = Path::new(mount_point);
        if is_nfs_mount(dir) {
            self.failed.remove(&spec.name);
            return Ok(());
        }
        if let Some((at, reason)) = self.failed.get(&spec.name) {
            if at.elapsed() < RETRY {
                return Err(reason.clone());
            }
        }
        let source = format!("{server}:{export}");
        self.attempts += 1;
        let result = std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create mount point {mount_point}: {e}"))
            .and_then(|()| run("mount", &["-t", "nfs", "-o", OPTIONS, &source, mount_point]))
            .map_err(|e| format!("cannot mount {source} at {mount_point}: {e}"));
        match result {
            Ok(()) => {
                tracing::info!(pool = %spec.name, %source, mount_point, "NFS pool mounted");
                self.failed.remove(&spec.name);
                self.ours.insert(spec.name.clone(), dir.to_path_buf());
                Ok(())
            }
            Err(reason) => {
                tracing::warn!(pool = %spec.name, %reason, "NFS mount failed; will retry");
                self.failed
                    .insert(spec.name.clone(), (Instant::now(), reason.clone()));
                Err(reason)
            }
        }
    }

    /// Unmounts what this host mounted for pools that no longer exist.
    pub fn release_gone(&mut self, pools: &[PoolSpec]) {
        let live: BTreeSet<&str> = pools.iter().map(|p| p.name.as_str()).collect();
        self.failed.retain(|name, _| live.contains(name.as_str()));
        let gone: Vec<String> = self
            .ours
            .keys()
            .filter(|n| !live.contains(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some(dir) = self.ours.remove(&name) {
                let d = dir.display().to_string();
                match run("umount", &[&d]) {
                    Ok(()) => tracing::info!(pool = %name, mount_point = %d, "NFS pool unmounted"),
                    Err(e) => {
                        tracing::warn!(pool = %name, mount_point = %d, error = %e, "cannot unmount")
                    }
                }
            }
        }
    }
}

/// Runs a mount tool with a time limit; its stderr is the error.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let deadline = Instant::now() + MOUNT_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if status.success() {
                    return Ok(());
                }
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                let err = err.trim();
                return Err(if err.is_empty() {
                    format!("{program} exited with {status}")
                } else {
                    err.to_string()
                });
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} did not finish within {} s",
                    MOUNT_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    }
}

/// True if `dir` is the mount point of an NFS file system (per /proc/self/mountinfo).
pub fn is_nfs_mount(dir: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    mountinfo_has_nfs(&info, &dir.to_string_lossy())
}

fn mountinfo_has_nfs(info: &str, want: &str) -> bool {
    info.lines().any(|line| {
        // Fields: id parent major:minor root mount-point options ... - fstype source ...
        let mut parts = line.split(" - ");
        let (Some(head), Some(tail)) = (parts.next(), parts.next()) else {
            return false;
        };
        let mount_point = head.split(' ').nth(4).unwrap_or_default();
        let fstype = tail.split(' ').next().unwrap_or_default();
        mount_point == want && fstype.starts_with("nfs")
    })
}

/// Whether this kernel can mount NFS at all (tests skip the real mount where it cannot).
pub fn kernel_has_nfs() -> bool {
    std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| {
        f.lines()
            .any(|l| l.split_whitespace().last() == Some("nfs"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pool::{PoolFields, PoolType};

    #[test]
    fn mountinfo_lines_are_read_by_type_and_point() {
        let info = "36 25 0:32 / /mnt/nfs-a rw,relatime shared:1 - nfs4 127.0.0.1:/srv/a rw\n\
                    37 25 8:1 / /mnt/local rw - ext4 /dev/vda1 rw\n";
        assert!(mountinfo_has_nfs(info, "/mnt/nfs-a"));
        assert!(!mountinfo_has_nfs(info, "/mnt/local"));
        assert!(!mountinfo_has_nfs(info, "/mnt/other"));
    }

    /// Loopback only, and nothing serves this export there: the mount fails, the reason says
    /// so, and the next look does not try again at once.
    #[test]
    fn a_failed_mount_is_the_reason_and_is_not_retried_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let mp = tmp.path().join("mnt");
        let spec = PoolSpec::new(
            "n1",
            PoolType::Nfs,
            PoolFields {
                server: "127.0.0.1".into(),
                export: "/srv/quantix-test-nothing-here".into(),
                mount_point: mp.display().to_string(),
                ..PoolFields::default()
            },
        )
        .unwrap();
        let mut m = Mounter::default();
        let first = m.ensure(&spec, "h1").unwrap_err();
        assert!(
            first.starts_with("cannot mount 127.0.0.1:/srv/quantix-test-nothing-here at "),
            "{first}"
        );
        assert!(mp.is_dir(), "the mount point is made");
        assert_eq!(m.ensure(&spec, "h1").unwrap_err(), first);
        assert_eq!(m.attempts, 1, "no second attempt before RETRY");
        m.release_gone(&[]);
        assert!(m.failed.is_empty());
    }
}
