//! How tests reach hosts as a user would: the `admin` client certificate of a cluster (made
//! once per CA through a host's socket), the CLI over TLS or the socket, gRPC channels, and
//! HTTPS requests to the HTTP listener.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use tonic::transport::Channel;

use crate::{bin, stderr, stdout, Node, Result};

/// One `add-client admin` at a time within a test process.
static ADMIN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// An API client's files: the cluster CA, a client certificate and its key.
#[derive(Debug, Clone)]
pub struct Creds {
    pub dir: PathBuf,
}

impl Creds {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn cert(&self) -> PathBuf {
        self.dir.join("client.crt")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join("client.key")
    }
    fn read(&self, p: PathBuf) -> Result<String> {
        std::fs::read_to_string(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
    }
    /// A rustls client config presenting this certificate.
    pub fn tls(&self) -> Result<std::sync::Arc<rustls::ClientConfig>> {
        let (ca, cert, key) = (
            self.read(self.ca())?,
            self.read(self.cert())?,
            self.read(self.key())?,
        );
        Ok(quantix::tls::config::client(&ca, Some((&cert, &key)))?)
    }
}

impl Node {
    /// The `admin` client credentials for this host's cluster (by its CA), made through this
    /// host's socket the first time. `None` before the host has a CA.
    pub fn admin(&self) -> Result<Option<Creds>> {
        let Ok(ca) = std::fs::read_to_string(self.tls_dir().join("ca.crt")) else {
            return Ok(None);
        };
        let fp = quantix::tls::ca::fingerprint_pem(&ca)?;
        // Beside the hosts' directories: every host of the cluster finds the same files.
        let root = self.dir.parent().unwrap_or(&self.dir);
        let creds = Creds {
            dir: root.join(format!("admin-{}", &fp[..16])),
        };
        let _guard = ADMIN_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        if creds.key().exists() {
            return Ok(Some(creds));
        }
        let out = Command::new(bin("quantix"))
            .env("QUANTIX_CONFIG_DIR", root.join("cli-config"))
            .args(["--endpoint", &self.socket_endpoint()])
            .args(["cluster", "add-client", "admin", "--no-remote", "--out"])
            .arg(&creds.dir)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "cannot make the admin client certificate on {}: {}",
            self.name,
            stderr(&out)
        );
        Ok(Some(creds))
    }

    /// GET `path` from the host's HTTP listener (HTTPS, as `admin`); the body of a 200 answer.
    pub async fn http_get(&self, path: &str) -> Result<String> {
        Ok(String::from_utf8(self.http_get_bytes(path).await?)?)
    }

    /// GET on this host's HTTP listener; the body of a 200 answer (not chunked).
    pub async fn http_get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let (head, body) = self.https_request("GET", path, &[], b"").await?;
        anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
        Ok(body)
    }

    /// One HTTP/1.1 request over TLS to the HTTP listener, presenting the admin certificate
    /// when the cluster has one; returns (status line and headers, body).
    pub async fn https_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(String, Vec<u8>)> {
        let tls = match self.admin()? {
            Some(c) => c.tls()?,
            None => insecure_tls(),
        };
        self.https_request_with(tls, method, path, headers, body)
            .await
    }

    /// `https_request` with a given TLS config (e.g. a browser without a client certificate:
    /// `tls::config::client(ca, None)`).
    pub async fn https_request_with(
        &self,
        tls: std::sync::Arc<rustls::ClientConfig>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(String, Vec<u8>)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = quantix::tls::connector::connect(tls, "127.0.0.1", self.http_port).await?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.http_port,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await?;
        s.write_all(body).await?;
        let mut raw = Vec::new();
        // A peer that closes without close_notify is fine for a Connection: close answer.
        let _ = s.read_to_end(&mut raw).await;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        Ok((head, raw.get(split + 4..).unwrap_or_default().to_vec()))
    }

    /// Runs the `quantix` CLI against this host: over TLS as `admin` once the host has its
    /// certificate, through its socket before.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_command().args(args).output().expect("run quantix")
    }

    /// The `quantix` command `cli` runs, to add arguments and spawn it yourself.
    pub fn cli_command(&self) -> Command {
        let mut cmd = Command::new(bin("quantix"));
        let root = self.dir.parent().unwrap_or(&self.dir).to_path_buf();
        cmd.env("QUANTIX_CONFIG_DIR", root.join("cli-config"));
        for v in [
            "QUANTIX_CA",
            "QUANTIX_CERT",
            "QUANTIX_KEY",
            "QUANTIX_TOKEN",
            "QUANTIX_REMOTE",
        ] {
            cmd.env_remove(v);
        }
        match self.admin() {
            Ok(Some(creds)) if self.has_cert() => {
                cmd.arg("--endpoint")
                    .arg(self.endpoint())
                    .env("QUANTIX_CA", creds.ca())
                    .env("QUANTIX_CERT", creds.cert())
                    .env("QUANTIX_KEY", creds.key());
            }
            _ => {
                cmd.arg("--endpoint").arg(self.socket_endpoint());
            }
        }
        cmd
    }

    /// TLS as this host itself (its own certificate): what its peers see.
    pub fn host_tls(&self) -> Result<std::sync::Arc<rustls::ClientConfig>> {
        let read = |f: &str| std::fs::read_to_string(self.tls_dir().join(f));
        let (ca, cert, key) = (read("ca.crt")?, read("host.crt")?, read("host.key")?);
        Ok(quantix::tls::config::client(&ca, Some((&cert, &key)))?)
    }

    /// TLS as `admin`, for clients a test builds itself.
    pub fn admin_tls(&self) -> Result<std::sync::Arc<rustls::ClientConfig>> {
        self.admin()?
            .ok_or_else(|| anyhow::anyhow!("{} has no cluster CA yet", self.name))?
            .tls()
    }

    /// The CLI as nobody in particular: TLS to the endpoint, trusting the cluster CA, with no
    /// credential unless `env` gives one.
    pub fn cli_as(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let root = self.dir.parent().unwrap_or(&self.dir).to_path_buf();
        let mut cmd = Command::new(bin("quantix"));
        cmd.env("QUANTIX_CONFIG_DIR", root.join("cli-config-nobody"));
        for v in [
            "QUANTIX_CA",
            "QUANTIX_CERT",
            "QUANTIX_KEY",
            "QUANTIX_TOKEN",
            "QUANTIX_REMOTE",
        ] {
            cmd.env_remove(v);
        }
        cmd.env("QUANTIX_CA", self.tls_dir().join("ca.crt"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.arg("--endpoint")
            .arg(self.endpoint())
            .args(args)
            .output()
            .expect("run quantix")
    }

    /// Runs the CLI with `-o json`; panics (naming the command and its stderr) unless it
    /// succeeds with one JSON document.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.cli(&all);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&out)))
    }

    /// Runs the CLI expecting a refusal: one stderr line holding every fragment.
    pub fn cli_refused(&self, args: &[&str], fragments: &[&str]) {
        let out = self.cli(args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} should fail");
        for f in fragments {
            assert!(err.contains(f), "{args:?}: wanted {f:?} in: {err}");
        }
        assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    }

    /// A gRPC channel to this host: TLS as `admin` once it has its certificate, its socket
    /// before.
    pub async fn channel(&self) -> Result<Channel> {
        match self.admin()? {
            Some(creds) if self.has_cert() => self.channel_with(creds.tls()?).await,
            _ => self.socket_channel().await,
        }
    }

    /// A TLS channel with the given client config (e.g. no certificate, another cluster's).
    pub async fn channel_with(&self, tls: std::sync::Arc<rustls::ClientConfig>) -> Result<Channel> {
        let connector = quantix::tls::connector::Connector::fixed(tls);
        Ok(quantix::raft::network::endpoint(&self.addr())?
            .connect_timeout(Duration::from_secs(2))
            .connect_with_connector(connector)
            .await?)
    }

    /// A channel through the host's administrator socket.
    pub async fn socket_channel(&self) -> Result<Channel> {
        let path = self.socket();
        Ok(tonic::transport::Endpoint::from_static("http://localhost")
            .connect_timeout(Duration::from_secs(2))
            .connect_with_connector(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await?)
    }
}

/// Trusts any server: only for talking to a host that has no cluster certificate yet.
pub fn insecure_tls() -> std::sync::Arc<rustls::ClientConfig> {
    #[derive(Debug)]
    struct Any(std::sync::Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for Any {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error>
        {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error>
        {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error>
        {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(Any(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    std::sync::Arc::new(cfg)
}
