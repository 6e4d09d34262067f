//! Validation of every spec field. Each error names the field (as the API and `-o json` spell
//! it) and the rule. Pure and version-stable: nothing here reads data that changes between
//! releases (the time-zone list is checked in `timezone`).

use base64::Engine;
use std::net::IpAddr;

use super::{LinuxSpec, Membership, Network, Secret, SpecError, StaticNetwork, WindowsSpec};
use crate::model::names::{self, NameError};

/// NetBIOS names (Windows computer names, workgroups) are at most 15 characters.
pub const NETBIOS_MAX: usize = 15;
pub const MAX_DESCRIPTION: usize = 1024;
pub const MAX_USERS: usize = 32;
pub const MAX_SSH_KEYS: usize = 32;
pub const MAX_SSH_KEY_LEN: usize = 16 * 1024;
/// resolv.conf uses at most 3 name servers and 6 search domains; more would be ignored.
pub const MAX_DNS_SERVERS: usize = 3;
pub const MAX_SEARCH_DOMAINS: usize = 6;
pub const MAX_PACKAGES: usize = 256;
pub const MAX_RUN_COMMANDS: usize = 128;
pub const MAX_RUN_COMMAND_LEN: usize = 4096;

/// SSH public key types accepted (what current OpenSSH accepts; `ssh-dss` is refused).
pub const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

const PLACEHOLDERS: &str = "{vm} and {n}";

fn bad(field: impl Into<String>, problem: impl Into<String>) -> SpecError {
    SpecError::invalid(field, problem)
}

pub fn spec_name(name: &str) -> Result<(), SpecError> {
    Ok(names::validate_label("spec name", name)?)
}

pub fn description(d: &str) -> Result<(), SpecError> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(bad(
            "description",
            format!("is longer than {MAX_DESCRIPTION} characters"),
        ));
    }
    if d.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(bad("description", "must not contain control characters"));
    }
    Ok(())
}

pub fn linux(l: &LinuxSpec) -> Result<(), SpecError> {
    hostname_pattern(&l.hostname_pattern)?;
    if !l.domain.is_empty() {
        domain("domain", &l.domain)?;
    }
    timezone_syntax("timezone", &l.timezone)?;
    if l.users.len() > MAX_USERS {
        return Err(bad("users", format!("has more than {MAX_USERS} entries")));
    }
    for (i, u) in l.users.iter().enumerate() {
        linux_user_name(&format!("users[{i}].name"), &u.name)?;
        if l.users[..i].iter().any(|o| o.name == u.name) {
            return Err(bad(
                format!("users[{i}].name"),
                format!("'{}' is listed twice", u.name),
            ));
        }
        ssh_keys(&format!("users[{}].ssh_keys", u.name), &u.ssh_keys)?;
    }
    ssh_keys("ssh_keys", &l.ssh_keys)?;
    if l.dns_servers.len() > MAX_DNS_SERVERS {
        return Err(bad(
            "dns_servers",
            format!("has more than {MAX_DNS_SERVERS} entries (resolv.conf uses only 3)"),
        ));
    }
    for (i, ip) in l.dns_servers.iter().enumerate() {
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(bad(
                format!("dns_servers[{i}]"),
                format!("'{ip}' is not a usable server address"),
            ));
        }
    }
    if l.search_domains.len() > MAX_SEARCH_DOMAINS {
        return Err(bad(
            "search_domains",
            format!("has more than {MAX_SEARCH_DOMAINS} entries (resolv.conf uses only 6)"),
        ));
    }
    for (i, d) in l.search_domains.iter().enumerate() {
        domain(&format!("search_domains[{i}]"), d)?;
    }
    if let Network::Static(s) = &l.network {
        static_network(s)?;
    }
    if l.packages.len() > MAX_PACKAGES {
        return Err(bad(
            "packages",
            format!("has more than {MAX_PACKAGES} entries"),
        ));
    }
    for (i, p) in l.packages.iter().enumerate() {
        package(&format!("packages[{i}]"), p)?;
    }
    if l.run_commands.len() > MAX_RUN_COMMANDS {
        return Err(bad(
            "run_commands",
            format!("has more than {MAX_RUN_COMMANDS} entries"),
        ));
    }
    for (i, c) in l.run_commands.iter().enumerate() {
        run_command(&format!("run_commands[{i}]"), c)?;
    }
    Ok(())
}

/// The rules for the secrets a config carries in plain (an update's new ones), so the host
/// that takes the call can check them before it seals them.
pub fn plain_secrets(config: &super::SpecConfig) -> Result<(), SpecError> {
    let super::SpecConfig::Windows(w) = config else {
        return Ok(());
    };
    if let Some(p) = w.admin_password.as_ref().and_then(Secret::plain) {
        password("admin_password", p)?;
    }
    if let Some(k) = w.product_key.as_ref().and_then(Secret::plain) {
        product_key(k)?;
    }
    if let Membership::Domain(d) = &w.membership {
        if let Some(p) = d.password.as_ref().and_then(Secret::plain) {
            password("domain_join.password", p)?;
        }
    }
    Ok(())
}

pub fn windows(w: &WindowsSpec) -> Result<(), SpecError> {
    computer_name(&w.computer_name)?;
    timezone_syntax("timezone", &w.timezone)?;
    match &w.membership {
        Membership::Workgroup(g) => workgroup(g)?,
        Membership::Domain(d) => {
            domain("domain_join.domain", &d.domain)?;
            join_user(&d.user)?;
            match &d.password {
                None => {
                    return Err(bad(
                        "domain_join.password",
                        "is required to join a domain (give the join user's password)",
                    ))
                }
                // A sealed secret was checked by the host that sealed it.
                Some(p) => {
                    if let Some(v) = p.plain() {
                        password("domain_join.password", v)?
                    }
                }
            }
        }
    }
    if let Some(p) = w.admin_password.as_ref().and_then(Secret::plain) {
        password("admin_password", p)?;
    }
    if let Some(k) = w.product_key.as_ref().and_then(Secret::plain) {
        product_key(k)?;
    }
    Ok(())
}

/// A literal or placeholder piece of a hostname pattern.
enum Piece<'a> {
    Text(&'a str),
    Vm,
    N,
}

fn pieces<'a>(field: &str, pattern: &'a str) -> Result<Vec<Piece<'a>>, SpecError> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                out.push(Piece::Text(rest));
                break;
            }
            Some(i) => {
                if i > 0 {
                    out.push(Piece::Text(&rest[..i]));
                }
                if rest[i..].starts_with('}') {
                    return Err(bad(
                        field,
                        format!(
                            "'{pattern}' has a '}}' without a '{{' (placeholders: {PLACEHOLDERS})"
                        ),
                    ));
                }
                let Some(len) = rest[i..].find('}') else {
                    return Err(bad(
                        field,
                        format!("'{pattern}' has an unclosed '{{' (placeholders: {PLACEHOLDERS})"),
                    ));
                };
                out.push(match &rest[i + 1..i + len] {
                    "vm" => Piece::Vm,
                    "n" => Piece::N,
                    other => {
                        return Err(bad(
                            field,
                            format!(
                                "'{pattern}' uses unknown placeholder {{{other}}} (supported: {PLACEHOLDERS})"
                            ),
                        ))
                    }
                });
                rest = &rest[i + len + 1..];
            }
        }
    }
    Ok(out)
}

/// Fills `{vm}` and `{n}` into a pattern that passed validation.
pub fn fill(pattern: &str, vm: &str, n: u64) -> String {
    pattern.replace("{vm}", vm).replace("{n}", &n.to_string())
}

/// Shared rules of the two name patterns: allowed literal characters, no '-' at either end,
/// literal text within `max`, and a plain name (no placeholder) must be a valid name itself.
fn name_pattern(
    field: &'static str,
    pattern: &str,
    max: usize,
    ok: fn(char) -> bool,
    allowed: &'static str,
) -> Result<bool, SpecError> {
    if pattern.is_empty() {
        return Err(NameError::Empty { field }.into());
    }
    let parts = pieces(field, pattern)?;
    let mut literal = 0;
    for p in &parts {
        if let Piece::Text(t) = p {
            if !t.chars().all(ok) {
                return Err(bad(
                    field,
                    format!("'{pattern}' may contain only {allowed} and the placeholders {PLACEHOLDERS}"),
                ));
            }
            literal += t.chars().count();
        }
    }
    if literal > max {
        return Err(bad(
            field,
            format!("'{pattern}' is longer than {max} characters"),
        ));
    }
    let edge =
        |p: Option<&Piece>, dash: fn(&str) -> bool| matches!(p, Some(Piece::Text(t)) if dash(t));
    if edge(parts.first(), |t| t.starts_with('-')) || edge(parts.last(), |t| t.ends_with('-')) {
        return Err(bad(
            field,
            format!("'{pattern}' must not start or end with '-'"),
        ));
    }
    let plain = parts.iter().all(|p| matches!(p, Piece::Text(_)));
    Ok(plain)
}

/// A Linux hostname pattern: one DNS label once filled in (the domain is a separate field).
pub fn hostname_pattern(p: &str) -> Result<(), SpecError> {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if name_pattern(
        "hostname_pattern",
        p,
        names::MAX_LABEL,
        ok,
        "lower-case letters, digits, '-'",
    )? {
        names::validate_label("hostname_pattern", p)?;
    }
    Ok(())
}

/// A Windows computer name (NetBIOS rules) or a pattern for one.
pub fn computer_name(p: &str) -> Result<(), SpecError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '-';
    let plain = name_pattern("computer_name", p, NETBIOS_MAX, ok, "letters, digits, '-'")?;
    if plain && p.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad(
            "computer_name",
            format!("'{p}' must not be only digits"),
        ));
    }
    Ok(())
}

pub fn workgroup(g: &str) -> Result<(), SpecError> {
    if g.is_empty() {
        return Err(NameError::Empty { field: "workgroup" }.into());
    }
    if g.chars().count() > NETBIOS_MAX {
        return Err(bad(
            "workgroup",
            format!("'{g}' is longer than {NETBIOS_MAX} characters"),
        ));
    }
    if !g
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(bad(
            "workgroup",
            format!("'{g}' may contain only letters, digits, '-' and '_'"),
        ));
    }
    Ok(())
}

/// A DNS domain name such as `corp.example.com`: labels of letters, digits and '-'.
pub fn domain(field: &str, d: &str) -> Result<(), SpecError> {
    if d.is_empty() {
        return Err(bad(field, "must not be empty"));
    }
    if d.len() > 253 {
        return Err(bad(field, format!("'{d}' is longer than 253 characters")));
    }
    for label in d.split('.') {
        let ok = !label.is_empty()
            && label.len() <= names::MAX_LABEL
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(bad(
                field,
                format!("'{d}' is not a domain name: dot-separated labels of 1-63 letters, digits and '-', not starting or ending with '-'"),
            ));
        }
    }
    if d.rsplit('.')
        .next()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(bad(
            field,
            format!("'{d}' is not a domain name (it ends in a number)"),
        ));
    }
    Ok(())
}

/// Time zones are IANA names such as `Europe/Berlin` or `UTC`; this checks only their shape.
pub fn timezone_syntax(field: &str, tz: &str) -> Result<(), SpecError> {
    let shape_ok = !tz.is_empty()
        && tz.len() <= 64
        && tz.split('/').all(|s| !s.is_empty())
        && tz
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if !shape_ok {
        return Err(bad(
            field,
            format!("'{tz}' is not an IANA time zone name such as Europe/Berlin or UTC (see `quantix spec timezones`)"),
        ));
    }
    Ok(())
}

/// POSIX-portable user names, as `useradd` accepts them by default.
pub fn linux_user_name(field: &str, n: &str) -> Result<(), SpecError> {
    let mut chars = n.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !first_ok || !rest_ok || n.len() > 32 {
        return Err(bad(
            field,
            format!("'{n}' is not a Linux user name: 1-32 of lower-case letters, digits, '_' and '-', starting with a letter or '_'"),
        ));
    }
    Ok(())
}

fn ssh_keys(field: &str, keys: &[String]) -> Result<(), SpecError> {
    if keys.len() > MAX_SSH_KEYS {
        return Err(bad(field, format!("has more than {MAX_SSH_KEYS} keys")));
    }
    for (i, k) in keys.iter().enumerate() {
        ssh_key(&format!("{field}[{i}]"), k)?;
    }
    Ok(())
}

/// An OpenSSH public key line: `TYPE BASE64 [comment]`, whose decoded data names the same type.
pub fn ssh_key(field: &str, key: &str) -> Result<(), SpecError> {
    if key.len() > MAX_SSH_KEY_LEN {
        return Err(bad(
            field,
            format!("is longer than {MAX_SSH_KEY_LEN} bytes"),
        ));
    }
    if key.chars().any(|c| c.is_control()) {
        return Err(bad(field, "must be one line (one key per entry)"));
    }
    let mut parts = key.split_whitespace();
    let kind = parts.next().unwrap_or("");
    if !SSH_KEY_TYPES.contains(&kind) {
        let shown: String = kind.chars().take(40).collect();
        return Err(bad(
            field,
            format!(
                "must start with an SSH key type ({}), not '{shown}'",
                SSH_KEY_TYPES.join(", ")
            ),
        ));
    }
    let data = parts
        .next()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .ok_or_else(|| {
            bad(
                field,
                format!("has no valid base64 key data after '{kind}'"),
            )
        })?;
    let named = data
        .get(..4)
        .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
        .and_then(|len| data.get(4..4 + len));
    if named != Some(kind.as_bytes()) {
        return Err(bad(
            field,
            format!("key data is not a '{kind}' key (type and data do not match)"),
        ));
    }
    Ok(())
}

fn static_network(s: &StaticNetwork) -> Result<(), SpecError> {
    let max = if s.address.is_ipv4() { 32 } else { 128 };
    if s.prefix == 0 || s.prefix > max {
        return Err(bad(
            "static_network.prefix",
            format!("/{} is out of range for {} (1-{max})", s.prefix, s.address),
        ));
    }
    if s.address.is_unspecified() || s.address.is_multicast() || s.address.is_loopback() {
        return Err(bad(
            "static_network.address",
            format!("'{}' cannot be a host address", s.address),
        ));
    }
    if let Some(gw) = s.gateway {
        if gw.is_ipv4() != s.address.is_ipv4() {
            return Err(bad(
                "static_network.gateway",
                format!("'{gw}' is not the same IP version as address {}", s.address),
            ));
        }
        if gw == s.address {
            return Err(bad(
                "static_network.gateway",
                format!("'{gw}' is the address itself"),
            ));
        }
        if !same_subnet(s.address, gw, s.prefix) {
            return Err(bad(
                "static_network.gateway",
                format!("'{gw}' is outside {}/{}", s.address, s.prefix),
            ));
        }
    }
    Ok(())
}

fn same_subnet(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    let bits = |ip: IpAddr| match ip {
        IpAddr::V4(v) => (u128::from(u32::from(v)), 32u32),
        IpAddr::V6(v) => (u128::from(v), 128u32),
    };
    let ((a, width), (b, _)) = (bits(a), bits(b));
    let host_bits = width - u32::from(prefix);
    a.checked_shr(host_bits).unwrap_or(0) == b.checked_shr(host_bits).unwrap_or(0)
}

/// A package name as apt/dnf take it, optionally with a version (`nginx=1.24*` is not
/// accepted; `nginx=1.24.0-1` is).
pub fn package(field: &str, p: &str) -> Result<(), SpecError> {
    let ok = p.len() <= 128
        && p.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && p.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '_' | ':' | '=' | '~' | '-')
        });
    if !ok {
        return Err(bad(
            field,
            format!("'{p}' is not a package name: 1-128 of letters, digits and . + _ : = ~ -, starting with a letter or digit"),
        ));
    }
    Ok(())
}

pub fn run_command(field: &str, c: &str) -> Result<(), SpecError> {
    if c.trim().is_empty() {
        return Err(bad(field, "must not be empty"));
    }
    if c.len() > MAX_RUN_COMMAND_LEN {
        return Err(bad(
            field,
            format!("is longer than {MAX_RUN_COMMAND_LEN} bytes"),
        ));
    }
    if c.chars().any(|ch| ch.is_control() && ch != '\t') {
        return Err(bad(
            field,
            "must be one line without control characters (use several entries)",
        ));
    }
    Ok(())
}

fn join_user(u: &str) -> Result<(), SpecError> {
    let forbidden = |c: char| c.is_control() || "\"/[]:|<>+=;,?*".contains(c);
    if u.is_empty() || u.chars().count() > 104 || u.chars().any(forbidden) {
        return Err(bad(
            "domain_join.user",
            format!("'{u}' is not an account name: 1-104 characters as user, DOMAIN\\user or user@domain, without \" / [ ] : | < > + = ; , ? *"),
        ));
    }
    Ok(())
}

/// Windows accepts passwords of up to 127 characters; fewer than 8 fails common policies.
fn password(field: &str, p: &str) -> Result<(), SpecError> {
    let n = p.chars().count();
    if !(8..=127).contains(&n) {
        return Err(bad(field, format!("must be 8 to 127 characters (got {n})")));
    }
    if p.chars().any(|c| c.is_control()) {
        return Err(bad(field, "must not contain control characters"));
    }
    Ok(())
}

/// Five groups of five letters or digits: `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX` (upper case after
/// normalization). The value itself never appears in the message.
pub fn product_key(k: &str) -> Result<(), SpecError> {
    let groups: Vec<&str> = k.split('-').collect();
    let ok = groups.len() == 5
        && groups.iter().all(|g| {
            g.len() == 5
                && g.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        });
    if !ok {
        return Err(bad(
            "product_key",
            "must be five groups of five letters or digits: XXXXX-XXXXX-XXXXX-XXXXX-XXXXX",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "check_tests.rs"]
pub(crate) mod tests;
