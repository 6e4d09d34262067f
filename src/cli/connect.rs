//! How the CLI reaches a host and proves who it is. A `Target` is an endpoint plus credentials:
//! `https://host:port` (TLS trusting the cluster CA, with a client certificate and/or a bearer
//! token) or `unix:///path/quantixd.sock` (the host's administrator socket: no TLS, no
//! credential). `resolve` picks them from flags and environment, then the chosen or default
//! remote (`remote`), then the local socket; `connect` dials.
//! Owns: `Target`, `Conn`, `resolve`, `connect`. Uses: `tls::{config, connector}`, `raft::network::endpoint`.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::config_file::Config;
use super::CliError;

/// Where the CLI talks when nothing says otherwise: the administrator socket of a host with
/// the default `data_dir`.
pub const LOCAL_SOCKET: &str = "unix:///var/lib/quantix/quantixd.sock";

/// Credentials and endpoint as given on the command line or in the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Given {
    pub endpoint: Option<String>,
    pub remote: Option<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub token: Option<String>,
}

/// What `connect` uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub endpoint: String,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub token: Option<String>,
}

/// Flags and environment first (`--endpoint` with its own `--ca`/`--cert`/`--key`/`--token`),
/// then `--remote` or the default remote, then the local socket. An https endpoint given
/// without a CA borrows the CA of a remote with that endpoint (the default remote first).
pub fn resolve(given: &Given, config: &Config) -> Result<Target, CliError> {
    let from_remote = |name: &str| -> Result<Target, CliError> {
        let r = config.remotes.get(name).ok_or_else(|| {
            CliError::Usage(format!(
                "no remote named {name} (see `quantix remote list`)"
            ))
        })?;
        Ok(Target {
            endpoint: r.endpoint.clone(),
            ca: r.ca.as_ref().map(|p| config.path(p)),
            cert: r.cert.as_ref().map(|p| config.path(p)),
            key: r.key.as_ref().map(|p| config.path(p)),
            token: r.token.clone(),
        })
    };
    let mut t = if let Some(endpoint) = &given.endpoint {
        // The default remote first: it is the cluster the user usually means.
        let default = config
            .default_remote
            .as_ref()
            .and_then(|n| config.remotes.get(n));
        let borrowed = default
            .into_iter()
            .chain(config.remotes.values())
            .find(|r| r.endpoint == *endpoint && r.ca.is_some())
            .and_then(|r| r.ca.as_ref().map(|p| config.path(p)));
        Target {
            endpoint: endpoint.clone(),
            ca: given.ca.clone().or(borrowed),
            ..Target::default()
        }
    } else if let Some(name) = given.remote.as_deref().or(config.default_remote.as_deref()) {
        from_remote(name)?
    } else {
        Target {
            endpoint: LOCAL_SOCKET.into(),
            ..Target::default()
        }
    };
    if given.ca.is_some() {
        t.ca = given.ca.clone();
    }
    if given.cert.is_some() || given.key.is_some() {
        t.cert = given.cert.clone();
        t.key = given.key.clone();
    }
    if given.token.is_some() {
        t.token = given.token.clone();
    }
    Ok(t)
}

/// The credentials every `connect` of this process uses (set once by `cli::run`).
static CREDENTIALS: OnceLock<Target> = OnceLock::new();

pub fn set_credentials(t: Target) {
    let _ = CREDENTIALS.set(t);
}

/// Adds `authorization: Bearer ...` when the target has a token.
#[derive(Clone)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A connection to a host: every generated client takes one (`XServiceClient::new(conn)`).
pub type Conn = InterceptedService<Channel, Bearer>;

fn read(path: &PathBuf, what: &str) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read the {what} {}: {e}", path.display())))
}

/// The rustls config for an https target.
pub fn tls_config(t: &Target) -> Result<std::sync::Arc<rustls::ClientConfig>, CliError> {
    let ca_path = t.ca.as_ref().ok_or_else(|| {
        CliError::Usage(format!(
            "{} needs the cluster CA: pass --ca FILE (or QUANTIX_CA), or add a remote with `quantix remote add`",
            t.endpoint
        ))
    })?;
    let ca = read(ca_path, "CA certificate")?;
    let identity = match (&t.cert, &t.key) {
        (Some(c), Some(k)) => Some((read(c, "client certificate")?, read(k, "client key")?)),
        (None, None) => None,
        _ => {
            return Err(CliError::Usage(
                "a client certificate needs both --cert and --key".into(),
            ))
        }
    };
    crate::tls::config::client(
        &ca,
        identity.as_ref().map(|(c, k)| (c.as_str(), k.as_str())),
    )
    .map_err(|e| CliError::Usage(e.to_string()))
}

/// Dials `endpoint` with this process's credentials.
pub async fn connect(endpoint: &str) -> Result<Conn, CliError> {
    let mut t = CREDENTIALS.get().cloned().unwrap_or_default();
    if t.endpoint != endpoint {
        // Another host of the same cluster (bench --endpoints): same credentials.
        t.endpoint = endpoint.to_string();
    }
    connect_to(&t, None).await
}

/// Dials a target; `tls` overrides the TLS config (e.g. pinned to a CA fingerprint).
pub async fn connect_to(
    t: &Target,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Result<Conn, CliError> {
    let err = |message: String| CliError::Connect {
        endpoint: t.endpoint.clone(),
        message,
    };
    let bearer = match &t.token {
        Some(tok) => Some(format!("Bearer {}", tok.trim()).parse().map_err(|_| {
            CliError::Usage("the token has characters a header cannot carry".into())
        })?),
        None => None,
    };
    let channel = if let Some(path) = t.endpoint.strip_prefix("unix://") {
        let path = PathBuf::from(path);
        tonic::transport::Endpoint::from_static("http://localhost")
            .connect_timeout(Duration::from_secs(3))
            .connect_with_connector(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await
            .map_err(|e| err(super::source_chain(&e)))?
    } else if let Some(addr) = t.endpoint.strip_prefix("https://") {
        let addr = addr.trim_end_matches('/');
        let tls = match tls {
            Some(c) => c,
            None => tls_config(t)?,
        };
        crate::raft::network::endpoint(addr)
            .map_err(|e| err(format!("bad endpoint URL: {e}")))?
            .connect_timeout(Duration::from_secs(3))
            .connect_with_connector(crate::tls::connector::Connector::fixed(tls))
            .await
            .map_err(|e| err(super::source_chain(&e)))?
    } else if t.endpoint.starts_with("http://") {
        return Err(CliError::Usage(format!(
            "{}: quantixd speaks only TLS on its TCP port; use https://{}",
            t.endpoint,
            t.endpoint.trim_start_matches("http://")
        )));
    } else {
        return Err(CliError::Usage(format!(
            "{}: an endpoint is https://HOST:PORT or unix:///PATH/quantixd.sock",
            t.endpoint
        )));
    };
    Ok(InterceptedService::new(channel, Bearer(bearer)))
}

#[cfg(test)]
mod tests {
    use super::super::config_file::Remote;
    use super::*;

    fn config() -> Config {
        let mut c = Config::in_dir("/cfg".into());
        c.remotes.insert(
            "lab".into(),
            Remote {
                endpoint: "https://10.0.0.1:7400".into(),
                ca: Some("remotes/lab/ca.crt".into()),
                cert: Some("remotes/lab/client.crt".into()),
                key: Some("remotes/lab/client.key".into()),
                token: None,
            },
        );
        c.remotes.insert(
            "ci".into(),
            Remote {
                endpoint: "https://10.0.0.2:7400".into(),
                ca: Some("/etc/ci/ca.crt".into()),
                cert: None,
                key: None,
                token: Some("qxtok1.x".into()),
            },
        );
        c
    }

    #[test]
    fn precedence() {
        let mut c = config();
        // Nothing configured: the local socket.
        let empty = Config::in_dir("/cfg".into());
        assert_eq!(
            resolve(&Given::default(), &empty).unwrap().endpoint,
            LOCAL_SOCKET
        );
        // The default remote, paths relative to the config dir.
        c.default_remote = Some("lab".into());
        let t = resolve(&Given::default(), &c).unwrap();
        assert_eq!(t.endpoint, "https://10.0.0.1:7400");
        assert_eq!(t.ca, Some("/cfg/remotes/lab/ca.crt".into()));
        assert_eq!(t.key, Some("/cfg/remotes/lab/client.key".into()));
        // --remote wins over the default; absolute paths stay.
        let g = Given {
            remote: Some("ci".into()),
            ..Given::default()
        };
        let t = resolve(&g, &c).unwrap();
        assert_eq!(
            (t.ca, t.token),
            (Some("/etc/ci/ca.crt".into()), Some("qxtok1.x".into()))
        );
        // --endpoint wins over remotes and carries only the flags' credentials, but borrows
        // the CA of a remote with that endpoint.
        let g = Given {
            endpoint: Some("https://10.0.0.1:7400".into()),
            remote: Some("ci".into()),
            token: Some("qxtok1.y".into()),
            ..Given::default()
        };
        let t = resolve(&g, &c).unwrap();
        assert_eq!(t.ca, Some("/cfg/remotes/lab/ca.crt".into()));
        assert_eq!((t.cert, t.token.as_deref()), (None, Some("qxtok1.y")));
        // Two remotes with that endpoint: the default one's CA.
        let mut two = c.clone();
        two.remotes.insert(
            "a-first".into(),
            Remote {
                endpoint: "https://10.0.0.1:7400".into(),
                ca: Some("/a/ca.crt".into()),
                ..Remote::default()
            },
        );
        assert_eq!(
            resolve(&g, &two).unwrap().ca,
            Some("/cfg/remotes/lab/ca.crt".into())
        );
        two.default_remote = None;
        assert_eq!(resolve(&g, &two).unwrap().ca, Some("/a/ca.crt".into()));
        // No remote with that endpoint: no CA (connecting then names --ca).
        let g = Given {
            endpoint: Some("https://10.9.9.9:7400".into()),
            ..Given::default()
        };
        assert_eq!(resolve(&g, &c).unwrap().ca, None);
        // A flag overrides a remote's credential.
        let g = Given {
            ca: Some("/other/ca.crt".into()),
            ..Given::default()
        };
        assert_eq!(resolve(&g, &c).unwrap().ca, Some("/other/ca.crt".into()));
        // An unknown remote is an error naming it.
        let g = Given {
            remote: Some("nope".into()),
            ..Given::default()
        };
        assert!(resolve(&g, &c)
            .unwrap_err()
            .to_string()
            .contains("no remote named nope"));
    }

    #[test]
    fn an_https_target_without_a_ca_says_which_flag() {
        let t = Target {
            endpoint: "https://h:7400".into(),
            ..Target::default()
        };
        assert!(tls_config(&t).unwrap_err().to_string().contains("--ca"));
    }
}
