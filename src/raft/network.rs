//! The client side of the host-to-host transport: one long-lived gRPC channel per peer
//! address, shared by Raft replication, write forwarding and joins, over mutual TLS as this
//! host (`tls::connector`). Records when each peer last answered, which is what "online"
//! means in `cluster status`.

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

use super::{wire, Member, TypeConfig};
use crate::proto::internal::raft_transport_client::RaftTransportClient;
use crate::proto::internal::Envelope;
use crate::tls::connector::Connector;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these maps cannot leave them inconsistent (single inserts).
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Channels to peers, by address, and when each host id last answered.
#[derive(Clone)]
pub struct Peers {
    connector: Connector,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    last_ok: Arc<Mutex<HashMap<u64, Instant>>>,
}

/// The endpoint for `addr`; tonic speaks plain h2 over the TLS stream a `Connector` makes.
pub fn endpoint(addr: &str) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(1))
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5)))
}

/// A lazy channel to `addr` through `connector`.
pub fn channel(addr: &str, connector: Connector) -> Result<Channel, tonic::transport::Error> {
    Ok(endpoint(addr)?.connect_with_connector_lazy(connector))
}

impl Peers {
    pub fn new(connector: Connector) -> Peers {
        Peers {
            connector,
            channels: Arc::default(),
            last_ok: Arc::default(),
        }
    }

    pub fn client(
        &self,
        addr: &str,
    ) -> Result<RaftTransportClient<Channel>, tonic::transport::Error> {
        let mut channels = lock(&self.channels);
        if let Some(ch) = channels.get(addr) {
            return Ok(RaftTransportClient::new(ch.clone()).max_decoding_message_size(usize::MAX));
        }
        let ch = channel(addr, self.connector.clone())?;
        channels.insert(addr.to_string(), ch.clone());
        Ok(RaftTransportClient::new(ch).max_decoding_message_size(usize::MAX))
    }

    pub fn mark_ok(&self, id: u64) {
        lock(&self.last_ok).insert(id, Instant::now());
    }

    /// Time since `id` last answered an RPC from this host, if it ever did.
    pub fn since_ok(&self, id: u64) -> Option<Duration> {
        lock(&self.last_ok).get(&id).map(|t| t.elapsed())
    }
}

pub struct NetworkFactory {
    pub peers: Peers,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerConn;

    async fn new_client(&mut self, target: u64, node: &Member) -> PeerConn {
        PeerConn {
            target,
            addr: node.addr.clone(),
            peers: self.peers.clone(),
        }
    }
}

pub struct PeerConn {
    target: u64,
    addr: String,
    peers: Peers,
}

type RpcErr<E> = RPCError<u64, Member, RaftError<u64, E>>;

fn status_to_rpc<E: std::error::Error>(s: tonic::Status) -> RpcErr<E> {
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown => {
            RPCError::Unreachable(Unreachable::new(&s))
        }
        _ => RPCError::Network(NetworkError::new(&s)),
    }
}

impl PeerConn {
    async fn call<Req, Resp, E>(
        &self,
        kind: Rpc,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RpcErr<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let env = wire::to_envelope(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut client = self
            .peers
            .client(&self.addr)
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let mut request = tonic::Request::new(env);
        request.set_timeout(ttl);
        let resp: Envelope = match kind {
            Rpc::Append => client.append_entries(request).await,
            Rpc::Vote => client.vote(request).await,
            Rpc::Snapshot => client.install_snapshot(request).await,
        }
        .map_err(status_to_rpc)?
        .into_inner();
        let result: Result<Resp, RaftError<u64, E>> =
            wire::from_envelope("raft response", &resp)
                .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.peers.mark_ok(self.target);
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

enum Rpc {
    Append,
    Vote,
    Snapshot,
}

impl RaftNetwork<TypeConfig> for PeerConn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcErr<openraft::error::Infallible>> {
        self.call(Rpc::Append, &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RpcErr<InstallSnapshotError>> {
        self.call(Rpc::Snapshot, &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RpcErr<openraft::error::Infallible>> {
        self.call(Rpc::Vote, &rpc, option.hard_ttl()).await
    }
}
