//! Bad input: refused with a message that names what was wrong, and the daemon keeps running.

use cluster_tests::{stderr, Cluster, Opts};
use quantix::proto::internal::raft_transport_client::RaftTransportClient;
use quantix::proto::internal::Envelope;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_is_refused_naming_the_key() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cases = [
        (
            "name = \"h1\"\ngrpc_addr = \"127.0.0.1:1\"\ncolour = \"blue\"\n",
            "colour",
        ),
        (
            "name = \"h1\"\ngrpc_addr = \"127.0.0.1:99999\"\n",
            "grpc_addr",
        ),
        ("name = \"Bad_Name\"\ngrpc_addr = \"127.0.0.1:1\"\n", "name"),
        (
            "name = \"h1\"\ngrpc_addr = \"127.0.0.1:1\"\n[raft]\nheartbeat_ms = 0\n",
            "raft.heartbeat_ms",
        ),
    ];
    for (text, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text)?;
        let out = Command::new(cluster_tests::bin_dir().join("quantixd"))
            .arg("--config")
            .arg(&path)
            .output()?;
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(stderr(&out).contains(key), "{text:?}: {}", stderr(&out));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_every_port_never_kills_the_daemon() -> anyhow::Result<()> {
    let mut c = Cluster::form(1, 1, Opts::default()).await?;
    // Malformed internal messages, sent with a member host's certificate (anything else is
    // refused before decoding: see the security tests).
    let host_tls = c.nodes[0].host_tls()?;
    let mut t = RaftTransportClient::new(c.nodes[0].channel_with(host_tls).await?);
    let junk = Envelope {
        format: 1,
        payload: vec![0xff; 64],
    };
    let err = t
        .append_entries(junk.clone())
        .await
        .expect_err("junk append");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = t
        .forward(Envelope {
            format: 77,
            payload: vec![],
        })
        .await
        .expect_err("unknown format");
    assert!(
        err.message().contains("unknown format version"),
        "{}",
        err.message()
    );
    // Bad API input.
    for path in [
        "",
        "x",
        "/a//b",
        "/../etc",
        &format!("/{}", "x".repeat(100)),
    ] {
        let out = c.nodes[0].cli(&["folder", "create", path]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("InvalidArgument"),
            "{path:?}: {}",
            stderr(&out)
        );
    }
    let out = c.nodes[0].cli(&["cluster", "remove", "nobody"]);
    assert!(
        stderr(&out).contains("host nobody is not a member (NotFound)"),
        "{}",
        stderr(&out)
    );
    let out = c.nodes[0].cli(&["cluster", "bootstrap", "--max-voters", "4"]);
    assert!(!out.status.success());
    // Still alive and still taking writes.
    assert!(c.nodes[0].is_running());
    let out = c.nodes[0].cli(&["folder", "create", "/ok"]);
    assert!(out.status.success(), "{}", stderr(&out));
    Ok(())
}

#[test]
fn cli_against_nothing_says_it_cannot_reach() {
    let cli = |endpoint: &str| {
        Command::new(cluster_tests::bin_dir().join("quantix"))
            .env("QUANTIX_CONFIG_DIR", "/nonexistent/quantix-config")
            .args(["--endpoint", endpoint, "cluster", "status"])
            .output()
            .expect("run quantix")
    };
    let out = cli("unix:///nonexistent/quantixd.sock");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .starts_with("error: cannot reach quantixd at unix:///nonexistent/quantixd.sock"),
        "{}",
        stderr(&out)
    );
    // The TCP port speaks only TLS; a plain URL is refused with the fix, and an https one
    // without the cluster CA names the flag that is missing.
    let out = cli("http://127.0.0.1:1");
    assert!(
        stderr(&out).contains("use https://127.0.0.1:1"),
        "{}",
        stderr(&out)
    );
    let out = cli("https://127.0.0.1:1");
    assert!(stderr(&out).contains("--ca"), "{}", stderr(&out));
    for out in [cli("http://127.0.0.1:1"), cli("https://127.0.0.1:1")] {
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_make_retries_safe() -> anyhow::Result<()> {
    use quantix::proto::v1::{CreateFolderRequest, CreateJoinTokenRequest};
    let c = Cluster::form(1, 1, Opts::default()).await?;
    // The same folder request retried returns the first result instead of AlreadyExists.
    let mut f = c.nodes[0].folders().await?;
    let req = CreateFolderRequest {
        path: "/once".into(),
        parents: false,
        request_id: "req-1".into(),
    };
    let first = f.create_folder(req.clone()).await?.into_inner();
    let retry = f.create_folder(req).await?.into_inner();
    assert_eq!(first, retry);
    // Reusing a request id for a different token cannot hand out a token that does not work.
    let mut cl = c.nodes[0].cluster().await?;
    let req = CreateJoinTokenRequest {
        ttl_seconds: 60,
        request_id: "tok-1".into(),
    };
    cl.create_join_token(req.clone()).await?;
    let err = cl
        .create_join_token(req)
        .await
        .expect_err("second token with the same request id");
    assert_eq!(
        err.code(),
        tonic::Code::FailedPrecondition,
        "{}",
        err.message()
    );
    Ok(())
}

/// `quantix ... | head`: a reader that goes away makes the CLI exit quietly (status 141, as
/// with SIGPIPE), never print a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_into_a_closed_pipe_exits_quietly() -> anyhow::Result<()> {
    let c = Cluster::form(1, 1, Opts::default()).await?;
    let mut child = c.nodes[0]
        .cli_command()
        .args(["spec", "timezones"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    drop(child.stdout.take());
    let out = child.wait_with_output()?;
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    Ok(())
}
