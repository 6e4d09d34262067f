//! Issue 8: who may talk to a cluster. Real quantixd processes on loopback; every refusal is
//! checked by what the refused party sees.

use std::time::Duration;

use cluster_tests::{Cluster, Opts};
use quantix::proto::v1::cluster_service_client::ClusterServiceClient;
use quantix::proto::v1::{BootstrapRequest, CreateJoinTokenRequest, GetStatusRequest, JoinRequest};

const T: Duration = Duration::from_secs(20);

/// Three hosts formed only through their administrator sockets (no CLI, no API credential):
/// bootstrap, a token, joins. Replication then runs over mutual TLS between the hosts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_form_a_cluster_over_mutual_tls_from_their_sockets() -> anyhow::Result<()> {
    let c = Cluster::start(3, Opts::default()).await?;
    let mut first = ClusterServiceClient::new(c.nodes[0].socket_channel().await?);
    first.bootstrap(BootstrapRequest { max_voters: 3 }).await?;
    for n in &c.nodes[1..] {
        let token = first
            .create_join_token(CreateJoinTokenRequest::default())
            .await?
            .into_inner()
            .token;
        let mut joiner = ClusterServiceClient::new(n.socket_channel().await?);
        joiner.join(JoinRequest { token }).await?;
    }
    let mut third = ClusterServiceClient::new(c.nodes[2].socket_channel().await?);
    let status = third
        .get_status(GetStatusRequest { consistency: 0 })
        .await?
        .into_inner();
    assert_eq!(status.members.len(), 3, "{status:?}");
    assert!(status.members.iter().all(|m| m.online), "{status:?}");
    let _ = T;
    Ok(())
}
