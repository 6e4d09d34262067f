//! How specs are printed: one JSON document (`-o json`) or tables. Built only from the
//! read-side messages, which have no secret fields: secrets show as set / not set.

use serde_json::{json, Value};

use crate::cli::output::{self, Format};
use crate::proto::v1::*;

pub(super) fn os_name(os: i32) -> &'static str {
    match SpecOs::try_from(os) {
        Ok(SpecOs::Linux) => "linux",
        Ok(SpecOs::Windows) => "windows",
        _ => "unknown",
    }
}

fn network_text(s: &Option<StaticNetwork>) -> String {
    match s {
        None => "dhcp".into(),
        Some(s) if s.gateway.is_empty() => format!("{}/{}", s.address, s.prefix),
        Some(s) => format!("{}/{} via {}", s.address, s.prefix, s.gateway),
    }
}

fn membership_text(w: &WindowsSettings) -> String {
    match &w.membership {
        Some(windows_settings::Membership::Workgroup(g)) => format!("workgroup {g}"),
        Some(windows_settings::Membership::DomainJoin(d)) => {
            format!("domain {} as {}", d.domain, d.user)
        }
        None => String::new(),
    }
}

pub(super) fn spec_json(s: &CustomizationSpec) -> Value {
    let mut v = json!({
        "name": s.name, "os": os_name(s.os), "description": s.description,
        "built_in": s.built_in, "revision": s.revision,
        "created_at": output::time(s.created_at_ms), "updated_at": output::time(s.updated_at_ms),
    });
    match &s.settings {
        Some(customization_spec::Settings::Linux(l)) => {
            v["linux"] = json!({
                "hostname_pattern": l.hostname_pattern, "domain": l.domain, "timezone": l.timezone,
                "users": l.users.iter().map(|u| json!({"name": u.name, "ssh_keys": u.ssh_keys})).collect::<Vec<_>>(),
                "ssh_keys": l.ssh_keys, "dns_servers": l.dns_servers, "search_domains": l.search_domains,
                "network": if l.static_network.is_some() { "static" } else { "dhcp" },
                "static_network": l.static_network.as_ref().map(|s| json!({"address": s.address, "prefix": s.prefix, "gateway": s.gateway})),
                "packages": l.packages, "run_commands": l.run_commands,
                "install_agent": l.install_agent.unwrap_or(true),
            });
        }
        Some(customization_spec::Settings::Windows(w)) => {
            let (workgroup, domain_join) = match &w.membership {
                Some(windows_settings::Membership::Workgroup(g)) => (json!(g), Value::Null),
                Some(windows_settings::Membership::DomainJoin(d)) => {
                    (Value::Null, json!({"domain": d.domain, "user": d.user}))
                }
                None => (Value::Null, Value::Null),
            };
            v["windows"] = json!({
                "computer_name": w.computer_name, "timezone": w.timezone,
                "workgroup": workgroup, "domain_join": domain_join,
                "has_admin_password": w.has_admin_password, "has_product_key": w.has_product_key,
                "has_join_password": w.has_join_password,
            });
        }
        None => {}
    }
    v
}

/// `get` as a two-column table.
pub(super) fn spec_rows(s: &CustomizationSpec) -> Vec<Vec<String>> {
    let mut rows = vec![
        ("name", s.name.clone()),
        ("os", os_name(s.os).into()),
        ("description", s.description.clone()),
        ("built-in", s.built_in.to_string()),
        ("revision", s.revision.to_string()),
        ("updated", output::time(s.updated_at_ms)),
    ];
    let set = |b: bool| if b { "set" } else { "not set" }.to_string();
    match &s.settings {
        Some(customization_spec::Settings::Linux(l)) => rows.extend([
            ("hostname pattern", l.hostname_pattern.clone()),
            ("domain", l.domain.clone()),
            ("timezone", l.timezone.clone()),
            (
                "users",
                l.users
                    .iter()
                    .map(|u| format!("{} ({} keys)", u.name, u.ssh_keys.len()))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("ssh keys", l.ssh_keys.len().to_string()),
            ("dns", l.dns_servers.join(", ")),
            ("search domains", l.search_domains.join(", ")),
            ("network", network_text(&l.static_network)),
            ("packages", l.packages.join(", ")),
            ("run", l.run_commands.join(" ; ")),
            ("agent", l.install_agent.unwrap_or(true).to_string()),
        ]),
        Some(customization_spec::Settings::Windows(w)) => rows.extend([
            ("computer name", w.computer_name.clone()),
            ("timezone", w.timezone.clone()),
            ("membership", membership_text(w)),
            ("admin password", set(w.has_admin_password)),
            ("join password", set(w.has_join_password)),
            ("product key", set(w.has_product_key)),
        ]),
        None => {}
    }
    rows.into_iter()
        .map(|(k, v)| vec![k.to_string(), v])
        .collect()
}

pub(super) fn list_row(s: &CustomizationSpec) -> Vec<String> {
    let (pattern, tz, net) = match &s.settings {
        Some(customization_spec::Settings::Linux(l)) => (
            l.hostname_pattern.clone(),
            l.timezone.clone(),
            network_text(&l.static_network),
        ),
        Some(customization_spec::Settings::Windows(w)) => (
            w.computer_name.clone(),
            w.timezone.clone(),
            membership_text(w),
        ),
        None => Default::default(),
    };
    let built_in = if s.built_in { "yes" } else { "" };
    vec![
        s.name.clone(),
        os_name(s.os).into(),
        built_in.into(),
        pattern,
        tz,
        net,
        s.revision.to_string(),
    ]
}

pub(super) fn print_spec(out: Format, verb: &str, s: &CustomizationSpec) {
    match out {
        Format::Json => output::json(&spec_json(s)),
        Format::Table => println!(
            "{verb} spec {} ({}, revision {})",
            s.name,
            os_name(s.os),
            s.revision
        ),
    }
}
