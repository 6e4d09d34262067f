//! Issue 8: bootstrap makes the cluster CA and the first host's certificate, every joining
//! host gets its certificate signed from its CSR, and join tokens carry the CA's fingerprint.
//! (How the listeners use them: `security.rs`.)

use cluster_tests::{Cluster, Opts};
use quantix::tls::{ca, config};
use std::os::unix::fs::PermissionsExt;

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_host_gets_a_certificate_from_the_cluster_ca() -> anyhow::Result<()> {
    let c = Cluster::form(3, 3, Opts::default()).await?;
    let tls = |i: usize| c.nodes[i].dir.join("data/tls");
    let ca_pem = read(&tls(0).join("ca.crt"));
    for (i, n) in c.nodes.iter().enumerate() {
        for f in ["ca.crt", "ca.key", "host.crt", "host.key", "cluster.key"] {
            let mode = std::fs::metadata(tls(i).join(f))?.permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} {f}", n.name);
        }
        assert_eq!(
            read(&tls(i).join("ca.crt")),
            ca_pem,
            "one CA for {}",
            n.name
        );
        let cert = ca::peer_cert(&ca::cert_der(&read(&tls(i).join("host.crt")))?)?;
        assert_eq!(
            (cert.name.as_str(), cert.role),
            (n.name.as_str(), Some(ca::Role::Host))
        );
    }
    // The token names the CA a joining host must find.
    let token = quantix::cluster::token::JoinToken::decode(&c.token(1)?)?;
    assert_eq!(token.ca_fingerprint, Some(ca::fingerprint_pem(&ca_pem)?));

    // host1's and host3's certificates make a mutual TLS connection that names the caller.
    let server = config::server(
        &ca_pem,
        &read(&tls(0).join("host.crt")),
        &read(&tls(0).join("host.key")),
    )?;
    let client = config::client(
        &ca_pem,
        Some((
            &read(&tls(2).join("host.crt")),
            &read(&tls(2).join("host.key")),
        )),
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accept = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let tls = tokio_rustls::TlsAcceptor::from(server).accept(tcp).await?;
        let der = tls.get_ref().1.peer_certificates().map(|c| c[0].to_vec());
        anyhow::Ok(der)
    });
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?;
    let _conn = tokio_rustls::TlsConnector::from(client)
        .connect(name, tcp)
        .await?;
    let peer = accept.await??.expect("a client certificate");
    assert_eq!(ca::peer_cert(&peer)?.name, c.nodes[2].name);
    Ok(())
}
