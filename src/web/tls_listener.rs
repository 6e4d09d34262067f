//! The HTTP listener over TLS: axum's `Listener` on the accepted streams of `tls::acceptor`
//! (the same certificate and handshake rules as the gRPC port), with the peer's `PeerInfo` as
//! the connection's address, so the auth layer sees a browser's client certificate.
//! Owns: `TlsListener`, `peer_info` (the layer that moves `ConnectInfo<PeerInfo>` to where
//! `auth` reads it). Uses: `tls::acceptor`, axum.

use axum::extract::ConnectInfo;
use axum::serve::{IncomingStream, Listener};
use futures::StreamExt;
use std::io;

use crate::tls::acceptor::{incoming, Acceptor, PeerInfo, TlsConn};

pub struct TlsListener {
    local: std::net::SocketAddr,
    conns: tokio_stream::wrappers::ReceiverStream<io::Result<TlsConn>>,
}

impl TlsListener {
    pub fn new(listener: tokio::net::TcpListener, acceptor: Acceptor) -> io::Result<TlsListener> {
        Ok(TlsListener {
            local: listener.local_addr()?,
            conns: incoming(listener, acceptor),
        })
    }
}

impl Listener for TlsListener {
    type Io = TlsConn;
    type Addr = PeerInfo;

    async fn accept(&mut self) -> (TlsConn, PeerInfo) {
        loop {
            match self.conns.next().await {
                Some(Ok(conn)) => {
                    let peer = conn.peer().clone();
                    return (conn, peer);
                }
                Some(Err(e)) => tracing::debug!(error = %e, "https accept"),
                // The accept task ended (it never does while the listener lives).
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<PeerInfo> {
        Ok(PeerInfo {
            remote: Some(self.local),
            ..PeerInfo::default()
        })
    }
}

impl axum::extract::connect_info::Connected<IncomingStream<'_, TlsListener>> for PeerInfo {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> PeerInfo {
        stream.remote_addr().clone()
    }
}

/// Copies the connection's `PeerInfo` into the request's extensions (where `auth` looks).
pub async fn peer_info(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(ConnectInfo(p)) = req.extensions().get::<ConnectInfo<PeerInfo>>().cloned() {
        req.extensions_mut().insert(p);
    }
    next.run(req).await
}
