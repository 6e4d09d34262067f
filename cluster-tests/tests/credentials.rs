//! Issue 8: API credentials as a user handles them with the CLI: client certificates and
//! bearer tokens made on one host work on every host, are refused once revoked, expire, and a
//! client certificate from another cluster is refused. Remotes remember all of it.

use std::time::Duration;

use cluster_tests::{stderr, stdout, wait_for, Cluster, Node, Opts};

const T: Duration = Duration::from_secs(20);

/// The CLI with its own config dir, trusting the cluster's CA, no other credential unless
/// `env` gives one.
fn as_(
    n: &Node,
    cfg: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut all = env.to_vec();
    let cfg = cfg.display().to_string();
    all.push(("QUANTIX_CONFIG_DIR", &cfg));
    n.cli_as(&all, args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_client_certificates_work_everywhere_until_revoked() -> anyhow::Result<()> {
    let c = Cluster::form(3, 3, Opts::default()).await?;
    let tmp = tempfile::tempdir()?;
    let cfg = tmp.path().join("cfg");
    let (h1, h2, h3) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);

    // A token made through host1 works at once through host3 (which may not have applied it
    // yet: it catches up before refusing).
    let out = h1.cli(&["cluster", "add-token", "ci", "--ttl", "1h"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();
    assert!(token.starts_with("qxtok1."), "{token}");
    assert!(
        stderr(&out).contains("--ca-fingerprint"),
        "{}",
        stderr(&out)
    );
    let who = as_(h3, &cfg, &[("QUANTIX_TOKEN", &token)], &["whoami"]);
    assert!(who.status.success(), "{}", stderr(&who));
    assert!(stdout(&who).starts_with("token ci"), "{}", stdout(&who));

    // Without a credential: one line, Unauthenticated, with what to do.
    let out = as_(h2, &cfg, &[], &["vm", "list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Unauthenticated"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("quantix remote add"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1);

    // A forged token (right id, wrong secret) and a malformed one.
    let forged = format!("{}{}", &token[..token.len() - 4], "0000");
    let out = as_(h2, &cfg, &[("QUANTIX_TOKEN", &forged)], &["vm", "list"]);
    assert!(stderr(&out).contains("wrong secret"), "{}", stderr(&out));
    let out = as_(h2, &cfg, &[("QUANTIX_TOKEN", "hello")], &["vm", "list"]);
    assert!(stderr(&out).contains("malformed"), "{}", stderr(&out));

    // `remote add` with the token and the CA fingerprint: it fetches the CA, checks it,
    // stores the remote as default; plain `quantix` then works.
    let fp =
        quantix::tls::ca::fingerprint_pem(&std::fs::read_to_string(h1.tls_dir().join("ca.crt"))?)?;
    let out = std::process::Command::new(cluster_tests::bin("quantix"))
        .env("QUANTIX_CONFIG_DIR", &cfg)
        .args([
            "remote",
            "add",
            "lab",
            &h2.endpoint(),
            "--token",
            &token,
            "--ca-fingerprint",
            &fp,
        ])
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("as token ci"), "{}", stdout(&out));
    let plain = |args: &[&str]| {
        std::process::Command::new(cluster_tests::bin("quantix"))
            .env("QUANTIX_CONFIG_DIR", &cfg)
            .args(args)
            .output()
            .expect("run quantix")
    };
    let out = plain(&["folder", "create", "/from-remote"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A wrong fingerprint is refused before anything is stored.
    let other = "ab".repeat(32);
    let out = plain(&[
        "remote",
        "add",
        "evil",
        &h2.endpoint(),
        "--token",
        &token,
        "--ca-fingerprint",
        &other,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot reach") || stderr(&out).contains("not the cluster"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&plain(&["remote", "list"])).contains("evil"));

    // A client certificate for alice, made on host2, used on host1.
    let alice = tmp.path().join("alice");
    let out = h2.cli(&[
        "cluster",
        "add-client",
        "alice",
        "--no-remote",
        "--out",
        alice.to_str().unwrap_or_default(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(alice.join("client.key"))?.permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let cert_env = |dir: &std::path::Path| {
        [
            ("QUANTIX_CERT", dir.join("client.crt").display().to_string()),
            ("QUANTIX_KEY", dir.join("client.key").display().to_string()),
        ]
    };
    let env = cert_env(&alice);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let who = as_(h1, &cfg, &env, &["whoami"]);
    assert!(
        stdout(&who).starts_with("client alice"),
        "{}{}",
        stdout(&who),
        stderr(&who)
    );

    // The list shows both with who made them; secrets never appear.
    let list = h3.cli_json(&["cluster", "credentials"]);
    let text = list.to_string();
    for want in ["\"ci\"", "\"alice\"", "\"admin\"", "client admin"] {
        assert!(text.contains(want), "{want} in {text}");
    }
    let secret = token.rsplit('.').next().unwrap_or_default();
    assert!(!text.contains(secret));
    // No host's state file holds the token's secret.
    for n in &c.nodes {
        let state = std::fs::read(n.dir.join("data/state.redb"))?;
        assert!(
            !state.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{}",
            n.name
        );
    }

    // Revoked on host3: refused on every host, also on a connection opened before.
    let mut vms = quantix::proto::v1::vm_service_client::VmServiceClient::new(
        h1.channel_with(quantix::tls::config::client(
            &std::fs::read_to_string(alice.join("ca.crt"))?,
            Some((
                &std::fs::read_to_string(alice.join("client.crt"))?,
                &std::fs::read_to_string(alice.join("client.key"))?,
            )),
        )?)
        .await?,
    );
    vms.list_vms(quantix::proto::v1::ListVmsRequest::default())
        .await?;
    for name in ["alice", "ci"] {
        let out = h3.cli(&["cluster", "revoke", name]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for n in [h1, h2, h3] {
        let who = as_(n, &cfg, &env, &["whoami"]);
        assert!(
            stderr(&who).contains("not registered"),
            "{}: {}",
            n.name,
            stderr(&who)
        );
        let who = as_(n, &cfg, &[("QUANTIX_TOKEN", &token)], &["whoami"]);
        assert!(
            stderr(&who).contains("not known"),
            "{}: {}",
            n.name,
            stderr(&who)
        );
    }
    let err = vms
        .list_vms(quantix::proto::v1::ListVmsRequest::default())
        .await
        .expect_err("revoked");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    // The remote that used the token says so too.
    let out = plain(&["vm", "list"]);
    assert!(stderr(&out).contains("Unauthenticated"), "{}", stderr(&out));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_and_other_clusters_client_certificates_are_refused() -> anyhow::Result<()> {
    let c = Cluster::form(1, 1, Opts::default()).await?;
    let other = Cluster::form(1, 1, Opts::default()).await?;
    let tmp = tempfile::tempdir()?;
    let cfg = tmp.path().join("cfg");
    let n = &c.nodes[0];

    let out = n.cli(&["cluster", "add-token", "short", "--ttl", "1s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();
    let expires = n.cli_json(&["cluster", "credentials"])["credentials"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "short").cloned())
        .map(|c| c["expires_at"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    assert!(!expires.is_empty(), "an expiry is shown");
    wait_for(T, "the token to expire", || async {
        let who = as_(n, &cfg, &[("QUANTIX_TOKEN", &token)], &["whoami"]);
        stderr(&who).contains("expired")
    })
    .await?;

    // Another cluster's admin certificate, presented to this cluster: the handshake fails
    // (its CA is not ours), whatever CA the client trusts.
    let theirs = other.nodes[0].admin()?.expect("admin of the other cluster");
    let env = [
        ("QUANTIX_CERT", theirs.cert().display().to_string()),
        ("QUANTIX_KEY", theirs.key().display().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = as_(n, &cfg, &env, &["vm", "list"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    // Depending on timing the client sees the server's alert or only the closed connection.
    assert!(
        err.contains("not issued by this cluster's CA") || err.contains("connection"),
        "{err}"
    );
    assert!(
        n.channel_with(theirs.tls()?).await.is_err(),
        "a client of another cluster connected"
    );
    Ok(())
}
