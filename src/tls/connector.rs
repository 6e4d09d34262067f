//! The client side of host-to-host TLS: a tower connector for tonic channels that dials TCP
//! and runs the TLS handshake, either as this host (its certificate and the cluster CA, read
//! from `<data_dir>/tls` and re-read when `host.crt` changes, since it appears at join) or
//! with a fixed config (a joining host's `pinned` one).
//! Owns: `Connector`. Uses: `tls::config`, `tls::files`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::files::TlsDir;

/// Longest a TCP connect plus TLS handshake to a peer may take.
pub const CONNECT: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct Connector {
    source: Source,
}

/// (mtime and length of host.crt, the config built from it).
type Cached = ((SystemTime, u64), Arc<ClientConfig>);

#[derive(Clone)]
enum Source {
    Host {
        dir: TlsDir,
        cache: Arc<Mutex<Option<Cached>>>,
    },
    Fixed(Arc<ClientConfig>),
}

impl Connector {
    /// As this host: its certificate, trusting the cluster CA.
    pub fn host(dir: TlsDir) -> Connector {
        Connector {
            source: Source::Host {
                dir,
                cache: Arc::new(Mutex::new(None)),
            },
        }
    }

    /// With a given config (e.g. `config::pinned` for a joining host).
    pub fn fixed(cfg: Arc<ClientConfig>) -> Connector {
        Connector {
            source: Source::Fixed(cfg),
        }
    }

    fn config(&self) -> io::Result<Arc<ClientConfig>> {
        let (dir, cache) = match &self.source {
            Source::Fixed(c) => return Ok(Arc::clone(c)),
            Source::Host { dir, cache } => (dir, cache),
        };
        let meta = std::fs::metadata(dir.path("host.crt")).map_err(|_| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "this host has no cluster certificate yet (it has not bootstrapped or joined a cluster)",
            )
        })?;
        let stamp = (meta.modified()?, meta.len());
        let mut c = cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((s, cfg)) = c.as_ref() {
            if *s == stamp {
                return Ok(Arc::clone(cfg));
            }
        }
        let read = |f: &str| -> io::Result<String> {
            dir.read(f)
                .map_err(|e| io::Error::other(e.to_string()))?
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{f} is missing")))
        };
        let (ca, cert, key) = (read("ca.crt")?, read("host.crt")?, read("host.key")?);
        let cfg = super::config::client(&ca, Some((&cert, &key)))
            .map_err(|e| io::Error::other(e.to_string()))?;
        *c = Some((stamp, Arc::clone(&cfg)));
        Ok(cfg)
    }
}

/// The host part of `host:port`, `[v6]:port` or a URI authority, as a TLS server name.
pub fn server_name(host: &str) -> io::Result<ServerName<'static>> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(h.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{h}: {e}")))
}

/// Dials `host:port` and runs the handshake.
pub async fn connect(
    cfg: Arc<ClientConfig>,
    host: &str,
    port: u16,
) -> io::Result<TlsStream<TcpStream>> {
    let name = server_name(host)?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let work = async {
        let tcp = TcpStream::connect((bare, port)).await?;
        tcp.set_nodelay(true)?;
        tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
    };
    tokio::time::timeout(CONNECT, work)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS connect timed out"))?
}

/// A status's message with the chain of errors under it, so "transport error" says what
/// went wrong (refused connection, a certificate that did not verify, ...).
pub fn status_detail(s: &tonic::Status) -> String {
    chain(s.message().to_string(), std::error::Error::source(s))
}

/// An error and its causes on one line; a cause whose text is already there (many errors
/// repeat their source's message) is left out.
pub fn source_chain(e: &dyn std::error::Error) -> String {
    chain(e.to_string(), e.source())
}

fn chain(mut out: String, mut cur: Option<&(dyn std::error::Error + 'static)>) -> String {
    while let Some(e) = cur {
        let text = e.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        cur = e.source();
    }
    out
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower::Service<http::Uri> for Connector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = BoxFuture<io::Result<Self::Response>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let cfg = self.config();
        Box::pin(async move {
            let cfg = cfg?;
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "address has no host"))?
                .to_string();
            let port = uri.port_u16().unwrap_or(443);
            Ok(TokioIo::new(connect(cfg, &host, port).await?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_addresses() {
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(
            server_name("host1.lab"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(server_name("bad name!").is_err());
    }
}
