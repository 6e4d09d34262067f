//! The CLI's own configuration: remotes (a cluster endpoint and the credentials for it) in
//! `config.toml` under the config directory (`$QUANTIX_CONFIG_DIR`, else
//! `$XDG_CONFIG_HOME/quantix`, else `~/.config/quantix`), and `quantix remote ...`. Files that
//! hold keys or tokens are 0600 in 0700 directories, written atomically.
//! Owns: `Config`, `Remote`, `RemoteCmd`. Uses: `cli::connect`, `tls`.

use clap::Subcommand;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::connect::{connect_to, Target};
use super::output::{self, Format};
use super::CliError;
use crate::proto::v1::access_service_client::AccessServiceClient;
use crate::proto::v1::{GetCertificateAuthorityRequest, WhoAmIRequest};

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
    let tmp = path.with_extension("tmp");
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
        let mut c: Config = toml::from_str(&text)
            .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
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

    /// Where a remote's files go.
    pub fn remote_dir(&self, name: &str) -> PathBuf {
        self.dir.join("remotes").join(name)
    }
}

#[derive(Subcommand)]
pub enum RemoteCmd {
    /// Remember a cluster and how to reach it; checks the credential works first.
    Add {
        name: String,
        /// https://HOST:PORT of any host.
        endpoint: String,
        /// A bearer token from `quantix cluster add-token`.
        #[arg(long)]
        token: Option<String>,
        /// With --token and no --ca: the CA's SHA-256 (printed by add-token); the CA
        /// certificate is fetched and checked against it.
        #[arg(long)]
        ca_fingerprint: Option<String>,
        /// A directory from `quantix cluster add-client --out` (ca.crt, client.crt, client.key).
        #[arg(long)]
        client_dir: Option<PathBuf>,
        #[arg(long)]
        ca: Option<PathBuf>,
        #[arg(long)]
        cert: Option<PathBuf>,
        #[arg(long)]
        key: Option<PathBuf>,
        /// Make it the default remote.
        #[arg(long)]
        default: bool,
    },
    /// The remotes, the default marked.
    List,
    /// Make NAME the default remote.
    Use { name: String },
    /// Forget a remote (and the files kept for it).
    Remove { name: String },
}

/// Checks a target works and says who it is there.
pub async fn whoami(
    t: &Target,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Result<String, CliError> {
    let mut c = AccessServiceClient::new(connect_to(t, tls).await?);
    let w = c.who_am_i(WhoAmIRequest {}).await?.into_inner();
    Ok(format!("{} {}", w.kind, w.name))
}

pub async fn run(out: Format, cmd: RemoteCmd) -> Result<(), CliError> {
    let mut cfg = Config::load(config_dir())?;
    match cmd {
        RemoteCmd::Add {
            name,
            endpoint,
            token,
            ca_fingerprint,
            client_dir,
            ca,
            cert,
            key,
            default,
        } => {
            crate::model::names::validate_label("remote name", &name)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let dir = cfg.remote_dir(&name);
            let mut r = Remote {
                endpoint: endpoint.trim_end_matches('/').to_string(),
                ca,
                cert,
                key,
                token,
            };
            if let Some(d) = client_dir {
                r.ca = Some(d.join("ca.crt"));
                r.cert = Some(d.join("client.crt"));
                r.key = Some(d.join("client.key"));
            }
            if r.ca.is_none() {
                let fp = ca_fingerprint.ok_or_else(|| {
                    CliError::Usage(
                        "say how to trust the cluster: --ca FILE, --client-dir DIR, or --ca-fingerprint SHA256"
                            .into(),
                    )
                })?;
                let pinned =
                    crate::tls::config::pinned(&fp).map_err(|e| CliError::Usage(e.to_string()))?;
                let probe = Target {
                    endpoint: r.endpoint.clone(),
                    token: r.token.clone(),
                    ..Target::default()
                };
                let mut c = AccessServiceClient::new(connect_to(&probe, Some(pinned)).await?);
                let got = c
                    .get_certificate_authority(GetCertificateAuthorityRequest {})
                    .await?
                    .into_inner();
                check_fingerprint(&got.ca_pem, &fp)?;
                let path = dir.join("ca.crt");
                write_private(&path, got.ca_pem.as_bytes())?;
                r.ca = Some(path);
            }
            let t = Target {
                endpoint: r.endpoint.clone(),
                ca: r.ca.clone(),
                cert: r.cert.clone(),
                key: r.key.clone(),
                token: r.token.clone(),
            };
            let who = whoami(&t, None).await?;
            cfg.remotes.insert(name.clone(), r);
            if default || cfg.default_remote.is_none() {
                cfg.default_remote = Some(name.clone());
            }
            cfg.save()?;
            println!("remote {name} added: {} as {who}", t.endpoint);
        }
        RemoteCmd::List => {
            let rows = cfg
                .remotes
                .iter()
                .map(|(n, r)| {
                    let how = match (&r.cert, &r.token) {
                        (Some(_), _) => "certificate",
                        (None, Some(_)) => "token",
                        _ => "none",
                    };
                    let mark = if cfg.default_remote.as_deref() == Some(n) {
                        "*"
                    } else {
                        ""
                    };
                    (
                        n.clone(),
                        r.endpoint.clone(),
                        how.to_string(),
                        mark.to_string(),
                    )
                })
                .collect::<Vec<_>>();
            match out {
                Format::Json => output::json(&serde_json::json!({
                    "default": cfg.default_remote,
                    "remotes": rows.iter().map(|(n, e, h, _)| serde_json::json!({"name": n, "endpoint": e, "auth": h})).collect::<Vec<_>>(),
                })),
                Format::Table => output::table(
                    &["NAME", "ENDPOINT", "AUTH", "DEFAULT"],
                    rows.into_iter()
                        .map(|(n, e, h, m)| vec![n, e, h, m])
                        .collect(),
                ),
            }
        }
        RemoteCmd::Use { name } => {
            if !cfg.remotes.contains_key(&name) {
                return Err(CliError::Usage(format!("no remote named {name}")));
            }
            cfg.default_remote = Some(name.clone());
            cfg.save()?;
            println!("default remote: {name}");
        }
        RemoteCmd::Remove { name } => {
            if cfg.remotes.remove(&name).is_none() {
                return Err(CliError::Usage(format!("no remote named {name}")));
            }
            if cfg.default_remote.as_deref() == Some(&name) {
                cfg.default_remote = None;
            }
            let dir = cfg.remote_dir(&name);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| io("remove", &dir, e))?;
            }
            cfg.save()?;
            println!("remote {name} removed");
        }
    }
    Ok(())
}

/// The CA fetched from a host must be the one the user was told about.
pub fn check_fingerprint(ca_pem: &str, want: &str) -> Result<(), CliError> {
    let got =
        crate::tls::ca::fingerprint_pem(ca_pem).map_err(|e| CliError::Usage(e.to_string()))?;
    if got.eq_ignore_ascii_case(want.trim()) {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "the cluster's CA has fingerprint {got}, not {want}: not the cluster you meant"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn config_round_trips_privately() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::in_dir(dir.path().join("q"));
        c.default_remote = Some("lab".into());
        c.remotes.insert(
            "lab".into(),
            Remote {
                endpoint: "https://h:7400".into(),
                token: Some("qxtok1.a.b".into()),
                ..Remote::default()
            },
        );
        c.save().unwrap();
        let back = Config::load(dir.path().join("q")).unwrap();
        assert_eq!(back, c);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&c.file()), 0o600);
        assert_eq!(mode(&dir.path().join("q")), 0o700);
        // No file yet: empty; a file of another format: refused with its name.
        assert!(Config::load(dir.path().join("none"))
            .unwrap()
            .remotes
            .is_empty());
        std::fs::write(c.file(), "format = 9\n").unwrap();
        let e = Config::load(dir.path().join("q")).unwrap_err().to_string();
        assert!(e.contains("format 9"), "{e}");
    }

    #[test]
    fn a_fetched_ca_must_match_the_fingerprint() {
        let ca = crate::tls::ca::Ca::generate("c").unwrap();
        let fp = ca.fingerprint();
        assert!(check_fingerprint(&ca.cert_pem, &fp).is_ok());
        assert!(check_fingerprint(&ca.cert_pem, &fp.to_uppercase()).is_ok());
        let other = crate::tls::ca::Ca::generate("d").unwrap().fingerprint();
        let e = check_fingerprint(&ca.cert_pem, &other)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not the cluster you meant"), "{e}");
    }
}
