//! The CLI's own configuration file: remotes (a cluster endpoint and the credentials for it)
//! in `config.toml` (`format = 1`) under the config directory (`$QUANTIX_CONFIG_DIR`, else
//! `$XDG_CONFIG_HOME/quantix`, else `~/.config/quantix`). Paths in it may be relative to that
//! directory. Files that hold keys or tokens (the config file included) are 0600 in 0700
//! directories, written atomically (temporary file, fsync, rename).
//! Owns: `Config`, `Remote`, `config_dir`, `write_private`. Uses: `serde`, `toml`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::CliError;

const FORMAT: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub format: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_remote: Option<String>,
    #[serde(default)]
    pub remotes: BTreeMap<String, Remote>,
    #[serde(skip)]
    pub dir: PathBuf,
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("cannot {what} {}: {e}", path.display()))
}

/// The config directory.
pub fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("QUANTIX_CONFIG_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME") {
        return PathBuf::from(d).join("quantix");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".config/quantix")
}

/// Writes `bytes` to `path` with mode 0600 (via a temporary file and rename), making its
/// directory 0700 if it does not exist.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io("create", dir, e))?;
    }
    // A temporary name of its own per file and process, so two writers never share one.
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io("write", &tmp, e))?;
    f.write_all(bytes).map_err(|e| io("write", &tmp, e))?;
    f.sync_all().map_err(|e| io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("write", path, e))
}

/// A TOML error on one line (its own text draws the line and a caret over several).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    match e.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(1, |before| before.matches('\n').count() + 1);
            format!("line {line}: {msg}")
        }
        None => msg,
    }
}

impl Config {
    pub fn in_dir(dir: PathBuf) -> Config {
        Config {
            format: FORMAT,
            default_remote: None,
            remotes: BTreeMap::new(),
            dir,
        }
    }

    pub fn file(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// The config in `dir`, or an empty one if there is no file yet.
    pub fn load(dir: PathBuf) -> Result<Config, CliError> {
        let file = dir.join("config.toml");
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::in_dir(dir)),
            Err(e) => return Err(io("read", &file, e)),
        };
        let mut c: Config = toml::from_str(&text).map_err(|e| {
            CliError::Usage(format!("{}: {}", file.display(), toml_error(&text, &e)))
        })?;
        if c.format != FORMAT {
            return Err(CliError::Usage(format!(
                "{}: format {} is not one this quantix reads (it reads {FORMAT})",
                file.display(),
                c.format
            )));
        }
        c.dir = dir;
        Ok(c)
    }

    pub fn save(&self) -> Result<(), CliError> {
        let text = toml::to_string(self).map_err(|e| CliError::Usage(e.to_string()))?;
        write_private(&self.file(), text.as_bytes())
    }

    /// A path from the file, relative ones taken from the config directory.
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    /// `p` relative to the config directory if it is inside it (the file then survives the
    /// directory being moved), else as it is.
    pub fn relative(&self, p: &Path) -> PathBuf {
        p.strip_prefix(&self.dir)
            .map_or_else(|_| p.to_path_buf(), Path::to_path_buf)
    }

    /// Where a remote's files go.
    pub fn remote_dir(&self, name: &str) -> PathBuf {
        self.dir.join("remotes").join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn config_round_trips_privately() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::in_dir(dir.path().join("q"));
        c.default_remote = Some("lab".into());
        c.remotes.insert(
            "lab".into(),
            Remote {
                endpoint: "https://h:7400".into(),
                ca: Some("remotes/lab/ca.crt".into()),
                token: Some("qxtok1.a.b".into()),
                ..Remote::default()
            },
        );
        c.remotes.insert(
            "ops".into(),
            Remote {
                endpoint: "https://h2:7400".into(),
                ca: Some("/etc/q/ca.crt".into()),
                cert: Some("/etc/q/client.crt".into()),
                key: Some("/etc/q/client.key".into()),
                token: None,
            },
        );
        c.save().unwrap();
        let text = std::fs::read_to_string(c.file()).unwrap();
        assert!(text.starts_with("format = 1\n"), "{text}");
        assert!(text.contains("[remotes.lab]"), "{text}");
        let back = Config::load(dir.path().join("q")).unwrap();
        assert_eq!(back, c);
        assert_eq!(mode(&c.file()), 0o600);
        assert_eq!(mode(&dir.path().join("q")), 0o700);
        // No temporary file left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("q"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.toml")]);
    }

    #[test]
    fn missing_malformed_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        // No file yet: empty.
        let empty = Config::load(dir.path().join("none")).unwrap();
        assert!(empty.remotes.is_empty() && empty.default_remote.is_none());
        let q = dir.path().join("q");
        std::fs::create_dir(&q).unwrap();
        for (text, words) in [
            ("format = 9\n", "format 9 is not one this quantix reads"),
            (
                "format = 1\nremotes = 3\n",
                "config.toml: line 2: invalid type: integer `3`, expected a map",
            ),
            (
                "format = 1\n[remotes.a]\nca = \"x\"\n",
                "missing field `endpoint`",
            ),
            ("format = \n", "config.toml: line 1: "),
        ] {
            std::fs::write(q.join("config.toml"), text).unwrap();
            let e = Config::load(q.clone()).unwrap_err().to_string();
            assert!(e.contains(words), "{text:?}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn private_files_and_their_directories() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("a/b/client.key");
        write_private(&key, b"one").unwrap();
        write_private(&key, b"two").unwrap();
        assert_eq!(std::fs::read(&key).unwrap(), b"two");
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
        assert_eq!(
            std::fs::read_dir(dir.path().join("a/b")).unwrap().count(),
            1
        );
    }

    #[test]
    fn paths_inside_the_config_directory_are_kept_relative() {
        let c = Config::in_dir("/cfg".into());
        let cases = [
            ("/cfg/remotes/a/ca.crt", "remotes/a/ca.crt"),
            ("/elsewhere/ca.crt", "/elsewhere/ca.crt"),
        ];
        for (given, stored) in cases {
            assert_eq!(c.relative(Path::new(given)), PathBuf::from(stored));
            assert_eq!(c.path(&c.relative(Path::new(given))), PathBuf::from(given));
        }
    }
}
