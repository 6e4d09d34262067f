//! A host's TLS files under `<data_dir>/tls/`: `ca.crt`, `host.crt`, `host.key` (and `ca.key`
//! on hosts that sign). Keys are written with mode 0600, every file atomically (a private
//! temporary file, fsynced, renamed), and the directory is 0700.
//! Owns: `TlsDir`, `write_private`. Uses: std.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::TlsError;

/// Writes `bytes` to `path` with mode 0600, replacing it atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("tls")
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The TLS directory of one host.
#[derive(Debug, Clone)]
pub struct TlsDir {
    pub dir: PathBuf,
}

impl TlsDir {
    pub fn new(data_dir: &Path) -> TlsDir {
        TlsDir {
            dir: data_dir.join("tls"),
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Writes one file of this directory (0600), making the directory 0700.
    pub fn write(&self, file: &str, text: &str) -> Result<(), TlsError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| TlsError::Io {
            path: self.dir.display().to_string(),
            source,
        })?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| TlsError::Io {
                path: self.dir.display().to_string(),
                source,
            },
        )?;
        write_private(&self.path(file), text.as_bytes())
    }

    /// One file's text; `None` when it does not exist.
    pub fn read(&self, file: &str) -> Result<Option<String>, TlsError> {
        let path = self.path(file);
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(TlsError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }
}
