//! The daemon's configuration file (TOML). Every key has a documented default except `name`;
//! unknown keys and bad values are refused at start with a message that names the key.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

use crate::model::names;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Host name: a DNS label, unique in the cluster.
    pub name: String,
    /// Where the Raft log, the state and snapshots live. Default `/var/lib/quantix`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// gRPC listener: public API and host-to-host transport. Default `0.0.0.0:7400`.
    #[serde(default = "default_grpc_addr")]
    pub grpc_addr: SocketAddr,
    /// HTTP listener for the dashboard and metrics. Default `0.0.0.0:7480`.
    #[serde(default = "default_http_addr")]
    pub http_addr: SocketAddr,
    /// `host:port` other hosts use to reach this one. Default: `grpc_addr`.
    #[serde(default)]
    pub advertise_addr: Option<String>,
    /// `host:port` browsers use to reach this host's `http_addr` (the dashboard): followers
    /// redirect there when this host leads. Default: `http_addr`, or, when that listens on all
    /// interfaces, the host part of the advertised gRPC address with `http_addr`'s port.
    #[serde(default)]
    pub advertise_http_addr: Option<String>,
    #[serde(default)]
    pub hypervisor: HypervisorConfig,
    #[serde(default)]
    pub raft: RaftConfig,
    #[serde(default)]
    pub images: ImagesConfig,
}

/// `[images]`: where this host may download images from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesConfig {
    /// Host names or addresses that image URLs may name (e.g. a local mirror); a download
    /// from any other host fails with a reason. Default: empty, any host.
    #[serde(default)]
    pub url_hosts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HypervisorConfig {
    /// libvirt URI. Default `qemu:///system`.
    #[serde(default = "default_uri")]
    pub uri: String,
    /// Domain type: `kvm` (hardware virtualisation), `qemu` (TCG emulation, for hosts where
    /// KVM is absent or unusable) or `test` (libvirt's test driver). Default: `test` for a
    /// `test://` URI, else `kvm`.
    #[serde(default)]
    pub domain_type: Option<String>,
    /// Guest CPU: `host-passthrough`, `host-model` or `default` (QEMU's default model, which
    /// runs anywhere). Default `host-passthrough`.
    #[serde(default = "default_cpu_mode")]
    pub cpu_mode: String,
}

impl Default for HypervisorConfig {
    fn default() -> Self {
        HypervisorConfig {
            uri: default_uri(),
            domain_type: None,
            cpu_mode: default_cpu_mode(),
        }
    }
}

impl HypervisorConfig {
    /// The domain type to use, after the default.
    pub fn domain_type(&self) -> &str {
        match &self.domain_type {
            Some(t) => t,
            None if self.uri.starts_with("test:") => "test",
            None => "kvm",
        }
    }
}

fn default_cpu_mode() -> String {
    "host-passthrough".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftConfig {
    /// Leader heartbeat interval. Default 50 ms.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_ms: u64,
    /// A follower starts an election after a random timeout in [min, max]. Default 200–400 ms.
    /// openraft's leader lease equals the max, so failover takes about max + a random
    /// [min, max]: ~0.7 s with the defaults. Raise both on slow or lossy links.
    #[serde(default = "default_election_min")]
    pub election_timeout_min_ms: u64,
    #[serde(default = "default_election_max")]
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many entries since the last one. Default 10000.
    #[serde(default = "default_snapshot_after")]
    pub snapshot_after_entries: u64,
    /// Entries kept in the log behind a snapshot, for followers slightly behind. Default 1000.
    #[serde(default = "default_keep")]
    pub keep_entries_after_snapshot: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            heartbeat_ms: default_heartbeat(),
            election_timeout_min_ms: default_election_min(),
            election_timeout_max_ms: default_election_max(),
            snapshot_after_entries: default_snapshot_after(),
            keep_entries_after_snapshot: default_keep(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/quantix")
}
fn default_grpc_addr() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 7400))
}
fn default_http_addr() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 7480))
}
fn default_uri() -> String {
    "qemu:///system".into()
}
fn default_heartbeat() -> u64 {
    50
}
fn default_election_min() -> u64 {
    200
}
fn default_election_max() -> u64 {
    400
}
fn default_snapshot_after() -> u64 {
    10_000
}
fn default_keep() -> u64 {
    1_000
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Config::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string().trim().to_string(),
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key, message: String| ConfigError::Invalid {
            path: path.into(),
            key,
            message,
        };
        names::validate_label("host name", &self.name)
            .map_err(|e| invalid("name", e.to_string()))?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty".into()));
        }
        if let Some(a) = &self.advertise_addr {
            if !is_host_port(a) {
                return Err(invalid("advertise_addr", format!("'{a}' is not host:port")));
            }
        } else if self.grpc_addr.ip().is_unspecified() {
            return Err(invalid(
                "advertise_addr",
                format!("grpc_addr {} listens on all interfaces; set advertise_addr to the address other hosts should use", self.grpc_addr),
            ));
        }
        if let Some(a) = &self.advertise_http_addr {
            if !is_host_port(a) {
                return Err(invalid(
                    "advertise_http_addr",
                    format!("'{a}' is not host:port"),
                ));
            }
        }
        if self.hypervisor.uri.trim().is_empty() || !self.hypervisor.uri.contains("://") {
            return Err(invalid(
                "hypervisor.uri",
                format!(
                    "'{}' is not a libvirt URI such as qemu:///system",
                    self.hypervisor.uri
                ),
            ));
        }
        if !["kvm", "qemu", "test"].contains(&self.hypervisor.domain_type()) {
            return Err(invalid(
                "hypervisor.domain_type",
                format!(
                    "'{}' is not one of kvm, qemu, test",
                    self.hypervisor.domain_type()
                ),
            ));
        }
        if !["host-passthrough", "host-model", "default"]
            .contains(&self.hypervisor.cpu_mode.as_str())
        {
            return Err(invalid(
                "hypervisor.cpu_mode",
                format!(
                    "'{}' is not one of host-passthrough, host-model, default",
                    self.hypervisor.cpu_mode
                ),
            ));
        }
        let r = &self.raft;
        if r.heartbeat_ms == 0 {
            return Err(invalid("raft.heartbeat_ms", "must be positive".into()));
        }
        if r.election_timeout_min_ms <= r.heartbeat_ms {
            return Err(invalid(
                "raft.election_timeout_min_ms",
                "must be greater than raft.heartbeat_ms".into(),
            ));
        }
        if r.election_timeout_max_ms <= r.election_timeout_min_ms {
            return Err(invalid(
                "raft.election_timeout_max_ms",
                "must be greater than raft.election_timeout_min_ms".into(),
            ));
        }
        if r.snapshot_after_entries == 0 {
            return Err(invalid(
                "raft.snapshot_after_entries",
                "must be positive".into(),
            ));
        }
        Ok(())
    }

    /// The address other hosts and clients use to reach this host's gRPC port.
    pub fn advertised(&self) -> String {
        self.advertise_addr
            .clone()
            .unwrap_or_else(|| self.grpc_addr.to_string())
    }

    /// The host's administrator socket: gRPC without TLS, for root (or the daemon's user) on
    /// this machine only (mode 0600). `quantix --endpoint unix://PATH`.
    pub fn socket_path(&self) -> PathBuf {
        self.data_dir.join("quantixd.sock")
    }

    /// The `host:port` browsers use to reach this host's HTTP listener (the dashboard).
    pub fn advertised_http(&self) -> String {
        if let Some(a) = &self.advertise_http_addr {
            return a.clone();
        }
        if !self.http_addr.ip().is_unspecified() {
            return self.http_addr.to_string();
        }
        let grpc = self.advertised();
        let host = grpc.rsplit_once(':').map_or(grpc.as_str(), |(h, _)| h);
        format!("{host}:{}", self.http_addr.port())
    }
}

fn is_host_port(a: &str) -> bool {
    a.rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("t.toml"), text).map_err(|e| e.to_string())
    }

    const MIN: &str = "name = \"h1\"\ngrpc_addr = \"127.0.0.1:7401\"\n";

    #[test]
    fn defaults() {
        let c = parse(MIN).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/quantix"));
        assert_eq!(c.hypervisor.uri, "qemu:///system");
        assert_eq!(c.hypervisor.domain_type(), "kvm");
        assert_eq!(c.hypervisor.cpu_mode, "host-passthrough");
        let t = parse(&format!(
            "{MIN}[hypervisor]\nuri = \"test:///x/host.xml\"\n"
        ))
        .unwrap();
        assert_eq!(t.hypervisor.domain_type(), "test");
        assert_eq!(c.raft.heartbeat_ms, 50);
        assert_eq!(c.advertised(), "127.0.0.1:7401");
        // http_addr defaults to 0.0.0.0:7480: browsers get the advertised host, that port.
        assert_eq!(c.advertised_http(), "127.0.0.1:7480");
        let h = parse(&format!("{MIN}http_addr = \"127.0.0.2:81\"\n")).unwrap();
        assert_eq!(h.advertised_http(), "127.0.0.2:81");
        let a = parse(&format!(
            "{MIN}advertise_http_addr = \"dash.example:443\"\n"
        ))
        .unwrap();
        assert_eq!(a.advertised_http(), "dash.example:443");
    }

    #[test]
    fn images_url_hosts() {
        assert!(parse(MIN).unwrap().images.url_hosts.is_empty());
        let c = parse(&format!("{MIN}[images]\nurl_hosts = [\"mirror.lan\"]\n")).unwrap();
        assert_eq!(c.images.url_hosts, ["mirror.lan"]);
        assert!(parse(&format!("{MIN}[images]\nhosts = []\n"))
            .unwrap_err()
            .contains("hosts"));
    }

    #[test]
    fn refusals_name_the_key() {
        let cases = [
            (format!("{MIN}bogus = 1\n"), "bogus"),
            (format!("{MIN}[raft]\nheartbeat = 1\n"), "heartbeat"),
            (
                "name = \"H_1\"\ngrpc_addr = \"127.0.0.1:1\"\n".to_string(),
                "`name`",
            ),
            (
                "name = \"h\"\ngrpc_addr = \"nope\"\n".to_string(),
                "grpc_addr",
            ),
            ("grpc_addr = \"127.0.0.1:1\"\n".to_string(), "name"),
            ("name = \"h\"\n".to_string(), "advertise_addr"),
            (format!("{MIN}advertise_addr = \"x\"\n"), "advertise_addr"),
            (
                format!("{MIN}advertise_http_addr = \"x\"\n"),
                "advertise_http_addr",
            ),
            (format!("{MIN}[hypervisor]\nuri = \"\"\n"), "hypervisor.uri"),
            (
                format!("{MIN}[hypervisor]\ndomain_type = \"xen\"\n"),
                "hypervisor.domain_type",
            ),
            (
                format!("{MIN}[hypervisor]\ncpu_mode = \"max\"\n"),
                "hypervisor.cpu_mode",
            ),
            (
                format!("{MIN}[raft]\nelection_timeout_min_ms = 50\n"),
                "raft.election_timeout_min_ms",
            ),
            (
                format!("{MIN}[raft]\nelection_timeout_max_ms = 150\n"),
                "raft.election_timeout_max_ms",
            ),
        ];
        for (text, key) in cases {
            let err = parse(&text).expect_err(&text);
            assert!(err.contains(key), "{text:?} -> {err}");
        }
    }

    #[test]
    fn example_configs_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut n = 0;
        for entry in std::fs::read_dir(root).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "toml") {
                Config::load(&p).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(
            n >= 4,
            "expected the single-host, three-host and production examples, found {n}"
        );
    }
}
