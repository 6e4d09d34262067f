//! The gRPC server of a host: public services (`quantix.v1`), the host-to-host transport,
//! server reflection and the standard health service, all on `grpc_addr`. Owns: request
//! handling and the error-to-status mapping (`status`). May use: `cluster`, `state`, `model`.

mod cluster;
mod folder;
pub mod status;

use std::future::Future;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::cluster::{Host, TransportService};
use crate::proto::internal::raft_transport_server::RaftTransportServer;
use crate::proto::v1::cluster_service_server::ClusterServiceServer;
use crate::proto::v1::folder_service_server::FolderServiceServer;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection service: {0}")]
    Reflection(String),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Largest message accepted: snapshot chunks and big lists must fit.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Serves every gRPC service on `listener` until `shutdown` resolves. The caller binds the
/// listener, so tests can use port 0.
pub async fn serve(
    listener: TcpListener,
    host: Host,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<ClusterServiceServer<cluster::ClusterApi>>()
        .await;
    health
        .set_serving::<FolderServiceServer<folder::FolderApi>>()
        .await;

    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(
            RaftTransportServer::new(TransportService::new(host.clone()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(ClusterServiceServer::new(cluster::ClusterApi {
            host: host.clone(),
        }))
        .add_service(
            FolderServiceServer::new(folder::FolderApi { host })
                .max_decoding_message_size(MAX_MESSAGE),
        )
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}
