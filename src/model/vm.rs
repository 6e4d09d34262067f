//! VM records: what the user wants (desired) and what its host last saw (observed), plus
//! their validation. Pure types; references to other entities are by name and are checked
//! against the state in `state::vms`.

use serde::{Deserialize, Serialize};

use super::names::{validate_label, NameError};
use super::{FolderId, UnixMillis};

/// Most vCPUs and memory one VM may ask for; beyond this the input is a typo, not a VM.
pub const MAX_CPUS: u32 = 512;
pub const MAX_MEMORY_MIB: u64 = 16 * 1024 * 1024;
pub const MAX_DISKS: usize = 16;
pub const MAX_NICS: usize = 8;
/// Names a VM cannot have: its files go to `<pool dir>/<vm name>/`, beside `images/`.
pub const RESERVED_NAMES: [&str; 1] = ["images"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vm {
    pub id: u64,
    pub name: String,
    pub folder: FolderId,
    pub cpus: u32,
    pub memory_mib: u64,
    pub disks: Vec<Disk>,
    pub boot: BootMedia,
    pub nics: Vec<Nic>,
    pub spec: Option<String>,
    pub overrides: Overrides,
    /// Place only on this host.
    pub host_pin: Option<String>,
    /// Members of this group run on different hosts.
    pub anti_affinity: Option<String>,
    /// Members of this group run on the same host.
    pub affinity: Option<String>,
    /// Create at this time (the leader fires it).
    pub scheduled_at: Option<UnixMillis>,
    pub power: Power,
    /// With `Power::Stopped`: pull the plug instead of asking the guest to shut down.
    pub force_stop: bool,
    /// Bumped by every reboot request, so the host can tell a new one from one it did.
    pub reboot_seq: u64,
    /// The host the scheduler placed it on.
    pub placement: Option<String>,
    pub observed: Observed,
    /// Bumped on every change of the desired state.
    pub generation: u64,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    pub size_mib: u64,
    pub pool: String,
    /// Backing image (a qcow2 overlay on it), if any.
    pub image: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BootMedia {
    /// Boot the first disk, made as an overlay on this cloud image.
    CloudImage(String),
    /// Boot this ISO from a cdrom; disks start empty.
    Iso(String),
    /// Boot from the network; disks start empty.
    Pxe,
    /// A domain found on a host that Quantix did not define: its boot configuration is the
    /// domain's own, and Quantix never redefines it. Only the host's discovery report makes it.
    Foreign,
}

impl BootMedia {
    pub fn describe(&self) -> String {
        match self {
            BootMedia::CloudImage(i) => format!("image {i}"),
            BootMedia::Iso(i) => format!("iso {i}"),
            BootMedia::Pxe => "pxe".into(),
            BootMedia::Foreign => "as defined outside Quantix".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nic {
    /// `user` (no host networking needed), or a libvirt network or bridge name.
    pub network: String,
    pub mac: Option<String>,
}

/// Per-VM changes to its customization spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides {
    pub hostname: Option<String>,
    pub timezone: Option<String>,
    pub ssh_keys: Vec<String>,
    /// Extra cloud-init user-data merged after the spec's.
    pub user_data: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Power {
    Running,
    Stopped,
    Paused,
    /// Delete requested; the host removes the domain and disks, then the record goes.
    Deleted,
}

impl Power {
    pub fn as_str(self) -> &'static str {
        match self {
            Power::Running => "running",
            Power::Stopped => "stopped",
            Power::Paused => "paused",
            Power::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Not placed on a host yet (waiting for the scheduler or its scheduled time).
    Pending,
    /// Placed; its host has not reported it yet.
    Creating,
    Running,
    Stopped,
    Paused,
    Failed,
    Deleting,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Creating => "creating",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
            Status::Failed => "failed",
            Status::Deleting => "deleting",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Creating,
            Status::Running,
            Status::Stopped,
            Status::Paused,
            Status::Failed,
            Status::Deleting,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// What the VM's host last reported, and why anything is not done yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub status: Status,
    /// Why the VM is not (yet) as desired, e.g. "waiting for a host with pool nfs-a".
    pub reason: String,
    pub host: Option<String>,
    pub at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VmError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("cpus must be between 1 and {MAX_CPUS} (got {0})")]
    Cpus(u32),
    #[error("memory must be between 64 MiB and {MAX_MEMORY_MIB} MiB (got {0} MiB)")]
    Memory(u64),
    #[error("disk {index}: size must be at least 1 MiB")]
    DiskSize { index: usize },
    #[error(
        "disk {index}: choose a storage pool (--pool), or a backing image whose pool it then uses"
    )]
    DiskPool { index: usize },
    #[error("a VM has at most {MAX_DISKS} disks and {MAX_NICS} NICs")]
    TooMany,
    #[error("boot media {0} needs at least one disk")]
    NoDisk(String),
    #[error("vm name '{0}' is reserved: a pool keeps its images in a directory of that name")]
    Reserved(String),
    #[error("nic {index}: mac '{mac}' is not a MAC address like 52:54:00:12:34:56")]
    Mac { index: usize, mac: String },
    #[error("nic {index}: network must not be empty")]
    Network { index: usize },
}

impl Vm {
    /// Checks the fields that need no other entity. References are checked in `state::vms`.
    pub fn validate(&self) -> Result<(), VmError> {
        validate_label("vm name", &self.name)?;
        if RESERVED_NAMES.contains(&self.name.as_str()) {
            return Err(VmError::Reserved(self.name.clone()));
        }
        validate_shape(self.cpus, self.memory_mib)?;
        if self.disks.len() > MAX_DISKS || self.nics.len() > MAX_NICS {
            return Err(VmError::TooMany);
        }
        for (index, d) in self.disks.iter().enumerate() {
            if d.size_mib == 0 {
                return Err(VmError::DiskSize { index });
            }
            // An empty pool means "the pool of the backing image", resolved in `state::vms`.
            if !d.pool.is_empty() {
                validate_label("disk pool", &d.pool)?;
            } else if d.image.is_none() {
                return Err(VmError::DiskPool { index });
            }
        }
        if matches!(self.boot, BootMedia::CloudImage(_)) && self.disks.is_empty() {
            return Err(VmError::NoDisk(self.boot.describe()));
        }
        for (index, n) in self.nics.iter().enumerate() {
            if n.network.trim().is_empty() {
                return Err(VmError::Network { index });
            }
            if let Some(mac) = &n.mac {
                if !is_mac(mac) {
                    return Err(VmError::Mac {
                        index,
                        mac: mac.clone(),
                    });
                }
            }
        }
        if let Some(h) = &self.overrides.hostname {
            validate_label("hostname override", h)?;
        }
        if let Some(g) = &self.anti_affinity {
            validate_label("anti-affinity group", g)?;
        }
        if let Some(g) = &self.affinity {
            validate_label("affinity group", g)?;
        }
        Ok(())
    }
}

pub fn validate_shape(cpus: u32, memory_mib: u64) -> Result<(), VmError> {
    if cpus == 0 || cpus > MAX_CPUS {
        return Err(VmError::Cpus(cpus));
    }
    if !(64..=MAX_MEMORY_MIB).contains(&memory_mib) {
        return Err(VmError::Memory(memory_mib));
    }
    Ok(())
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(name: &str) -> Vm {
        Vm {
            id: 0,
            name: name.into(),
            folder: FolderId::ROOT,
            cpus: 2,
            memory_mib: 2048,
            disks: vec![Disk {
                size_mib: 10_240,
                pool: "local".into(),
                image: Some("ubuntu-24.04".into()),
            }],
            boot: BootMedia::CloudImage("ubuntu-24.04".into()),
            nics: vec![Nic {
                network: "user".into(),
                mac: None,
            }],
            spec: None,
            overrides: Overrides::default(),
            host_pin: None,
            anti_affinity: None,
            affinity: None,
            scheduled_at: None,
            power: Power::Running,
            force_stop: false,
            reboot_seq: 0,
            placement: None,
            observed: Observed {
                status: Status::Pending,
                reason: String::new(),
                host: None,
                at: 0,
            },
            generation: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn validation_table() {
        type Edit = fn(&mut Vm);
        let cases: Vec<(&str, Edit, Option<&str>)> = vec![
            ("ok", |_| {}, None),
            (
                "bad name",
                |v| v.name = "Web_1".into(),
                Some("vm name 'Web_1'"),
            ),
            ("zero cpus", |v| v.cpus = 0, Some("cpus must be between 1")),
            ("huge cpus", |v| v.cpus = 10_000, Some("cpus")),
            (
                "tiny memory",
                |v| v.memory_mib = 1,
                Some("memory must be between 64 MiB"),
            ),
            (
                "empty disk",
                |v| v.disks[0].size_mib = 0,
                Some("disk 0: size"),
            ),
            (
                "pool from the image",
                |v| v.disks[0].pool = String::new(),
                None,
            ),
            (
                "no pool, no image",
                |v| {
                    v.disks[0].pool = String::new();
                    v.disks[0].image = None
                },
                Some("disk 0: choose a storage pool"),
            ),
            (
                "image boot without disk",
                |v| v.disks.clear(),
                Some("needs at least one disk"),
            ),
            (
                "reserved name",
                |v| v.name = "images".into(),
                Some("vm name 'images' is reserved"),
            ),
            (
                "pxe without disk is fine",
                |v| {
                    v.disks.clear();
                    v.boot = BootMedia::Pxe
                },
                None,
            ),
            (
                "bad mac",
                |v| v.nics[0].mac = Some("zz".into()),
                Some("nic 0: mac 'zz'"),
            ),
            (
                "good mac",
                |v| v.nics[0].mac = Some("52:54:00:ab:cd:ef".into()),
                None,
            ),
            (
                "empty network",
                |v| v.nics[0].network = " ".into(),
                Some("nic 0: network"),
            ),
            (
                "bad hostname",
                |v| v.overrides.hostname = Some("a b".into()),
                Some("hostname override"),
            ),
        ];
        for (what, edit, want) in cases {
            let mut vm = sample("web1");
            edit(&mut vm);
            match (vm.validate(), want) {
                (Ok(()), None) => {}
                (Err(e), Some(msg)) => assert!(e.to_string().contains(msg), "{what}: {e}"),
                (got, want) => panic!("{what}: got {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn status_names_round_trip() {
        for s in [
            "pending", "creating", "running", "stopped", "paused", "failed", "deleting",
        ] {
            assert_eq!(Status::parse(s).map(Status::as_str), Some(s));
        }
        assert_eq!(Status::parse("bogus"), None);
    }
}
