//! VM disk files on this host, made with `qemu-img`: qcow2 overlays on a cloud image, empty
//! qcow2 disks, and removal. Paths: `<pool dir>/<vm>/disk<i>.qcow2` and `<pool dir>/<vm>/seed.iso`.
//! Creation is idempotent (an existing file of the right kind is kept; one of another kind is
//! an error naming both) and atomic (made under a temporary name, then renamed), so the agent
//! can retry after a crash and never finds a half-made disk.
//! Owns: the layout of a VM's files in a pool, `DiskError`. Uses: `qemu-img` (tokio::process).

use std::path::{Path, PathBuf};

use tokio::process::Command;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    #[error("qemu-img is not installed (run scripts/setup.sh): {0}")]
    NoQemuImg(String),
    #[error("qemu-img {what} {path} failed: {stderr}")]
    Tool {
        what: &'static str,
        path: String,
        stderr: String,
    },
    #[error("{path} exists but is {found}, not {wanted}; remove it or fix the VM")]
    Mismatch {
        path: String,
        found: String,
        wanted: String,
    },
    #[error("'{0}' cannot name a VM's files (no '/', no '..', not empty)")]
    BadName(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

/// What `qemu-img info` says about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskInfo {
    pub format: String,
    pub virtual_size_mib: u64,
    pub backing: Option<PathBuf>,
}

fn checked(vm: &str) -> Result<&str, DiskError> {
    if vm.is_empty() || vm.contains('/') || vm == "." || vm == ".." || vm.contains('\0') {
        return Err(DiskError::BadName(vm.to_string()));
    }
    Ok(vm)
}

/// `<pool_dir>/<vm>`. Callers pass validated VM names; `checked` guards the file operations.
pub fn vm_dir(pool_dir: &Path, vm: &str) -> PathBuf {
    pool_dir.join(vm)
}

pub fn disk_path(pool_dir: &Path, vm: &str, index: usize) -> PathBuf {
    vm_dir(pool_dir, vm).join(format!("disk{index}.qcow2"))
}

pub fn seed_path(pool_dir: &Path, vm: &str) -> PathBuf {
    vm_dir(pool_dir, vm).join("seed.iso")
}

fn io(path: &Path, e: std::io::Error) -> DiskError {
    DiskError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

async fn qemu_img(what: &'static str, path: &Path, args: &[&str]) -> Result<String, DiskError> {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .await
        .map_err(|e| DiskError::NoQemuImg(e.to_string()))?;
    if !out.status.success() {
        return Err(DiskError::Tool {
            what,
            path: path.display().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Format, virtual size and backing file of a disk image.
pub async fn info(path: &Path) -> Result<DiskInfo, DiskError> {
    let p = path.to_string_lossy();
    let json = qemu_img("info", path, &["info", "--output=json", "-U", &p]).await?;
    let v: serde_json::Value = serde_json::from_str(&json).map_err(|e| DiskError::Tool {
        what: "info",
        path: p.to_string(),
        stderr: format!("unreadable JSON: {e}"),
    })?;
    Ok(DiskInfo {
        format: v["format"].as_str().unwrap_or_default().to_string(),
        virtual_size_mib: v["virtual-size"]
            .as_u64()
            .unwrap_or(0)
            .div_ceil(1024 * 1024),
        backing: v["backing-filename"].as_str().map(PathBuf::from),
    })
}

/// Makes `path` with `args` under a temporary name in the same directory, then renames it.
async fn create_atomically(
    path: &Path,
    args: impl Fn(&str) -> Vec<String>,
) -> Result<(), DiskError> {
    let dir = path.parent().ok_or_else(|| DiskError::Io {
        path: path.display().to_string(),
        message: "has no parent directory".into(),
    })?;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io(dir, e))?;
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file}.partial"));
    let tmp_s = tmp.to_string_lossy().into_owned();
    let argv = args(&tmp_s);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    qemu_img("create", path, &argv).await?;
    tokio::fs::rename(&tmp, path).await.map_err(|e| io(path, e))
}

/// Keeps an existing file if it is what was asked for; `Ok(true)` if it exists and fits.
async fn existing_fits(path: &Path, backing: Option<&Path>) -> Result<bool, DiskError> {
    if !tokio::fs::try_exists(path).await.map_err(|e| io(path, e))? {
        return Ok(false);
    }
    let i = info(path).await?;
    let found_backing = i.backing.as_deref();
    if i.format == "qcow2" && found_backing == backing {
        return Ok(true);
    }
    let describe = |format: &str, b: Option<&Path>| match b {
        Some(b) => format!("{format} on {}", b.display()),
        None => format!("{format} without a backing file"),
    };
    Err(DiskError::Mismatch {
        path: path.display().to_string(),
        found: describe(&i.format, found_backing),
        wanted: describe("qcow2", backing),
    })
}

/// A qcow2 overlay on `backing`, at least as large as the backing image.
pub async fn create_overlay(
    backing: &Path,
    backing_format: &str,
    path: &Path,
    size_mib: u64,
) -> Result<(), DiskError> {
    if existing_fits(path, Some(backing)).await? {
        return Ok(());
    }
    let base = info(backing).await?;
    let size = format!("{}M", size_mib.max(base.virtual_size_mib));
    let b = backing.to_string_lossy().into_owned();
    let fmt = backing_format.to_string();
    create_atomically(path, |tmp| {
        [
            "create", "-q", "-f", "qcow2", "-b", &b, "-F", &fmt, tmp, &size,
        ]
        .map(String::from)
        .to_vec()
    })
    .await
}

/// An empty qcow2 disk of `size_mib`.
pub async fn create_empty(path: &Path, size_mib: u64) -> Result<(), DiskError> {
    if existing_fits(path, None).await? {
        return Ok(());
    }
    let size = format!("{size_mib}M");
    create_atomically(path, |tmp| {
        ["create", "-q", "-f", "qcow2", tmp, &size]
            .map(String::from)
            .to_vec()
    })
    .await
}

/// Removes `<pool_dir>/<vm>` and everything in it; a missing directory is fine.
pub async fn remove_vm_files(pool_dir: &Path, vm: &str) -> Result<(), DiskError> {
    let dir = vm_dir(pool_dir, checked(vm)?);
    match tokio::fs::remove_dir_all(&dir).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&dir, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overlay_empty_idempotence_mismatch_and_removal() {
        let tmp = tempfile::tempdir().unwrap();
        let pool = tmp.path();
        let base = pool.join("images/base.qcow2");
        create_empty(&base, 256).await.unwrap();
        assert_eq!(info(&base).await.unwrap().virtual_size_mib, 256);

        // Asked smaller than the backing image: the overlay is the backing's size.
        let d0 = disk_path(pool, "web1", 0);
        create_overlay(&base, "qcow2", &d0, 100).await.unwrap();
        let i = info(&d0).await.unwrap();
        assert_eq!((i.format.as_str(), i.virtual_size_mib), ("qcow2", 256));
        assert_eq!(i.backing.as_deref(), Some(base.as_path()));
        create_overlay(&base, "qcow2", &d0, 100).await.unwrap();

        let d1 = disk_path(pool, "web1", 1);
        create_empty(&d1, 1024).await.unwrap();
        assert_eq!(info(&d1).await.unwrap().virtual_size_mib, 1024);
        create_empty(&d1, 1024).await.unwrap();
        let e = create_overlay(&base, "qcow2", &d1, 1024)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("without a backing file") && e.contains("disk1.qcow2"),
            "{e}"
        );
        assert!(!pool.join("web1/.disk1.qcow2.partial").exists());

        remove_vm_files(pool, "web1").await.unwrap();
        assert!(!vm_dir(pool, "web1").exists());
        remove_vm_files(pool, "web1").await.unwrap();
        assert!(matches!(
            remove_vm_files(pool, "..").await,
            Err(DiskError::BadName(_))
        ));
        assert!(base.exists(), "removing a VM never touches images");
    }

    #[tokio::test]
    async fn a_missing_backing_file_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let e = create_overlay(
            &tmp.path().join("nope.qcow2"),
            "qcow2",
            &disk_path(tmp.path(), "vm", 0),
            10,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("qemu-img info") && e.contains("nope.qcow2"),
            "{e}"
        );
    }
}
