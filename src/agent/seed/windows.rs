//! cloudbase-init ConfigDrive files for Windows guests: `openstack/latest/meta_data.json` and
//! `openstack/latest/user_data`. Owns: how a `WindowsSpec` and the VM's overrides map to
//! cloudbase-init. May use: `model`, `userdata` (pure).
//!
//! | setting | where | read by |
//! | --- | --- | --- |
//! | computer name (override or spec pattern, cut to 15 characters) | `meta_data.json` `hostname` | `SetHostNamePlugin` (reboots) |
//! | admin password | `meta_data.json` `admin_pass` | `SetUserPasswordPlugin`, for the image's cloudbase-init user (`username` in `cloudbase-init.conf`, usually `Admin`) |
//! | SSH keys (override only) | `meta_data.json` `public_keys` | `SetUserSSHPublicKeysPlugin` |
//! | time zone (IANA) | user-data `set_timezone` | cloud-config plugin; maps IANA names to Windows ids itself |
//! | product key | user-data `runcmd`: `slmgr.vbs /ipk` | cmd.exe |
//! | workgroup (other than `WORKGROUP`, the Windows default) | user-data `runcmd`: `Add-Computer -WorkgroupName` | PowerShell |
//! | domain join | user-data `write_files` + `runcmd` | PowerShell |
//!
//! The domain-join password has no metadata field, so it travels in user-data inside a
//! base64 `write_files` script (no quoting through YAML, cmd.exe and PowerShell). The script is
//! written to `C:\Windows\Temp` (ordinary users cannot read other users' files there, unlike
//! `C:\ProgramData`), deletes itself whatever happens, and exits 1001 after a successful join,
//! which tells cloudbase-init to reboot (the join needs one) when it is the last `runcmd`
//! entry. Note that cloudbase-init at debug level logs multipart user-data in the guest.
//! Windows specs have no agent option: no agent is installed.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::userdata::{self, Reader};
use super::{instance_id, json, merge_keys, pattern_number, Seed, SeedError, SeedFiles, SeedKind};
use crate::model::spec::{render_computer_name, Membership, WindowsSpec};
use crate::model::vm::Vm;

pub(crate) const JOIN_SCRIPT: &str = r"C:\Windows\Temp\quantix-join-domain.ps1";
const POWERSHELL: &str = "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass";

pub(super) fn render(vm: &Vm, spec: &WindowsSpec) -> Result<Seed, SeedError> {
    let pattern = vm
        .overrides
        .hostname
        .as_deref()
        .unwrap_or(&spec.computer_name);
    let computer_name = render_computer_name(pattern, &vm.name, pattern_number(vm));

    let mut meta = json!({
        "uuid": instance_id(vm),
        "name": vm.name,
        "hostname": computer_name,
        "launch_index": 0,
    });
    if let Some(p) = &spec.admin_password {
        meta["admin_pass"] = json!(p.expose());
    }
    let keys = merge_keys(&vm.overrides.ssh_keys, []);
    if !keys.is_empty() {
        let named: Map<String, Value> = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| (format!("key-{i}"), json!(k)))
            .collect();
        meta["public_keys"] = Value::Object(named);
    }

    let mut cfg = Map::new();
    let timezone = vm.overrides.timezone.as_deref().unwrap_or(&spec.timezone);
    if !timezone.is_empty() {
        cfg.insert("set_timezone".into(), json!(timezone));
    }
    let mut runcmd = Vec::new();
    if let Some(k) = &spec.product_key {
        // Validated as five groups of letters and digits: nothing for cmd.exe to interpret.
        runcmd.push(json!(format!(
            r"cscript //NoLogo %SystemRoot%\System32\slmgr.vbs /ipk {}",
            k.expose()
        )));
    }
    match &spec.membership {
        Membership::Workgroup(g) if g.eq_ignore_ascii_case("WORKGROUP") => {}
        Membership::Workgroup(g) => runcmd.push(json!(format!(
            "{POWERSHELL} -Command \"Add-Computer -WorkgroupName {} -Force\"",
            ps_quote(g)
        ))),
        Membership::Domain(d) => {
            let user = if d.user.contains('\\') || d.user.contains('@') {
                d.user.clone()
            } else {
                format!("{}@{}", d.user, d.domain)
            };
            let password = d.password.as_ref().map_or("", |p| p.expose());
            let script = join_script(&d.domain, &user, password);
            cfg.insert(
                "write_files".into(),
                json!([{
                    "path": JOIN_SCRIPT,
                    "encoding": "b64",
                    "content": base64::engine::general_purpose::STANDARD.encode(script),
                }]),
            );
            runcmd.push(json!(format!("{POWERSHELL} -File \"{JOIN_SCRIPT}\"")));
        }
    }
    if !runcmd.is_empty() {
        cfg.insert("runcmd".into(), Value::Array(runcmd));
    }
    let user_data = userdata::combine(
        cfg,
        vm.overrides.user_data.as_deref(),
        Reader::CloudbaseInit,
        &vm.name,
    )?;
    Ok(Seed {
        kind: SeedKind::ConfigDrive,
        files: SeedFiles {
            user_data,
            meta_data: json("meta_data.json", &meta)?,
            network_config: None,
        },
    })
}

fn join_script(domain: &str, user: &str, password: &str) -> String {
    format!(
        "$ErrorActionPreference = 'Stop'\r\n\
         try {{\r\n\
         \x20   $password = ConvertTo-SecureString {} -AsPlainText -Force\r\n\
         \x20   $credential = New-Object System.Management.Automation.PSCredential({}, $password)\r\n\
         \x20   Add-Computer -DomainName {} -Credential $credential -Force\r\n\
         }} finally {{\r\n\
         \x20   Remove-Item -LiteralPath $PSCommandPath -Force -ErrorAction SilentlyContinue\r\n\
         }}\r\n\
         exit 1001\r\n",
        ps_quote(password),
        ps_quote(user),
        ps_quote(domain),
    )
}

/// A PowerShell single-quoted string: nothing inside is expanded; a quote is written twice.
/// PowerShell also takes the typographic single quotes as quotes, so they are doubled too.
pub(crate) fn ps_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}
