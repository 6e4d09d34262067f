//! Apply paths and refusals of image commands.

use super::*;
use crate::model::image::{catalog, ImageFormat, ImageKind, ImageStatus};
use crate::model::pool::PoolKind;
use crate::state::apply::tests::init;
use crate::state::command::{Command, Rejection, Request};
use crate::state::pools::PoolCommand;
use crate::state::MemKv;

fn rejected(out: Outcome) -> Rejection {
    match out {
        Outcome::Rejected(r) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn pool_cmd(name: &str) -> PoolCommand {
    PoolCommand::CreatePool(crate::model::pool::PoolSpec {
        name: name.into(),
        kind: PoolKind::Dir {
            path: format!("/pools/{name}"),
            shared: false,
        },
        hosts: Vec::new(),
    })
}

fn with_pools() -> MemKv {
    let mut kv = init();
    for p in ["local", "nas"] {
        pools::apply(&mut kv, 2, &pool_cmd(p)).unwrap();
    }
    tables::put(
        &mut kv,
        Table::Hosts,
        b"h2",
        &crate::state::apply::tests::host("h2", 2),
    )
    .unwrap();
    kv
}

fn url_spec(name: &str, pool: &str) -> ImageSpec {
    ImageSpec {
        name: name.into(),
        kind: ImageKind::Iso,
        os: "debian 12".into(),
        format: ImageFormat::Iso,
        url:
            "https://cdimage.debian.org/debian-cd/current/amd64/iso-cd/debian-12-amd64-netinst.iso"
                .into(),
        sha256: Some("A".repeat(64)),
        pool: pool.into(),
    }
}

fn create_ok(kv: &mut MemKv, spec: ImageSpec) -> Image {
    match apply(kv, 3, &ImageCommand::CreateImage(spec)).unwrap() {
        Outcome::Applied(Applied::Image(ImageApplied::ImageCreated(i))) => i,
        other => panic!("{other:?}"),
    }
}

fn observe(kv: &mut MemKv, at: u64, image: &str, host: &str, status: HostImageStatus) -> Outcome {
    let cmd = ImageCommand::Observe {
        image: image.into(),
        host: host.into(),
        status,
    };
    apply(kv, at, &cmd).unwrap()
}

fn downloading(percent: u8, bytes_done: u64, bytes_total: u64) -> HostImageStatus {
    HostImageStatus::Downloading {
        percent,
        bytes_done,
        bytes_total,
    }
}

#[test]
fn create_from_catalog_and_from_url() {
    let mut kv = with_pools();
    let entry = catalog::entry("ubuntu-24.04").unwrap();
    let img = create_ok(&mut kv, entry.spec(entry.name, "local"));
    assert_eq!(img.name(), "ubuntu-24.04");
    assert_eq!(img.spec.url, entry.url);
    assert_eq!(img.status(), ImageStatus::Pending);
    assert_eq!((img.created_at, img.size_mib), (3, None));
    let iso = create_ok(&mut kv, url_spec("debian-netinst", "nas"));
    assert_eq!(
        iso.spec.sha256.as_deref(),
        Some("a".repeat(64).as_str()),
        "normalised"
    );
    assert_eq!(get(&kv, "debian-netinst").unwrap(), Some(iso));
    let all: Vec<String> = list(&kv, None)
        .unwrap()
        .iter()
        .map(|i| i.name().into())
        .collect();
    assert_eq!(all, ["debian-netinst", "ubuntu-24.04"]);
    let in_local: Vec<String> = list(&kv, Some("local"))
        .unwrap()
        .iter()
        .map(|i| i.name().into())
        .collect();
    assert_eq!(in_local, ["ubuntu-24.04"]);
    assert!(list(&kv, Some("none")).unwrap().is_empty());
}

#[test]
fn create_refusals() {
    let mut kv = with_pools();
    create_ok(&mut kv, url_spec("iso1", "local"));
    let cases: Vec<(ImageSpec, RejectKind, &str)> = vec![
        (
            url_spec("iso1", "nas"),
            RejectKind::AlreadyExists,
            "image iso1 already exists",
        ),
        (
            url_spec("iso2", "ghost"),
            RejectKind::NotFound,
            "pool ghost does not exist (image iso2 is stored in it",
        ),
        (
            ImageSpec {
                url: "ftp://example.com/x.iso".into(),
                ..url_spec("iso3", "local")
            },
            RejectKind::InvalidArgument,
            "url 'ftp://example.com/x.iso' must start with http:// or https://",
        ),
        (
            ImageSpec {
                sha256: Some("xyz".into()),
                ..url_spec("iso4", "local")
            },
            RejectKind::InvalidArgument,
            "sha256 'xyz'",
        ),
        (
            ImageSpec {
                format: ImageFormat::Qcow2,
                ..url_spec("iso5", "local")
            },
            RejectKind::InvalidArgument,
            "format qcow2 does not fit kind iso",
        ),
        (
            url_spec("Bad_Name", "local"),
            RejectKind::InvalidArgument,
            "image name 'Bad_Name'",
        ),
    ];
    for (spec, kind, msg) in cases {
        let r = rejected(apply(&mut kv, 4, &ImageCommand::CreateImage(spec.clone())).unwrap());
        assert_eq!(r.kind, kind, "{spec:?}");
        assert!(r.message.contains(msg), "{spec:?}: {}", r.message);
    }
    assert_eq!(list(&kv, None).unwrap().len(), 1);
}

#[test]
fn observe_tracks_each_host_and_the_overall_status() {
    let mut kv = with_pools();
    create_ok(&mut kv, url_spec("iso1", "local"));
    let out = observe(
        &mut kv,
        10,
        "iso1",
        "h1",
        downloading(25, 256 << 20, (1 << 30) + 1),
    );
    let Outcome::Applied(Applied::Image(ImageApplied::ImageObserved(img))) = out else {
        panic!("{out:?}");
    };
    assert_eq!(img.status(), ImageStatus::Downloading { percent: 25 });
    assert_eq!(img.size_mib, Some(1025), "rounded up to whole MiB");
    assert_eq!(img.hosts["h1"].at, 10);
    observe(
        &mut kv,
        11,
        "iso1",
        "h2",
        HostImageStatus::Failed {
            reason: "HTTP 404".into(),
        },
    );
    assert_eq!(
        get(&kv, "iso1").unwrap().unwrap().status(),
        ImageStatus::Downloading { percent: 25 }
    );
    observe(&mut kv, 12, "iso1", "h1", HostImageStatus::Ready);
    let img = get(&kv, "iso1").unwrap().unwrap();
    assert_eq!(img.status(), ImageStatus::Ready);
    assert_eq!(img.ready_on(), vec!["h1"]);
    assert_eq!(img.size_mib, Some(1025), "size survives the ready report");
    assert_eq!(
        img.hosts["h2"].status,
        HostImageStatus::Failed {
            reason: "HTTP 404".into()
        }
    );
    // An unknown total leaves the size unknown.
    create_ok(&mut kv, url_spec("iso2", "local"));
    observe(&mut kv, 13, "iso2", "h1", downloading(0, 10, 0));
    assert_eq!(get(&kv, "iso2").unwrap().unwrap().size_mib, None);
}

fn verified(kv: &mut MemKv, image: &str, host: &str, sha: &str, size: u64) -> Outcome {
    let cmd = ImageCommand::Verified {
        image: image.into(),
        host: host.into(),
        sha256: sha.into(),
        size_bytes: size,
    };
    apply(kv, 20, &cmd).unwrap()
}

#[test]
fn the_first_verified_copy_pins_the_checksum() {
    let mut kv = with_pools();
    let mut spec = url_spec("iso1", "local");
    spec.sha256 = None;
    create_ok(&mut kv, spec);
    let out = verified(&mut kv, "iso1", "h1", &"AB".repeat(32), 3 * 1024 * 1024 + 1);
    assert!(matches!(out, Outcome::Applied(_)), "{out:?}");
    let img = get(&kv, "iso1").unwrap().unwrap();
    assert_eq!(img.spec.sha256.as_deref(), Some("ab".repeat(32).as_str()));
    assert_eq!(img.size_mib, Some(4));
    assert_eq!(img.ready_on(), vec!["h1"]);
    assert_eq!(img.hosts["h1"].at, 20);
    // The same bytes elsewhere: ready too. Other bytes: refused, naming both checksums.
    assert!(matches!(
        verified(&mut kv, "iso1", "h2", &"ab".repeat(32), 5),
        Outcome::Applied(_)
    ));
    let r = rejected(verified(&mut kv, "iso1", "h2", &"cd".repeat(32), 5));
    assert_eq!(r.kind, RejectKind::FailedPrecondition);
    assert!(
        r.message.contains(&format!(
            "expected sha256 {}, got {}",
            "ab".repeat(32),
            "cd".repeat(32)
        )),
        "{}",
        r.message
    );
    let r = rejected(verified(&mut kv, "iso1", "h9", &"ab".repeat(32), 5));
    assert_eq!(r.kind, RejectKind::NotFound);
    let r = rejected(verified(&mut kv, "iso1", "h1", "xyz", 5));
    assert_eq!(r.kind, RejectKind::InvalidArgument);
    let r = rejected(verified(&mut kv, "nope", "h1", &"ab".repeat(32), 5));
    assert_eq!(r.kind, RejectKind::NotFound);
}

#[test]
fn observe_refusals() {
    let mut kv = with_pools();
    create_ok(&mut kv, url_spec("iso1", "local"));
    let cases: Vec<(&str, &str, HostImageStatus, RejectKind, &str)> = vec![
        (
            "nope",
            "h1",
            HostImageStatus::Ready,
            RejectKind::NotFound,
            "image nope does not exist",
        ),
        (
            "iso1",
            "h9",
            HostImageStatus::Ready,
            RejectKind::NotFound,
            "host h9 is not a member",
        ),
        (
            "iso1",
            "h1",
            downloading(101, 0, 0),
            RejectKind::InvalidArgument,
            "percent 101 is above 100",
        ),
        (
            "iso1",
            "h1",
            downloading(5, 9, 8),
            RejectKind::InvalidArgument,
            "bytes done (9) exceed",
        ),
        (
            "iso1",
            "h1",
            HostImageStatus::Failed {
                reason: String::new(),
            },
            RejectKind::InvalidArgument,
            "report on image iso1 from host h1: reason must say why",
        ),
    ];
    for (image, host, status, kind, msg) in cases {
        let r = rejected(observe(&mut kv, 5, image, host, status.clone()));
        assert_eq!(r.kind, kind, "{status:?}");
        assert!(r.message.contains(msg), "{status:?}: {}", r.message);
    }
    assert!(get(&kv, "iso1").unwrap().unwrap().hosts.is_empty());
}

#[test]
fn delete_rules() {
    let mut kv = with_pools();
    create_ok(&mut kv, url_spec("iso1", "local"));
    let r = rejected(
        apply(
            &mut kv,
            5,
            &ImageCommand::DeleteImage {
                name: "nope".into(),
            },
        )
        .unwrap(),
    );
    assert_eq!(
        (r.kind, r.message.as_str()),
        (RejectKind::NotFound, "image nope does not exist")
    );
    assert_eq!(
        apply(
            &mut kv,
            6,
            &ImageCommand::DeleteImage {
                name: "iso1".into()
            }
        )
        .unwrap(),
        Outcome::Applied(Applied::Image(ImageApplied::ImageDeleted {
            name: "iso1".into()
        }))
    );
    assert!(get(&kv, "iso1").unwrap().is_none());
    // The name is free again.
    create_ok(&mut kv, url_spec("iso1", "nas"));
}

#[test]
fn through_the_log_retries_apply_once_and_replays_identically() {
    let req = |id: Option<&str>, at, cmd| Request {
        id: id.map(String::from),
        by: "h1".into(),
        at,
        cmd,
    };
    let log = [
        req(Some("p"), 2, Command::Pool(pool_cmd("local"))),
        req(
            Some("i"),
            3,
            Command::Image(ImageCommand::CreateImage(url_spec("iso1", "local"))),
        ),
        req(
            Some("i"),
            4,
            Command::Image(ImageCommand::CreateImage(url_spec("iso1", "local"))),
        ),
        req(
            None,
            5,
            Command::Image(ImageCommand::Observe {
                image: "iso1".into(),
                host: "h1".into(),
                status: downloading(50, 1, 2),
            }),
        ),
        req(
            None,
            6,
            Command::Pool(PoolCommand::DeletePool {
                name: "local".into(),
            }),
        ),
        req(
            None,
            7,
            Command::Pool(PoolCommand::Observe {
                pool: "local".into(),
                host: "h1".into(),
                reachable: true,
                reason: String::new(),
                capacity_mib: 10,
                free_mib: 5,
            }),
        ),
    ];
    let run = || {
        let mut kv = init();
        let outs: Vec<Outcome> = log
            .iter()
            .enumerate()
            .map(|(i, r)| crate::state::apply(&mut kv, i as u64 + 2, r).unwrap())
            .collect();
        (kv, outs)
    };
    let (a, oa) = run();
    let (b, ob) = run();
    assert_eq!(a, b);
    assert_eq!(oa, ob);
    assert_eq!(
        oa[1], oa[2],
        "a retry returns the first outcome, not AlreadyExists"
    );
    assert!(matches!(&oa[4], Outcome::Rejected(r) if r.kind == RejectKind::FailedPrecondition));
    assert_eq!(list(&a, None).unwrap().len(), 1);
    assert!(pools::get(&a, "local")
        .unwrap()
        .unwrap()
        .hosts
        .contains_key("h1"));
}

#[test]
fn kinds_and_targets() {
    let cmds = [
        (
            ImageCommand::CreateImage(url_spec("a", "p")),
            "create_image",
        ),
        (
            ImageCommand::DeleteImage { name: "a".into() },
            "delete_image",
        ),
        (
            ImageCommand::Observe {
                image: "a".into(),
                host: "h1".into(),
                status: HostImageStatus::Ready,
            },
            "observe_image",
        ),
    ];
    for (c, kind) in cmds {
        assert_eq!(c.kind(), kind);
        assert_eq!(c.target(), "image a");
    }
}
