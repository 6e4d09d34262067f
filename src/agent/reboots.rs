//! The reboots this host carried out, kept on its own disk (`<data_dir>/agent/reboots.json`)
//! so a reboot asked for while the daemon was down is still carried out when it comes back,
//! and one carried out before a restart is not repeated. Local by nature: only the VM's host
//! reboots it. The file carries a format version and is replaced atomically.
//! Owns: `Reboots`. Uses: std and serde only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum RebootsError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a reboots file of format {FORMAT}: {message}")]
    Format { path: String, message: String },
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct File {
    format: u32,
    /// VM name → the last reboot request (`reboot_seq`) carried out.
    done: BTreeMap<String, u64>,
}

/// The record, loaded once at start and written on each change.
#[derive(Debug)]
pub struct Reboots {
    path: PathBuf,
    done: BTreeMap<String, u64>,
    /// False for a stand-in after the file could not be read: then nothing is known.
    trusted: bool,
}

impl Reboots {
    /// Loads the record; a missing file is an empty record.
    pub fn load(path: &Path) -> Result<Reboots, RebootsError> {
        let p = || path.display().to_string();
        let done = match std::fs::read(path) {
            Ok(bytes) => {
                let f: File = serde_json::from_slice(&bytes).map_err(|e| RebootsError::Format {
                    path: p(),
                    message: e.to_string(),
                })?;
                if f.format != FORMAT {
                    return Err(RebootsError::Format {
                        path: p(),
                        message: format!("format {}", f.format),
                    });
                }
                f.done
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(RebootsError::Io { path: p(), source }),
        };
        Ok(Reboots {
            path: path.to_path_buf(),
            done,
            trusted: true,
        })
    }

    /// An empty record that is never written (when the file cannot be read).
    pub fn in_memory() -> Reboots {
        Reboots {
            path: PathBuf::new(),
            done: BTreeMap::new(),
            trusted: false,
        }
    }

    pub fn get(&self, vm: &str) -> Option<u64> {
        self.done.get(vm).copied()
    }

    /// The last reboot carried out for a VM whose current request is `seq`: the record's, or
    /// 0 for a VM never rebooted here (a VM starts at 0 on its host; VMs do not move). Without
    /// a readable record, `seq` itself: better a reboot missed than every guest rebooted.
    pub fn done_for(&self, vm: &str, seq: u64) -> u64 {
        match self.get(vm) {
            Some(done) => done,
            None if self.trusted => 0,
            None => seq,
        }
    }

    /// Records a reboot carried out (or a VM's requests adopted) and writes the file.
    pub fn set(&mut self, vm: &str, seq: u64) -> Result<(), RebootsError> {
        if self.done.get(vm) == Some(&seq) {
            return Ok(());
        }
        self.done.insert(vm.to_string(), seq);
        self.save()
    }

    /// Forgets a VM that left this host.
    pub fn forget(&mut self, vm: &str) -> Result<(), RebootsError> {
        if self.done.remove(vm).is_some() {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), RebootsError> {
        if self.path.as_os_str().is_empty() {
            return Ok(());
        }
        let io = |source| RebootsError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let body = serde_json::to_vec_pretty(&File {
            format: FORMAT,
            done: self.done.clone(),
        })
        .map_err(|e| RebootsError::Format {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&body).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_reload_and_refuses_other_formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent/reboots.json");
        let mut r = Reboots::load(&path).unwrap();
        assert_eq!(r.get("web1"), None);
        r.set("web1", 3).unwrap();
        r.set("db1", 1).unwrap();
        r.forget("db1").unwrap();
        let r = Reboots::load(&path).unwrap();
        assert_eq!((r.get("web1"), r.get("db1")), (Some(3), None));
        assert_eq!((r.done_for("web1", 5), r.done_for("db1", 2)), (3, 0));
        assert_eq!(Reboots::in_memory().done_for("db1", 2), 2);

        std::fs::write(&path, r#"{"format":2,"done":{}}"#).unwrap();
        let e = Reboots::load(&path).unwrap_err().to_string();
        assert!(e.contains("not a reboots file of format 1"), "{e}");
        std::fs::write(&path, "garbage").unwrap();
        assert!(Reboots::load(&path).is_err());
    }
}
