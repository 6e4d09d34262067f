//! Golden files, schema validation (`virt-xml-validate`), a round trip through libvirt's test
//! driver, and table tests for validation and escaping.
//!
//! `UPDATE_GOLDEN=1 cargo nextest run -p quantix domain_xml` rewrites the golden files; review
//! the diff before committing it.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// (device, boot order) pairs: a disk's target dev, or `interface` for a NIC.
type Orders = Vec<(String, u32)>;
/// A change to a valid spec, for table tests.
type Edit = fn(&mut DomainSpec);

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/hypervisor/testdata")
}

fn meta(generation: u64) -> QuantixMeta {
    QuantixMeta {
        generation,
        cluster: "prod".into(),
    }
}

fn minimal(name: &str) -> DomainSpec {
    DomainSpec {
        name: name.into(),
        uuid: None,
        domain_type: DomainType::Qemu,
        cpu_mode: CpuMode::Default,
        vcpus: 1,
        memory_mib: 256,
        disks: vec![DiskDevice {
            path: "/var/lib/quantix/pools/default/vm.qcow2".into(),
            format: DiskFormat::Qcow2,
        }],
        cdroms: vec![],
        boot: vec![BootDevice::Disk],
        nics: vec![],
        vnc: false,
        serial_console: false,
        guest_agent_channel: false,
        emulator: None,
        metadata: meta(1),
    }
}

/// The representative domains, each with a golden file `testdata/<name>.xml`.
pub(super) fn golden_specs() -> Vec<(&'static str, DomainSpec)> {
    let pool = Path::new("/var/lib/quantix/pools/default");
    vec![
        (
            "cloud-image",
            DomainSpec {
                uuid: Some(Uuid::from_u128(0x6f1c_2a3b_4c5d_4e6f_8a9b_0c1d_2e3f_4a5b)),
                domain_type: DomainType::Kvm,
                cpu_mode: CpuMode::HostModel,
                vcpus: 2,
                memory_mib: 2048,
                disks: vec![DiskDevice {
                    path: pool.join("web-01-disk0.qcow2"),
                    format: DiskFormat::Qcow2,
                }],
                cdroms: vec![pool.join("web-01-seed.iso")],
                boot: vec![BootDevice::Disk],
                nics: vec![NicDevice {
                    kind: NicKind::Network("default".into()),
                    mac: Some("52:54:00:12:34:56".into()),
                }],
                serial_console: true,
                guest_agent_channel: true,
                emulator: Some("/usr/bin/qemu-system-x86_64".into()),
                metadata: meta(7),
                ..minimal("web-01")
            },
        ),
        (
            "iso-install",
            DomainSpec {
                vcpus: 2,
                memory_mib: 1024,
                disks: vec![DiskDevice {
                    path: pool.join("inst-1-disk0.qcow2"),
                    format: DiskFormat::Qcow2,
                }],
                cdroms: vec!["/var/lib/quantix/iso/debian-12.iso".into()],
                boot: vec![BootDevice::Cdrom, BootDevice::Disk],
                nics: vec![NicDevice {
                    kind: NicKind::Bridge("br0".into()),
                    mac: None,
                }],
                vnc: true,
                metadata: meta(2),
                ..minimal("inst-1")
            },
        ),
        (
            "pxe",
            DomainSpec {
                disks: vec![DiskDevice {
                    path: pool.join("pxe-1-disk0.raw"),
                    format: DiskFormat::Raw,
                }],
                boot: vec![BootDevice::Network, BootDevice::Disk],
                nics: vec![NicDevice {
                    kind: NicKind::User,
                    mac: Some("52:54:00:AB:CD:EF".into()),
                }],
                serial_console: true,
                guest_agent_channel: true,
                metadata: meta(3),
                ..minimal("pxe-1")
            },
        ),
        (
            "no-nic",
            DomainSpec {
                cpu_mode: CpuMode::HostPassthrough,
                disks: vec![
                    DiskDevice {
                        path: pool.join("quiet-disk0.qcow2"),
                        format: DiskFormat::Qcow2,
                    },
                    DiskDevice {
                        path: pool.join("quiet-disk1.raw"),
                        format: DiskFormat::Raw,
                    },
                ],
                metadata: meta(u64::MAX),
                ..minimal("quiet")
            },
        ),
    ]
}

/// Every string field holds characters that must be escaped.
fn hostile() -> DomainSpec {
    DomainSpec {
        disks: vec![DiskDevice {
            path: "/tmp/a&b<c>d'e\"f.qcow2".into(),
            format: DiskFormat::Qcow2,
        }],
        cdroms: vec!["/tmp/&amp;.iso".into()],
        nics: vec![NicDevice {
            kind: NicKind::Network("n&<'\">".into()),
            mac: None,
        }],
        emulator: Some("/opt/q&<'\"/qemu".into()),
        metadata: QuantixMeta {
            generation: 9,
            cluster: "c&<'\">]]>".into(),
        },
        ..minimal("hostile")
    }
}

#[test]
fn golden_files_match() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (name, spec) in golden_specs() {
        let xml = render(&spec).unwrap();
        let path = testdata().join(format!("{name}.xml"));
        if update {
            std::fs::create_dir_all(testdata()).unwrap();
            std::fs::write(&path, &xml).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
        assert_eq!(
            xml,
            want,
            "{name}: rendering differs from {} (UPDATE_GOLDEN=1 rewrites it)",
            path.display()
        );
    }
}

#[test]
fn golden_files_pass_virt_xml_validate() {
    let tool = "virt-xml-validate";
    let dir = tempfile::tempdir().unwrap();
    let hostile_path = dir.path().join("hostile.xml");
    std::fs::write(&hostile_path, render(&hostile()).unwrap()).unwrap();
    let mut files: Vec<PathBuf> = golden_specs()
        .iter()
        .map(|(name, _)| testdata().join(format!("{name}.xml")))
        .collect();
    files.push(hostile_path);
    // The check itself must be able to fail: a domain type the schema does not know.
    let bad = dir.path().join("bad.xml");
    std::fs::write(
        &bad,
        "<domain type='nonsense'><name>x</name><memory>1</memory></domain>",
    )
    .unwrap();
    let Some(out) = validate_with(tool, &bad) else {
        eprintln!("skipped: {tool} is not installed (package libvirt-clients)");
        return;
    };
    assert!(!out.status.success(), "{tool} accepted an invalid domain");
    for file in files {
        let out = validate_with(tool, &file).unwrap();
        assert!(
            out.status.success(),
            "{} does not validate against libvirt's domain schema:\n{}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `tool FILE domain`, or `None` when the tool is not installed.
fn validate_with(tool: &str, file: &Path) -> Option<std::process::Output> {
    match Command::new(tool).arg(file).arg("domain").output() {
        Ok(out) => {
            // virt-xml-validate is a shell script around xmllint, and says so only on stderr.
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !stderr.contains("xmllint: not found"),
                "{tool} needs xmllint: install libxml2-utils"
            );
            Some(out)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("cannot run {tool}: {e}"),
    }
}

/// A private test-driver instance: `test:///default` is shared by the process.
fn test_driver(dir: &Path) -> virt::connect::Connect {
    let path = dir.join("host.xml");
    std::fs::write(
        &path,
        "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads>\
         <active>4</active><mhz>2000</mhz><model>x86_64</model></cpu>\
         <memory>8388608</memory></node>",
    )
    .unwrap();
    virt::connect::Connect::open(Some(&format!("test://{}", path.display()))).unwrap()
}

#[test]
fn rendered_domains_define_start_and_keep_their_metadata_in_libvirt() {
    let dir = tempfile::tempdir().unwrap();
    let conn = test_driver(dir.path());
    let mut specs = golden_specs();
    specs.push(("hostile", hostile()));
    for (label, spec) in specs {
        let xml = render(&spec).unwrap();
        let dom = conn
            .define_domain_xml_flags(&xml, virt::sys::VIR_DOMAIN_DEFINE_VALIDATE)
            .unwrap_or_else(|e| panic!("{label}: define failed: {e}\n{xml}"));
        dom.create()
            .unwrap_or_else(|e| panic!("{label}: start: {e}"));
        assert!(dom.is_active().unwrap(), "{label}: not running after start");

        let live = dom.xml_desc(0).unwrap();
        assert_eq!(
            parse_meta(&live),
            Some(spec.metadata.clone()),
            "{label}: metadata lost in libvirt's XML:\n{live}"
        );
        let element = dom
            .metadata(
                virt::sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
                Some(QUANTIX_XMLNS),
                0,
            )
            .unwrap();
        assert_eq!(
            parse_meta(&element),
            Some(spec.metadata.clone()),
            "{label}: {element}"
        );
        // libvirt kept the per-device boot order and added no <os><boot>.
        let doc = roxmltree::Document::parse(&live).unwrap();
        assert_eq!(boot_orders(&doc), boot_orders_of(&spec), "{label}:\n{live}");
        assert_eq!(dom.name().unwrap(), spec.name);
        if let Some(uuid) = spec.uuid {
            assert_eq!(dom.uuid().unwrap(), uuid);
        }

        dom.destroy().unwrap();
        dom.undefine().unwrap();
        assert!(
            conn.lookup_domain_by_name(&spec.name).is_err(),
            "{label}: still defined after undefine"
        );
    }
}

/// (target dev, boot order) of every bootable device, in document order; panics on `<os><boot>`.
fn boot_orders(doc: &roxmltree::Document<'_>) -> Orders {
    let os_boot = doc
        .descendants()
        .any(|n| n.has_tag_name("boot") && n.parent().is_some_and(|p| p.has_tag_name("os")));
    assert!(!os_boot, "<os><boot> must never be used");
    doc.descendants()
        .filter(|n| n.has_tag_name("boot"))
        .map(|b| {
            // Disks by target; NICs by element name (libvirt adds its own `<target>` to them).
            let dev = b.parent().unwrap();
            let key = match dev.children().find(|c| c.has_tag_name("target")) {
                Some(t) if dev.has_tag_name("disk") => t.attribute("dev").unwrap(),
                _ => dev.tag_name().name(),
            };
            (
                key.to_string(),
                b.attribute("order").unwrap().parse().unwrap(),
            )
        })
        .collect()
}

fn boot_orders_of(spec: &DomainSpec) -> Orders {
    let xml = render(spec).unwrap();
    boot_orders(&roxmltree::Document::parse(&xml).unwrap())
}

#[test]
fn boot_order_follows_the_boot_list_across_devices() {
    let two = |p: &str| {
        vec![
            DiskDevice {
                path: format!("/d/{p}0").into(),
                format: DiskFormat::Qcow2,
            },
            DiskDevice {
                path: format!("/d/{p}1").into(),
                format: DiskFormat::Raw,
            },
        ]
    };
    let spec = |boot: Vec<BootDevice>| DomainSpec {
        disks: two("d"),
        cdroms: vec!["/i/a.iso".into(), "/i/b.iso".into()],
        nics: vec![NicDevice {
            kind: NicKind::User,
            mac: None,
        }],
        boot,
        ..minimal("b")
    };
    use BootDevice::*;
    let s = |v: &str, n: u32| (v.to_string(), n);
    let cases: Vec<(Vec<BootDevice>, Orders)> = vec![
        (vec![Disk], vec![s("vda", 1), s("vdb", 2)]),
        (
            vec![Cdrom, Disk],
            vec![s("vda", 3), s("vdb", 4), s("sda", 1), s("sdb", 2)],
        ),
        (
            vec![Network, Cdrom],
            vec![s("sda", 2), s("sdb", 3), s("interface", 1)],
        ),
        (vec![], vec![]),
    ];
    for (boot, want) in cases {
        assert_eq!(boot_orders_of(&spec(boot.clone())), want, "{boot:?}");
    }
}

#[test]
fn invalid_specs_are_refused_naming_the_field() {
    let cases: &[(&str, Edit, &str)] = &[
        ("empty name", |s| s.name = String::new(), "domain name"),
        ("upper case", |s| s.name = "Web".into(), "domain name"),
        ("markup name", |s| s.name = "a&<b".into(), "domain name"),
        ("no vcpu", |s| s.vcpus = 0, "vcpus 0"),
        ("too many vcpus", |s| s.vcpus = MAX_CPUS + 1, "vcpus"),
        ("tiny memory", |s| s.memory_mib = 63, "memory_mib 63"),
        ("huge memory", |s| s.memory_mib = u64::MAX, "memory_mib"),
        (
            "relative disk",
            |s| s.disks[0].path = "disk.qcow2".into(),
            "disks[0].path",
        ),
        (
            "control char path",
            |s| s.cdroms = vec!["/a\u{1}b.iso".into()],
            "cdroms[0]",
        ),
        (
            "relative emulator",
            |s| s.emulator = Some("qemu".into()),
            "emulator",
        ),
        (
            "short mac",
            |s| s.nics = vec![nic(NicKind::User, "52:54:00:12:34")],
            "nics[0].mac",
        ),
        (
            "non-hex mac",
            |s| s.nics = vec![nic(NicKind::User, "52:54:00:12:34:zz")],
            "nics[0].mac",
        ),
        (
            "multicast mac",
            |s| s.nics = vec![nic(NicKind::User, "01:00:5e:00:00:01")],
            "nics[0].mac",
        ),
        (
            "empty network",
            |s| s.nics = vec![nic(NicKind::Network(String::new()), "")],
            "nics[0].network",
        ),
        (
            "newline in bridge",
            |s| s.nics = vec![nic(NicKind::Bridge("br\n0".into()), "")],
            "nics[0].bridge",
        ),
        (
            "empty cluster",
            |s| s.metadata.cluster = String::new(),
            "metadata.cluster",
        ),
        (
            "boot twice",
            |s| s.boot = vec![BootDevice::Disk, BootDevice::Disk],
            "boot lists disk twice",
        ),
        (
            "boot from nothing",
            |s| s.boot = vec![BootDevice::Cdrom],
            "no cdrom device",
        ),
    ];
    for (label, edit, want) in cases {
        let mut spec = minimal("ok");
        edit(&mut spec);
        let err = render(&spec).expect_err(label).to_string();
        assert!(
            err.contains(want),
            "{label}: '{err}' should mention '{want}'"
        );
    }
}

fn nic(kind: NicKind, mac: &str) -> NicDevice {
    NicDevice {
        kind,
        mac: (!mac.is_empty()).then(|| mac.to_string()),
    }
}

#[test]
fn limits_are_accepted() {
    let cases: &[(&str, Edit)] = &[
        ("one-char name", |s| s.name = "a".into()),
        ("63-char name", |s| s.name = "x".repeat(63)),
        ("max vcpus", |s| s.vcpus = MAX_CPUS),
        ("min memory", |s| s.memory_mib = MIN_MEMORY_MIB),
        ("max memory", |s| s.memory_mib = MAX_MEMORY_MIB),
        ("upper-case mac", |s| {
            s.nics = vec![nic(NicKind::User, "52:54:00:AB:CD:EF")]
        }),
        ("no disks", |s| {
            s.disks.clear();
            s.boot.clear();
        }),
    ];
    for (label, edit) in cases {
        let mut spec = minimal("ok");
        edit(&mut spec);
        let xml = render(&spec).unwrap_or_else(|e| panic!("{label}: {e}"));
        roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{label}: {e}"));
    }
}

#[test]
fn every_string_is_escaped_and_reads_back_unchanged() {
    let spec = hostile();
    let xml = render(&spec).unwrap();
    for raw in ["a&b", "<c>", "d'e", "\"f", "&amp;.iso", "]]>"] {
        assert!(!xml.contains(raw), "raw '{raw}' in:\n{xml}");
    }
    assert!(
        xml.contains("/tmp/a&amp;b&lt;c&gt;d&apos;e&quot;f.qcow2"),
        "{xml}"
    );
    assert!(xml.contains("/tmp/&amp;amp;.iso"), "{xml}");

    let doc = roxmltree::Document::parse(&xml).unwrap();
    let values: Vec<&str> = doc
        .descendants()
        .filter_map(|n| {
            n.attribute("file")
                .or(n.attribute("network"))
                .or(n.has_tag_name("emulator").then(|| n.text().unwrap_or("")))
        })
        .collect();
    assert_eq!(
        values,
        [
            "/opt/q&<'\"/qemu",
            "/tmp/a&b<c>d'e\"f.qcow2",
            "/tmp/&amp;.iso",
            "n&<'\">"
        ]
    );
    assert_eq!(parse_meta(&xml), Some(spec.metadata));
}

#[test]
fn target_devs_follow_libvirt_naming() {
    let cases = [
        (0, "vda"),
        (1, "vdb"),
        (25, "vdz"),
        (26, "vdaa"),
        (27, "vdab"),
        (701, "vdzz"),
        (702, "vdaaa"),
    ];
    for (i, want) in cases {
        assert_eq!(target_dev("vd", i), want, "{i}");
    }
}
