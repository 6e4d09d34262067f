//! First-boot seeds for guests: what a VM reads from a small cdrom to set itself up. Linux
//! guests get a cloud-init **NoCloud** seed, Windows guests a cloudbase-init **ConfigDrive**
//! seed, both rendered from the VM's customization spec and its per-VM overrides.
//! Owns: the seed types, `render` (pure: no clock, no I/O, same input → same bytes) and
//! `write_iso` (the only I/O: a staging directory, an ISO tool, an atomic rename).
//! May use: `model` (spec, VM), `serde_json`, `base64`, `sha2`, `hex`, `uuid`, `tokio` (fs,
//! process, time).
//!
//! Submodules: `linux` (NoCloud files), `windows` (ConfigDrive files), `userdata` (merging the
//! VM's extra user-data, MIME multipart), `iso` (writing the ISO).
//!
//! # ISO layouts
//!
//! | guest | volume label | files |
//! | --- | --- | --- |
//! | Linux (cloud-init NoCloud) | `cidata` | `/user-data`, `/meta-data`, `/network-config` (when the VM has a NIC) |
//! | Windows (cloudbase-init ConfigDrive) | `config-2` | `/openstack/latest/meta_data.json`, `/openstack/latest/user_data` |
//!
//! Windows uses the ConfigDrive layout, not cloudbase-init's NoCloud service: `ConfigDriveService`
//! is in cloudbase-init's default `metadata_services` list (the NoCloud one must be enabled in
//! the image's `cloudbase-init.conf`), and it is the only layout with a field for the admin
//! password (`admin_pass`). Both ISOs carry Joliet (what Windows reads) and Rock Ridge names.
//!
//! # Formats
//!
//! Every YAML document is written as JSON: `#cloud-config` followed by a JSON object, JSON
//! `meta-data` and `network-config`. JSON is YAML (cloud-init and cloudbase-init read these
//! files with PyYAML), so no YAML serializer is needed (`serde_yaml` is unmaintained). The
//! one YAML input, a VM's `user_data` override, is handled in `userdata` without parsing YAML.
//!
//! # Secrets
//!
//! The Windows admin password, domain-join password and product key are written into the
//! seed and nowhere else: the `Debug` of [`SeedFiles`] shows only sizes, errors never quote
//! file contents, and the ISO (and its staging copy) is created mode 0600. libvirt's dynamic
//! ownership hands the ISO to QEMU when the domain starts.

mod iso;
mod linux;
mod userdata;
mod windows;

#[cfg(test)]
mod iso_tests;
#[cfg(test)]
mod linux_tests;
#[cfg(test)]
mod windows_tests;

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

use crate::model::spec::{Spec, SpecConfig, SpecError};
use crate::model::vm::Vm;

pub use iso::{write_iso, write_iso_with, IsoTool};

/// Where a guest downloads the Quantix guest agent from: the full URL of the agent binary on
/// the cluster (`http://` or `https://`). Linux seeds download it, install it as
/// `/usr/local/bin/quantix-agent` and enable `quantix-agent.service` (see `linux`). Windows
/// seeds do not install an agent: Windows specs have no agent option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInstall {
    pub url: String,
    /// SHA-256 (hex) of the binary the host serves. With it the guest checks what it
    /// downloaded before installing it, which is what makes fetching over the host's HTTPS
    /// (a certificate of the cluster's own CA, which the guest does not know) safe with
    /// `curl --insecure`.
    pub sha256: Option<String>,
}

/// Which guest program reads the seed, and so the ISO's label and layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedKind {
    /// cloud-init's NoCloud data source (Linux).
    NoCloud,
    /// OpenStack config drive as cloudbase-init reads it (Windows).
    ConfigDrive,
}

impl SeedKind {
    /// The ISO volume id the guest looks for.
    pub fn volume_label(self) -> &'static str {
        match self {
            SeedKind::NoCloud => "cidata",
            SeedKind::ConfigDrive => "config-2",
        }
    }
}

/// The rendered files. For [`SeedKind::ConfigDrive`], `meta_data` is `meta_data.json` and
/// `network_config` is always `None` (Windows guests use DHCP).
#[derive(Clone, PartialEq, Eq)]
pub struct SeedFiles {
    pub user_data: String,
    pub meta_data: String,
    pub network_config: Option<String>,
}

/// Sizes only: the files may hold passwords.
impl fmt::Debug for SeedFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeedFiles")
            .field("user_data_bytes", &self.user_data.len())
            .field("meta_data_bytes", &self.meta_data.len())
            .field(
                "network_config_bytes",
                &self.network_config.as_ref().map(String::len),
            )
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub kind: SeedKind,
    pub files: SeedFiles,
}

impl Seed {
    pub fn volume_label(&self) -> &'static str {
        self.kind.volume_label()
    }

    /// Every file of the ISO as (path inside the ISO, contents), in the guest's layout.
    pub fn entries(&self) -> Vec<(&'static str, &str)> {
        let f = &self.files;
        let (user, meta, net) = match self.kind {
            SeedKind::NoCloud => ("user-data", "meta-data", "network-config"),
            SeedKind::ConfigDrive => (
                "openstack/latest/user_data",
                "openstack/latest/meta_data.json",
                "openstack/latest/network_data.json",
            ),
        };
        let mut out = vec![(user, f.user_data.as_str()), (meta, f.meta_data.as_str())];
        if let Some(n) = &f.network_config {
            out.push((net, n.as_str()));
        }
        out
    }
}

#[derive(Debug, Error)]
pub enum SeedError {
    #[error("vm {vm} uses spec '{wanted}', but spec '{given}' was given to render its seed")]
    WrongSpec {
        vm: String,
        wanted: String,
        given: String,
    },
    #[error("vm {vm}: {source}")]
    Hostname {
        vm: String,
        #[source]
        source: SpecError,
    },
    #[error(
        "vm {vm}: a static address on a VM with {nics} NICs needs a MAC address on every NIC \
         (to tell which NIC gets it)"
    )]
    StaticNeedsMacs { vm: String, nics: usize },
    /// The VM's extra user-data; its contents are never quoted (they may hold secrets).
    #[error("vm {vm}: user_data override {problem}")]
    UserData { vm: String, problem: String },
    #[error(
        "vm {vm}: spec {spec} still has sealed secrets (open them with the cluster key first)"
    )]
    Sealed { vm: String, spec: String },
    #[error("agent download url '{url}' {problem}")]
    AgentUrl { url: String, problem: &'static str },
    #[error("cannot encode {what} as JSON: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("no ISO tool found: install xorriso or genisoimage (scripts/setup.sh)")]
    NoIsoTool,
    #[error("{tool} failed writing {}: {detail}", path.display())]
    IsoTool {
        tool: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Renders the seed of `vm` from its customization `spec` (`None`: no spec, which behaves
/// like the built-in `linux-default` without a time zone) and, for Linux guests whose spec
/// installs the agent, `agent`.
///
/// Resolution, the same for both guests:
/// - hostname: the override, else the spec's pattern filled in (`{vm}` = VM name, `{n}` = the
///   VM's id until the VM record carries its own per-spec number), else the VM name;
/// - time zone: the override, else the spec's (none without a spec: the image's stays);
/// - SSH keys for the image's default user: the spec's `ssh_keys`, then the override's,
///   without duplicates; spec users keep their own keys;
/// - instance id: `iid-<vm name>-<vm id>`, so a VM rebuilt under the same name is a new
///   instance to cloud-init and runs first-boot setup again;
/// - the override `user_data` is combined with the rendered user-data as `userdata` says.
pub fn render(
    vm: &Vm,
    spec: Option<&Spec>,
    agent: Option<&AgentInstall>,
) -> Result<Seed, SeedError> {
    if let (Some(s), Some(wanted)) = (spec, &vm.spec) {
        if &s.name != wanted {
            return Err(SeedError::WrongSpec {
                vm: vm.name.clone(),
                wanted: wanted.clone(),
                given: s.name.clone(),
            });
        }
    }
    if let Some(s) = spec.filter(|s| s.config.has_sealed_secrets()) {
        return Err(SeedError::Sealed {
            vm: vm.name.clone(),
            spec: s.name.clone(),
        });
    }
    match spec.map(|s| &s.config) {
        None => linux::render(vm, None, agent),
        Some(SpecConfig::Linux(l)) => linux::render(vm, Some(l), agent),
        Some(SpecConfig::Windows(w)) => windows::render(vm, w),
    }
}

pub(crate) fn instance_id(vm: &Vm) -> String {
    format!("iid-{}-{}", vm.name, vm.id)
}

/// The number `{n}` stands for in hostname patterns (see [`render`]).
pub(crate) fn pattern_number(vm: &Vm) -> u64 {
    vm.id
}

/// `first` then `more`, each key with single spaces, without repeats (first one kept).
pub(crate) fn merge_keys<'a>(
    first: impl IntoIterator<Item = &'a String>,
    more: impl IntoIterator<Item = &'a String>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in first.into_iter().chain(more) {
        let k = k.split_whitespace().collect::<Vec<_>>().join(" ");
        if !k.is_empty() && !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// `#cloud-config` + the JSON of `config`.
pub(crate) fn cloud_config(
    config: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, SeedError> {
    let body = serde_json::to_string_pretty(config).map_err(|source| SeedError::Encode {
        what: "cloud-config",
        source,
    })?;
    Ok(format!("#cloud-config\n{body}\n"))
}

pub(crate) fn json(what: &'static str, value: &serde_json::Value) -> Result<String, SeedError> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|source| SeedError::Encode { what, source })
}
