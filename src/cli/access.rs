//! `quantix cluster add-client | add-token | credentials | revoke` and `quantix whoami`:
//! API credentials. A client's key is made here and never leaves this machine; the cluster
//! signs its CSR. A token is printed once, alone on stdout, so scripts can capture it.
//! Owns: `AccessCmd`. Uses: `cli::{connect, config_file, output}`, `tls::ca`.

use clap::Subcommand;
use std::path::PathBuf;

use super::config_file::{config_dir, write_private, Config, Remote};
use super::output::{self, Format};
use super::{connect, request_id, CliError, Consistency};
use crate::proto::v1::access_service_client::AccessServiceClient;
use crate::proto::v1::*;

#[derive(Subcommand)]
pub enum AccessCmd {
    /// Make a client certificate for NAME (key made here; the cluster signs it) and, unless
    /// --no-remote, remember the cluster as remote NAME.
    AddClient {
        name: String,
        /// Where to write ca.crt, client.crt and client.key (default: the config directory's
        /// remotes/NAME/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only write the files.
        #[arg(long)]
        no_remote: bool,
    },
    /// Make a bearer token for NAME, printed once.
    AddToken {
        name: String,
        /// Lifetime, e.g. 24h or 30d; never expires without it.
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<std::time::Duration>,
    },
    /// Client certificates and tokens.
    Credentials {
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
    /// Revoke a client certificate or token: every host refuses it from now on.
    Revoke { name: String },
}

fn cred_json(c: &Credential) -> serde_json::Value {
    serde_json::json!({
        "name": c.name, "kind": c.kind, "fingerprint": c.fingerprint,
        "created_at": c.created_at, "expires_at": c.expires_at, "created_by": c.created_by,
    })
}

pub async fn run(endpoint: &str, out: Format, cmd: AccessCmd) -> Result<(), CliError> {
    let mut c = AccessServiceClient::new(connect(endpoint).await?);
    match cmd {
        AccessCmd::AddClient {
            name,
            out: dir,
            no_remote,
        } => {
            // Everything that can fail here fails before the cluster signs anything.
            let mut cfg = Config::load(config_dir())?;
            // Absolute, so the remote below does not read it from the config directory.
            let dir = match dir {
                Some(d) => std::path::absolute(&d)
                    .map_err(|e| CliError::Usage(format!("--out {}: {e}", d.display())))?,
                None => cfg.remote_dir(&name),
            };
            let kc = crate::tls::ca::new_key_and_csr(&name)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let r = c
                .add_client(AddClientRequest {
                    name: name.clone(),
                    csr_pem: kc.csr_pem,
                    request_id: request_id(),
                })
                .await?
                .into_inner();
            let files = [
                (dir.join("ca.crt"), r.ca_pem.as_str()),
                (dir.join("client.crt"), r.cert_pem.as_str()),
                (dir.join("client.key"), kc.key_pem.as_str()),
            ];
            for (path, pem) in &files {
                write_private(path, pem.as_bytes())?;
            }
            let url = r
                .endpoints
                .first()
                .map(|e| format!("https://{e}"))
                .unwrap_or_default();
            if !no_remote {
                // A remote of that name (e.g. a previous demo cluster's) is replaced: say so.
                if let Some(old) = cfg.remotes.get(&name) {
                    eprintln!("replacing remote {name} (was {})", old.endpoint);
                }
                cfg.remotes.insert(
                    name.clone(),
                    Remote {
                        endpoint: url.clone(),
                        ca: Some(cfg.relative(&dir.join("ca.crt"))),
                        cert: Some(cfg.relative(&dir.join("client.crt"))),
                        key: Some(cfg.relative(&dir.join("client.key"))),
                        token: None,
                    },
                );
                if cfg.default_remote.is_none() {
                    cfg.default_remote = Some(name.clone());
                }
                cfg.save()?;
            }
            match out {
                Format::Json => output::json(&serde_json::json!({
                    "credential": r.credential.as_ref().map(cred_json),
                    "dir": dir, "endpoints": r.endpoints, "ca_fingerprint": r.ca_fingerprint,
                })),
                Format::Table => {
                    println!("client certificate {name}:");
                    for (path, _) in &files {
                        println!("  {}", path.display());
                    }
                    println!("CA fingerprint (sha256): {}", r.ca_fingerprint);
                    if !no_remote {
                        println!("remote {name} -> {url}");
                    }
                    println!(
                        "elsewhere: copy the directory, then: quantix remote add {name} {url} --client-dir DIR"
                    );
                }
            }
        }
        AccessCmd::AddToken { name, ttl } => {
            let r = c
                .create_api_token(CreateApiTokenRequest {
                    name: name.clone(),
                    ttl_seconds: ttl.map_or(0, |t| t.as_secs().max(1)),
                    request_id: request_id(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&serde_json::json!({
                    "token": r.token, "credential": r.credential.as_ref().map(cred_json),
                    "ca_fingerprint": r.ca_fingerprint, "endpoints": r.endpoints,
                })),
                Format::Table => {
                    println!("{}", r.token);
                    let url = r
                        .endpoints
                        .first()
                        .map(|e| format!("https://{e}"))
                        .unwrap_or_default();
                    eprintln!(
                        "token {name}: shown only now. CA fingerprint (sha256): {}",
                        r.ca_fingerprint
                    );
                    eprintln!(
                        "use it: quantix remote add {name} {url} --token TOKEN --ca-fingerprint {}",
                        r.ca_fingerprint
                    );
                }
            }
        }
        AccessCmd::Credentials { consistency } => {
            let list = c
                .list_credentials(ListCredentialsRequest {
                    consistency: consistency.proto(),
                })
                .await?
                .into_inner()
                .credentials;
            match out {
                Format::Json => output::json(&serde_json::json!({
                    "credentials": list.iter().map(cred_json).collect::<Vec<_>>()
                })),
                Format::Table => output::table(
                    &["NAME", "KIND", "ID/FINGERPRINT", "CREATED", "EXPIRES", "BY"],
                    list.into_iter()
                        .map(|c| {
                            let short = c.fingerprint.chars().take(16).collect::<String>();
                            vec![
                                c.name,
                                c.kind,
                                short,
                                c.created_at,
                                c.expires_at,
                                c.created_by,
                            ]
                        })
                        .collect(),
                ),
            }
        }
        AccessCmd::Revoke { name } => {
            c.revoke_credential(RevokeCredentialRequest {
                name: name.clone(),
                request_id: request_id(),
            })
            .await?;
            match out {
                Format::Json => output::json(&serde_json::json!({"revoked": name})),
                Format::Table => println!("revoked {name}"),
            }
        }
    }
    Ok(())
}

/// `quantix whoami`.
pub async fn whoami(endpoint: &str, out: Format) -> Result<(), CliError> {
    let mut c = AccessServiceClient::new(connect(endpoint).await?);
    let w = c.who_am_i(WhoAmIRequest {}).await?.into_inner();
    match out {
        Format::Json => {
            output::json(&serde_json::json!({"kind": w.kind, "name": w.name, "endpoint": endpoint}))
        }
        Format::Table => println!("{} {} at {endpoint}", w.kind, w.name),
    }
    Ok(())
}
