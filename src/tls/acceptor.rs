//! The server side of every TCP listener: TLS handshakes with the host's current certificate,
//! and the accepted connections with what tonic and axum need to know about the peer.
//!
//! The certificate can appear while the daemon runs (bootstrap, join), so the acceptor looks
//! at `host.crt` on every accept (one `stat`) and rebuilds its rustls config when the file
//! changed. Until the host has one, it presents a throwaway self-signed certificate made at
//! start: nothing but the health check and the join RPC is open to a caller then anyway (the
//! API needs a credential, and a host without a CA cannot have issued any).
//!
//! Handshakes run in their own tasks, each limited to `HANDSHAKE`, so a slow or silent client
//! cannot hold up the accept loop.
//! Owns: `Acceptor`, `TlsConn`, `PeerInfo`, `incoming`. Uses: `tls::config`, `tls::files`.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use rustls::pki_types::CertificateDer;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use super::files::TlsDir;
use super::TlsError;

/// Longest a TLS handshake may take.
pub const HANDSHAKE: Duration = Duration::from_secs(10);

/// File names in `<data_dir>/tls` (as `cluster::certs` writes them).
const CA_CERT: &str = "ca.crt";
const HOST_CERT: &str = "host.crt";
const HOST_KEY: &str = "host.key";

#[derive(Clone)]
pub struct Acceptor {
    inner: Arc<Inner>,
}

struct Inner {
    dir: TlsDir,
    /// Config for a host that has no certificate yet.
    unjoined: Arc<ServerConfig>,
    /// (mtime and length of host.crt, config built from it).
    current: Mutex<Option<(Stamp, Arc<ServerConfig>)>>,
}

type Stamp = (SystemTime, u64);

impl Acceptor {
    pub fn new(dir: TlsDir) -> Result<Acceptor, TlsError> {
        Ok(Acceptor {
            inner: Arc::new(Inner {
                dir,
                unjoined: super::config::self_signed_server("quantix-unjoined-host")?,
                current: Mutex::new(None),
            }),
        })
    }

    /// The config for the next handshake.
    pub fn config(&self) -> Arc<ServerConfig> {
        let path = self.inner.dir.path(HOST_CERT);
        let stamp = std::fs::metadata(&path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        let Some(stamp) = stamp else {
            return Arc::clone(&self.inner.unjoined);
        };
        let mut cur = self.inner.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((s, cfg)) = cur.as_ref() {
            if *s == stamp {
                return Arc::clone(cfg);
            }
        }
        match self.load() {
            Ok(cfg) => {
                *cur = Some((stamp, Arc::clone(&cfg)));
                cfg
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot load this host's certificate; presenting a temporary one");
                Arc::clone(&self.inner.unjoined)
            }
        }
    }

    fn load(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let read = |f: &str| -> Result<String, TlsError> {
            self.inner.dir.read(f)?.ok_or_else(|| TlsError::Config {
                what: "load the host certificate",
                message: format!("{} is missing", self.inner.dir.path(f).display()),
            })
        };
        super::config::server(&read(CA_CERT)?, &read(HOST_CERT)?, &read(HOST_KEY)?)
    }

    /// One handshake on an accepted TCP connection.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<TlsConn> {
        let remote = tcp.peer_addr().ok();
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config());
        let tls = tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let certs: Option<Arc<Vec<CertificateDer<'static>>>> = tls
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| Arc::new(c.iter().map(|d| d.clone().into_owned()).collect()));
        // Read once per connection, not per request.
        let cert = certs
            .as_ref()
            .and_then(|c| c.first())
            .map(|leaf| super::ca::peer_cert(leaf.as_ref()).map_err(|e| e.to_string()));
        Ok(TlsConn {
            stream: tls,
            info: PeerInfo {
                remote,
                certs,
                cert,
            },
        })
    }
}

/// What is known about the other end of a TLS connection; tonic and axum put it in every
/// request's extensions.
#[derive(Debug, Clone, Default)]
pub struct PeerInfo {
    pub remote: Option<std::net::SocketAddr>,
    /// The client's certificate chain (leaf first), verified against the cluster CA.
    pub certs: Option<Arc<Vec<CertificateDer<'static>>>>,
    /// What the leaf certificate says (or why it could not be read).
    pub cert: Option<Result<super::ca::PeerCert, String>>,
}

/// An accepted, handshaken TLS connection.
pub struct TlsConn {
    stream: TlsStream<TcpStream>,
    info: PeerInfo,
}

impl TlsConn {
    pub fn peer(&self) -> &PeerInfo {
        &self.info
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

/// Accepted TLS connections from `listener`, for `serve_with_incoming` (and the web
/// listener). A failed handshake is logged and dropped, never ends the stream. Sockets get
/// `TCP_NODELAY`: Nagle's algorithm would hold replies back ~40 ms.
pub fn incoming(
    listener: TcpListener,
    acceptor: Acceptor,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<TlsConn>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, addr) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let sender = tx.clone();
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(conn) => {
                        let _ = sender.send(Ok(conn)).await;
                    }
                    Err(e) => tracing::debug!(peer = %addr, error = %e, "TLS handshake failed"),
                }
            });
            if tx.is_closed() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
