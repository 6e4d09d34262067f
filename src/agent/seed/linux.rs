//! cloud-init NoCloud files for Linux guests: `user-data` (`#cloud-config`), `meta-data` and
//! `network-config` (version 2). Owns: how a `LinuxSpec` and the VM's overrides map to
//! cloud-init keys, and the agent install steps. May use: `model`, `userdata` (pure).
//!
//! Choices:
//! - spec users are the guest's administrators: each gets passwordless sudo, `/bin/bash`, a
//!   locked password (SSH keys only) and its own keys; the image's default user stays
//!   (`users: [default, …]`) and gets the default keys (top-level `ssh_authorized_keys`);
//! - `packages` turns on `package_update` (an index is needed to install anything);
//! - `runcmd`: the spec's commands (shell strings) first, then the agent steps as argument
//!   lists (no shell, so the URL needs no quoting);
//! - network: one entry per NIC matched by MAC; the static address (and gateway as a route to
//!   `0.0.0.0/0` or `::/0`, understood by netplan and by cloud-init's own renderers) goes on
//!   the first NIC, every other NIC uses DHCP. NICs without a MAC cannot be told apart, so
//!   then one entry matches every `e*` interface (eth0, ens3, enp1s0): fine for DHCP, and for
//!   a static address only when the VM has one NIC. No NIC: no `network-config` (cloud-init's
//!   fallback applies).

use serde_json::{json, Map, Value};

use super::userdata::{self, Reader};
use super::{
    instance_id, json, merge_keys, pattern_number, AgentInstall, Seed, SeedError, SeedFiles,
    SeedKind,
};
use crate::model::spec::{render_hostname, LinuxSpec, Network, StaticNetwork};
use crate::model::vm::Vm;

pub(crate) const AGENT_BIN: &str = "/usr/local/bin/quantix-agent";
pub(crate) const AGENT_UNIT_PATH: &str = "/etc/systemd/system/quantix-agent.service";
pub(crate) const AGENT_UNIT: &str = "\
[Unit]
Description=Quantix guest agent
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/local/bin/quantix-agent
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
";

pub(super) fn render(
    vm: &Vm,
    spec: Option<&LinuxSpec>,
    agent: Option<&AgentInstall>,
) -> Result<Seed, SeedError> {
    let hostname = hostname(vm, spec)?;
    let mut cfg = Map::new();
    cfg.insert("hostname".into(), json!(hostname));
    cfg.insert("preserve_hostname".into(), json!(false));
    if let Some(domain) = spec.map(|s| &s.domain).filter(|d| !d.is_empty()) {
        cfg.insert("fqdn".into(), json!(format!("{hostname}.{domain}")));
    }
    let timezone = vm
        .overrides
        .timezone
        .as_deref()
        .or(spec.map(|s| s.timezone.as_str()))
        .filter(|t| !t.is_empty());
    if let Some(tz) = timezone {
        cfg.insert("timezone".into(), json!(tz));
    }
    let no_keys = Vec::new();
    let spec_keys = spec.map_or(&no_keys, |s| &s.ssh_keys);
    let keys = merge_keys(spec_keys, &vm.overrides.ssh_keys);
    if !keys.is_empty() {
        cfg.insert("ssh_authorized_keys".into(), json!(keys));
    }
    if let Some(s) = spec.filter(|s| !s.users.is_empty()) {
        let mut users = vec![json!("default")];
        for u in &s.users {
            let mut user = json!({
                "name": u.name,
                "shell": "/bin/bash",
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "lock_passwd": true,
            });
            let keys = merge_keys(&u.ssh_keys, []);
            if !keys.is_empty() {
                user["ssh_authorized_keys"] = json!(keys);
            }
            users.push(user);
        }
        cfg.insert("users".into(), Value::Array(users));
    }
    if let Some(s) = spec.filter(|s| !s.packages.is_empty()) {
        cfg.insert("package_update".into(), json!(true));
        cfg.insert("packages".into(), json!(s.packages));
    }
    let mut runcmd: Vec<Value> = spec
        .map(|s| s.run_commands.iter().map(|c| json!(c)).collect())
        .unwrap_or_default();
    // No spec behaves like `linux-default`, which installs the agent.
    if let Some(a) = agent.filter(|_| spec.is_none_or(|s| s.install_agent)) {
        check_agent_url(&a.url)?;
        cfg.insert(
            "write_files".into(),
            json!([{"path": AGENT_UNIT_PATH, "permissions": "0644", "content": AGENT_UNIT}]),
        );
        runcmd.extend(agent_steps(&a.url, a.sha256.as_deref()));
    }
    if !runcmd.is_empty() {
        cfg.insert("runcmd".into(), Value::Array(runcmd));
    }
    let user_data = userdata::combine(
        cfg,
        vm.overrides.user_data.as_deref(),
        Reader::CloudInit,
        &vm.name,
    )?;
    let meta = json!({"instance-id": instance_id(vm), "local-hostname": hostname});
    Ok(Seed {
        kind: SeedKind::NoCloud,
        files: SeedFiles {
            user_data,
            meta_data: json("meta-data", &meta)?,
            network_config: network_config(vm, spec)?,
        },
    })
}

fn hostname(vm: &Vm, spec: Option<&LinuxSpec>) -> Result<String, SeedError> {
    if let Some(h) = &vm.overrides.hostname {
        return Ok(h.clone());
    }
    match spec {
        Some(s) => {
            render_hostname(&s.hostname_pattern, &vm.name, pattern_number(vm)).map_err(|source| {
                SeedError::Hostname {
                    vm: vm.name.clone(),
                    source,
                }
            })
        }
        None => Ok(vm.name.clone()),
    }
}

fn check_agent_url(url: &str) -> Result<(), SeedError> {
    let bad = |problem| SeedError::AgentUrl {
        url: url.to_string(),
        problem,
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| bad("must start with http:// or https://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("has no host"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not contain spaces or control characters"));
    }
    Ok(())
}

/// Download (to a side file, so a cut download never becomes the binary), check, install,
/// enable. An https URL is the host's own listener, whose certificate the guest cannot
/// verify: it is fetched with `--insecure` and installed only if its SHA-256 is the one the
/// host put in the seed.
fn agent_steps(url: &str, sha256: Option<&str>) -> Vec<Value> {
    let download = format!("{AGENT_BIN}.download");
    let mut curl = vec![
        "curl",
        "-fsSL",
        "--retry",
        "10",
        "--retry-connrefused",
        "--retry-delay",
        "3",
    ];
    if url.starts_with("https://") && sha256.is_some() {
        curl.push("--insecure");
    }
    let mut fetch: Vec<Value> = curl.into_iter().map(Value::from).collect();
    fetch.extend([json!("-o"), json!(download), json!(url)]);
    let install = match sha256 {
        Some(sum) => json!([
            "sh",
            "-c",
            format!("echo '{sum}  {download}' | sha256sum -c - && install -m 0755 {download} {AGENT_BIN}")
        ]),
        None => json!(["install", "-m", "0755", download, AGENT_BIN]),
    };
    vec![
        Value::Array(fetch),
        install,
        json!(["rm", "-f", download]),
        json!(["systemctl", "daemon-reload"]),
        json!(["systemctl", "enable", "--now", "quantix-agent.service"]),
    ]
}

fn network_config(vm: &Vm, spec: Option<&LinuxSpec>) -> Result<Option<String>, SeedError> {
    if vm.nics.is_empty() {
        return Ok(None);
    }
    let fixed = match spec.map(|s| &s.network) {
        Some(Network::Static(s)) => Some(s),
        _ => None,
    };
    let nameservers = spec.and_then(|s| {
        (!s.dns_servers.is_empty() || !s.search_domains.is_empty()).then(|| {
            json!({
                "addresses": s.dns_servers.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(),
                "search": s.search_domains,
            })
        })
    });
    let entry = |matcher: Value, addr: Option<&StaticNetwork>| {
        let mut e = json!({"match": matcher});
        match addr {
            Some(s) => {
                e["addresses"] = json!([format!("{}/{}", s.address, s.prefix)]);
                if s.address.is_ipv4() {
                    e["dhcp4"] = json!(false);
                } else {
                    e["dhcp6"] = json!(false);
                }
                if let Some(gw) = s.gateway {
                    let to = if gw.is_ipv4() { "0.0.0.0/0" } else { "::/0" };
                    e["routes"] = json!([{"to": to, "via": gw.to_string()}]);
                }
            }
            None => e["dhcp4"] = json!(true),
        }
        if let Some(ns) = &nameservers {
            e["nameservers"] = ns.clone();
        }
        e
    };
    let mut ethernets = Map::new();
    if vm.nics.iter().all(|n| n.mac.is_some()) {
        for (i, nic) in vm.nics.iter().enumerate() {
            let mac = nic.mac.as_deref().unwrap_or_default().to_ascii_lowercase();
            let addr = fixed.filter(|_| i == 0);
            ethernets.insert(format!("nic{i}"), entry(json!({"macaddress": mac}), addr));
        }
    } else {
        if fixed.is_some() && vm.nics.len() > 1 {
            return Err(SeedError::StaticNeedsMacs {
                vm: vm.name.clone(),
                nics: vm.nics.len(),
            });
        }
        ethernets.insert("all".into(), entry(json!({"name": "e*"}), fixed));
    }
    let config = json!({"version": 2, "ethernets": ethernets});
    json("network-config", &config).map(Some)
}
