//! Real TLS handshakes on loopback with the configurations hosts and clients will use.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::ca::{self, Ca, PeerCert, Role};
use super::config;
use super::files::TlsDir;

struct Issued {
    cert: String,
    key: String,
}

fn issue(ca: &Ca, role: Role, name: &str) -> Issued {
    let kc = ca::new_key_and_csr(name).unwrap();
    Issued {
        cert: ca
            .issue(
                &kc.csr_pem,
                role,
                name,
                &["127.0.0.1".into(), "localhost".into()],
            )
            .unwrap(),
        key: kc.key_pem,
    }
}

/// Serves one handshake; returns what the server learnt of its peer (or the error).
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> (Result<Option<PeerCert>, String>, Result<(), String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = TlsAcceptor::from(server)
            .accept(tcp)
            .await
            .map_err(|e| e.to_string())?;
        let peer = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| ca::peer_cert(c).unwrap());
        let mut b = [0u8; 4];
        tls.read_exact(&mut b).await.map_err(|e| e.to_string())?;
        tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
        Ok::<_, String>(peer)
    });
    let cli = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = TlsConnector::from(client)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
        let mut b = [0u8; 4];
        tls.read_exact(&mut b).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    let c = cli.await;
    let s = tokio::time::timeout(std::time::Duration::from_secs(5), srv)
        .await
        .map_err(|_| "server timed out".to_string())
        .and_then(|j| j.map_err(|e| e.to_string()))
        .and_then(|r| r);
    (s, c)
}

#[tokio::test]
async fn hosts_talk_mutual_tls_and_the_server_knows_who_called() {
    let ca = Ca::generate("c1").unwrap();
    let h1 = issue(&ca, Role::Host, "host1");
    let h2 = issue(&ca, Role::Host, "host2");
    let server = config::server(&ca.cert_pem, &h1.cert, &h1.key).unwrap();
    let client = config::client(&ca.cert_pem, Some((&h2.cert, &h2.key))).unwrap();
    let (s, c) = handshake(server, client).await;
    c.unwrap();
    let peer = s.unwrap().expect("a client certificate");
    assert_eq!(peer.name, "host2");
    assert_eq!(peer.role, Some(Role::Host));
    assert_eq!(peer.fingerprint, ca::fingerprint_pem(&h2.cert).unwrap());
}

#[tokio::test]
async fn a_caller_without_a_certificate_connects_but_is_nobody() {
    let ca = Ca::generate("c1").unwrap();
    let h1 = issue(&ca, Role::Host, "host1");
    let server = config::server(&ca.cert_pem, &h1.cert, &h1.key).unwrap();
    let client = config::client(&ca.cert_pem, None).unwrap();
    let (s, c) = handshake(server, client).await;
    c.unwrap();
    assert_eq!(s.unwrap(), None);
}

#[tokio::test]
async fn a_certificate_from_another_cluster_is_refused_at_the_handshake() {
    let ca = Ca::generate("c1").unwrap();
    let other = Ca::generate("c2").unwrap();
    let h1 = issue(&ca, Role::Host, "host1");
    let intruder = issue(&other, Role::Client, "mallory");
    let server = config::server(&ca.cert_pem, &h1.cert, &h1.key).unwrap();
    // It trusts our CA (it learnt it somehow) but its own certificate is the other CA's.
    let client = config::client(&ca.cert_pem, Some((&intruder.cert, &intruder.key))).unwrap();
    let (s, _) = handshake(server, client).await;
    let e = s.unwrap_err();
    assert!(e.to_lowercase().contains("unknown"), "{e}");

    // And a client that trusts only the other CA refuses our server.
    let server = config::server(&ca.cert_pem, &h1.cert, &h1.key).unwrap();
    let client = config::client(&other.cert_pem, None).unwrap();
    let (_, c) = handshake(server, client).await;
    assert!(c.unwrap_err().to_lowercase().contains("unknown"));
}

#[tokio::test]
async fn a_joining_host_trusts_only_the_ca_its_token_names() {
    let ca = Ca::generate("c1").unwrap();
    let h1 = issue(&ca, Role::Host, "host1");
    let server = config::server(&ca.cert_pem, &h1.cert, &h1.key).unwrap();
    let (s, c) = handshake(server.clone(), config::pinned(&ca.fingerprint()).unwrap()).await;
    c.unwrap();
    assert_eq!(s.unwrap(), None);

    let wrong = Ca::generate("c1").unwrap().fingerprint();
    let (_, c) = handshake(server, config::pinned(&wrong).unwrap()).await;
    let e = c.unwrap_err();
    assert!(e.contains("not the one the join token names"), "{e}");
}

#[test]
fn the_signer_ignores_what_a_csr_asks_for() {
    let ca = Ca::generate("c1").unwrap();
    let kc = ca::new_key_and_csr("evil").unwrap();
    let cert = ca
        .issue(&kc.csr_pem, Role::Client, "alice", &["10.0.0.1".into()])
        .unwrap();
    let der = ca::cert_der(&cert).unwrap();
    let peer = ca::peer_cert(&der).unwrap();
    assert_eq!(
        (peer.name.as_str(), peer.role),
        ("alice", Some(Role::Client))
    );
    let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert!(!x.is_ca());
    assert!(
        x.subject_alternative_name().unwrap().is_none(),
        "clients get no names"
    );
    assert!(ca
        .issue("not a csr", Role::Host, "h", &[])
        .unwrap_err()
        .to_string()
        .contains("read the CSR"));
    let back = Ca::from_pem(&ca.cert_pem, ca.key_pem()).unwrap();
    assert_eq!(back.fingerprint(), ca.fingerprint());
    assert_eq!(ca.fingerprint().len(), 64);
}

#[test]
fn keys_are_written_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let tls = TlsDir::new(dir.path());
    assert_eq!(tls.read("host.key").unwrap(), None);
    tls.write("host.key", "secret").unwrap();
    tls.write("host.key", "secret2").unwrap();
    assert_eq!(tls.read("host.key").unwrap().as_deref(), Some("secret2"));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&tls.path("host.key")), 0o600);
    assert_eq!(mode(&tls.dir), 0o700);
}
