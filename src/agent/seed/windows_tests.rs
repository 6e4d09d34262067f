//! Tests of the Windows (cloudbase-init ConfigDrive) rendering: every spec setting lands in
//! the field cloudbase-init reads, secrets only in the seed files, overrides win.

use base64::Engine;
use serde_json::{json, Value};

use super::linux_tests::{cloud_config_of, key, spec};
use super::userdata::tests::parts;
use super::windows::{ps_quote, JOIN_SCRIPT};
use super::*;
use crate::model::spec::{DomainJoin, Membership, Secret, WindowsSpec};
use crate::model::vm::tests::sample;

const ADMIN_PW: &str = "Adm1n-pass-word";
const JOIN_PW: &str = "it's \"joined\" $env:x";
const PRODUCT_KEY: &str = "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE";

fn windows_spec(membership: Membership) -> WindowsSpec {
    WindowsSpec {
        computer_name: "{vm}-{n}".into(),
        timezone: "Europe/Paris".into(),
        membership,
        admin_password: Some(Secret::new(ADMIN_PW)),
        product_key: Some(Secret::new(PRODUCT_KEY)),
    }
}

fn domain() -> Membership {
    Membership::Domain(DomainJoin {
        domain: "corp.example".into(),
        user: "joiner".into(),
        password: Some(Secret::new(JOIN_PW)),
    })
}

fn vm() -> Vm {
    let mut vm = sample("fileserver-east");
    vm.id = 12;
    vm.spec = Some("win".into());
    vm
}

fn render_windows(vm: &Vm, w: WindowsSpec) -> Seed {
    render(vm, Some(&spec("win", SpecConfig::Windows(w))), None).expect("render")
}

fn meta(seed: &Seed) -> Value {
    serde_json::from_str(&seed.files.meta_data).expect("meta_data.json")
}

#[test]
fn windows_spec_renders_a_config_drive() {
    let seed = render_windows(&vm(), windows_spec(domain()));
    assert_eq!(seed.kind, SeedKind::ConfigDrive);
    assert_eq!(seed.volume_label(), "config-2");
    let names: Vec<&str> = seed.entries().iter().map(|(p, _)| *p).collect();
    assert_eq!(
        names,
        [
            "openstack/latest/user_data",
            "openstack/latest/meta_data.json"
        ]
    );
    assert_eq!(seed.files.network_config, None);

    let m = meta(&seed);
    assert_eq!(m["uuid"], "iid-fileserver-east-12");
    assert_eq!(m["name"], "fileserver-east");
    // "fileserver-east-12" cut to 15 characters, as Windows setup would.
    assert_eq!(m["hostname"], "fileserver-east");
    assert_eq!(m["admin_pass"], ADMIN_PW);
    assert!(m.get("public_keys").is_none());

    let cc = cloud_config_of(&seed.files.user_data);
    assert_eq!(cc["set_timezone"], "Europe/Paris");
    let runcmd = cc["runcmd"].as_array().expect("runcmd");
    assert_eq!(runcmd.len(), 2);
    assert_eq!(
        runcmd[0],
        format!(r"cscript //NoLogo %SystemRoot%\System32\slmgr.vbs /ipk {PRODUCT_KEY}")
    );
    assert!(
        runcmd[1]
            .as_str()
            .is_some_and(|c| c.ends_with(&format!("-File \"{JOIN_SCRIPT}\""))),
        "{runcmd:?}"
    );
    let file = &cc["write_files"][0];
    assert_eq!(file["path"], JOIN_SCRIPT);
    assert_eq!(file["encoding"], "b64");
    let script = base64::engine::general_purpose::STANDARD
        .decode(file["content"].as_str().expect("content"))
        .expect("base64");
    let script = String::from_utf8(script).expect("utf-8");
    assert!(
        script.contains(r#"ConvertTo-SecureString 'it''s "joined" $env:x' -AsPlainText"#),
        "{script}"
    );
    assert!(
        script.contains("PSCredential('joiner@corp.example', $password)"),
        "{script}"
    );
    assert!(
        script.contains("Add-Computer -DomainName 'corp.example'"),
        "{script}"
    );
    assert!(
        script.contains("Remove-Item -LiteralPath $PSCommandPath"),
        "{script}"
    );
    assert!(script.trim_end().ends_with("exit 1001"), "{script}");

    // Secrets are in the files, never in Debug output.
    let debug = format!("{seed:?}");
    for secret in [ADMIN_PW, PRODUCT_KEY, "joined"] {
        assert!(!debug.contains(secret), "{debug}");
    }
}

#[test]
fn membership_and_secrets_table() {
    // (case, membership, admin password set, expected runcmd count, text in user_data)
    let cases: Vec<(&str, Membership, bool, usize, Option<&str>)> = vec![
        (
            "default workgroup: nothing to do",
            Membership::Workgroup("WORKGROUP".into()),
            true,
            1,
            None,
        ),
        (
            "default workgroup in another case",
            Membership::Workgroup("workgroup".into()),
            true,
            1,
            None,
        ),
        (
            "other workgroup",
            Membership::Workgroup("LAB".into()),
            false,
            2,
            Some("Add-Computer -WorkgroupName 'LAB' -Force"),
        ),
        (
            "DOMAIN\\user kept as given",
            Membership::Domain(DomainJoin {
                domain: "corp.example".into(),
                user: "CORP\\joiner".into(),
                password: Some(Secret::new("pw-12345678")),
            }),
            true,
            2,
            None,
        ),
    ];
    for (case, membership, admin, n, text) in cases {
        let mut w = windows_spec(membership);
        if !admin {
            w.admin_password = None;
        }
        let seed = render_windows(&vm(), w);
        assert_eq!(meta(&seed).get("admin_pass").is_some(), admin, "{case}");
        let cc = cloud_config_of(&seed.files.user_data);
        assert_eq!(cc["runcmd"].as_array().map(Vec::len), Some(n), "{case}");
        if let Some(t) = text {
            assert!(
                seed.files.user_data.contains(t),
                "{case}: {}",
                seed.files.user_data
            );
        }
        if let Some(content) = cc["write_files"][0]["content"].as_str() {
            let script = base64::engine::general_purpose::STANDARD
                .decode(content)
                .expect("b64");
            let script = String::from_utf8(script).expect("utf-8");
            assert!(
                script.contains("PSCredential('CORP\\joiner'"),
                "{case}: {script}"
            );
        }
    }

    // No product key, default workgroup: only the time zone is left.
    let mut w = windows_spec(Membership::Workgroup("WORKGROUP".into()));
    w.product_key = None;
    let cc = cloud_config_of(&render_windows(&vm(), w).files.user_data);
    assert_eq!(cc, json!({"set_timezone": "Europe/Paris"}));
}

#[test]
fn windows_overrides_win() {
    let mut vm = vm();
    vm.overrides.hostname = Some("sql01".into());
    vm.overrides.timezone = Some("Asia/Tokyo".into());
    vm.overrides.ssh_keys = vec![key(5, "a"), key(6, "b"), key(5, "a")];
    let seed = render_windows(&vm, windows_spec(domain()));
    let m = meta(&seed);
    assert_eq!(m["hostname"], "sql01");
    assert_eq!(
        m["public_keys"],
        json!({"key-0": key(5, "a"), "key-1": key(6, "b")})
    );
    assert_eq!(
        cloud_config_of(&seed.files.user_data)["set_timezone"],
        "Asia/Tokyo"
    );
}

#[test]
fn windows_user_data_override() {
    let with = |ud: &str| {
        let mut vm = vm();
        vm.overrides.user_data = Some(ud.into());
        render_windows(&vm, windows_spec(Membership::Workgroup("WORKGROUP".into())))
    };
    let plain = with("").files.user_data;

    // JSON cloud-config: merged into one document.
    let cc = cloud_config_of(
        &with("#cloud-config\n{\"runcmd\": [\"echo extra\"], \"set_timezone\": \"UTC\"}")
            .files
            .user_data,
    );
    assert_eq!(cc["set_timezone"], "UTC");
    assert_eq!(
        cc["runcmd"].as_array().and_then(|r| r.last()),
        Some(&json!("echo extra"))
    );
    assert_eq!(cc["runcmd"].as_array().map(Vec::len), Some(2));

    // PowerShell: ours first, then the script, typed so cloudbase-init runs it.
    let ps = "#ps1_sysnative\nWrite-Host hi\n";
    let p = parts(&with(ps).files.user_data);
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].1, plain);
    assert!(
        p[1].0.contains("Content-Type: text/x-shellscript"),
        "{}",
        p[1].0
    );
    assert_eq!(p[1].1, ps);

    // YAML cloud-config: cloudbase-init runs parts in order, so ours comes first.
    let yaml = "#cloud-config\nruncmd:\n  - echo yaml\n";
    let p = parts(&with(yaml).files.user_data);
    assert_eq!((p[0].1.as_str(), p[1].1.as_str()), (plain.as_str(), yaml));
    assert!(!p[0].0.contains("Merge-Type"));

    // cloud-init only formats are refused for Windows.
    let mut vm = vm();
    vm.overrides.user_data = Some("#include\nhttp://x/y".into());
    let e = render(
        &vm,
        Some(&spec("win", SpecConfig::Windows(windows_spec(domain())))),
        None,
    )
    .expect_err("#include on windows");
    assert!(e.to_string().contains("#ps1"), "{e}");
}

#[test]
fn powershell_quoting() {
    for (raw, quoted) in [
        ("plain", "'plain'"),
        ("it's", "'it''s'"),
        ("$x `n \"q\"", "'$x `n \"q\"'"),
        ("a\u{2019}b", "'a\u{2019}\u{2019}b'"),
        ("", "''"),
    ] {
        assert_eq!(ps_quote(raw), quoted, "{raw:?}");
    }
}
