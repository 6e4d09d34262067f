//! The gRPC server of a host: public services (`quantix.v1`), the host-to-host transport,
//! server reflection and the standard health service, all on `grpc_addr`. The same public
//! services (`public_routes`) are also served as gRPC-web on `http_addr` by `web`. Owns:
//! request handling and the error-to-status mapping (`status`). May use: `cluster`, `state`,
//! `model`.

mod access;
mod cluster;
mod event;
mod folder;
mod host;
mod image;
mod pool;
mod spec;
pub mod status;
mod vm;

use std::future::Future;
use tokio::net::TcpListener;

use crate::cluster::{Host, TransportService};
use crate::proto::internal::raft_transport_server::RaftTransportServer;
use crate::proto::v1::access_service_server::AccessServiceServer;
use crate::proto::v1::cluster_service_server::ClusterServiceServer;
use crate::proto::v1::event_service_server::EventServiceServer;
use crate::proto::v1::folder_service_server::FolderServiceServer;
use crate::proto::v1::host_service_server::HostServiceServer;
use crate::proto::v1::image_service_server::ImageServiceServer;
use crate::proto::v1::pool_service_server::PoolServiceServer;
use crate::proto::v1::spec_service_server::SpecServiceServer;
use crate::proto::v1::vm_service_server::VmServiceServer;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection service: {0}")]
    Reflection(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Largest message accepted: snapshot chunks and big lists must fit.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// The public `quantix.v1` services, one handler set per call: `serve` adds them to the gRPC
/// server, `web` serves them as gRPC-web to the dashboard.
pub fn public_routes(host: &Host) -> tonic::service::Routes {
    let h = || host.clone();
    tonic::service::Routes::new(ClusterServiceServer::new(cluster::ClusterApi { host: h() }))
        .add_service(
            FolderServiceServer::new(folder::FolderApi { host: h() })
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(HostServiceServer::new(host::HostApi { host: h() }))
        .add_service(
            VmServiceServer::new(vm::VmApi { host: h() }).max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(SpecServiceServer::new(spec::SpecApi { host: h() }))
        .add_service(
            ImageServiceServer::new(image::ImageApi { host: h() })
                .max_decoding_message_size(MAX_MESSAGE),
        )
        .add_service(PoolServiceServer::new(pool::PoolApi { host: h() }))
        .add_service(EventServiceServer::new(event::EventApi { host: h() }))
        .add_service(AccessServiceServer::new(access::AccessApi { host: h() }))
}

/// Serves every gRPC service until `shutdown` resolves: on `listener` over TLS (the host's
/// certificate; `tls::acceptor`) and, when given, on the host's root-only Unix `socket`. Every
/// call goes through `auth::AuthLayer` first. The caller binds both, so tests can use port 0.
pub async fn serve(
    listener: TcpListener,
    socket: Option<tokio::net::UnixListener>,
    host: Host,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    use futures::FutureExt;
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
    health
        .set_serving::<HostServiceServer<host::HostApi>>()
        .await;
    health.set_serving::<VmServiceServer<vm::VmApi>>().await;
    health
        .set_serving::<SpecServiceServer<spec::SpecApi>>()
        .await;
    health
        .set_serving::<ImageServiceServer<image::ImageApi>>()
        .await;
    health
        .set_serving::<PoolServiceServer<pool::PoolApi>>()
        .await;
    health
        .set_serving::<EventServiceServer<event::EventApi>>()
        .await;
    health
        .set_serving::<AccessServiceServer<access::AccessApi>>()
        .await;

    let router = tonic::transport::Server::builder()
        .layer(crate::auth::AuthLayer::new(host.clone()))
        .add_routes(public_routes(&host))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(
            RaftTransportServer::new(TransportService::new(host.clone()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        );
    let shutdown = shutdown.shared();
    let local = socket.map(|sock| {
        let router = router.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(sock);
            if let Err(e) = router.serve_with_incoming_shutdown(incoming, stop).await {
                tracing::error!(error = %e, "unix socket listener stopped");
            }
        })
    });
    let acceptor = crate::tls::acceptor::Acceptor::new(host.tls_dir().clone())
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    let served = router
        .serve_with_incoming_shutdown(crate::tls::acceptor::incoming(listener, acceptor), shutdown)
        .await;
    if let Some(l) = local {
        l.abort();
    }
    served?;
    Ok(())
}
