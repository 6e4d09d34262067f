//! Customization-spec secrets end to end: never shown by get/list (gRPC and CLI), kept or
//! cleared by updates, and sealed with the cluster key on every host's disk while the host that
//! renders a guest's seed still opens them.

use cluster_tests::{stderr, stdout, Cluster, Opts};
use quantix::proto::v1::spec_service_client::SpecServiceClient;
use quantix::proto::v1::{GetSpecRequest, ListSpecsRequest, ReadConsistency, SpecOs};
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

const ADMIN_PW: &str = "Adm1n-Sup3r-S3cret!";
const JOIN_PW: &str = "J0in-Acc0unt-S3cret";
const PRODUCT_KEY: &str = "QX7KP-9MW2D-RT4VB-H8YJC-3NF6G";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_never_shown() -> anyhow::Result<()> {
    let mut c = Cluster::form(1, 1, Opts::default()).await?;
    c.wait_for_leader(T).await?;
    let n = &c.nodes[0];
    let admin = write(&n.dir, "admin.txt", &format!("{ADMIN_PW}\n"));
    let join = write(&n.dir, "join.txt", JOIN_PW);
    let secrets = [ADMIN_PW, JOIN_PW, PRODUCT_KEY];
    let out = n.cli(&[
        "spec",
        "create",
        "win",
        "--os",
        "windows",
        "--computer-name",
        "WEB-{n}",
        "--timezone",
        "America/New_York",
        "--admin-password-file",
        &admin,
        "--join-domain",
        "corp.example.com",
        "--join-user",
        "CORP\\joiner",
        "--join-password-file",
        &join,
        "--product-key",
        &PRODUCT_KEY.to_lowercase(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let assert_hidden = |what: &str, text: &str| {
        for s in secrets {
            assert!(!text.contains(s), "{what} shows a secret: {text}");
            assert!(
                !text.contains(&s.to_lowercase()),
                "{what} shows a secret: {text}"
            );
        }
    };
    assert_hidden("create", &stdout(&out));
    for args in [
        vec!["spec", "get", "win"],
        vec!["spec", "get", "win", "-o", "json"],
        vec!["spec", "list"],
        vec!["spec", "list", "-o", "json"],
        vec![
            "spec",
            "create",
            "win2",
            "--os",
            "windows",
            "--admin-password-file",
            &admin,
            "-o",
            "json",
        ],
    ] {
        let out = n.cli(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_hidden(&format!("{args:?}"), &stdout(&out));
    }
    let w = n.cli_json(&["spec", "get", "win"])["windows"].clone();
    assert_eq!(w["has_admin_password"], true);
    assert_eq!(w["has_join_password"], true);
    assert_eq!(w["has_product_key"], true);
    assert_eq!(w["domain_join"]["user"], "CORP\\joiner");

    // Over gRPC: no field of the messages carries a secret (Debug prints every field).
    let mut client = SpecServiceClient::new(n.channel().await?);
    let got = client
        .get_spec(GetSpecRequest {
            name: "win".into(),
            consistency: ReadConsistency::Linearizable as i32,
        })
        .await?
        .into_inner();
    let list = client
        .list_specs(ListSpecsRequest {
            consistency: ReadConsistency::Stale as i32,
            os: SpecOs::Windows as i32,
        })
        .await?
        .into_inner();
    assert_eq!(list.specs.len(), 3);
    assert_hidden("GetSpec", &format!("{got:?}"));
    assert_hidden("ListSpecs", &format!("{list:?}"));

    // An update that names no secret keeps them all; --clear removes one.
    let out = n.cli(&["spec", "update", "win", "--timezone", "Europe/London"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let w = n.cli_json(&["spec", "get", "win"])["windows"].clone();
    assert_eq!(w["timezone"], "Europe/London");
    assert_eq!(
        (
            &w["has_admin_password"],
            &w["has_join_password"],
            &w["has_product_key"]
        ),
        (&true.into(), &true.into(), &true.into())
    );
    let out = n.cli(&["spec", "update", "win", "--clear", "product-key"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let w = n.cli_json(&["spec", "get", "win"])["windows"].clone();
    assert_eq!(w["has_product_key"], false);
    assert_eq!(w["has_admin_password"], true);
    // Moving to another domain needs that domain's join password.
    n.cli_refused(
        &[
            "spec",
            "update",
            "win",
            "--join-domain",
            "other.example.com",
        ],
        &["domain_join.password", "required", "(InvalidArgument)"],
    );
    let out = n.cli(&["spec", "update", "win", "--workgroup", "LAB"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let w = n.cli_json(&["spec", "get", "win"])["windows"].clone();
    assert_eq!(
        (&w["workgroup"], &w["has_join_password"]),
        (&"LAB".into(), &false.into())
    );
    Ok(())
}

/// Secrets are sealed with the cluster key before they enter the log: no host's log, state or
/// snapshot file holds them in plain, while the host that renders a guest's seed (a host that
/// got the key when it joined) still writes the real password into it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_sealed_on_every_host_and_opened_only_for_the_seed() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut c = Cluster::form(3, 3, Opts::default()).await?;
    c.wait_for_leader(T).await?;
    let (first, last) = (c.nodes[0].name.clone(), c.nodes[2].name.clone());
    let n = &c.nodes[1];
    let admin = write(&n.dir, "admin.txt", &format!("{ADMIN_PW}\n"));
    let join = write(&n.dir, "join.txt", JOIN_PW);
    let out = n.cli(&[
        "spec",
        "create",
        "win",
        "--os",
        "windows",
        "--admin-password-file",
        &admin,
        "--join-domain",
        "corp.example.com",
        "--join-user",
        "joiner",
        "--join-password-file",
        &join,
        "--product-key",
        PRODUCT_KEY,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = n.cli(&[
        "vm",
        "create",
        "winvm",
        "--pxe",
        "--disk-size",
        "0",
        "--memory",
        "512MiB",
        "--spec",
        "win",
        "--host",
        &last,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let h = c.node(&last);
    let seed = h.dir.join("data/vms/winvm/seed.iso");
    cluster_tests::wait_for(T, "the seed written on the VM's host", || async {
        seed.exists()
    })
    .await?;
    let meta = std::process::Command::new("isoinfo")
        .args(["-R", "-i"])
        .arg(&seed)
        .args(["-x", "/openstack/latest/meta_data.json"])
        .output()?;
    let meta = String::from_utf8_lossy(&meta.stdout);
    assert!(
        meta.contains(ADMIN_PW),
        "the seed has the opened password: {meta}"
    );
    for node in &c.nodes {
        let key = node.dir.join("data/tls/cluster.key");
        let mode = std::fs::metadata(&key)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
    }
    assert_eq!(
        std::fs::read(c.node(&first).dir.join("data/tls/cluster.key"))?,
        std::fs::read(h.dir.join("data/tls/cluster.key"))?,
        "a joined host got the bootstrap host's key"
    );
    for node in &mut c.nodes {
        node.stop()?;
    }
    for node in &c.nodes {
        for file in ["state.redb", "log.redb", "snapshot.bin"] {
            let path = node.dir.join("data").join(file);
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            for s in [ADMIN_PW, JOIN_PW, PRODUCT_KEY] {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "{} holds a secret in plain",
                    path.display()
                );
            }
        }
    }
    Ok(())
}
