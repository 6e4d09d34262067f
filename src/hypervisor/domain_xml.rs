//! libvirt domain XML, rendered from a small typed spec. Owns: the shape of every domain
//! Quantix defines (q35, virtio disks and NICs, SATA cdroms, per-device boot order) and the
//! `quantix:vm` metadata element by which a host recognises its domains. May use: `model`
//! (name rules and size limits). Pure: no libvirt, no files, no clock.
//!
//! Invariants:
//! - `render` validates before it writes: an `Ok` string is well-formed XML in which every
//!   caller-supplied string is escaped, and every error names the spec field at fault.
//! - Boot order is per device (`<boot order='N'/>`), never `<os><boot dev=…/>`: libvirt refuses
//!   a domain that mixes the two, and per-device order is the only way to order two disks.
//! - The domain name is a DNS label (`model::names`), the same rule as a VM name, so one VM maps
//!   to exactly one domain. Paths and network names are free text and are escaped instead.
//!
//! Writing is done by hand (a dozen element kinds, deterministic output for golden files);
//! reading metadata back uses `roxmltree`, because libvirt re-serialises our element (double
//! quotes, its own escaping) and another tool may have chosen a different namespace prefix.

use std::fmt;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::model::names::{validate_label, NameError};
use crate::model::vm::{MAX_CPUS, MAX_MEMORY_MIB};

/// Namespace of the `<quantix:vm>` element inside `<metadata>`.
pub const QUANTIX_XMLNS: &str = "https://quantix.dev/xmlns/vm/1";

/// Smallest memory a domain may have; below this no useful guest boots.
pub const MIN_MEMORY_MIB: u64 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainType {
    /// Hardware virtualisation; the production default.
    Kvm,
    /// TCG emulation, for hosts where KVM is absent or unusable.
    Qemu,
    /// libvirt's test driver (`test:///...`): no guest runs; used by tests and the demo.
    Test,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuMode {
    HostPassthrough,
    HostModel,
    /// No `<cpu>` element: QEMU's default CPU model (works everywhere, migrates anywhere).
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootDevice {
    Disk,
    Cdrom,
    Network,
}

impl fmt::Display for BootDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BootDevice::Disk => "disk",
            BootDevice::Cdrom => "cdrom",
            BootDevice::Network => "network",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Qcow2,
    Raw,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NicKind {
    /// QEMU user-mode networking: needs nothing on the host.
    User,
    /// A libvirt network, by name.
    Network(String),
    /// An existing host bridge, by interface name.
    Bridge(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicDevice {
    pub kind: NicKind,
    /// Unicast `52:54:00:12:34:56` style; `None` lets libvirt pick one.
    pub mac: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskDevice {
    pub path: PathBuf,
    pub format: DiskFormat,
}

/// What Quantix records in the domain itself, so a host can tell its domains (and how current
/// they are) from anything else defined in libvirt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantixMeta {
    /// The VM's generation this domain was rendered from.
    pub generation: u64,
    pub cluster: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSpec {
    pub name: String,
    /// `None` lets libvirt generate one.
    pub uuid: Option<Uuid>,
    pub domain_type: DomainType,
    pub cpu_mode: CpuMode,
    pub vcpus: u32,
    pub memory_mib: u64,
    /// virtio disks, `vda`, `vdb`, … in this order.
    pub disks: Vec<DiskDevice>,
    /// Read-only raw SATA cdroms, `sda`, `sdb`, …: an install ISO and/or a cloud-init seed.
    pub cdroms: Vec<PathBuf>,
    /// Boot order by device kind. Each kind listed gives the next orders to all its devices,
    /// in list order; kinds not listed are not booted from.
    pub boot: Vec<BootDevice>,
    /// virtio NICs.
    pub nics: Vec<NicDevice>,
    /// VNC on 127.0.0.1 with an automatic port, plus a video card and a USB tablet.
    pub vnc: bool,
    /// A serial port on a pty, used as the console.
    pub serial_console: bool,
    /// The virtio-serial port the guest agent writes to (`GUEST_AGENT_PORT`), on a socket
    /// libvirt places under its run directory (read back from the live XML).
    pub guest_agent_channel: bool,
    /// `None` lets libvirt choose the QEMU binary.
    pub emulator: Option<PathBuf>,
    pub metadata: QuantixMeta,
}

/// The virtio-serial port name of the Quantix guest agent (`quantix-agent`).
pub const GUEST_AGENT_PORT: &str = "org.quantix.agent.0";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainXmlError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("vcpus {0} is outside 1..={MAX_CPUS}")]
    Vcpus(u32),
    #[error("memory_mib {0} is outside {MIN_MEMORY_MIB}..={MAX_MEMORY_MIB}")]
    Memory(u64),
    #[error("{field} '{path}' must be an absolute UTF-8 path without control characters")]
    Path { field: String, path: String },
    #[error("{field} '{mac}' is not a unicast MAC address like 52:54:00:12:34:56")]
    Mac { field: String, mac: String },
    #[error("{field} '{value}' must be non-empty and without control characters")]
    Text { field: String, value: String },
    #[error("boot lists {0} twice")]
    BootTwice(BootDevice),
    #[error("boot lists {0} but the domain has no {0} device")]
    BootMissing(BootDevice),
}

/// The domain XML for `spec`, or the first field that is not acceptable.
pub fn render(spec: &DomainSpec) -> Result<String, DomainXmlError> {
    let v = validate(spec)?;
    let mut w = Writer::default();
    let domain_type = match spec.domain_type {
        DomainType::Kvm => "kvm",
        DomainType::Qemu => "qemu",
        DomainType::Test => "test",
    };
    w.start("domain", &[("type", domain_type)]);
    w.text("name", &[], &spec.name);
    if let Some(uuid) = spec.uuid {
        w.text("uuid", &[], &uuid.hyphenated().to_string());
    }
    w.start("metadata", &[]);
    w.empty(
        "quantix:vm",
        &[
            ("xmlns:quantix", QUANTIX_XMLNS),
            ("generation", &spec.metadata.generation.to_string()),
            ("cluster", &spec.metadata.cluster),
        ],
    );
    w.end("metadata");
    w.text("memory", &[("unit", "MiB")], &spec.memory_mib.to_string());
    w.text("vcpu", &[("placement", "static")], &spec.vcpus.to_string());
    w.start("os", &[]);
    w.text("type", &[("arch", "x86_64"), ("machine", "q35")], "hvm");
    w.end("os");
    // Without ACPI a guest ignores a graceful shutdown request.
    w.start("features", &[]);
    w.empty("acpi", &[]);
    w.empty("apic", &[]);
    w.end("features");
    match spec.cpu_mode {
        CpuMode::HostPassthrough => w.empty("cpu", &[("mode", "host-passthrough")]),
        CpuMode::HostModel => w.empty("cpu", &[("mode", "host-model")]),
        CpuMode::Default => {}
    }
    w.empty("clock", &[("offset", "utc")]);
    w.text("on_poweroff", &[], "destroy");
    w.text("on_reboot", &[], "restart");
    w.text("on_crash", &[], "destroy");

    w.start("devices", &[]);
    if let Some(emulator) = &v.emulator {
        w.text("emulator", &[], emulator);
    }
    for (i, (disk, path)) in spec.disks.iter().zip(&v.disk_paths).enumerate() {
        let format = match disk.format {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Raw => "raw",
        };
        w.start("disk", &[("type", "file"), ("device", "disk")]);
        w.empty("driver", &[("name", "qemu"), ("type", format)]);
        w.empty("source", &[("file", path)]);
        w.empty(
            "target",
            &[("dev", &target_dev("vd", i)), ("bus", "virtio")],
        );
        boot_order(&mut w, v.disk_boot[i]);
        w.end("disk");
    }
    for (i, path) in v.cdrom_paths.iter().enumerate() {
        w.start("disk", &[("type", "file"), ("device", "cdrom")]);
        w.empty("driver", &[("name", "qemu"), ("type", "raw")]);
        w.empty("source", &[("file", path)]);
        w.empty("target", &[("dev", &target_dev("sd", i)), ("bus", "sata")]);
        w.empty("readonly", &[]);
        boot_order(&mut w, v.cdrom_boot[i]);
        w.end("disk");
    }
    for (i, nic) in spec.nics.iter().enumerate() {
        match &nic.kind {
            NicKind::User => w.start("interface", &[("type", "user")]),
            NicKind::Network(net) => {
                w.start("interface", &[("type", "network")]);
                w.empty("source", &[("network", net)]);
            }
            NicKind::Bridge(br) => {
                w.start("interface", &[("type", "bridge")]);
                w.empty("source", &[("bridge", br)]);
            }
        }
        if let Some(mac) = &nic.mac {
            w.empty("mac", &[("address", &mac.to_ascii_lowercase())]);
        }
        w.empty("model", &[("type", "virtio")]);
        boot_order(&mut w, v.nic_boot[i]);
        w.end("interface");
    }
    if spec.serial_console {
        w.start("serial", &[("type", "pty")]);
        w.empty("target", &[("port", "0")]);
        w.end("serial");
        w.start("console", &[("type", "pty")]);
        w.empty("target", &[("type", "serial"), ("port", "0")]);
        w.end("console");
    }
    if spec.guest_agent_channel {
        w.start("channel", &[("type", "unix")]);
        w.empty("source", &[("mode", "bind")]);
        w.empty("target", &[("type", "virtio"), ("name", GUEST_AGENT_PORT)]);
        w.end("channel");
    }
    if spec.vnc {
        // An absolute pointer, or the VNC cursor drifts from the guest's.
        w.empty("input", &[("type", "tablet"), ("bus", "usb")]);
        w.empty(
            "graphics",
            &[
                ("type", "vnc"),
                ("autoport", "yes"),
                ("listen", "127.0.0.1"),
            ],
        );
        w.start("video", &[]);
        w.empty("model", &[("type", "virtio")]);
        w.end("video");
    }
    w.end("devices");
    w.end("domain");
    Ok(w.out)
}

/// Our metadata, read back from a domain's XML as libvirt returns it, or from the element that
/// `virDomainGetMetadata(ELEMENT, QUANTIX_XMLNS)` returns (libvirt strips the namespace there:
/// `<vm generation=…/>`, so a root `vm` without a namespace counts as ours). `None` when the
/// XML holds no such element or it is damaged.
pub fn parse_meta(xml: &str) -> Option<QuantixMeta> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let root = doc.root_element();
    let ours = |n: &roxmltree::Node<'_, '_>| n.has_tag_name((QUANTIX_XMLNS, "vm"));
    let node = if ours(&root) || (root.has_tag_name("vm") && root.tag_name().namespace().is_none())
    {
        root
    } else if root.tag_name().name() == "domain" && root.tag_name().namespace().is_none() {
        root.children()
            .filter(|n| n.tag_name().name() == "metadata" && n.tag_name().namespace().is_none())
            .flat_map(|m| m.children())
            .find(ours)?
    } else {
        return None;
    };
    Some(QuantixMeta {
        generation: node.attribute("generation")?.parse().ok()?,
        cluster: node.attribute("cluster")?.to_string(),
    })
}

/// The host-side socket of the guest agent's channel in a live domain XML (libvirt picks the
/// path when the domain starts); `None` when the domain has no such channel.
pub fn guest_agent_socket(xml: &str) -> Option<PathBuf> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    doc.root_element()
        .children()
        .filter(|n| n.has_tag_name("devices"))
        .flat_map(|d| d.children())
        .filter(|n| n.has_tag_name("channel") && n.attribute("type") == Some("unix"))
        .find(|c| {
            c.children()
                .any(|t| t.has_tag_name("target") && t.attribute("name") == Some(GUEST_AGENT_PORT))
        })?
        .children()
        .find(|s| s.has_tag_name("source"))?
        .attribute("path")
        .map(PathBuf::from)
}

/// The spec's strings, checked and ready to write, and the boot order of each device.
struct Valid<'a> {
    emulator: Option<&'a str>,
    disk_paths: Vec<&'a str>,
    cdrom_paths: Vec<&'a str>,
    disk_boot: Vec<Option<u32>>,
    cdrom_boot: Vec<Option<u32>>,
    nic_boot: Vec<Option<u32>>,
}

fn validate(spec: &DomainSpec) -> Result<Valid<'_>, DomainXmlError> {
    validate_label("domain name", &spec.name)?;
    if spec.vcpus == 0 || spec.vcpus > MAX_CPUS {
        return Err(DomainXmlError::Vcpus(spec.vcpus));
    }
    if !(MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&spec.memory_mib) {
        return Err(DomainXmlError::Memory(spec.memory_mib));
    }
    check_text("metadata.cluster", &spec.metadata.cluster)?;
    let emulator = match &spec.emulator {
        Some(p) => Some(check_path("emulator".into(), p)?),
        None => None,
    };
    let disk_paths = spec
        .disks
        .iter()
        .enumerate()
        .map(|(i, d)| check_path(format!("disks[{i}].path"), &d.path))
        .collect::<Result<Vec<_>, _>>()?;
    let cdrom_paths = spec
        .cdroms
        .iter()
        .enumerate()
        .map(|(i, p)| check_path(format!("cdroms[{i}]"), p))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, nic) in spec.nics.iter().enumerate() {
        match &nic.kind {
            NicKind::User => {}
            NicKind::Network(n) => check_text(&format!("nics[{i}].network"), n)?,
            NicKind::Bridge(b) => check_text(&format!("nics[{i}].bridge"), b)?,
        }
        if let Some(mac) = &nic.mac {
            if !is_unicast_mac(mac) {
                return Err(DomainXmlError::Mac {
                    field: format!("nics[{i}].mac"),
                    mac: mac.clone(),
                });
            }
        }
    }

    let mut disk_boot = vec![None; spec.disks.len()];
    let mut cdrom_boot = vec![None; spec.cdroms.len()];
    let mut nic_boot = vec![None; spec.nics.len()];
    let mut next = 1;
    for (i, dev) in spec.boot.iter().enumerate() {
        if spec.boot[..i].contains(dev) {
            return Err(DomainXmlError::BootTwice(*dev));
        }
        let slots = match dev {
            BootDevice::Disk => &mut disk_boot,
            BootDevice::Cdrom => &mut cdrom_boot,
            BootDevice::Network => &mut nic_boot,
        };
        if slots.is_empty() {
            return Err(DomainXmlError::BootMissing(*dev));
        }
        for slot in slots.iter_mut() {
            *slot = Some(next);
            next += 1;
        }
    }
    Ok(Valid {
        emulator,
        disk_paths,
        cdrom_paths,
        disk_boot,
        cdrom_boot,
        nic_boot,
    })
}

/// XML 1.0 cannot carry most control characters even escaped, so they are refused.
fn check_text(field: &str, value: &str) -> Result<(), DomainXmlError> {
    if value.is_empty() || value.chars().any(char::is_control) {
        return Err(DomainXmlError::Text {
            field: field.to_string(),
            value: value.to_string(),
        });
    }
    Ok(())
}

fn check_path(field: String, path: &Path) -> Result<&str, DomainXmlError> {
    match path.to_str() {
        Some(s) if path.is_absolute() && !s.chars().any(char::is_control) => Ok(s),
        _ => Err(DomainXmlError::Path {
            field,
            path: path.display().to_string(),
        }),
    }
}

/// libvirt refuses a multicast MAC (low bit of the first octet set) for a NIC.
fn is_unicast_mac(s: &str) -> bool {
    let octets: Vec<&str> = s.split(':').collect();
    octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()))
        && u8::from_str_radix(octets[0], 16).is_ok_and(|b| b & 1 == 0)
}

/// libvirt's device naming: `vda` … `vdz`, `vdaa` … `vdzz`, `vdaaa` …
pub(crate) fn target_dev(prefix: &str, index: usize) -> String {
    let mut letters = Vec::new();
    let mut i = index;
    loop {
        letters.push(char::from(b'a' + (i % 26) as u8));
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    letters.reverse();
    let mut dev = prefix.to_string();
    dev.extend(letters);
    dev
}

fn boot_order(w: &mut Writer, order: Option<u32>) {
    if let Some(n) = order {
        w.empty("boot", &[("order", &n.to_string())]);
    }
}

/// Indented XML with single-quoted attributes, like libvirt's own output. Tag and attribute
/// names are always literals here; only values and text come from the caller and are escaped.
#[derive(Default)]
struct Writer {
    out: String,
    depth: usize,
}

impl Writer {
    fn open_tag(&mut self, tag: &str, attrs: &[(&str, &str)]) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
        self.out.push('<');
        self.out.push_str(tag);
        for (name, value) in attrs {
            self.out.push(' ');
            self.out.push_str(name);
            self.out.push_str("='");
            escape_into(&mut self.out, value);
            self.out.push('\'');
        }
    }

    fn start(&mut self, tag: &str, attrs: &[(&str, &str)]) {
        self.open_tag(tag, attrs);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    fn end(&mut self, tag: &str) {
        self.depth = self.depth.saturating_sub(1);
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push_str(">\n");
    }

    fn empty(&mut self, tag: &str, attrs: &[(&str, &str)]) {
        self.open_tag(tag, attrs);
        self.out.push_str("/>\n");
    }

    fn text(&mut self, tag: &str, attrs: &[(&str, &str)], text: &str) {
        self.open_tag(tag, attrs);
        self.out.push('>');
        escape_into(&mut self.out, text);
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push_str(">\n");
    }
}

/// One escaping for text and attribute values alike: all five predefined entities.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
#[path = "domain_xml_meta_tests.rs"]
mod meta_tests;
#[cfg(test)]
#[path = "domain_xml_tests.rs"]
mod tests;
