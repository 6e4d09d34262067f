//! Issue 8: who may talk to a cluster. Real quantixd processes on loopback; every refusal is
//! checked by what the refused party sees, and that it was refused for the right reason (a
//! call that got past authentication would fail differently: junk payloads are
//! `InvalidArgument` once decoded).

use std::time::Duration;

use cluster_tests::{wait_for, Cluster, Node, Opts};
use quantix::proto::internal::raft_transport_client::RaftTransportClient;
use quantix::proto::internal::Envelope;
use quantix::proto::v1::cluster_service_client::ClusterServiceClient;
use quantix::proto::v1::vm_service_client::VmServiceClient;
use quantix::proto::v1::{
    BootstrapRequest, CreateJoinTokenRequest, GetStatusRequest, JoinRequest, ListVmsRequest,
    RemoveMemberRequest,
};
use tonic::Code;

const T: Duration = Duration::from_secs(20);

/// Forms a cluster through the hosts' administrator sockets only.
async fn form(n: usize) -> anyhow::Result<Cluster> {
    let c = Cluster::start(n, Opts::default()).await?;
    let mut first = ClusterServiceClient::new(c.nodes[0].socket_channel().await?);
    first.bootstrap(BootstrapRequest { max_voters: 3 }).await?;
    for node in &c.nodes[1..] {
        join(node, &token(&c.nodes[0], 0).await?).await?;
    }
    Ok(c)
}

async fn token(n: &Node, ttl_seconds: u64) -> anyhow::Result<String> {
    let mut cl = ClusterServiceClient::new(n.socket_channel().await?);
    Ok(cl
        .create_join_token(CreateJoinTokenRequest {
            ttl_seconds,
            request_id: String::new(),
        })
        .await?
        .into_inner()
        .token)
}

async fn join(n: &Node, token: &str) -> Result<(), tonic::Status> {
    let ch = n
        .socket_channel()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    ClusterServiceClient::new(ch)
        .join(JoinRequest {
            token: token.into(),
        })
        .await
        .map(|_| ())
}

fn ca(n: &Node) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(n.tls_dir().join("ca.crt"))?)
}

fn junk() -> Envelope {
    Envelope {
        format: 1,
        payload: vec![0xff; 16],
    }
}

/// Three hosts formed only through their sockets (no API credential): replication then runs
/// over mutual TLS between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_form_a_cluster_over_mutual_tls_from_their_sockets() -> anyhow::Result<()> {
    let c = form(3).await?;
    let mut third = ClusterServiceClient::new(c.nodes[2].socket_channel().await?);
    let status = third
        .get_status(GetStatusRequest { consistency: 0 })
        .await?
        .into_inner();
    assert_eq!(status.members.len(), 3, "{status:?}");
    assert!(status.members.iter().all(|m| m.online), "{status:?}");
    // Every certificate file is private.
    for n in &c.nodes {
        for f in ["host.key", "ca.key", "host.crt", "ca.crt", "cluster.key"] {
            let mode = std::fs::metadata(n.tls_dir().join(f))?.permissions();
            assert_eq!(
                std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
                0o600,
                "{f}"
            );
        }
        let sock = std::fs::metadata(n.socket())?.permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&sock) & 0o777,
            0o600
        );
    }
    Ok(())
}

/// A caller with no certificate (TLS, trusting the CA) gets nothing but health; one without
/// TLS gets no answer at all; a certificate from another cluster's CA fails the handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cluster_certificate_only_health_answers() -> anyhow::Result<()> {
    let c = form(2).await?;
    let other = form(1).await?;
    let n = &c.nodes[0];
    let nobody = n
        .channel_with(quantix::tls::config::client(&ca(n)?, None)?)
        .await?;

    let err = VmServiceClient::new(nobody.clone())
        .list_vms(ListVmsRequest::default())
        .await
        .expect_err("list without a credential");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("needs a credential"), "{err:?}");

    let mut t = RaftTransportClient::new(nobody.clone());
    for (what, r) in [
        ("append", t.append_entries(junk()).await),
        ("vote", t.vote(junk()).await),
        ("forward", t.forward(junk()).await),
        ("admit", t.admit(junk()).await),
    ] {
        let err = r.expect_err(what);
        assert_eq!(err.code(), Code::Unauthenticated, "{what}: {err:?}");
    }
    // Reflection is closed too; health is open.
    {
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let refused = ServerReflectionClient::new(nobody.clone())
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .expect_err("reflection without a credential");
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    }
    let mut health = tonic_health::pb::health_client::HealthClient::new(nobody);
    let ok = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await?
        .into_inner();
    assert_eq!(
        ok.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // Plain h2 without TLS: the handshake never happens, nothing is answered.
    let plain = tonic::transport::Channel::from_shared(format!("http://{}", n.addr()))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    assert!(VmServiceClient::new(plain)
        .list_vms(ListVmsRequest::default())
        .await
        .is_err());

    // Another cluster's host certificate (a valid certificate, the wrong CA): refused at
    // the handshake, for the API and the transport alike.
    let foreign = other.nodes[0].host_tls()?;
    let refused = n.channel_with(foreign).await;
    assert!(refused.is_err(), "a foreign certificate connected");

    // A member host's own certificate may use the transport (junk is then refused by the
    // decoder, i.e. after authentication) ...
    let mut as_host =
        RaftTransportClient::new(c.nodes[1].channel_with(c.nodes[1].host_tls()?).await?);
    let err = as_host.append_entries(junk()).await.expect_err("junk");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // ... but the log says every refusal above was an authentication failure.
    assert!(n.log().contains("refused an unauthenticated call"));
    Ok(())
}

/// Forged, expired and other-cluster tokens are refused with a reason; a token whose CA
/// fingerprint is not the cluster's stops the joining host before it sends the secret, so the
/// token is still unspent afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_join_tokens_are_refused_and_a_wrong_ca_is_never_sent_the_secret() -> anyhow::Result<()>
{
    use quantix::cluster::token::JoinToken;
    let c = Cluster::start(2, Opts::default()).await?;
    let other = form(1).await?;
    let mut first = ClusterServiceClient::new(c.nodes[0].socket_channel().await?);
    first.bootstrap(BootstrapRequest { max_voters: 3 }).await?;
    let joiner = &c.nodes[1];
    let good = token(&c.nodes[0], 0).await?;

    // Forged: right id, wrong secret.
    let mut forged = JoinToken::decode(&good)?;
    forged.secret = quantix::cluster::token::new_secret();
    let err = join(joiner, &forged.encode()).await.expect_err("forged");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("secret does not match"), "{err:?}");

    // Another cluster's token names that cluster's CA and id: the handshake succeeds only
    // with that cluster, which refuses a token it never made.
    let foreign = token(&other.nodes[0], 0).await?;
    let mut to_us = JoinToken::decode(&foreign)?;
    to_us.addrs = vec![c.nodes[0].addr()];
    let err = join(joiner, &to_us.encode()).await.expect_err("foreign CA");
    assert!(
        err.message().contains("not the one the join token names"),
        "{err:?}"
    );

    // Our token, pointed at another cluster's host (a man in the middle): the joining host
    // refuses that host's CA in the handshake, before sending the secret...
    let mut mitm = JoinToken::decode(&good)?;
    mitm.addrs = vec![other.nodes[0].addr()];
    let err = join(joiner, &mitm.encode()).await.expect_err("mitm");
    assert!(
        err.message().contains("not the one the join token names"),
        "{err:?}"
    );
    // ... so the token was never spent: it still works.
    join(joiner, &good).await?;
    let err = join(&other.nodes[0], &good)
        .await
        .expect_err("member again");
    assert!(err.message().contains("already belongs"), "{err:?}");

    // Expired.
    let c2 = Cluster::start(1, Opts::default()).await?;
    let short = token(&c.nodes[0], 1).await?;
    let expires = JoinToken::decode(&short)?.expires_at;
    wait_for(T, "the token to expire", || async {
        quantix::cluster::now_ms() > expires
    })
    .await?;
    let err = join(&c2.nodes[0], &short).await.expect_err("expired");
    assert!(err.message().contains("expired"), "{err:?}");
    Ok(())
}

/// A removed host's certificate is refused by the members from then on, on the transport and
/// the API, also on connections it opened before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_host_is_cut_off() -> anyhow::Result<()> {
    let mut c = form(3).await?;
    let removed = c.nodes[2].host_tls()?;
    let before = c.nodes[0].channel_with(removed.clone()).await?;
    // While a member, its certificate works.
    let mut t = RaftTransportClient::new(before.clone());
    let err = t.append_entries(junk()).await.expect_err("junk");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    let mut admin = ClusterServiceClient::new(c.nodes[0].socket_channel().await?);
    admin
        .remove_member(RemoveMemberRequest {
            name: "host3".into(),
            request_id: String::new(),
        })
        .await?;
    c.node_mut("host3").kill();
    let (h1, h2) = (&c.nodes[0], &c.nodes[1]);
    for n in [h1, h2] {
        let addr = n.addr();
        wait_for(T, &format!("{addr} to refuse host3"), || {
            let removed = removed.clone();
            async move {
                let Ok(ch) = n.channel_with(removed).await else {
                    return false;
                };
                let mut t = RaftTransportClient::new(ch);
                matches!(t.append_entries(junk()).await, Err(e) if e.code() == Code::Unauthenticated
                    && e.message().contains("host3"))
            }
        })
        .await?;
    }
    // The connection opened before the removal is refused too, for every call.
    let err = t.forward(junk()).await.expect_err("forward");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let err = VmServiceClient::new(before)
        .list_vms(ListVmsRequest::default())
        .await
        .expect_err("api");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(
        err.message().contains("not a member") || err.message().contains("revoked"),
        "{err:?}"
    );
    Ok(())
}
