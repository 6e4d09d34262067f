//! Turning `spec create/update` options into request settings: which options belong to
//! which OS, reading keys and secrets from files, and changing only what was given.

use clap::ValueEnum;

use super::{ClearArg, Fields, OsArg};
use crate::cli::CliError;
use crate::proto::v1::*;

impl Fields {
    fn linux_flags(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut f = |set: bool, name| {
            if set {
                v.push(name)
            }
        };
        f(self.hostname_pattern.is_some(), "--hostname-pattern");
        f(self.domain.is_some(), "--domain");
        f(!self.users.is_empty(), "--user");
        f(!self.ssh_keys.is_empty(), "--ssh-key");
        f(!self.dns.is_empty(), "--dns");
        f(!self.search_domains.is_empty(), "--search-domain");
        f(self.static_addr.is_some(), "--static");
        f(self.dhcp, "--dhcp");
        f(!self.packages.is_empty(), "--package");
        f(!self.run.is_empty(), "--run");
        f(self.agent, "--agent");
        f(self.no_agent, "--no-agent");
        v
    }

    fn windows_flags(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut f = |set: bool, name| {
            if set {
                v.push(name)
            }
        };
        f(self.computer_name.is_some(), "--computer-name");
        f(self.admin_password_file.is_some(), "--admin-password-file");
        f(self.workgroup.is_some(), "--workgroup");
        f(self.join_domain.is_some(), "--join-domain");
        f(self.join_user.is_some(), "--join-user");
        f(self.join_password_file.is_some(), "--join-password-file");
        f(self.product_key.is_some(), "--product-key");
        v
    }

    pub(super) fn is_empty(&self) -> bool {
        self.description.is_none()
            && self.timezone.is_none()
            && self.linux_flags().is_empty()
            && self.windows_flags().is_empty()
    }

    /// Refuses options of the other OS, naming them.
    pub(super) fn only_for(&self, os: OsArg) -> Result<(), CliError> {
        let (wrong, other) = match os {
            OsArg::Linux => (self.windows_flags(), "windows"),
            OsArg::Windows => (self.linux_flags(), "linux"),
        };
        if wrong.is_empty() {
            return Ok(());
        }
        Err(CliError::Usage(format!(
            "{} appl{} to {other} specs only",
            wrong.join(", "),
            if wrong.len() == 1 { "ies" } else { "y" }
        )))
    }
}

pub(super) fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

fn read_file(flag: &str, path: &str) -> Result<String, CliError> {
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    text.map_err(|e| usage(format!("{flag}: cannot read {path}: {e}")))
}

/// A secret from a file: the first line without its line ending.
fn read_secret(flag: &str, path: &str) -> Result<String, CliError> {
    let text = read_file(flag, path)?;
    let line = text.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        return Err(usage(format!("{flag}: {path} is empty")));
    }
    Ok(line)
}

/// `KEY` or `@FILE` (one key per line; blank lines and # comments skipped).
fn keys_of(flag: &str, arg: &str) -> Result<Vec<String>, CliError> {
    let Some(path) = arg.strip_prefix('@') else {
        return Ok(vec![arg.to_string()]);
    };
    let keys: Vec<String> = read_file(flag, path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    if keys.is_empty() {
        return Err(usage(format!("{flag}: {path} holds no key")));
    }
    Ok(keys)
}

/// `--user NAME[:KEY]` options into users; the same name twice gathers its keys.
fn users_of(args: &[String]) -> Result<Vec<SpecUser>, CliError> {
    let mut users: Vec<SpecUser> = Vec::new();
    for a in args {
        let (name, key) = match a.split_once(':') {
            Some((n, k)) => (n, Some(k)),
            None => (a.as_str(), None),
        };
        let keys = match key {
            Some(k) => keys_of("--user", k)?,
            None => Vec::new(),
        };
        match users.iter_mut().find(|u| u.name == name) {
            Some(u) => u.ssh_keys.extend(keys),
            None => users.push(SpecUser {
                name: name.into(),
                ssh_keys: keys,
            }),
        }
    }
    Ok(users)
}

fn static_of(addr: &str, gateway: Option<&str>) -> Result<StaticNetwork, CliError> {
    let (address, prefix) = addr.split_once('/').ok_or_else(|| {
        usage(format!(
            "--static '{addr}' must be ADDRESS/PREFIX, e.g. 10.0.0.10/24"
        ))
    })?;
    let prefix = prefix.parse().map_err(|_| {
        usage(format!(
            "--static '{addr}': prefix '{prefix}' is not a number"
        ))
    })?;
    Ok(StaticNetwork {
        address: address.into(),
        prefix,
        gateway: gateway.unwrap_or_default().into(),
    })
}

pub(super) fn apply_linux(
    l: &mut LinuxSettings,
    f: &Fields,
    clear: &[ClearArg],
) -> Result<(), CliError> {
    for c in clear {
        match c {
            ClearArg::Domain => l.domain.clear(),
            ClearArg::Users => l.users.clear(),
            ClearArg::SshKeys => l.ssh_keys.clear(),
            ClearArg::Dns => l.dns_servers.clear(),
            ClearArg::SearchDomains => l.search_domains.clear(),
            ClearArg::Packages => l.packages.clear(),
            ClearArg::Run => l.run_commands.clear(),
            ClearArg::Description => {}
            ClearArg::AdminPassword | ClearArg::ProductKey => {
                return Err(usage(format!(
                    "--clear {}: linux specs have no such secret",
                    c.to_possible_value()
                        .map(|v| v.get_name().to_string())
                        .unwrap_or_default()
                )))
            }
        }
    }
    if let Some(v) = &f.timezone {
        l.timezone = v.clone();
    }
    if let Some(v) = &f.hostname_pattern {
        l.hostname_pattern = v.clone();
    }
    if let Some(v) = &f.domain {
        l.domain = v.clone();
    }
    if !f.users.is_empty() {
        l.users = users_of(&f.users)?;
    }
    if !f.ssh_keys.is_empty() {
        l.ssh_keys = Vec::new();
        for k in &f.ssh_keys {
            l.ssh_keys.extend(keys_of("--ssh-key", k)?);
        }
    }
    if !f.dns.is_empty() {
        l.dns_servers = f.dns.clone();
    }
    if !f.search_domains.is_empty() {
        l.search_domains = f.search_domains.clone();
    }
    if f.dhcp {
        l.static_network = None;
    }
    if let Some(a) = &f.static_addr {
        l.static_network = Some(static_of(a, f.gateway.as_deref())?);
    }
    if !f.packages.is_empty() {
        l.packages = f.packages.clone();
    }
    if !f.run.is_empty() {
        l.run_commands = f.run.clone();
    }
    if f.agent || f.no_agent {
        l.install_agent = Some(f.agent);
    }
    Ok(())
}

pub(super) fn apply_windows(
    w: &mut WindowsSettingsInput,
    f: &Fields,
    clear: &[ClearArg],
) -> Result<(), CliError> {
    for c in clear {
        match c {
            ClearArg::AdminPassword => w.clear_admin_password = true,
            ClearArg::ProductKey => w.clear_product_key = true,
            ClearArg::Description => {}
            other => {
                let name = other.to_possible_value().map(|v| v.get_name().to_string());
                return Err(usage(format!(
                    "--clear {}: applies to linux specs only",
                    name.unwrap_or_default()
                )));
            }
        }
    }
    if let Some(v) = &f.timezone {
        w.timezone = v.clone();
    }
    if let Some(v) = &f.computer_name {
        w.computer_name = v.clone();
    }
    if let Some(p) = &f.admin_password_file {
        w.admin_password = read_secret("--admin-password-file", p)?;
    }
    if let Some(k) = &f.product_key {
        w.product_key = match k.strip_prefix('@') {
            Some(path) => read_secret("--product-key", path)?,
            None => k.clone(),
        };
    }
    if let Some(g) = &f.workgroup {
        w.workgroup = g.clone();
        w.domain_join = None;
    }
    if let Some(d) = &f.join_domain {
        let user = match (&f.join_user, &w.domain_join) {
            (Some(u), _) => u.clone(),
            (None, Some(current)) => current.user.clone(),
            (None, None) => return Err(usage("--join-domain needs --join-user")),
        };
        w.workgroup.clear();
        w.domain_join = Some(DomainJoin {
            domain: d.clone(),
            user,
        });
    } else if let Some(u) = &f.join_user {
        match &mut w.domain_join {
            Some(d) => d.user = u.clone(),
            None => {
                return Err(usage(
                    "--join-user needs --join-domain (the spec joins no domain)",
                ))
            }
        }
    }
    if let Some(p) = &f.join_password_file {
        if w.domain_join.is_none() {
            return Err(usage(
                "--join-password-file needs --join-domain (the spec joins no domain)",
            ));
        }
        w.join_password = read_secret("--join-password-file", p)?;
    }
    Ok(())
}

/// The Windows settings as read, turned into input that keeps every secret.
pub(super) fn windows_input(w: &WindowsSettings) -> WindowsSettingsInput {
    let (workgroup, domain_join) = match &w.membership {
        Some(windows_settings::Membership::Workgroup(g)) => (g.clone(), None),
        Some(windows_settings::Membership::DomainJoin(d)) => (String::new(), Some(d.clone())),
        None => (String::new(), None),
    };
    WindowsSettingsInput {
        computer_name: w.computer_name.clone(),
        timezone: w.timezone.clone(),
        workgroup,
        domain_join,
        ..Default::default()
    }
}
