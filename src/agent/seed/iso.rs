//! Writing a seed to an ISO 9660 image (with Joliet and Rock Ridge names) by running
//! `xorriso -as mkisofs` or `genisoimage`. Owns: the staging directory, the tool run and the
//! atomic replace. May use: `tokio` (fs, process, time), `uuid`.
//!
//! Invariant: a partial ISO never exists at the target path. The files are staged in a
//! private (0700) directory beside the target, the tool writes its image into that directory,
//! and only a complete, fsync'd image is renamed over the target (same file system, so the
//! rename is atomic; then the parent directory is fsync'd). The directory is removed whatever
//! happens. The seed may hold passwords: staged files and the ISO are mode 0600, and nothing
//! is readable by others while the tool runs under its own umask; Rock Ridge records the
//! staged mode, so in the guest only root reads the files.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::{Seed, SeedError};

/// How long one tool run may take; a seed is a few KiB, so this only catches a hung tool.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// An ISO tool `write_iso` can run. Both take mkisofs options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsoTool {
    Xorriso,
    Genisoimage,
}

impl IsoTool {
    pub fn program(self) -> &'static str {
        match self {
            IsoTool::Xorriso => "xorriso",
            IsoTool::Genisoimage => "genisoimage",
        }
    }

    fn prefix(self) -> &'static [&'static str] {
        match self {
            IsoTool::Xorriso => &["-as", "mkisofs"],
            IsoTool::Genisoimage => &[],
        }
    }
}

/// Writes `seed` as an ISO at `path` with `xorriso`, or `genisoimage` if there is no xorriso.
pub async fn write_iso(seed: &Seed, path: &Path) -> Result<(), SeedError> {
    write_iso_with(seed, path, &[IsoTool::Xorriso, IsoTool::Genisoimage]).await
}

/// [`write_iso`] with the first installed of `tools`.
pub async fn write_iso_with(seed: &Seed, path: &Path, tools: &[IsoTool]) -> Result<(), SeedError> {
    let programs: Vec<(&'static str, &'static [&'static str])> =
        tools.iter().map(|t| (t.program(), t.prefix())).collect();
    write_with_programs(seed, path, &programs).await
}

/// A private (0700) directory beside the target: the staged files and the tool's output.
/// Removed when dropped, so nothing is left whatever happens.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: a few small files; an error leaves only a dot-directory behind.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) async fn write_with_programs(
    seed: &Seed,
    path: &Path,
    programs: &[(&'static str, &'static [&'static str])],
) -> Result<(), SeedError> {
    let io = |action: &'static str, p: &Path| {
        let path = p.to_path_buf();
        move |source| SeedError::Io {
            action,
            path,
            source,
        }
    };
    let name = path
        .file_name()
        .ok_or_else(|| {
            io("write the seed ISO to", path)(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the path names no file",
            ))
        })?
        .to_string_lossy()
        .into_owned();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let scratch = Scratch(dir.join(format!(".{name}.{tag}")));
    let mut builder = tokio::fs::DirBuilder::new();
    builder.mode(0o700);
    builder
        .create(&scratch.0)
        .await
        .map_err(io("create scratch directory", &scratch.0))?;
    let staging = scratch.0.join("files");
    let tmp = scratch.0.join("seed.iso");
    for (rel, contents) in seed.entries() {
        let file = staging.join(rel);
        if let Some(parent) = file.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io("create", parent))?;
        }
        write_private(&file, contents.as_bytes()).await?;
    }

    run_tool(seed.volume_label(), &staging, &tmp, programs).await?;

    let f = tokio::fs::OpenOptions::new()
        .write(true)
        .open(&tmp)
        .await
        .map_err(io("open", &tmp))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .await
        .map_err(io("chmod", &tmp))?;
    f.sync_all().await.map_err(io("fsync", &tmp))?;
    drop(f);
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(io("rename into place", path))?;
    // The rename is durable once the directory is.
    if let Ok(d) = tokio::fs::File::open(&dir).await {
        let _ = d.sync_all().await;
    }
    Ok(())
}

async fn write_private(file: &Path, bytes: &[u8]) -> Result<(), SeedError> {
    use tokio::io::AsyncWriteExt;
    let io = |action| {
        let path = file.to_path_buf();
        move |source| SeedError::Io {
            action,
            path,
            source,
        }
    };
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .await
        .map_err(io("create"))?;
    f.write_all(bytes).await.map_err(io("write"))?;
    f.flush().await.map_err(io("write"))?;
    Ok(())
}

/// Runs the first of `programs` that is installed. Its output is shown only on failure.
async fn run_tool(
    label: &str,
    staging: &Path,
    out: &Path,
    programs: &[(&'static str, &'static [&'static str])],
) -> Result<(), SeedError> {
    for (program, prefix) in programs {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(*prefix)
            .arg("-output")
            .arg(out)
            .args([
                "-volid",
                label,
                "-joliet",
                "-rock",
                "-input-charset",
                "utf-8",
                "-quiet",
            ])
            .arg(staging)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(SeedError::Io {
                    action: "run",
                    path: PathBuf::from(program),
                    source,
                })
            }
        };
        let failed = |detail: String| SeedError::IsoTool {
            tool: program,
            path: out.to_path_buf(),
            detail,
        };
        let output = match tokio::time::timeout(TOOL_TIMEOUT, child.wait_with_output()).await {
            Err(_) => return Err(failed(format!("no result after {TOOL_TIMEOUT:?}"))),
            Ok(Err(e)) => return Err(failed(e.to_string())),
            Ok(Ok(o)) => o,
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(failed(format!("{}: {}", output.status, tail.join(" | "))));
        }
        return Ok(());
    }
    Err(SeedError::NoIsoTool)
}
