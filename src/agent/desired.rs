//! What a VM placed on this host should look like on disk and in libvirt: file paths under its
//! pools, and the `DomainSpec` rendered into domain XML. Pure apart from nothing: paths come
//! from pool records, so the same inputs give the same domain on every run.
//! Owns: `Layout`, `layout`, `domain_spec`. Uses: `model`, `hypervisor::{disks, domain_xml}`.

use std::path::{Path, PathBuf};

use crate::hypervisor::disks;
use crate::hypervisor::domain_xml::{
    BootDevice, CpuMode, DiskDevice, DiskFormat, DomainSpec, DomainType, NicDevice, NicKind,
    QuantixMeta,
};
use crate::model::image::Image;
use crate::model::pool::Pool;
use crate::model::vm::{BootMedia, Vm};

/// The HTTP path every host serves the guest agent binary at.
pub const GUEST_AGENT_PATH: &str = "/agent/quantix-agent";

/// Where this VM's guest downloads the agent from: the slirp gateway when its first NIC is
/// user-mode, this host's address otherwise; `None` without a NIC (no network to fetch over).
pub fn guest_agent_url(vm: &Vm, settings: &Settings) -> Option<String> {
    let nic = vm.nics.first()?;
    Some(if nic.network == "user" {
        settings.guest_agent_user_url.clone()
    } else {
        settings.guest_agent_url.clone()
    })
}

/// How this host runs guests (from its config).
#[derive(Debug, Clone)]
pub struct Settings {
    pub domain_type: DomainType,
    pub cpu_mode: CpuMode,
    /// Where VMs without a disk keep their seed ISO.
    pub scratch_dir: PathBuf,
    /// The agent's own small records (`reboots.json`).
    pub state_dir: PathBuf,
    /// Where guests download the guest agent: through a user-mode NIC (QEMU's slirp gateway
    /// 10.0.2.2 is this host), and through any other network (this host's advertised HTTP
    /// address).
    pub guest_agent_user_url: String,
    pub guest_agent_url: String,
    /// SHA-256 of the guest agent binary this host serves (`None` if it is not installed).
    pub guest_agent_sha256: Option<String>,
    /// Where libvirt puts channel sockets for this URI (`None`: the test driver, which makes
    /// none), to keep a guest agent channel only where its socket path fits.
    pub channel_dir: Option<PathBuf>,
}

impl Settings {
    /// From the host's config (validated there, so unknown words cannot reach here; they map
    /// to the defaults).
    pub fn from_config(cfg: &crate::config::Config) -> Settings {
        Settings {
            domain_type: match cfg.hypervisor.domain_type() {
                "qemu" => DomainType::Qemu,
                "test" => DomainType::Test,
                _ => DomainType::Kvm,
            },
            cpu_mode: match cfg.hypervisor.cpu_mode.as_str() {
                "host-model" => CpuMode::HostModel,
                "default" => CpuMode::Default,
                _ => CpuMode::HostPassthrough,
            },
            scratch_dir: cfg.data_dir.join("vms"),
            state_dir: cfg.data_dir.join("agent"),
            guest_agent_user_url: format!(
                "https://10.0.2.2:{}{GUEST_AGENT_PATH}",
                cfg.http_addr.port()
            ),
            guest_agent_url: format!("https://{}{GUEST_AGENT_PATH}", cfg.advertised_http()),
            guest_agent_sha256: crate::web::guest_agent::binary_sha256(),
            channel_dir: channel_dir(&cfg.hypervisor.uri),
        }
    }
}

/// One disk to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskPlan {
    pub path: PathBuf,
    pub size_mib: u64,
    /// Backing file and its format, for an overlay on a cloud image.
    pub backing: Option<(PathBuf, String)>,
}

/// Where a VM's files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub disks: Vec<DiskPlan>,
    /// The install ISO to attach, if it boots one.
    pub iso: Option<PathBuf>,
    /// The cloud-init seed ISO, if the VM gets one (a cloud image, or a customization spec).
    pub seed: Option<PathBuf>,
    /// Every directory holding the VM's files (removed on delete).
    pub dirs: Vec<PathBuf>,
}

/// An image's file on this host: `<pool dir>/images/<name>.<format>`.
pub fn image_path(pool: &Pool, image: &Image) -> PathBuf {
    Path::new(pool.spec.kind.local_path())
        .join("images")
        .join(format!(
            "{}.{}",
            image.spec.name,
            image.spec.format.as_str()
        ))
}

/// Where everything of `vm` goes. `pool(name)` and `image(name)` look records up; a missing
/// one is an error naming it.
pub fn layout(
    vm: &Vm,
    settings: &Settings,
    pool: impl Fn(&str) -> Option<Pool>,
    image: impl Fn(&str) -> Option<Image>,
) -> Result<Layout, String> {
    let mut out = Layout {
        disks: Vec::new(),
        iso: None,
        seed: None,
        dirs: Vec::new(),
    };
    let image_file = |name: &str| -> Result<(PathBuf, String), String> {
        let img = image(name).ok_or_else(|| format!("image {name} does not exist"))?;
        let p = pool(&img.spec.pool)
            .ok_or_else(|| format!("pool {} of image {name} does not exist", img.spec.pool))?;
        Ok((image_path(&p, &img), img.spec.format.as_str().to_string()))
    };
    for (i, d) in vm.disks.iter().enumerate() {
        let p = pool(&d.pool).ok_or_else(|| format!("pool {} does not exist", d.pool))?;
        let dir = Path::new(p.spec.kind.local_path());
        let backing = match &d.image {
            Some(name) => Some(image_file(name)?),
            None => None,
        };
        out.disks.push(DiskPlan {
            path: disks::disk_path(dir, &vm.name, i),
            size_mib: d.size_mib,
            backing,
        });
        let vm_dir = disks::vm_dir(dir, &vm.name);
        if !out.dirs.contains(&vm_dir) {
            out.dirs.push(vm_dir);
        }
    }
    if let BootMedia::Iso(name) = &vm.boot {
        out.iso = Some(image_file(name)?.0);
    }
    if vm.spec.is_some() || matches!(vm.boot, BootMedia::CloudImage(_)) {
        out.seed = Some(match out.dirs.first() {
            Some(dir) => dir.join("seed.iso"),
            None => {
                let dir = settings.scratch_dir.join(&vm.name);
                out.dirs.push(dir.clone());
                dir.join("seed.iso")
            }
        });
    }
    Ok(out)
}

/// libvirt's directory for QEMU channel sockets under a connection URI.
fn channel_dir(uri: &str) -> Option<PathBuf> {
    const TARGET: &str = "lib/qemu/channel/target";
    if let Some((_, rest)) = uri.split_once("embed?root=") {
        let root = rest.split('&').next().unwrap_or(rest);
        return Some(Path::new(root).join(TARGET));
    }
    uri.starts_with("qemu")
        .then(|| PathBuf::from("/var/lib/libvirt/qemu/channel/target"))
}

/// Longest path a UNIX socket may have (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Whether the guest agent channel's socket path fits for this VM: libvirt makes it
/// `<channel dir>/domain-<id>-<first 20 characters of the name>/<port>`, and refuses to start
/// a domain whose path is too long (a deep embedded-driver root can make it so). A domain id
/// of up to 7 digits is allowed for.
pub fn guest_agent_channel_fits(vm: &Vm, settings: &Settings) -> bool {
    let Some(dir) = &settings.channel_dir else {
        return true;
    };
    let short: String = vm.name.chars().take(20).collect();
    let len = dir.as_os_str().len()
        + "/domain-1234567-".len()
        + short.len()
        + 1
        + crate::hypervisor::domain_xml::GUEST_AGENT_PORT.len();
    len <= MAX_SOCKET_PATH
}

/// The domain for `vm` with the files in `layout`.
pub fn domain_spec(vm: &Vm, layout: &Layout, settings: &Settings, cluster: &str) -> DomainSpec {
    let mut boot = Vec::new();
    match vm.boot {
        BootMedia::CloudImage(_) => boot.push(BootDevice::Disk),
        BootMedia::Iso(_) => boot.extend([BootDevice::Cdrom, BootDevice::Disk]),
        // A foreign domain is never redefined; were it, it would boot like a PXE VM.
        BootMedia::Pxe | BootMedia::Foreign => boot.extend([BootDevice::Network, BootDevice::Disk]),
    }
    // Only devices the domain has can be in the boot order.
    boot.retain(|b| match b {
        BootDevice::Disk => !layout.disks.is_empty(),
        BootDevice::Cdrom => layout.iso.is_some(),
        BootDevice::Network => !vm.nics.is_empty(),
    });
    DomainSpec {
        name: vm.name.clone(),
        uuid: Some(vm_uuid(cluster, vm.id)),
        domain_type: settings.domain_type,
        cpu_mode: settings.cpu_mode,
        vcpus: vm.cpus,
        memory_mib: vm.memory_mib,
        disks: layout
            .disks
            .iter()
            .map(|d| DiskDevice {
                path: d.path.clone(),
                format: DiskFormat::Qcow2,
            })
            .collect(),
        cdroms: layout
            .iso
            .iter()
            .chain(layout.seed.iter())
            .cloned()
            .collect(),
        boot,
        nics: vm
            .nics
            .iter()
            .map(|n| NicDevice {
                kind: match n.network.as_str() {
                    "user" => NicKind::User,
                    other => match other.strip_prefix("bridge:") {
                        Some(br) => NicKind::Bridge(br.to_string()),
                        None => NicKind::Network(other.to_string()),
                    },
                },
                mac: n.mac.clone(),
            })
            .collect(),
        vnc: true,
        serial_console: true,
        // Only a guest with a seed can install the agent; and only where the socket fits.
        guest_agent_channel: layout.seed.is_some() && guest_agent_channel_fits(vm, settings),
        emulator: None,
        metadata: QuantixMeta {
            generation: vm.generation,
            cluster: cluster.to_string(),
        },
    }
}

/// A VM's libvirt UUID: stable for (cluster, VM id), so a redefine keeps it and a VM
/// re-created under the same name gets a new one.
pub fn vm_uuid(cluster: &str, id: u64) -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("quantix:{cluster}:vm:{id}").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(uri: &str) -> Settings {
        Settings {
            domain_type: DomainType::Qemu,
            cpu_mode: CpuMode::Default,
            scratch_dir: PathBuf::from("/tmp/s"),
            state_dir: PathBuf::from("/tmp/a"),
            guest_agent_user_url: String::new(),
            guest_agent_url: String::new(),
            guest_agent_sha256: None,
            channel_dir: channel_dir(uri),
        }
    }

    #[test]
    fn the_agent_channel_is_kept_only_where_its_socket_fits() {
        let vm = crate::model::vm::tests::sample("bench-start-d82303-1");
        assert_eq!(
            channel_dir("qemu:///embed?root=/r/q&x=1"),
            Some(PathBuf::from("/r/q/lib/qemu/channel/target"))
        );
        assert_eq!(channel_dir("test:///h.xml"), None);
        let cases = [
            ("qemu:///system", true),
            ("test:///tmp/host.xml", true),
            ("qemu:///embed?root=/tmp/q/h1", true),
            // The bench's root: libvirt refused to start this domain ("too long").
            (
                "qemu:///embed?root=/tmp/quantix-bench-start-qemu/host2/qemu",
                false,
            ),
        ];
        for (uri, fits) in cases {
            assert_eq!(guest_agent_channel_fits(&vm, &settings(uri)), fits, "{uri}");
        }
    }
}
