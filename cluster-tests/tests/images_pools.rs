//! Images and storage pools over the real CLI and gRPC on a one-host cluster: the catalog,
//! pool and image records, bad input refused naming the field, and delete refusals; on three
//! hosts, pools limited to some hosts (`--hosts`, `pool set-hosts`).
//! Host reports (observe) are covered by the unit tests of `state::images` / `state::pools`.

use cluster_tests::{stderr, stdout, Cluster, Opts};
use quantix::proto::v1::image_service_client::ImageServiceClient;
use quantix::proto::v1::{CreateImageRequest, ImageState, ListCatalogRequest};
use serde_json::Value;
use std::process::Output;

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

fn names(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .iter()
        .filter_map(|x| x["name"].as_str().map(String::from))
        .collect()
}

/// Asserts the command failed with exactly one stderr line holding `msg` and `(code)`.
fn refused(out: &Output, msg: &str, code: &str) {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "expected a refusal, got: {}",
        stdout(out)
    );
    assert!(
        err.contains(msg) && err.contains(&format!("({code})")),
        "wanted {msg:?} ({code}), got: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_pools_and_images() -> anyhow::Result<()> {
    let c = Cluster::form(1, 1, Opts::default()).await?;
    let n = &c.nodes[0];

    // The catalog is there before anything is created or downloaded.
    let cat = json(&n.cli(&["image", "catalog", "-o", "json"]));
    let entries = names(&cat, "catalog");
    for want in [
        "ubuntu-24.04",
        "ubuntu-22.04",
        "debian-12",
        "debian-13",
        "rocky-9",
    ] {
        assert!(entries.iter().any(|e| e == want), "{want} in {entries:?}");
    }
    assert!(entries.len() >= 10, "{entries:?}");
    let ubuntu = &cat["catalog"][0];
    assert_eq!(ubuntu["name"], "ubuntu-24.04");
    assert!(ubuntu["url"]
        .as_str()
        .is_some_and(|u| u.starts_with("https://cloud-images.ubuntu.com/")));
    let table = n.cli(&["image", "catalog"]);
    assert!(table.status.success(), "{}", stderr(&table));
    assert!(stdout(&table).contains("debian-12") && stdout(&table).contains("URL"));
    // The same over plain gRPC.
    let mut images = ImageServiceClient::new(n.channel().await?);
    let grpc = images
        .list_catalog(ListCatalogRequest {})
        .await?
        .into_inner();
    assert_eq!(grpc.entries.len(), entries.len());

    // Pools.
    let local = json(&n.cli(&[
        "pool",
        "create",
        "local",
        "--type",
        "dir",
        "--path",
        "/var/lib/quantix/pools/local/",
        "-o",
        "json",
    ]));
    assert_eq!(local["type"], "dir");
    assert_eq!(local["path"], "/var/lib/quantix/pools/local");
    assert_eq!(local["shared"], false);
    let nas = json(&n.cli(&[
        "pool",
        "create",
        "nas",
        "--type",
        "nfs",
        "--server",
        "127.0.0.1",
        "--export",
        "/srv/vm",
        "-o",
        "json",
    ]));
    assert_eq!(nas["mount_point"], "/var/lib/quantix/mnt/nas");
    assert_eq!(nas["shared"], true);
    let out = n.cli(&[
        "pool", "create", "gfs", "--type", "dir", "--path", "/gfs", "--shared",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("created dir pool gfs"),
        "{}",
        stdout(&out)
    );
    let list = json(&n.cli(&["pool", "list", "-o", "json"]));
    assert_eq!(names(&list, "pools"), ["gfs", "local", "nas"]);
    let got = json(&n.cli(&["pool", "get", "nas", "-o", "json"]));
    assert_eq!(got["server"], "127.0.0.1");
    assert_eq!(got["export"], "/srv/vm");
    assert_eq!(got["reachable_from"], serde_json::json!([]));
    let table = n.cli(&["pool", "list"]);
    assert!(stdout(&table).contains("127.0.0.1:/srv/vm on /var/lib/quantix/mnt/nas"));

    // An image from the catalog: name, URL, OS and format come from the entry.
    let img = json(&n.cli(&[
        "image",
        "create",
        "ubuntu-24.04",
        "--pool",
        "local",
        "-o",
        "json",
    ]));
    assert_eq!(img["name"], "ubuntu-24.04");
    assert_eq!(img["os"], "ubuntu 24.04");
    assert_eq!(img["kind"], "cloud");
    assert_eq!(img["format"], "qcow2");
    assert_eq!(img["url"], ubuntu["url"]);
    assert_eq!(img["status"], "pending");
    assert_eq!(img["sha256"], Value::Null);
    // A catalog entry under another name.
    let img = json(&n.cli(&[
        "image",
        "create",
        "bookworm",
        "--catalog",
        "debian-12",
        "--pool",
        "gfs",
        "-o",
        "json",
    ]));
    assert_eq!(img["os"], "debian 12");
    // An ISO from a URL, with a checksum.
    let sha = "AB".repeat(32);
    let img = json(&n.cli(&[
        "image",
        "create",
        "netinst",
        "--url",
        "https://cdimage.debian.org/debian-cd/current/amd64/iso-cd/debian-12-amd64-netinst.iso",
        "--sha256",
        &sha,
        "--kind",
        "iso",
        "--os",
        "debian 12",
        "--pool",
        "nas",
        "-o",
        "json",
    ]));
    assert_eq!(img["kind"], "iso");
    assert_eq!(img["format"], "iso");
    assert_eq!(img["sha256"], sha.to_lowercase());
    assert_eq!(img["pool"], "nas");

    let all = json(&n.cli(&["image", "list", "-o", "json"]));
    assert_eq!(
        names(&all, "images"),
        ["bookworm", "netinst", "ubuntu-24.04"]
    );
    let in_nas = json(&n.cli(&["image", "list", "--pool", "nas", "-o", "json"]));
    assert_eq!(names(&in_nas, "images"), ["netinst"]);
    let got = json(&n.cli(&["image", "get", "netinst", "-o", "json"]));
    assert_eq!(got["progress"]["state"], "pending");
    assert_eq!(got["hosts"], serde_json::json!([]));
    let table = n.cli(&["image", "list"]);
    assert!(
        stdout(&table).contains("ubuntu-24.04") && stdout(&table).contains("pending"),
        "{}",
        stdout(&table)
    );

    // A retry with the same request id returns the first result, not AlreadyExists.
    let req = CreateImageRequest {
        name: "alma".into(),
        catalog: "almalinux-9".into(),
        pool: "local".into(),
        request_id: "retry-1".into(),
        ..Default::default()
    };
    let first = images.create_image(req.clone()).await?.into_inner();
    let again = images.create_image(req).await?.into_inner();
    assert_eq!(first, again);
    assert_eq!(
        first.status.map(|s| s.state),
        Some(ImageState::Pending as i32)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_delete_refusals() -> anyhow::Result<()> {
    let c = Cluster::form(1, 1, Opts::default()).await?;
    let n = &c.nodes[0];
    let ok = |args: &[&str]| {
        let out = n.cli(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    ok(&[
        "pool",
        "create",
        "local",
        "--type",
        "dir",
        "--path",
        "/pools/local",
    ]);

    let pool_cases: &[(&[&str], &str, &str)] = &[
        (
            &[
                "pool", "create", "Bad_Pool", "--type", "dir", "--path", "/x",
            ],
            "pool name 'Bad_Pool' may contain only lower-case letters",
            "InvalidArgument",
        ),
        (
            &["pool", "create", "p1", "--type", "dir"],
            "path is required for pool type dir",
            "InvalidArgument",
        ),
        (
            &[
                "pool",
                "create",
                "p1",
                "--type",
                "dir",
                "--path",
                "relative/dir",
            ],
            "path 'relative/dir' must be an absolute path",
            "InvalidArgument",
        ),
        (
            &["pool", "create", "p1", "--type", "nfs", "--server", "nas"],
            "export is required for pool type nfs",
            "InvalidArgument",
        ),
        (
            &[
                "pool", "create", "p1", "--type", "nfs", "--server", "bad host", "--export", "/srv",
            ],
            "nfs server 'bad host' must be a host name",
            "InvalidArgument",
        ),
        (
            &[
                "pool", "create", "p1", "--type", "dir", "--path", "/x", "--server", "nas",
            ],
            "server does not apply to pool type dir",
            "InvalidArgument",
        ),
        (
            &[
                "pool", "create", "local", "--type", "dir", "--path", "/other",
            ],
            "pool local already exists",
            "AlreadyExists",
        ),
        (
            &["pool", "get", "nope"],
            "pool nope does not exist",
            "NotFound",
        ),
        (
            &["pool", "delete", "nope"],
            "pool nope does not exist",
            "NotFound",
        ),
    ];
    for (args, msg, code) in pool_cases {
        refused(&n.cli(args), msg, code);
    }

    ok(&["image", "create", "ubuntu-24.04", "--pool", "local"]);
    let image_cases: &[(&[&str], &str, &str)] = &[
        (
            &[
                "image",
                "create",
                "x",
                "--url",
                "ftp://example.com/x.img",
                "--pool",
                "local",
            ],
            "url 'ftp://example.com/x.img' must start with http:// or https://",
            "InvalidArgument",
        ),
        (
            &[
                "image",
                "create",
                "x",
                "--url",
                "https://u:p@example.com/x",
                "--pool",
                "local",
            ],
            "must not carry a user name or password",
            "InvalidArgument",
        ),
        (
            &[
                "image",
                "create",
                "x",
                "--url",
                "https://example.com/x",
                "--sha256",
                "abc",
                "--pool",
                "local",
            ],
            "sha256 'abc' must be 64 hexadecimal characters",
            "InvalidArgument",
        ),
        (
            &[
                "image",
                "create",
                "X",
                "--url",
                "https://example.com/x",
                "--pool",
                "local",
            ],
            "image name 'X'",
            "InvalidArgument",
        ),
        (
            &[
                "image",
                "create",
                "x",
                "--url",
                "https://example.com/x",
                "--format",
                "iso",
                "--pool",
                "local",
            ],
            "format iso does not fit kind cloud",
            "InvalidArgument",
        ),
        (
            &["image", "create", "ubuntu-99.04", "--pool", "local"],
            "ubuntu-99.04 is not in the image catalog",
            "NotFound",
        ),
        (
            &["image", "create", "debian-12", "--pool", "ghost"],
            "pool ghost does not exist (image debian-12 is stored in it",
            "NotFound",
        ),
        (
            &["image", "create", "ubuntu-24.04", "--pool", "local"],
            "image ubuntu-24.04 already exists",
            "AlreadyExists",
        ),
        (
            &["image", "get", "nope"],
            "image nope does not exist",
            "NotFound",
        ),
        (
            &["image", "delete", "nope"],
            "image nope does not exist",
            "NotFound",
        ),
        // Deleting a pool an image is stored in names the image.
        (
            &["pool", "delete", "local"],
            "pool local is in use by image ubuntu-24.04",
            "FailedPrecondition",
        ),
    ];
    for (args, msg, code) in image_cases {
        refused(&n.cli(args), msg, code);
    }
    // Nothing refused left a trace.
    let list = json(&n.cli(&["image", "list", "-o", "json"]));
    assert_eq!(names(&list, "images"), ["ubuntu-24.04"]);

    // Once the image is gone, the pool can go.
    ok(&["image", "delete", "ubuntu-24.04"]);
    ok(&["pool", "delete", "local"]);
    refused(
        &n.cli(&["pool", "get", "local"]),
        "pool local does not exist",
        "NotFound",
    );
    let list = json(&n.cli(&["pool", "list", "-o", "json"]));
    assert_eq!(names(&list, "pools"), Vec::<String>::new());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_limited_to_some_hosts() -> anyhow::Result<()> {
    let c = Cluster::form(3, 3, Opts::default()).await?;
    let (h1, h3) = (&c.nodes[0], &c.nodes[2]);
    // Under the test's own directory: an agent that sets the pool up must not touch /.
    let root = h1.dir.parent().unwrap_or(&h1.dir).join("pools");
    let path = |name: &str| root.join(name).display().to_string();
    let allowed = |v: &Value| -> Vec<String> {
        v["allowed_hosts"]
            .as_array()
            .unwrap_or_else(|| panic!("no allowed_hosts in {v}"))
            .iter()
            .filter_map(|h| h.as_str().map(String::from))
            .collect()
    };

    // Created on host1, limited to two hosts (given out of order, one twice).
    let fast = json(&h1.cli(&[
        "pool",
        "create",
        "fast",
        "--type",
        "dir",
        "--path",
        &path("fast"),
        "--hosts",
        "host2,host1,host2",
        "-o",
        "json",
    ]));
    assert_eq!(allowed(&fast), ["host1", "host2"]);
    // Read back from another host.
    let got = json(&h3.cli(&["pool", "get", "fast", "-o", "json"]));
    assert_eq!(allowed(&got), ["host1", "host2"]);
    let out = h1.cli(&[
        "pool",
        "create",
        "any",
        "--type",
        "dir",
        "--path",
        &path("any"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = json(&h1.cli(&["pool", "list", "-o", "json"]));
    assert_eq!(names(&list, "pools"), ["any", "fast"]);
    assert_eq!(allowed(&list["pools"][0]), Vec::<String>::new());
    let table = stdout(&h1.cli(&["pool", "list"]));
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row in {table}"))
            .to_string()
    };
    assert!(
        table.lines().next().is_some_and(|h| h.contains("HOSTS")),
        "{table}"
    );
    assert!(row("fast").contains("host1,host2"), "{table}");
    assert!(row("any").contains("all"), "{table}");

    // Names that are not members are refused, naming the host; nothing is created.
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &[
                "pool",
                "create",
                "p2",
                "--type",
                "dir",
                "--path",
                "/p2",
                "--hosts",
                "host1,host9",
            ],
            "host host9 is not a member of this cluster",
            "NotFound",
        ),
        (
            &[
                "pool", "create", "p2", "--type", "dir", "--path", "/p2", "--hosts", "Host1",
            ],
            "host name 'Host1'",
            "InvalidArgument",
        ),
        (
            &["pool", "set-hosts", "fast", "host3,ghost"],
            "host ghost is not a member of this cluster",
            "NotFound",
        ),
        (
            &["pool", "set-hosts", "nope", "host1"],
            "pool nope does not exist",
            "NotFound",
        ),
    ];
    for (args, msg, code) in cases {
        refused(&h3.cli(args), msg, code);
    }
    let list = json(&h1.cli(&["pool", "list", "-o", "json"]));
    assert_eq!(names(&list, "pools"), ["any", "fast"]);
    assert_eq!(allowed(&list["pools"][1]), ["host1", "host2"]);
    // Either a list or --all, not both, not neither.
    assert!(!h1.cli(&["pool", "set-hosts", "fast"]).status.success());
    assert!(!h1
        .cli(&["pool", "set-hosts", "fast", "host1", "--all"])
        .status
        .success());

    // set-hosts replaces the limit (sent to a follower: forwarded to the leader)...
    let set = json(&h3.cli(&["pool", "set-hosts", "fast", "host3", "-o", "json"]));
    assert_eq!(allowed(&set), ["host3"]);
    let got = json(&h1.cli(&["pool", "get", "fast", "-o", "json"]));
    assert_eq!(allowed(&got), ["host3"]);
    let out = h1.cli(&["pool", "set-hosts", "fast", "host1,host3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("pool fast hosts: host1,host3"),
        "{}",
        stdout(&out)
    );
    // ...and --all lifts it.
    let set = json(&h1.cli(&["pool", "set-hosts", "fast", "--all", "-o", "json"]));
    assert_eq!(allowed(&set), Vec::<String>::new());
    let got = json(&h3.cli(&["pool", "get", "fast", "-o", "json"]));
    assert_eq!(allowed(&got), Vec::<String>::new());
    Ok(())
}
