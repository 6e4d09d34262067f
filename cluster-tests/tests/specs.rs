//! Customization specs end to end on a one-host cluster: the built-ins after bootstrap, a
//! create/get/list/update/delete round trip through the real CLI, refusals that name the field
//! with the right gRPC code, and the time-zone list. Secrets: `spec_secrets.rs`.

use cluster_tests::{stderr, stdout, Cluster, Node, Opts};
use quantix::proto::v1::spec_service_client::SpecServiceClient;
use quantix::proto::v1::ListTimezonesRequest;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

const ALICE_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g alice@laptop";
const OPS_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICgpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZH ops@bastion";

fn names(n: &Node) -> Vec<String> {
    n.cli_json(&["spec", "list"])["specs"]
        .as_array()
        .expect("specs")
        .iter()
        .filter_map(|s| s["name"].as_str().map(String::from))
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_ins_exist_and_cannot_be_deleted() -> anyhow::Result<()> {
    let mut c = Cluster::form(1, 1, Opts::default()).await?;
    c.wait_for_leader(T).await?;
    let n = &c.nodes[0];
    assert_eq!(names(n), ["linux-default", "windows-default"]);
    let l = n.cli_json(&["spec", "get", "linux-default"]);
    assert_eq!(l["built_in"], true);
    assert_eq!(l["os"], "linux");
    assert_eq!(l["linux"]["hostname_pattern"], "{vm}");
    assert_eq!(l["linux"]["network"], "dhcp");
    assert_eq!(l["linux"]["install_agent"], true);
    let w = n.cli_json(&["spec", "get", "windows-default"]);
    assert_eq!(w["windows"]["workgroup"], "WORKGROUP");
    assert_eq!(w["windows"]["has_admin_password"], false);
    for name in ["linux-default", "windows-default"] {
        n.cli_refused(
            &["spec", "delete", name],
            &[
                name,
                "built in and cannot be deleted",
                "(FailedPrecondition)",
            ],
        );
    }
    let windows_only = n.cli_json(&["spec", "list", "--os", "windows"]);
    assert_eq!(windows_only["specs"].as_array().map(Vec::len), Some(1));
    // Built-ins can be tuned.
    let out = n.cli(&[
        "spec",
        "update",
        "linux-default",
        "--timezone",
        "Europe/Paris",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let l = n.cli_json(&["spec", "get", "linux-default"]);
    assert_eq!(l["linux"]["timezone"], "Europe/Paris");
    assert_eq!(
        (l["revision"].as_u64(), l["built_in"].as_bool()),
        (Some(2), Some(true))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linux_spec_round_trip_through_the_cli() -> anyhow::Result<()> {
    let mut c = Cluster::form(1, 1, Opts::default()).await?;
    c.wait_for_leader(T).await?;
    let n = &c.nodes[0];
    let keys = write(&n.dir, "ops.pub", &format!("# ops keys\n{OPS_KEY}\n\n"));
    let alice = format!("alice:{ALICE_KEY}");
    let ops = format!("ops:@{keys}");
    let created = n.cli_json(&[
        "spec",
        "create",
        "web",
        "--os",
        "linux",
        "--description",
        "web tier",
        "--hostname-pattern",
        "web-{n}",
        "--domain",
        "example.com",
        "--timezone",
        "Europe/Berlin",
        "--user",
        &alice,
        "--user",
        &ops,
        "--ssh-key",
        OPS_KEY,
        "--dns",
        "10.0.0.53",
        "--dns",
        "10.0.0.54",
        "--search-domain",
        "example.com",
        "--static",
        "10.0.0.10/24",
        "--gateway",
        "10.0.0.1",
        "--package",
        "nginx",
        "--package",
        "curl",
        "--run",
        "systemctl enable --now nginx",
        "--no-agent",
    ]);
    assert_eq!(created["revision"], 1);
    let got = n.cli_json(&["spec", "get", "web"]);
    assert_eq!(got["description"], "web tier");
    let l = &got["linux"];
    assert_eq!(l["hostname_pattern"], "web-{n}");
    assert_eq!(l["timezone"], "Europe/Berlin");
    assert_eq!(l["users"][0]["name"], "alice");
    assert_eq!(l["users"][0]["ssh_keys"][0], ALICE_KEY);
    assert_eq!(
        l["users"][1]["ssh_keys"][0], OPS_KEY,
        "keys read from @FILE"
    );
    assert_eq!(
        l["dns_servers"],
        serde_json::json!(["10.0.0.53", "10.0.0.54"])
    );
    assert_eq!(l["network"], "static");
    assert_eq!(l["static_network"]["gateway"], "10.0.0.1");
    assert_eq!(l["packages"], serde_json::json!(["nginx", "curl"]));
    assert_eq!(l["install_agent"], false);
    assert_eq!(names(n), ["linux-default", "web", "windows-default"]);
    let table = stdout(&n.cli(&["spec", "list"]));
    assert!(
        table.contains("web-{n}") && table.contains("10.0.0.10/24 via 10.0.0.1"),
        "{table}"
    );

    // Update changes only what is named; a repeated option replaces its list.
    let out = n.cli(&[
        "spec",
        "update",
        "web",
        "--timezone",
        "Asia/Tokyo",
        "--dhcp",
        "--package",
        "htop",
    ]);
    assert!(
        stdout(&out).contains("updated spec web (linux, revision 2)"),
        "{}",
        stderr(&out)
    );
    let l = n.cli_json(&["spec", "get", "web"])["linux"].clone();
    assert_eq!(l["timezone"], "Asia/Tokyo");
    assert_eq!(l["network"], "dhcp");
    assert_eq!(l["packages"], serde_json::json!(["htop"]));
    assert_eq!(l["domain"], "example.com", "untouched fields stay");
    assert_eq!(l["users"].as_array().map(Vec::len), Some(2));
    let out = n.cli(&[
        "spec", "update", "web", "--clear", "users", "--clear", "dns", "--agent",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let l = n.cli_json(&["spec", "get", "web"])["linux"].clone();
    assert_eq!(l["users"], serde_json::json!([]));
    assert_eq!(l["dns_servers"], serde_json::json!([]));
    assert_eq!(l["install_agent"], true);

    // Wrong-OS options and an update with nothing in it are usage errors.
    n.cli_refused(
        &["spec", "update", "web", "--computer-name", "X"],
        &["--computer-name", "windows specs only"],
    );
    n.cli_refused(&["spec", "update", "web"], &["nothing to change"]);

    let out = n.cli(&["spec", "delete", "web"]);
    assert!(
        stdout(&out).contains("deleted spec web"),
        "{}",
        stderr(&out)
    );
    n.cli_refused(
        &["spec", "get", "web"],
        &["spec web does not exist", "(NotFound)"],
    );
    n.cli_refused(
        &["spec", "delete", "web"],
        &["spec web does not exist", "(NotFound)"],
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_field() -> anyhow::Result<()> {
    let mut c = Cluster::form(1, 1, Opts::default()).await?;
    c.wait_for_leader(T).await?;
    let n = &c.nodes[0];
    let ia = "(InvalidArgument)";
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["Bad_Name", "--os", "linux"],
            vec!["spec name", "lower-case"],
        ),
        (
            vec!["a", "--os", "linux", "--timezone", "Mars/Olympus_Mons"],
            vec!["timezone", "not a known IANA time zone"],
        ),
        (
            vec!["a", "--os", "linux", "--timezone", "europe/berlin"],
            vec!["did you mean Europe/Berlin?"],
        ),
        (
            vec!["a", "--os", "linux", "--hostname-pattern", "web-{id}"],
            vec!["hostname_pattern", "unknown placeholder {id}"],
        ),
        (
            vec![
                "a",
                "--os",
                "linux",
                "--user",
                "bob:ssh-dss AAAAB3NzaC1kc3M=",
            ],
            vec!["users[bob].ssh_keys[0]", "SSH key type"],
        ),
        (
            vec![
                "a",
                "--os",
                "linux",
                "--ssh-key",
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g",
            ],
            vec!["ssh_keys[0]", "not a 'ssh-rsa' key"],
        ),
        (
            vec!["a", "--os", "linux", "--dns", "dns.example.com"],
            vec!["dns_servers[0]", "not an IP address"],
        ),
        (
            vec![
                "a",
                "--os",
                "linux",
                "--static",
                "10.0.0.5/24",
                "--gateway",
                "10.9.0.1",
            ],
            vec!["static_network.gateway", "outside 10.0.0.5/24"],
        ),
        (
            vec!["a", "--os", "linux", "--static", "10.0.0.5/40"],
            vec!["static_network.prefix"],
        ),
        (
            vec!["a", "--os", "linux", "--package", "bad pkg"],
            vec!["packages[0]", "package name"],
        ),
        (
            vec![
                "a",
                "--os",
                "windows",
                "--computer-name",
                "A-MUCH-TOO-LONG-NAME",
            ],
            vec!["computer_name", "longer than 15"],
        ),
        (
            vec!["a", "--os", "windows", "--product-key", "ABCDE-12345"],
            vec!["product_key", "five groups of five"],
        ),
        (
            vec!["a", "--os", "windows", "--workgroup", "WORK GROUP"],
            vec!["workgroup"],
        ),
    ];
    for (args, frags) in cases {
        let mut all = vec!["spec", "create"];
        all.extend(args);
        let mut want = frags;
        want.push(ia);
        n.cli_refused(&all, &want);
    }
    // A domain join needs the join password.
    n.cli_refused(
        &[
            "spec",
            "create",
            "a",
            "--os",
            "windows",
            "--join-domain",
            "corp.example.com",
            "--join-user",
            "joiner",
        ],
        &["domain_join.password", "required", ia],
    );
    n.cli_refused(
        &[
            "spec",
            "create",
            "a",
            "--os",
            "linux",
            "--computer-name",
            "X",
        ],
        &["--computer-name", "windows specs only"],
    );
    assert!(
        !names(n).contains(&"a".to_string()),
        "nothing refused was stored"
    );
    n.cli_refused(
        &["spec", "create", "linux-default", "--os", "linux"],
        &["spec linux-default already exists", "(AlreadyExists)"],
    );
    n.cli_refused(
        &["spec", "update", "windows-default", "--dhcp"],
        &["--dhcp", "linux specs only"],
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timezones_are_listed_by_region() -> anyhow::Result<()> {
    let mut c = Cluster::form(1, 1, Opts::default()).await?;
    c.wait_for_leader(T).await?;
    let n = &c.nodes[0];
    let mut client = SpecServiceClient::new(n.channel().await?);
    let all = client
        .list_timezones(ListTimezonesRequest::default())
        .await?
        .into_inner();
    let regions: Vec<&str> = all.regions.iter().map(|r| r.name.as_str()).collect();
    for r in ["Africa", "America", "Asia", "Europe", "Etc"] {
        assert!(regions.contains(&r), "{regions:?}");
    }
    let europe = n.cli_json(&["spec", "timezones", "--region", "europe"]);
    let zones = europe["regions"][0]["timezones"].as_array().expect("zones");
    assert_eq!(europe["regions"].as_array().map(Vec::len), Some(1));
    assert!(zones.iter().any(|z| z == "Europe/Berlin"), "{zones:?}");
    let table = stdout(&n.cli(&["spec", "timezones", "--region", "Europe"]));
    assert!(
        table
            .lines()
            .any(|l| l.contains("Europe") && l.contains("Europe/Paris")),
        "{table}"
    );
    n.cli_refused(
        &["spec", "timezones", "--region", "Atlantis"],
        &["no time-zone region 'Atlantis'", "(NotFound)"],
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_in_use_by_a_vm_is_not_deleted() -> anyhow::Result<()> {
    let mut c = Cluster::form(1, 1, Opts::default()).await?;
    c.wait_for_leader(T).await?;
    let n = &c.nodes[0];
    let out = n.cli(&[
        "spec",
        "create",
        "db",
        "--os",
        "linux",
        "--hostname-pattern",
        "db-{n}",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = n.cli(&[
        "vm",
        "create",
        "db1",
        "--pxe",
        "--disk-size",
        "0",
        "--spec",
        "db",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    n.cli_refused(
        &["spec", "delete", "db"],
        &["spec db is in use by vm db1", "(FailedPrecondition)"],
    );
    n.cli_refused(
        &[
            "vm",
            "create",
            "db2",
            "--pxe",
            "--disk-size",
            "0",
            "--spec",
            "nope",
        ],
        &["spec nope does not exist"],
    );
    assert!(names(n).contains(&"db".to_string()));
    Ok(())
}
