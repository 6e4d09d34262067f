//! The server side of the host-to-host transport: Raft RPCs into openraft, and the
//! leader-bound requests (forwarded writes, read index, joins, removals, online view).
//! A payload that does not decode is refused as `InvalidArgument`, never a panic.

use serde::{de::DeserializeOwned, Serialize};
use tonic::{Request, Response, Status};

use super::join::JoinAsk;
use super::{ClusterError, Host};
use crate::proto::internal::raft_transport_server::RaftTransport;
use crate::proto::internal::Envelope;
use crate::raft::wire;
use crate::state::Request as StateRequest;

pub struct TransportService {
    host: Host,
}

impl TransportService {
    pub fn new(host: Host) -> Self {
        TransportService { host }
    }
}

fn decode<T: DeserializeOwned>(what: &'static str, req: Request<Envelope>) -> Result<T, Status> {
    wire::from_envelope(what, req.get_ref()).map_err(|e| Status::invalid_argument(e.to_string()))
}

fn reply<T: Serialize>(value: &T) -> Result<Response<Envelope>, Status> {
    wire::to_envelope(value)
        .map(Response::new)
        .map_err(|e| Status::internal(e.to_string()))
}

#[tonic::async_trait]
impl RaftTransport for TransportService {
    async fn append_entries(&self, req: Request<Envelope>) -> Result<Response<Envelope>, Status> {
        let rpc = decode("append entries", req)?;
        reply(&self.host.raft().append_entries(rpc).await)
    }

    async fn vote(&self, req: Request<Envelope>) -> Result<Response<Envelope>, Status> {
        let rpc = decode("vote", req)?;
        reply(&self.host.raft().vote(rpc).await)
    }

    async fn install_snapshot(&self, req: Request<Envelope>) -> Result<Response<Envelope>, Status> {
        let rpc = decode("install snapshot", req)?;
        reply(&self.host.raft().install_snapshot(rpc).await)
    }

    async fn forward(&self, req: Request<Envelope>) -> Result<Response<Envelope>, Status> {
        let r: StateRequest = decode("forwarded write", req)?;
        reply(&self.host.propose_local(r).await)
    }

    async fn read_index(&self, req: Request<Envelope>) -> Result<Response<Envelope>, Status> {
        let () = decode("read index", req)?;
        reply(&self.host.local_read_index().await)
    }

    async fn join(&self, req: Request<Envelope>) -> Result<Response<Envelope>, Status> {
        let ask: JoinAsk = decode("join", req)?;
        let result = if self.host.is_member() {
            self.host.handle_join(ask).await
        } else {
            Err(ClusterError::Unavailable(format!(
                "host {} is not a member of any cluster",
                self.host.name()
            )))
        };
        reply(&result)
    }

    async fn admit(&self, req: Request<Envelope>) -> Result<Response<Envelope>, Status> {
        // The auth layer let only a member host's certificate through: the joining host
        // itself (its certificate was recorded by `JoinHost`) or a member forwarding it.
        let name: String = decode("admit", req)?;
        reply(&self.host.handle_admit(name).await)
    }

    async fn remove_member(&self, req: Request<Envelope>) -> Result<Response<Envelope>, Status> {
        let name: String = decode("remove member", req)?;
        reply(&self.host.remove_member(name).await)
    }

    async fn member_status(&self, req: Request<Envelope>) -> Result<Response<Envelope>, Status> {
        let () = decode("member status", req)?;
        reply(&self.host.local_online_view().await)
    }
}
