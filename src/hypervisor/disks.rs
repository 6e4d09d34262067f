//! A VM's disk files on this host, made and inspected with `qemu-img` (run through
//! `tokio::process`). Owns: the layout of a VM's files in a pool directory
//! (`<pool_dir>/<vm>/disk{i}.qcow2`, `<pool_dir>/<vm>/seed.iso`), `DiskInfo`, `DiskError`.
//! May use: `model::names`, the `qemu-img` binary, the file system.
//!
//! Invariants:
//! - Nothing here reaches outside a pool directory: `remove_vm_files` takes only a VM name that
//!   passes the label rule (`a-z0-9-`: no `/`, no `..`), and the create calls refuse a path
//!   with a `..` component. Every path handed to qemu-img is absolute, so no file name is read
//!   as an option (`-x`) or a protocol prefix (`nbd:`).
//! - Creation is idempotent, because the agent retries actions after a crash: if the final path
//!   already holds a qcow2 disk with the asked backing (or none), it is left untouched; if it
//!   holds something else, the error names both. Size is not compared: a disk resized since is
//!   still the VM's disk, and growing or shrinking is not creation's job.
//! - A half-made file never sits at a final path: `qemu-img` writes a hidden temp name in the
//!   same directory, which is fsynced and then hard-linked to the final name. A link (unlike a
//!   rename) never replaces a disk that another attempt published in the meantime. On a file
//!   system without hard links we fall back to rename after checking the name is free. A temp
//!   file left by a crash is removed with the VM's directory.
//! - Backing files are recorded by absolute, canonical path, so an overlay does not depend on
//!   the daemon's working directory.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use tokio::process::Command;

use crate::model::names::{validate_label, NameError};

const QEMU_IMG: &str = "qemu-img";
const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    #[error("refusing to build a disk path: {0}")]
    BadVmName(#[from] NameError),
    #[error("{program} is not installed: run scripts/setup.sh (it installs qemu-utils)")]
    QemuImgMissing { program: String },
    #[error("cannot run {program}: {message}")]
    Spawn { program: String, message: String },
    #[error("`{command}` failed ({status}): {stderr}")]
    QemuImg {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("cannot read the output of `{command}`: {message}")]
    BadInfo { command: String, message: String },
    #[error("{path} exists but is not the disk asked for: found {found}; wanted {wanted}")]
    Mismatch {
        path: PathBuf,
        found: String,
        wanted: String,
    },
    #[error("backing image {path} cannot be used: {message}")]
    Backing { path: PathBuf, message: String },
    #[error("a '{0}' image cannot back a disk (qcow2 or raw only)")]
    BadBackingFormat(String),
    #[error("refusing {0}: a disk path must not contain '..'")]
    BadPath(PathBuf),
    #[error("disk size must be at least 1 MiB")]
    ZeroSize,
    #[error("cannot {what} {path}: {message}")]
    Io {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
}

impl DiskError {
    fn io(what: &'static str, path: &Path, e: io::Error) -> DiskError {
        DiskError::Io {
            what,
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// Formats an overlay can sit on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackingFormat {
    Qcow2,
    Raw,
}

impl BackingFormat {
    /// `qcow2` or `raw`; anything else (an `iso`, say) cannot back a disk.
    pub fn parse(s: &str) -> Result<BackingFormat, DiskError> {
        match s {
            "qcow2" => Ok(BackingFormat::Qcow2),
            "raw" => Ok(BackingFormat::Raw),
            other => Err(DiskError::BadBackingFormat(other.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BackingFormat::Qcow2 => "qcow2",
            BackingFormat::Raw => "raw",
        }
    }
}

impl fmt::Display for BackingFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `qemu-img info` says about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskInfo {
    /// `qcow2`, `raw`, … as qemu-img names it.
    pub format: String,
    /// Size the guest sees, in bytes.
    pub virtual_size_bytes: u64,
    /// The backing file, resolved to a full path (`full-backing-filename`).
    pub backing_file: Option<PathBuf>,
    pub backing_format: Option<String>,
}

impl DiskInfo {
    /// The virtual size in MiB, rounded up.
    pub fn virtual_size_mib(&self) -> u64 {
        self.virtual_size_bytes.div_ceil(MIB)
    }
}

/// `<pool_dir>/<vm>`: everything a VM has in one pool. Infallible because callers hold
/// validated VM names; [`checked_vm_dir`] is the checked form, and every file operation here
/// refuses a path with a `..` component, so a bad name cannot reach outside the pool.
pub fn vm_dir(pool_dir: &Path, vm: &str) -> PathBuf {
    pool_dir.join(vm)
}

/// `<pool_dir>/<vm>` after checking `vm` against the VM name rule (a DNS label: no `/`, no
/// `.`, so neither `..` nor a protocol prefix such as `nbd:`).
pub fn checked_vm_dir(pool_dir: &Path, vm: &str) -> Result<PathBuf, DiskError> {
    validate_label("vm name", vm)?;
    Ok(vm_dir(pool_dir, vm))
}

/// `<pool_dir>/<vm>/disk{index}.qcow2`.
pub fn disk_path(pool_dir: &Path, vm: &str, index: usize) -> PathBuf {
    vm_dir(pool_dir, vm).join(format!("disk{index}.qcow2"))
}

/// `<pool_dir>/<vm>/seed.iso` (the cloud-init seed).
pub fn seed_path(pool_dir: &Path, vm: &str) -> PathBuf {
    vm_dir(pool_dir, vm).join("seed.iso")
}

/// A qcow2 overlay at `path` on `backing`. Its size is `size_mib`, or the backing's virtual
/// size if that is larger (an overlay smaller than its base would cut off the guest's file
/// system).
pub async fn create_overlay(
    backing: &Path,
    backing_format: BackingFormat,
    path: &Path,
    size_mib: u64,
) -> Result<(), DiskError> {
    let backing = tokio::fs::canonicalize(backing)
        .await
        .map_err(|e| DiskError::Backing {
            path: backing.to_path_buf(),
            message: e.to_string(),
        })?;
    // Read the base with its declared format: probing a raw image is unsafe and would hide a
    // wrong declaration until the VM boots.
    let base = info_as(&backing, Some(backing_format.as_str())).await?;
    let want = Want {
        backing: Some((backing, backing_format)),
        size: base.virtual_size_bytes.max(size_mib.saturating_mul(MIB)),
    };
    ensure(path, &want).await
}

/// An empty qcow2 disk of `size_mib` at `path`.
pub async fn create_empty(path: &Path, size_mib: u64) -> Result<(), DiskError> {
    if size_mib == 0 {
        return Err(DiskError::ZeroSize);
    }
    let want = Want {
        backing: None,
        size: size_mib.saturating_mul(MIB),
    };
    ensure(path, &want).await
}

/// Format, virtual size and backing of the file at `path`. Works on a disk a running VM holds
/// open (`--force-share`), so the agent can check a disk without stopping the VM.
pub async fn info(path: &Path) -> Result<DiskInfo, DiskError> {
    info_as(path, None).await
}

/// Removes `<pool_dir>/<vm>` and everything in it. A missing directory is success.
pub async fn remove_vm_files(pool_dir: &Path, vm: &str) -> Result<(), DiskError> {
    let dir = checked_vm_dir(pool_dir, vm)?;
    // remove_dir_all removes a symlink itself, never what it points at.
    match tokio::fs::remove_dir_all(&dir).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DiskError::io("remove", &dir, e)),
    }
}

/// The disk a create call asks for.
struct Want {
    backing: Option<(PathBuf, BackingFormat)>,
    /// Bytes; used only when the disk is made.
    size: u64,
}

impl Want {
    async fn matches(&self, found: &DiskInfo) -> bool {
        if found.format != "qcow2" {
            return false;
        }
        match (&self.backing, &found.backing_file) {
            (None, None) => true,
            (Some((path, format)), Some(found_path)) => {
                // Compare canonical paths: the same base reached through a symlink is the same.
                let found_path = tokio::fs::canonicalize(found_path)
                    .await
                    .unwrap_or_else(|_| found_path.clone());
                &found_path == path && found.backing_format.as_deref() == Some(format.as_str())
            }
            _ => false,
        }
    }
}

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "qcow2, ")?;
        match &self.backing {
            Some((path, format)) => write!(f, "backing {} ({format})", path.display())?,
            None => write!(f, "no backing")?,
        }
        Ok(())
    }
}

fn describe(found: &DiskInfo) -> String {
    let backing = match (&found.backing_file, &found.backing_format) {
        (Some(p), Some(f)) => format!("backing {} ({f})", p.display()),
        (Some(p), None) => format!("backing {}", p.display()),
        (None, _) => "no backing".to_string(),
    };
    format!(
        "{}, {backing}, {} bytes",
        found.format, found.virtual_size_bytes
    )
}

/// Makes `path` hold the wanted disk, or checks that it already does.
async fn ensure(path: &Path, want: &Want) -> Result<(), DiskError> {
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(DiskError::BadPath(path.to_path_buf()));
    }
    let path = std::path::absolute(path).map_err(|e| DiskError::io("resolve", path, e))?;
    if exists(&path).await? {
        return check_existing(&path, want).await;
    }
    let dir = path.parent().ok_or_else(|| DiskError::Io {
        what: "find the directory of",
        path: path.clone(),
        message: "no parent directory".into(),
    })?;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| DiskError::io("create directory", dir, e))?;
    let tmp = temp_path(&path);
    let made = async {
        create_file(&tmp, want).await?;
        publish(&tmp, &path).await
    }
    .await;
    // Whatever happened, the temp name must not linger (after a link it is a second name).
    let _ = tokio::fs::remove_file(&tmp).await;
    if made? {
        Ok(())
    } else {
        // Another attempt published first: accept it only if it is the same disk.
        check_existing(&path, want).await
    }
}

async fn check_existing(path: &Path, want: &Want) -> Result<(), DiskError> {
    let found = info(path).await?;
    if want.matches(&found).await {
        Ok(())
    } else {
        Err(DiskError::Mismatch {
            path: path.to_path_buf(),
            found: describe(&found),
            wanted: want.to_string(),
        })
    }
}

async fn exists(path: &Path) -> Result<bool, DiskError> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(DiskError::io("stat", path, e)),
    }
}

/// `.<name>.tmp.<random>` beside `path`: hidden, unique per attempt.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_else(|| OsStr::new("disk"));
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmp.{}", uuid::Uuid::new_v4().simple()));
    path.with_file_name(tmp)
}

async fn create_file(tmp: &Path, want: &Want) -> Result<(), DiskError> {
    let mut args: Vec<OsString> = vec!["create".into(), "-q".into(), "-f".into(), "qcow2".into()];
    if let Some((backing, format)) = &want.backing {
        args.extend(["-b".into(), backing.clone().into_os_string()]);
        args.extend(["-F".into(), format.as_str().into()]);
    }
    args.push(tmp.as_os_str().to_owned());
    args.push(want.size.to_string().into());
    run(QEMU_IMG, &args).await?;
    // Data before name: after a crash the final name must never point at a short file.
    let file = tokio::fs::File::open(tmp)
        .await
        .map_err(|e| DiskError::io("open", tmp, e))?;
    file.sync_all()
        .await
        .map_err(|e| DiskError::io("sync", tmp, e))
}

/// Gives the finished temp file its final name without replacing anything. `Ok(false)` when
/// the final name was taken meanwhile. The directory is not fsynced: if the new name is lost
/// in a crash, the retry makes the disk again.
async fn publish(tmp: &Path, path: &Path) -> Result<bool, DiskError> {
    match tokio::fs::hard_link(tmp, path).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        // No hard links on this file system (vfat, some FUSE): rename if the name is free.
        Err(_) => {
            if exists(path).await? {
                return Ok(false);
            }
            tokio::fs::rename(tmp, path)
                .await
                .map_err(|e| DiskError::io("rename into place", path, e))?;
            Ok(true)
        }
    }
}

/// The subset of `qemu-img info --output=json` we read.
#[derive(Deserialize)]
struct RawInfo {
    format: String,
    #[serde(rename = "virtual-size")]
    virtual_size: u64,
    #[serde(rename = "full-backing-filename")]
    full_backing_filename: Option<String>,
    #[serde(rename = "backing-filename")]
    backing_filename: Option<String>,
    #[serde(rename = "backing-filename-format")]
    backing_filename_format: Option<String>,
}

async fn info_as(path: &Path, format: Option<&str>) -> Result<DiskInfo, DiskError> {
    // Absolute, so a name starting with '-' or holding ':' is never read as an option or a
    // protocol prefix.
    let path = std::path::absolute(path).map_err(|e| DiskError::io("resolve", path, e))?;
    let mut args: Vec<OsString> = vec!["info".into(), "--output=json".into(), "-U".into()];
    if let Some(f) = format {
        args.extend(["-f".into(), f.into()]);
    }
    args.push(path.into_os_string());
    let out = run(QEMU_IMG, &args).await?;
    let raw: RawInfo = serde_json::from_slice(&out).map_err(|e| DiskError::BadInfo {
        command: command_line(QEMU_IMG, &args),
        message: e.to_string(),
    })?;
    Ok(DiskInfo {
        format: raw.format,
        virtual_size_bytes: raw.virtual_size,
        backing_file: raw
            .full_backing_filename
            .or(raw.backing_filename)
            .map(PathBuf::from),
        backing_format: raw.backing_filename_format,
    })
}

/// Runs `program args`, returning stdout; a failure carries qemu-img's stderr.
async fn run(program: &str, args: &[OsString]) -> Result<Vec<u8>, DiskError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => DiskError::QemuImgMissing {
                program: program.to_string(),
            },
            _ => DiskError::Spawn {
                program: program.to_string(),
                message: e.to_string(),
            },
        })?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    Err(DiskError::QemuImg {
        command: command_line(program, args),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

fn command_line(program: &str, args: &[OsString]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

#[cfg(test)]
#[path = "disks_tests.rs"]
mod tests;
