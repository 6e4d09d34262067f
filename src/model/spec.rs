//! Customization specs: how a guest is set up at first boot. A Linux spec becomes cloud-init
//! user-data (hostname, users and SSH keys, DNS, network, packages, commands, the agent); a
//! Windows spec becomes an unattend answer file (computer name, admin password, workgroup or
//! domain join, product key). Owns: the spec types, their validation (`check`), the IANA
//! time-zone list (`timezone`), the built-in defaults and hostname rendering.
//! May use: `model::names` and external crates only.
//!
//! Secrets (admin password, domain-join password, product key) are [`Secret`]s: their `Debug`
//! never shows the value, [`Spec::redacted`] blanks them for anything that leaves the state,
//! and the API has no field that carries them out. The host that takes the API call seals
//! them with the cluster key (`tls::sealing`) before they enter a command, so the Raft log,
//! `state.redb` and snapshots hold only ciphertext (see `secret`).
//!
//! Hostname patterns (`hostname_pattern`, Windows `computer_name`) may use two placeholders:
//! `{vm}`, the VM's name, and `{n}`, a number the VM layer gives each VM created from the
//! spec (1, 2, …). Anything else in braces is refused.

pub mod check;
mod secret;
pub mod timezone;

pub use secret::Secret;

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use thiserror::Error;

use super::names::NameError;
use super::UnixMillis;

/// Built-in specs that every cluster has from its first entry; they cannot be deleted.
pub const LINUX_DEFAULT: &str = "linux-default";
pub const WINDOWS_DEFAULT: &str = "windows-default";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpecError {
    #[error(transparent)]
    Name(#[from] NameError),
    /// `field` is the API field name (as in `-o json`), `problem` says which rule it broke.
    #[error("{field} {problem}")]
    Invalid { field: String, problem: String },
}

impl SpecError {
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Os {
    Linux,
    Windows,
}

impl Os {
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Linux => "linux",
            Os::Windows => "windows",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub name: String,
    pub description: String,
    pub built_in: bool,
    /// 1 at creation, +1 on every update: lets a client update only what it read.
    pub revision: u64,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    pub config: SpecConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpecConfig {
    Linux(LinuxSpec),
    Windows(WindowsSpec),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxSpec {
    pub hostname_pattern: String,
    /// DNS domain of the guest (FQDN = hostname.domain); empty for none.
    pub domain: String,
    /// IANA name, e.g. `Europe/Berlin`.
    pub timezone: String,
    pub users: Vec<LinuxUser>,
    /// Keys for the image's default user (cloud-init `ssh_authorized_keys`).
    pub ssh_keys: Vec<String>,
    pub dns_servers: Vec<IpAddr>,
    pub search_domains: Vec<String>,
    pub network: Network,
    pub packages: Vec<String>,
    /// Shell commands run once at first boot, in order (cloud-init `runcmd`).
    pub run_commands: Vec<String>,
    pub install_agent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxUser {
    pub name: String,
    pub ssh_keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    Dhcp,
    Static(StaticNetwork),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticNetwork {
    pub address: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowsSpec {
    /// NetBIOS computer name or a pattern (see the header); at most 15 characters.
    pub computer_name: String,
    /// IANA name; the answer-file renderer maps it to a Windows time-zone id.
    pub timezone: String,
    pub membership: Membership,
    pub admin_password: Option<Secret>,
    /// `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`.
    pub product_key: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Membership {
    Workgroup(String),
    Domain(DomainJoin),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainJoin {
    pub domain: String,
    /// `user`, `DOMAIN\user` or `user@domain`.
    pub user: String,
    pub password: Option<Secret>,
}

/// A secret an update may clear explicitly (leaving it out keeps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretField {
    AdminPassword,
    ProductKey,
}

impl SpecConfig {
    pub fn os(&self) -> Os {
        match self {
            SpecConfig::Linux(_) => Os::Linux,
            SpecConfig::Windows(_) => Os::Windows,
        }
    }

    pub fn timezone(&self) -> &str {
        match self {
            SpecConfig::Linux(l) => &l.timezone,
            SpecConfig::Windows(w) => &w.timezone,
        }
    }

    /// Canonical spellings, so equal input is stored equally: product keys upper case, SSH
    /// keys with single spaces.
    pub fn normalize(&mut self) {
        match self {
            SpecConfig::Linux(l) => {
                let tidy = |k: &mut String| *k = k.split_whitespace().collect::<Vec<_>>().join(" ");
                l.ssh_keys.iter_mut().for_each(tidy);
                for u in &mut l.users {
                    u.ssh_keys.iter_mut().for_each(tidy);
                }
            }
            SpecConfig::Windows(w) => {
                if let Some(k) = &mut w.product_key {
                    if let Some(plain) = k.plain() {
                        *k = Secret::new(plain.trim().to_ascii_uppercase());
                    }
                }
            }
        }
    }

    /// Every rule that does not depend on data that changes between releases. Whether the
    /// time zone is a known IANA name is checked by the API (`timezone::check_known`), not
    /// here: the zone list comes with the binary, and hosts running different releases must
    /// still apply the same log to the same state.
    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            SpecConfig::Linux(l) => check::linux(l),
            SpecConfig::Windows(w) => check::windows(w),
        }
    }

    /// For an update: secrets the new config leaves out are taken from `old`, unless listed in
    /// `clear`. A domain-join password is kept only while joining the same domain as the same
    /// user; any other change needs the new password.
    pub fn keep_secrets(&mut self, old: &SpecConfig, clear: &[SecretField]) {
        let (SpecConfig::Windows(new), SpecConfig::Windows(old)) = (self, old) else {
            return;
        };
        if new.admin_password.is_none() && !clear.contains(&SecretField::AdminPassword) {
            new.admin_password = old.admin_password.clone();
        }
        if new.product_key.is_none() && !clear.contains(&SecretField::ProductKey) {
            new.product_key = old.product_key.clone();
        }
        if let (Membership::Domain(n), Membership::Domain(o)) =
            (&mut new.membership, &old.membership)
        {
            let same = n.domain.eq_ignore_ascii_case(&o.domain) && n.user == o.user;
            if n.password.is_none() && same {
                n.password = o.password.clone();
            }
        }
    }
}

impl SpecConfig {
    /// Every secret of a Windows spec, for sealing or opening in place.
    fn secrets_mut(&mut self) -> Vec<&mut Secret> {
        let SpecConfig::Windows(w) = self else {
            return Vec::new();
        };
        let mut v: Vec<&mut Secret> = Vec::new();
        if let Some(s) = &mut w.admin_password {
            v.push(s);
        }
        if let Some(s) = &mut w.product_key {
            v.push(s);
        }
        if let Membership::Domain(d) = &mut w.membership {
            if let Some(s) = &mut d.password {
                v.push(s);
            }
        }
        v
    }

    /// Seals every plain secret with `seal` (the cluster key's).
    pub fn seal_secrets<E>(
        &mut self,
        mut seal: impl FnMut(&str) -> Result<Vec<u8>, E>,
    ) -> Result<(), E> {
        for s in self.secrets_mut() {
            *s = s.seal(&mut seal)?;
        }
        Ok(())
    }

    /// Opens every sealed secret with `open`.
    pub fn open_secrets<E>(
        &mut self,
        mut open: impl FnMut(&[u8]) -> Result<String, E>,
    ) -> Result<(), E> {
        for s in self.secrets_mut() {
            *s = s.open(&mut open)?;
        }
        Ok(())
    }

    /// Every secret of a Windows spec.
    fn secrets(&self) -> Vec<&Secret> {
        let SpecConfig::Windows(w) = self else {
            return Vec::new();
        };
        let join = match &w.membership {
            Membership::Domain(d) => d.password.as_ref(),
            Membership::Workgroup(_) => None,
        };
        [w.admin_password.as_ref(), w.product_key.as_ref(), join]
            .into_iter()
            .flatten()
            .collect()
    }

    pub fn has_sealed_secrets(&self) -> bool {
        self.secrets().iter().any(|s| s.is_sealed())
    }

    pub fn has_plain_secrets(&self) -> bool {
        self.secrets().iter().any(|s| !s.is_sealed())
    }
}

impl Spec {
    /// The same spec with every secret replaced by [`Secret::redacted`]: whether one is set
    /// still shows, its value does not.
    pub fn redacted(&self) -> Spec {
        let mut s = self.clone();
        if let SpecConfig::Windows(w) = &mut s.config {
            let blank = |v: &mut Option<Secret>| {
                if v.is_some() {
                    *v = Some(Secret::redacted());
                }
            };
            blank(&mut w.admin_password);
            blank(&mut w.product_key);
            if let Membership::Domain(d) = &mut w.membership {
                blank(&mut d.password);
            }
        }
        s
    }
}

/// The built-in specs, as `InitCluster` creates them.
pub fn defaults(at: UnixMillis) -> Vec<Spec> {
    let spec = |name: &str, description: &str, config| Spec {
        name: name.into(),
        description: description.into(),
        built_in: true,
        revision: 1,
        created_at: at,
        updated_at: at,
        config,
    };
    vec![
        spec(
            LINUX_DEFAULT,
            "Hostname from the VM name, UTC, DHCP, the Quantix agent installed",
            SpecConfig::Linux(LinuxSpec {
                hostname_pattern: "{vm}".into(),
                domain: String::new(),
                timezone: "UTC".into(),
                users: Vec::new(),
                ssh_keys: Vec::new(),
                dns_servers: Vec::new(),
                search_domains: Vec::new(),
                network: Network::Dhcp,
                packages: Vec::new(),
                run_commands: Vec::new(),
                install_agent: true,
            }),
        ),
        spec(
            WINDOWS_DEFAULT,
            "Computer name from the VM name, UTC, workgroup WORKGROUP",
            SpecConfig::Windows(WindowsSpec {
                computer_name: "{vm}".into(),
                timezone: "UTC".into(),
                membership: Membership::Workgroup("WORKGROUP".into()),
                admin_password: None,
                product_key: None,
            }),
        ),
    ]
}

/// The Linux hostname for a VM: `pattern` with `{vm}` and `{n}` filled in. Fails when the
/// result is not a DNS label (e.g. longer than 63 characters).
pub fn render_hostname(pattern: &str, vm: &str, n: u64) -> Result<String, SpecError> {
    let name = check::fill(pattern, vm, n);
    super::names::validate_label("hostname", &name)?;
    Ok(name)
}

/// The Windows computer name for a VM: `pattern` filled in, then cut to 15 characters (as
/// Windows setup does) without a trailing '-'.
pub fn render_computer_name(pattern: &str, vm: &str, n: u64) -> String {
    let full = check::fill(pattern, vm, n);
    let cut: String = full.chars().take(check::NETBIOS_MAX).collect();
    cut.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(domain: Option<(&str, &str, Option<&str>)>) -> SpecConfig {
        SpecConfig::Windows(WindowsSpec {
            computer_name: "win".into(),
            timezone: "UTC".into(),
            membership: match domain {
                Some((d, u, p)) => Membership::Domain(DomainJoin {
                    domain: d.into(),
                    user: u.into(),
                    password: p.map(Secret::new),
                }),
                None => Membership::Workgroup("WG".into()),
            },
            admin_password: Some(Secret::new("old-admin-pw")),
            product_key: Some(Secret::new("AAAAA-BBBBB-CCCCC-DDDDD-EEEEE")),
        })
    }

    fn win(c: &SpecConfig) -> &WindowsSpec {
        match c {
            SpecConfig::Windows(w) => w,
            SpecConfig::Linux(_) => panic!("not windows"),
        }
    }

    #[test]
    fn defaults_are_valid_and_known() {
        let d = defaults(7);
        assert_eq!(d.len(), 2);
        for s in d {
            s.config.validate().unwrap();
            timezone::check_known("timezone", s.config.timezone()).unwrap();
            assert!(s.built_in);
        }
    }

    #[test]
    fn secrets_never_show_in_debug_or_redacted() {
        let spec = Spec {
            name: "w".into(),
            description: String::new(),
            built_in: false,
            revision: 1,
            created_at: 0,
            updated_at: 0,
            config: windows(Some(("corp.example", "admin", Some("join-pw-123")))),
        };
        let debug = format!("{spec:?}");
        for secret in ["old-admin-pw", "AAAAA-BBBBB", "join-pw-123"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        let r = spec.redacted();
        let w = win(&r.config);
        assert_eq!(w.admin_password, Some(Secret::redacted()));
        assert_eq!(w.product_key, Some(Secret::redacted()));
        let Membership::Domain(d) = &w.membership else {
            panic!("membership changed");
        };
        assert_eq!(d.password, Some(Secret::redacted()));
    }

    #[test]
    fn keep_secrets_table() {
        let old = windows(Some(("corp.example", "admin", Some("join-pw"))));
        // (new membership, clear, admin kept, key kept, join password kept)
        type Case<'a> = (
            Option<(&'a str, &'a str, Option<&'a str>)>,
            Vec<SecretField>,
            bool,
            bool,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                Some(("corp.example", "admin", None)),
                vec![],
                true,
                true,
                Some("join-pw"),
            ),
            (
                Some(("CORP.example", "admin", None)),
                vec![],
                true,
                true,
                Some("join-pw"),
            ),
            (
                Some(("corp.example", "other", None)),
                vec![],
                true,
                true,
                None,
            ),
            (
                Some(("other.example", "admin", None)),
                vec![],
                true,
                true,
                None,
            ),
            (
                Some(("corp.example", "admin", Some("new"))),
                vec![],
                true,
                true,
                Some("new"),
            ),
            (None, vec![SecretField::AdminPassword], false, true, None),
            (None, vec![SecretField::ProductKey], true, false, None),
        ];
        for (i, (membership, clear, admin, key, join)) in cases.into_iter().enumerate() {
            let mut new = windows(membership);
            if let SpecConfig::Windows(w) = &mut new {
                w.admin_password = None;
                w.product_key = None;
            }
            new.keep_secrets(&old, &clear);
            let w = win(&new);
            assert_eq!(w.admin_password.is_some(), admin, "case {i}");
            assert_eq!(w.product_key.is_some(), key, "case {i}");
            let got = match &w.membership {
                Membership::Domain(d) => d.password.as_ref().map(|p| p.expose().to_string()),
                Membership::Workgroup(_) => None,
            };
            assert_eq!(got.as_deref(), join, "case {i}");
        }
    }

    #[test]
    fn every_secret_is_sealed_and_opened_together() {
        let mut c = windows(Some(("corp.example", "joiner", Some("join-pw-123"))));
        assert!(c.has_plain_secrets() && !c.has_sealed_secrets());
        let plain = c.clone();
        c.seal_secrets(|p| Ok::<_, ()>(p.bytes().rev().collect()))
            .unwrap();
        assert!(c.has_sealed_secrets() && !c.has_plain_secrets());
        assert_eq!(win(&c).admin_password.as_ref().unwrap().plain(), None);
        c.open_secrets(|b| Ok::<_, ()>(b.iter().rev().map(|&x| x as char).collect()))
            .unwrap();
        assert_eq!(c, plain);
    }

    #[test]
    fn new_secret_replaces_old() {
        let old = windows(None);
        let mut new = windows(None);
        if let SpecConfig::Windows(w) = &mut new {
            w.admin_password = Some(Secret::new("brand-new-pw"));
        }
        new.keep_secrets(&old, &[]);
        assert_eq!(
            win(&new).admin_password.as_ref().map(Secret::expose),
            Some("brand-new-pw")
        );
    }

    #[test]
    fn normalize_product_key_and_ssh_keys() {
        let mut c = windows(None);
        if let SpecConfig::Windows(w) = &mut c {
            w.product_key = Some(Secret::new(" abcde-12345-fghij-67890-klmno "));
        }
        c.normalize();
        assert_eq!(
            win(&c).product_key.as_ref().map(Secret::expose),
            Some("ABCDE-12345-FGHIJ-67890-KLMNO")
        );
    }

    #[test]
    fn rendering() {
        assert_eq!(render_hostname("web-{n}", "x", 3).unwrap(), "web-3");
        assert_eq!(render_hostname("{vm}", "db1", 1).unwrap(), "db1");
        assert_eq!(render_hostname("{vm}-{n}", "db", 12).unwrap(), "db-12");
        let long = "a".repeat(60);
        let e = render_hostname("{vm}-{n}", &long, 100)
            .unwrap_err()
            .to_string();
        assert!(e.contains("hostname") && e.contains("63"), "{e}");
        assert_eq!(
            render_computer_name("{vm}", "sql-server-production", 1),
            "sql-server-prod"
        );
        assert_eq!(render_computer_name("WEB-{n}", "x", 7), "WEB-7");
        assert_eq!(
            render_computer_name("{vm}", "abcdefghijklmn-x", 1),
            "abcdefghijklmn"
        );
    }
}
