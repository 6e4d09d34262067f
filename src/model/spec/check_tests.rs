//! Table tests for the spec field rules: every rule accepts what it should and refuses with a
//! message that names the field.

use super::*;
use crate::model::spec::{DomainJoin, LinuxUser, Secret};

/// A well-formed OpenSSH public key line of `kind` (the key bytes are not a real key; only
/// the format is checked).
pub(crate) fn key_line(kind: &str, comment: &str) -> String {
    let mut blob = (kind.len() as u32).to_be_bytes().to_vec();
    blob.extend_from_slice(kind.as_bytes());
    blob.extend_from_slice(&32u32.to_be_bytes());
    blob.extend_from_slice(&[7u8; 32]);
    format!(
        "{kind} {} {comment}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
    .trim_end()
    .to_string()
}

pub(crate) fn linux_spec() -> LinuxSpec {
    LinuxSpec {
        hostname_pattern: "web-{n}".into(),
        domain: "example.com".into(),
        timezone: "Europe/Berlin".into(),
        users: vec![LinuxUser {
            name: "alice".into(),
            ssh_keys: vec![key_line("ssh-ed25519", "alice@laptop")],
        }],
        ssh_keys: vec![key_line("ecdsa-sha2-nistp256", "")],
        dns_servers: vec!["10.0.0.53".parse().unwrap()],
        search_domains: vec!["example.com".into()],
        network: Network::Static(StaticNetwork {
            address: "10.0.0.10".parse().unwrap(),
            prefix: 24,
            gateway: Some("10.0.0.1".parse().unwrap()),
        }),
        packages: vec!["nginx".into(), "curl=7.88.1-10".into()],
        run_commands: vec!["systemctl enable --now nginx".into()],
        install_agent: true,
    }
}

pub(crate) fn windows_spec() -> WindowsSpec {
    WindowsSpec {
        computer_name: "WEB-{n}".into(),
        timezone: "America/New_York".into(),
        membership: Membership::Domain(DomainJoin {
            domain: "corp.example.com".into(),
            user: "CORP\\joiner".into(),
            password: Some(Secret::new("join-secret-1")),
        }),
        admin_password: Some(Secret::new("admin-secret-1")),
        product_key: Some(Secret::new("ABCDE-12345-FGHIJ-67890-KLMNO")),
    }
}

/// Applies `change` to a valid spec and expects the error to mention every fragment.
fn linux_refused(change: impl FnOnce(&mut LinuxSpec), fragments: &[&str]) {
    let mut l = linux_spec();
    change(&mut l);
    let e = linux(&l).expect_err("should be refused").to_string();
    for f in fragments {
        assert!(e.contains(f), "{e:?} should mention {f:?}");
    }
}

fn windows_refused(change: impl FnOnce(&mut WindowsSpec), fragments: &[&str]) {
    let mut w = windows_spec();
    change(&mut w);
    let e = windows(&w).expect_err("should be refused").to_string();
    for f in fragments {
        assert!(e.contains(f), "{e:?} should mention {f:?}");
    }
}

#[test]
fn valid_specs_pass() {
    linux(&linux_spec()).unwrap();
    windows(&windows_spec()).unwrap();
    let mut w = windows_spec();
    w.membership = Membership::Workgroup("WORKGROUP".into());
    w.admin_password = None;
    w.product_key = None;
    windows(&w).unwrap();
}

#[test]
fn hostname_patterns() {
    let cases: &[(&str, Option<&str>)] = &[
        ("{vm}", None),
        ("web-{n}", None),
        ("{vm}-{n}", None),
        ("web1", None),
        ("", Some("must not be empty")),
        ("Web-{n}", Some("lower-case")),
        ("web.{n}", Some("lower-case")),
        ("web-{id}", Some("unknown placeholder {id}")),
        ("web-{n", Some("unclosed")),
        ("web-n}", Some("without a '{'")),
        ("-{vm}", Some("must not start or end with '-'")),
        ("{vm}-", Some("must not start or end with '-'")),
        ("-web", Some("must not start or end with '-'")),
    ];
    for (p, want) in cases {
        let got = hostname_pattern(p);
        match want {
            None => assert!(got.is_ok(), "{p}: {got:?}"),
            Some(frag) => {
                let e = got.expect_err(p).to_string();
                assert!(
                    e.contains("hostname_pattern") && e.contains(frag),
                    "{p}: {e}"
                );
            }
        }
    }
    let long = "a".repeat(64);
    assert!(hostname_pattern(&long).is_err());
    assert!(hostname_pattern(&format!("{}{{n}}", "a".repeat(64))).is_err());
}

#[test]
fn computer_names() {
    let cases: &[(&str, Option<&str>)] = &[
        ("{vm}", None),
        ("WEB-{n}", None),
        ("SQL01", None),
        ("ABCDEFGHIJKLMNO", None),
        ("ABCDEFGHIJKLMNOP", Some("longer than 15")),
        ("12345", Some("only digits")),
        ("WEB_01", Some("letters, digits, '-'")),
        ("WEB.01", Some("letters, digits, '-'")),
        ("{host}", Some("unknown placeholder")),
        ("", Some("must not be empty")),
    ];
    for (p, want) in cases {
        let got = computer_name(p);
        match want {
            None => assert!(got.is_ok(), "{p}: {got:?}"),
            Some(frag) => {
                let e = got.expect_err(p).to_string();
                assert!(e.contains("computer_name") && e.contains(frag), "{p}: {e}");
            }
        }
    }
}

#[test]
fn ssh_keys_table() {
    for kind in SSH_KEY_TYPES {
        ssh_key("k", &key_line(kind, "me@host")).unwrap();
    }
    let ed = key_line("ssh-ed25519", "");
    let data = ed.split(' ').nth(1).unwrap().to_string();
    let cases: Vec<(String, &str)> = vec![
        (key_line("ssh-dss", ""), "must start with an SSH key type"),
        ("not a key".into(), "must start with an SSH key type"),
        (String::new(), "must start with an SSH key type"),
        ("ssh-ed25519".into(), "no valid base64"),
        ("ssh-ed25519 !!!notbase64".into(), "no valid base64"),
        (format!("ssh-rsa {data}"), "not a 'ssh-rsa' key"),
        (format!("{ed}\n{ed}"), "one line"),
        (
            format!("from=\"10.0.0.1\" {ed}"),
            "must start with an SSH key type",
        ),
    ];
    for (k, frag) in cases {
        let e = ssh_key("users[alice].ssh_keys[0]", &k)
            .expect_err(&k)
            .to_string();
        assert!(
            e.contains("users[alice].ssh_keys[0]") && e.contains(frag),
            "{k:?}: {e}"
        );
    }
}

#[test]
fn linux_refusals_name_the_field() {
    linux_refused(
        |l| l.domain = "bad_domain".into(),
        &["domain", "not a domain name"],
    );
    linux_refused(
        |l| l.domain = "example.123".into(),
        &["domain", "ends in a number"],
    );
    linux_refused(|l| l.timezone = "Not A Zone".into(), &["timezone", "IANA"]);
    linux_refused(|l| l.timezone = "Europe//Berlin".into(), &["timezone"]);
    linux_refused(
        |l| l.users[0].name = "Alice".into(),
        &["users[0].name", "Linux user name"],
    );
    linux_refused(
        |l| l.users.push(l.users[0].clone()),
        &["users[1].name", "listed twice"],
    );
    linux_refused(
        |l| l.users[0].ssh_keys.push("ssh-foo AAAA".into()),
        &["users[alice].ssh_keys[1]", "SSH key type"],
    );
    linux_refused(|l| l.ssh_keys = vec!["x".into()], &["ssh_keys[0]"]);
    linux_refused(
        |l| l.dns_servers = vec!["1.1.1.1".parse().unwrap(); 4],
        &["dns_servers", "more than 3"],
    );
    linux_refused(
        |l| l.dns_servers = vec!["0.0.0.0".parse().unwrap()],
        &["dns_servers[0]", "not a usable"],
    );
    linux_refused(
        |l| l.search_domains = vec!["ok.com".into(), "-bad.com".into()],
        &["search_domains[1]"],
    );
    linux_refused(
        |l| l.search_domains = vec!["a.com".into(); 7],
        &["search_domains", "more than 6"],
    );
    linux_refused(
        |l| l.packages = vec!["ngi nx".into()],
        &["packages[0]", "package name"],
    );
    linux_refused(|l| l.packages = vec!["-x".into()], &["packages[0]"]);
    linux_refused(
        |l| l.run_commands = vec![" ".into()],
        &["run_commands[0]", "empty"],
    );
    linux_refused(
        |l| l.run_commands = vec!["echo a\necho b".into()],
        &["run_commands[0]", "one line"],
    );
    linux_refused(
        |l| l.run_commands = vec!["x".repeat(MAX_RUN_COMMAND_LEN + 1)],
        &["run_commands[0]", "longer"],
    );
}

#[test]
fn static_network_rules() {
    fn set(addr: &'static str, prefix: u8, gw: Option<&'static str>) -> impl Fn(&mut LinuxSpec) {
        move |l: &mut LinuxSpec| {
            l.network = Network::Static(StaticNetwork {
                address: addr.parse().unwrap(),
                prefix,
                gateway: gw.map(|g| g.parse().unwrap()),
            })
        }
    }
    linux_refused(
        set("10.0.0.5", 33, None),
        &["static_network.prefix", "1-32"],
    );
    linux_refused(set("10.0.0.5", 0, None), &["static_network.prefix"]);
    linux_refused(set("0.0.0.0", 24, None), &["static_network.address"]);
    linux_refused(set("127.0.0.2", 8, None), &["static_network.address"]);
    linux_refused(
        set("10.0.0.5", 24, Some("10.0.1.1")),
        &["static_network.gateway", "outside 10.0.0.5/24"],
    );
    linux_refused(
        set("10.0.0.5", 24, Some("10.0.0.5")),
        &["static_network.gateway", "address itself"],
    );
    linux_refused(
        set("10.0.0.5", 24, Some("fe80::1")),
        &["static_network.gateway", "IP version"],
    );
    let mut l = linux_spec();
    set("2001:db8::10", 64, Some("2001:db8::1"))(&mut l);
    linux(&l).unwrap();
    set("10.1.2.3", 32, None)(&mut l);
    linux(&l).unwrap();
    set("10.1.2.3", 8, Some("10.200.0.1"))(&mut l);
    linux(&l).unwrap();
}

#[test]
fn windows_refusals_name_the_field() {
    windows_refused(
        |w| w.timezone = "Eastern Standard Time".into(),
        &["timezone"],
    );
    windows_refused(
        |w| w.membership = Membership::Workgroup("A-VERY-LONG-WORKGROUP".into()),
        &["workgroup", "15"],
    );
    windows_refused(
        |w| w.membership = Membership::Workgroup("WORK GROUP".into()),
        &["workgroup", "letters"],
    );
    windows_refused(
        |w| {
            if let Membership::Domain(d) = &mut w.membership {
                d.password = None;
            }
        },
        &["domain_join.password", "required"],
    );
    windows_refused(
        |w| {
            if let Membership::Domain(d) = &mut w.membership {
                d.domain = "corp..example".into();
            }
        },
        &["domain_join.domain"],
    );
    windows_refused(
        |w| {
            if let Membership::Domain(d) = &mut w.membership {
                d.user = "bad:user".into();
            }
        },
        &["domain_join.user"],
    );
    windows_refused(
        |w| w.admin_password = Some(Secret::new("short")),
        &["admin_password", "8 to 127"],
    );
    for key in [
        "ABCDE-12345-FGHIJ-67890",
        "abcde-12345-fghij-67890-klmno",
        "ABCDE-12345-FGHIJ-67890-KLMN!",
        "ABCDEF-2345-FGHIJ-67890-KLMNO",
    ] {
        windows_refused(
            |w| w.product_key = Some(Secret::new(key)),
            &["product_key", "five groups of five"],
        );
    }
}

#[test]
fn secret_values_never_appear_in_errors() {
    let mut w = windows_spec();
    w.admin_password = Some(Secret::new("tiny"));
    assert!(!windows(&w).unwrap_err().to_string().contains("tiny"));
    let mut w = windows_spec();
    w.product_key = Some(Secret::new("SECRETKEYVALUE"));
    assert!(!windows(&w)
        .unwrap_err()
        .to_string()
        .contains("SECRETKEYVALUE"));
}

#[test]
fn names_and_descriptions() {
    spec_name("web-servers").unwrap();
    let e = spec_name("Web_Servers").unwrap_err().to_string();
    assert!(e.contains("spec name") && e.contains("lower-case"), "{e}");
    description("Web servers\nin prod").unwrap();
    assert!(description(&"x".repeat(MAX_DESCRIPTION + 1)).is_err());
    assert!(description("bell\u{7}").is_err());
}
