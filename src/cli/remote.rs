//! `quantix remote ...`: the clusters this CLI knows (in `config_file`) and how it proves who
//! it is to each. `remote add` checks what it is given before dialing (`plan_add`, pure), and
//! saves nothing until a `WhoAmI` with the credential succeeds; with only a token and the CA's
//! fingerprint it first fetches the CA over a connection pinned to that fingerprint.
//! Owns: `RemoteCmd`, `AddArgs`, `Plan`. Uses: `cli::{config_file, connect, output}`, `tls`.

use clap::Subcommand;
use std::path::{Path, PathBuf};

use super::config_file::{config_dir, write_private, Config, Remote};
use super::connect::{connect_to, Target};
use super::output::{self, Format};
use super::CliError;
use crate::proto::v1::access_service_client::AccessServiceClient;
use crate::proto::v1::{GetCertificateAuthorityRequest, WhoAmIRequest};

#[derive(Subcommand)]
pub enum RemoteCmd {
    /// Remember a cluster and how to reach it; checks the credential works first.
    Add {
        name: String,
        #[command(flatten)]
        args: AddArgs,
        /// Make it the default remote.
        #[arg(long)]
        default: bool,
    },
    /// The remotes, the default marked.
    List,
    /// One remote (default: the default remote): endpoint, credential files, CA fingerprint.
    Show { name: Option<String> },
    /// Make NAME the default remote.
    Use { name: String },
    /// Forget a remote (and the files kept for it under the config directory).
    Remove { name: String },
}

/// What `remote add` is given besides the name.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct AddArgs {
    /// https://HOST:PORT of any host (or unix:///PATH/quantixd.sock, which needs nothing else).
    pub endpoint: String,
    /// A bearer token from `quantix cluster add-token`.
    #[arg(long)]
    pub token: Option<String>,
    /// With --token and no --ca: the CA's SHA-256 (printed by add-token); the CA
    /// certificate is fetched trusting only that fingerprint and checked against it.
    #[arg(long)]
    pub ca_fingerprint: Option<String>,
    /// A directory from `quantix cluster add-client --out` (ca.crt, client.crt, client.key).
    #[arg(long)]
    pub client_dir: Option<PathBuf>,
    /// The cluster CA certificate (PEM).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// A client certificate (PEM), with --key.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long)]
    pub key: Option<PathBuf>,
}

/// How `remote add` comes to trust the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The CA (and any client certificate) is in files named by the user: paths made absolute.
    Files(Remote),
    /// A token and the CA's fingerprint: fetch the CA trusting only that fingerprint.
    Pinned { remote: Remote, fingerprint: String },
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

/// Checks what `remote add` was given, before any connection: one way to trust the cluster,
/// one credential, well-formed token and fingerprint. Relative paths are taken from `cwd`
/// (the config file would otherwise read them from the config directory).
pub fn plan_add(a: &AddArgs, cwd: &Path) -> Result<Plan, CliError> {
    let endpoint = a.endpoint.trim().trim_end_matches('/').to_string();
    let has_cred = a.token.is_some() || a.client_dir.is_some() || a.cert.is_some();
    let has_trust = a.ca.is_some() || a.client_dir.is_some() || a.ca_fingerprint.is_some();
    if endpoint.starts_with("unix://") {
        if has_cred || has_trust || a.key.is_some() {
            return Err(usage(format!(
                "{endpoint} is a host's socket: it needs no CA or credential (drop the other flags)"
            )));
        }
        return Ok(Plan::Files(Remote {
            endpoint,
            ..Remote::default()
        }));
    }
    if endpoint.starts_with("http://") {
        return Err(usage(format!(
            "{endpoint}: quantixd speaks only TLS on its TCP port; use https://{}",
            endpoint.trim_start_matches("http://")
        )));
    }
    if !endpoint.starts_with("https://") || endpoint.len() == "https://".len() {
        return Err(usage(format!(
            "{endpoint}: an endpoint is https://HOST:PORT or unix:///PATH/quantixd.sock"
        )));
    }
    let token = match &a.token {
        Some(t) => Some(
            crate::model::credential::ApiToken::parse(t)
                .map_err(|e| usage(format!("--token: {e}")))?
                .text(),
        ),
        None => None,
    };
    let abs = |p: &PathBuf| cwd.join(p);
    let mut r = Remote {
        endpoint,
        ca: a.ca.as_ref().map(abs),
        cert: a.cert.as_ref().map(abs),
        key: a.key.as_ref().map(abs),
        token,
    };
    if let Some(d) = &a.client_dir {
        if a.ca.is_some() || a.cert.is_some() || a.key.is_some() {
            return Err(usage(
                "--client-dir names ca.crt, client.crt and client.key itself: drop --ca/--cert/--key",
            ));
        }
        let d = abs(d);
        r.ca = Some(d.join("ca.crt"));
        r.cert = Some(d.join("client.crt"));
        r.key = Some(d.join("client.key"));
    }
    if r.cert.is_some() != r.key.is_some() {
        return Err(usage("a client certificate needs both --cert and --key"));
    }
    if !has_trust {
        return Err(usage(
            "say how to trust the cluster: --ca FILE, --client-dir DIR, or --token with --ca-fingerprint SHA256",
        ));
    }
    if !has_cred {
        return Err(usage(
            "a remote needs a credential: --token TOKEN, --client-dir DIR, or --cert FILE --key FILE",
        ));
    }
    let Some(fp) = &a.ca_fingerprint else {
        return Ok(Plan::Files(r));
    };
    if r.ca.is_some() {
        return Err(usage(
            "--ca-fingerprint is for when you have no CA file: drop it, or drop --ca/--client-dir",
        ));
    }
    if r.token.is_none() {
        return Err(usage(
            "--ca-fingerprint goes with --token (a client certificate comes with its CA: use --ca or --client-dir)",
        ));
    }
    let fingerprint = fp.trim().replace(':', "").to_ascii_lowercase();
    if fingerprint.len() != 64 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(usage(format!(
            "--ca-fingerprint {fp}: expected the 64 hex digits of a SHA-256 (as printed by `quantix cluster add-token`)"
        )));
    }
    Ok(Plan::Pinned {
        remote: r,
        fingerprint,
    })
}

fn target(r: &Remote, cfg: &Config) -> Target {
    Target {
        endpoint: r.endpoint.clone(),
        ca: r.ca.as_ref().map(|p| cfg.path(p)),
        cert: r.cert.as_ref().map(|p| cfg.path(p)),
        key: r.key.as_ref().map(|p| cfg.path(p)),
        token: r.token.clone(),
    }
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

/// The cluster's CA certificate, fetched over a connection that trusts only a CA with
/// `fingerprint`, and checked again against it.
async fn fetch_ca(r: &Remote, fingerprint: &str) -> Result<String, CliError> {
    let pinned = crate::tls::config::pinned(fingerprint).map_err(|e| usage(e.to_string()))?;
    let probe = Target {
        endpoint: r.endpoint.clone(),
        token: r.token.clone(),
        ..Target::default()
    };
    let conn = connect_to(&probe, Some(pinned))
        .await
        .map_err(|e| pinned_refusal(e, fingerprint))?;
    let got = AccessServiceClient::new(conn)
        .get_certificate_authority(GetCertificateAuthorityRequest {})
        .await?
        .into_inner();
    check_fingerprint(&got.ca_pem, fingerprint)?;
    Ok(got.ca_pem)
}

async fn add(cfg: &mut Config, name: &str, args: &AddArgs, default: bool) -> Result<(), CliError> {
    crate::model::names::validate_label("remote name", name).map_err(|e| usage(e.to_string()))?;
    if cfg.remotes.contains_key(name) {
        return Err(usage(format!(
            "a remote named {name} already exists (`quantix remote remove {name}` first)"
        )));
    }
    let cwd = std::env::current_dir().map_err(|e| usage(format!("current directory: {e}")))?;
    let (mut r, fetched) = match plan_add(args, &cwd)? {
        Plan::Files(r) => (r, None),
        Plan::Pinned {
            remote,
            fingerprint,
        } => {
            let ca_pem = fetch_ca(&remote, &fingerprint).await?;
            (remote, Some(ca_pem))
        }
    };
    // Nothing is written until the credential is known to work.
    let tls = match &fetched {
        Some(pem) => Some(crate::tls::config::client(pem, None).map_err(|e| usage(e.to_string()))?),
        None => None,
    };
    let who = whoami(&target(&r, cfg), tls).await?;
    if let Some(pem) = fetched {
        let path = cfg.remote_dir(name).join("ca.crt");
        write_private(&path, pem.as_bytes())?;
        r.ca = Some(cfg.relative(&path));
    }
    println!("remote {name} added: {} as {who}", r.endpoint);
    cfg.remotes.insert(name.to_string(), r);
    if default || cfg.default_remote.is_none() {
        cfg.default_remote = Some(name.to_string());
    }
    cfg.save()
}

/// How a remote proves who it is, for people.
fn auth(r: &Remote) -> &'static str {
    match (&r.cert, &r.token, r.endpoint.starts_with("unix://")) {
        (_, _, true) => "socket",
        (Some(_), Some(_), _) => "certificate+token",
        (Some(_), None, _) => "certificate",
        (None, Some(_), _) => "token",
        (None, None, _) => "none",
    }
}

fn show(out: Format, cfg: &Config, name: Option<String>) -> Result<(), CliError> {
    let name = name
        .or_else(|| cfg.default_remote.clone())
        .ok_or_else(|| usage("no default remote: name one (`quantix remote list`)"))?;
    let r = cfg
        .remotes
        .get(&name)
        .ok_or_else(|| usage(format!("no remote named {name}")))?;
    let t = target(r, cfg);
    let ca_fingerprint = t.ca.as_ref().map(|p| {
        std::fs::read_to_string(p)
            .map_err(|e| e.to_string())
            .and_then(|pem| crate::tls::ca::fingerprint_pem(&pem).map_err(|e| e.to_string()))
            .unwrap_or_else(|e| format!("unreadable: {e}"))
    });
    // The token's public id only: the secret stays in the file.
    let token_id = r.token.as_deref().map(|t| {
        crate::model::credential::ApiToken::parse(t)
            .map_or_else(|_| "malformed".to_string(), |t| t.id)
    });
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let is_default = cfg.default_remote.as_deref() == Some(name.as_str());
    match out {
        Format::Json => output::json(&serde_json::json!({
            "name": name, "endpoint": r.endpoint, "default": is_default, "auth": auth(r),
            "ca": path(&t.ca), "ca_fingerprint": ca_fingerprint, "cert": path(&t.cert),
            "key": path(&t.key), "token_id": token_id,
        })),
        Format::Table => {
            let rows = [
                ("name", Some(name.clone())),
                ("endpoint", Some(r.endpoint.clone())),
                ("default", Some(is_default.to_string())),
                ("auth", Some(auth(r).to_string())),
                ("ca", path(&t.ca)),
                ("ca fingerprint", ca_fingerprint),
                ("cert", path(&t.cert)),
                ("key", path(&t.key)),
                ("token id", token_id),
            ];
            for (k, v) in rows {
                if let Some(v) = v {
                    println!("{k:<15} {v}");
                }
            }
        }
    }
    Ok(())
}

pub async fn run(out: Format, cmd: RemoteCmd) -> Result<(), CliError> {
    let mut cfg = Config::load(config_dir())?;
    match cmd {
        RemoteCmd::Add {
            name,
            args,
            default,
        } => add(&mut cfg, &name, &args, default).await?,
        RemoteCmd::List => {
            let rows = cfg
                .remotes
                .iter()
                .map(|(n, r)| {
                    let mark = if cfg.default_remote.as_deref() == Some(n) {
                        "*"
                    } else {
                        ""
                    };
                    (
                        n.clone(),
                        r.endpoint.clone(),
                        auth(r).to_string(),
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
        RemoteCmd::Show { name } => show(out, &cfg, name)?,
        RemoteCmd::Use { name } => {
            if !cfg.remotes.contains_key(&name) {
                return Err(usage(format!("no remote named {name}")));
            }
            cfg.default_remote = Some(name.clone());
            cfg.save()?;
            println!("default remote: {name}");
        }
        RemoteCmd::Remove { name } => {
            if cfg.remotes.remove(&name).is_none() {
                return Err(usage(format!("no remote named {name}")));
            }
            if cfg.default_remote.as_deref() == Some(&name) {
                cfg.default_remote = None;
            }
            let dir = cfg.remote_dir(&name);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| usage(format!("cannot remove {}: {e}", dir.display())))?;
            }
            cfg.save()?;
            println!("remote {name} removed");
        }
    }
    Ok(())
}

/// A failed dial pinned to `fingerprint`, for people: when the TLS check refused the host's CA
/// (its error names the pinned fingerprint) that is the wrong cluster or a mistyped fingerprint,
/// not an unreachable host; other failures say what the connection trusted.
fn pinned_refusal(e: CliError, fingerprint: &str) -> CliError {
    match e {
        CliError::Connect { endpoint, message } if message.contains(fingerprint) => usage(format!(
            "{endpoint} does not present a CA with sha256 {fingerprint} (--ca-fingerprint): \
                 not the cluster you meant, or a mistyped fingerprint; nothing was saved"
        )),
        CliError::Connect { endpoint, message } => CliError::Connect {
            endpoint,
            message: format!(
                "{message} (this connection trusts only a CA with sha256 {fingerprint})"
            ),
        },
        other => other,
    }
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
#[path = "remote_tests.rs"]
mod tests;
