//! Validation of image specs and host reports, and the derived overall status.

use super::*;

fn spec() -> ImageSpec {
    ImageSpec {
        name: "ubuntu-24.04".into(),
        kind: ImageKind::Cloud,
        os: " ubuntu 24.04 ".into(),
        format: ImageFormat::Qcow2,
        url: "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img".into(),
        sha256: Some("AB".repeat(32)),
        pool: "local".into(),
    }
}

#[test]
fn valid_spec_is_normalised() {
    let s = spec().validate().unwrap();
    assert_eq!(s.os, "ubuntu 24.04");
    assert_eq!(s.sha256.as_deref(), Some("ab".repeat(32).as_str()));
    assert_eq!(s.validate().unwrap(), s, "validation is idempotent");
}

#[test]
fn names() {
    let cases: &[(&str, bool)] = &[
        ("ubuntu-24.04", true),
        ("alpine-3.21", true),
        ("win2022", true),
        ("a", true),
        ("", false),
        ("Ubuntu", false),
        ("a..b", false),
        (".a", false),
        ("a.", false),
        ("a.-b", false),
        ("a_b", false),
        (&"x".repeat(64), false),
    ];
    for (name, ok) in cases {
        assert_eq!(validate_name(name).is_ok(), *ok, "{name:?}");
    }
    assert!(validate_name("A")
        .unwrap_err()
        .to_string()
        .starts_with("image name 'A'"));
}

#[test]
fn urls() {
    let cases: &[(&str, Option<&str>)] = &[
        ("https://example.com/x.img", None),
        ("http://10.0.0.5:8080/images/x.qcow2", None),
        ("HTTPS://Example.COM/x", None),
        ("https://[fd00::1]:443/x.iso", None),
        ("https://example.com", None),
        ("", Some("must not be empty")),
        ("ftp://example.com/x", Some("http:// or https://")),
        ("file:///etc/passwd", Some("http:// or https://")),
        ("example.com/x.img", Some("http:// or https://")),
        ("https:///x", Some("must name a host")),
        ("https://bad_host/x", Some("must name a host")),
        (
            "https://user:pw@example.com/x",
            Some("user name or password"),
        ),
        ("https://example.com:0/x", Some("bad port")),
        ("https://example.com:99999/x", Some("bad port")),
        ("https://[zz]/x", Some("bad IPv6")),
        ("https://example.com/a b", Some("spaces")),
    ];
    for (url, want) in cases {
        match (validate_url(url), want) {
            (Ok(()), None) => {}
            (Err(e), Some(msg)) => {
                let e = e.to_string();
                assert!(e.starts_with("url '") && e.contains(msg), "{url}: {e}");
            }
            (got, want) => panic!("{url}: got {got:?}, wanted {want:?}"),
        }
    }
    let long = format!("https://example.com/{}", "x".repeat(MAX_URL));
    assert!(validate_url(&long).is_err());
}

#[test]
fn spec_refusals_name_the_field() {
    let cases: Vec<(ImageSpec, &str)> = vec![
        (
            ImageSpec {
                sha256: Some("abc".into()),
                ..spec()
            },
            "sha256 'abc' must be 64 hexadecimal",
        ),
        (
            ImageSpec {
                sha256: Some("g".repeat(64)),
                ..spec()
            },
            "sha256",
        ),
        (
            ImageSpec {
                pool: "Bad Pool".into(),
                ..spec()
            },
            "pool name 'Bad Pool'",
        ),
        (
            ImageSpec {
                os: "x".repeat(65),
                ..spec()
            },
            "os '",
        ),
        (
            ImageSpec {
                os: "a\tb".into(),
                ..spec()
            },
            "control characters",
        ),
        (
            ImageSpec {
                format: ImageFormat::Iso,
                ..spec()
            },
            "format iso does not fit kind cloud",
        ),
        (
            ImageSpec {
                kind: ImageKind::Iso,
                ..spec()
            },
            "format qcow2 does not fit kind iso",
        ),
        (
            ImageSpec {
                url: "ftp://x/y".into(),
                ..spec()
            },
            "url 'ftp://x/y'",
        ),
        (
            ImageSpec {
                name: "Ubuntu".into(),
                ..spec()
            },
            "image name 'Ubuntu'",
        ),
    ];
    for (s, msg) in cases {
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains(msg), "{s:?}: {e}");
    }
    assert!(ImageKind::parse("vhd")
        .unwrap_err()
        .to_string()
        .contains("kind 'vhd'"));
    assert!(ImageFormat::parse("vmdk")
        .unwrap_err()
        .to_string()
        .contains("format 'vmdk'"));
    assert_eq!(ImageKind::Iso.default_format(), ImageFormat::Iso);
    assert_eq!(ImageKind::Cloud.default_format(), ImageFormat::Qcow2);
}

#[test]
fn host_reports() {
    let dl = |percent, bytes_done, bytes_total| HostImageStatus::Downloading {
        percent,
        bytes_done,
        bytes_total,
    };
    assert!(dl(50, 5, 10).validate().is_ok());
    assert!(dl(0, 5, 0).validate().is_ok(), "unknown total is fine");
    assert_eq!(
        dl(101, 0, 0).validate(),
        Err(ImageError::BadPercent { value: 101 })
    );
    assert!(dl(50, 11, 10)
        .validate()
        .unwrap_err()
        .to_string()
        .contains("bytes done (11) exceed bytes total (10)"));
    let failed = |r: &str| HostImageStatus::Failed { reason: r.into() };
    assert_eq!(failed("  ").validate(), Err(ImageError::NoReason));
    match failed(&"x".repeat(2000)).validate() {
        Ok(HostImageStatus::Failed { reason }) => assert_eq!(reason.len(), MAX_REASON),
        other => panic!("{other:?}"),
    }
}

#[test]
fn overall_status_is_derived_from_hosts() {
    let image = |reports: &[(&str, HostImageStatus)]| Image {
        spec: spec(),
        size_mib: None,
        created_at: 1,
        hosts: reports
            .iter()
            .map(|(h, s)| {
                (
                    h.to_string(),
                    HostImage {
                        status: s.clone(),
                        at: 2,
                    },
                )
            })
            .collect(),
    };
    let dl = |percent| HostImageStatus::Downloading {
        percent,
        bytes_done: 0,
        bytes_total: 0,
    };
    let failed = |r: &str| HostImageStatus::Failed { reason: r.into() };
    let cases: Vec<(Vec<(&str, HostImageStatus)>, ImageStatus)> = vec![
        (vec![], ImageStatus::Pending),
        (
            vec![("h1", dl(10)), ("h2", dl(40))],
            ImageStatus::Downloading { percent: 40 },
        ),
        (
            vec![("h1", dl(10)), ("h2", HostImageStatus::Ready)],
            ImageStatus::Ready,
        ),
        (
            vec![("h1", failed("404")), ("h2", HostImageStatus::Ready)],
            ImageStatus::Ready,
        ),
        (
            vec![("h1", failed("404")), ("h2", dl(5))],
            ImageStatus::Downloading { percent: 5 },
        ),
        (
            vec![("h1", failed("404")), ("h2", failed("disk full"))],
            ImageStatus::Failed {
                reason: "h1: 404; h2: disk full".into(),
            },
        ),
    ];
    for (reports, want) in cases {
        let img = image(&reports);
        assert_eq!(img.status(), want, "{reports:?}");
    }
    let img = image(&[
        ("h2", HostImageStatus::Ready),
        ("h1", dl(1)),
        ("h3", HostImageStatus::Ready),
    ]);
    assert_eq!(img.ready_on(), vec!["h2", "h3"]);
    assert_eq!(ImageStatus::Pending.as_str(), "pending");
}

#[test]
fn sources_are_read_from_the_url() {
    assert_eq!(
        ImageSource::of("https://x.org/a.img"),
        ImageSource::Http("https://x.org/a.img")
    );
    let up = ImageSource::upload_url("host1", "/home/me/My Disk (1).iso");
    assert_eq!(up, "upload://host1/My_Disk__1_.iso");
    assert_eq!(
        ImageSource::of(&up),
        ImageSource::Upload {
            host: "host1",
            file: "My_Disk__1_.iso"
        }
    );
    assert_eq!(ImageSource::upload_url("h", ".."), "upload://h/upload");
    let pool = ImageSource::pool_url("iso/debian-12.iso");
    assert_eq!(
        ImageSource::of(&pool),
        ImageSource::PoolFile {
            path: "iso/debian-12.iso"
        }
    );
    for ok in [up.as_str(), pool.as_str(), "http://x.org/a"] {
        assert!(validate_source(ok).is_ok(), "{ok}");
        let s = ImageSpec {
            url: ok.into(),
            ..spec()
        };
        assert!(s.validate().is_ok(), "{ok}");
    }
    for bad in [
        "upload://Bad_Host/x.iso",
        "upload://h1/",
        "upload://h1/a/b",
        "pool:",
        "pool:/abs/x.iso",
        "pool:iso/../../etc/passwd",
        "pool:images/x.iso",
        "pool:a//b.iso",
        "ftp://x.org/a",
    ] {
        assert!(validate_source(bad).is_err(), "{bad}");
    }
}

#[test]
fn names_from_files() {
    let cases = [
        (
            "debian-12.4.0-amd64-netinst.iso",
            Some("debian-12.4.0-amd64-netinst"),
        ),
        (
            "/srv/isos/Windows Server 2022 (x64).ISO",
            Some("windows-server-2022-x64"),
        ),
        ("jammy_server.img", Some("jammy-server")),
        ("a..b--c.qcow2", Some("a.b-c")),
        ("___.iso", None),
        ("", None),
    ];
    for (file, want) in cases {
        assert_eq!(name_from_file(file).as_deref(), want, "{file}");
    }
    let long = format!("{}.iso", "x".repeat(100));
    assert_eq!(name_from_file(&long).map(|n| n.len()), Some(63));
}
