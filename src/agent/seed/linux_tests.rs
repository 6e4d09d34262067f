//! Tests of the Linux (NoCloud) rendering and of merging a VM's user-data override: each case
//! parses the rendered documents back and checks the keys cloud-init reads. Documents are
//! also read with PyYAML when python3 has it, as cloud-init does.

use base64::Engine;
use serde_json::{json, Value};
use std::net::IpAddr;

use super::userdata::{tests::parts, MERGE_TYPE};
use super::*;
use crate::model::spec::{LinuxSpec, LinuxUser, Network, StaticNetwork, LINUX_DEFAULT};
use crate::model::vm::tests::sample;
use crate::model::vm::Nic;

/// A well-formed ed25519 public key line (type, then data naming the same type).
pub(crate) fn key(n: u8, comment: &str) -> String {
    let mut data = Vec::new();
    data.extend_from_slice(&11u32.to_be_bytes());
    data.extend_from_slice(b"ssh-ed25519");
    data.extend_from_slice(&32u32.to_be_bytes());
    data.extend_from_slice(&[n; 32]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    format!("ssh-ed25519 {b64} {comment}")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

pub(crate) fn spec(name: &str, config: SpecConfig) -> Spec {
    Spec {
        name: name.into(),
        description: String::new(),
        built_in: false,
        revision: 1,
        created_at: 0,
        updated_at: 0,
        config,
    }
}

fn full_linux() -> LinuxSpec {
    LinuxSpec {
        hostname_pattern: "web-{n}".into(),
        domain: "corp.example".into(),
        timezone: "Europe/Berlin".into(),
        users: vec![
            LinuxUser {
                name: "ops".into(),
                ssh_keys: vec![key(1, "ops@laptop")],
            },
            LinuxUser {
                name: "deploy".into(),
                ssh_keys: vec![],
            },
        ],
        ssh_keys: vec![key(2, "admin@desk")],
        dns_servers: vec![ip("10.0.0.2"), ip("10.0.0.3")],
        search_domains: vec!["corp.example".into()],
        network: Network::Static(StaticNetwork {
            address: ip("10.0.0.50"),
            prefix: 24,
            gateway: Some(ip("10.0.0.1")),
        }),
        packages: vec!["nginx".into(), "git".into()],
        run_commands: vec![
            "systemctl enable --now nginx".into(),
            "echo done > /root/ok".into(),
        ],
        install_agent: true,
    }
}

fn vm_with_macs() -> Vm {
    let mut vm = sample("web1");
    vm.id = 7;
    vm.spec = Some("web".into());
    vm.nics = vec![
        Nic {
            network: "br0".into(),
            mac: Some("52:54:00:AA:BB:01".into()),
        },
        Nic {
            network: "br1".into(),
            mac: Some("52:54:00:aa:bb:02".into()),
        },
    ];
    vm
}

fn agent() -> AgentInstall {
    AgentInstall {
        url: "https://10.0.0.5:8443/agent/linux-amd64".into(),
        sha256: Some("ab".repeat(32)),
    }
}

/// The JSON body of a single `#cloud-config` document.
pub(crate) fn cloud_config_of(user_data: &str) -> Value {
    let body = user_data
        .strip_prefix("#cloud-config\n")
        .unwrap_or_else(|| panic!("not a #cloud-config document: {user_data}"));
    serde_json::from_str(body).expect("cloud-config body is JSON")
}

fn doc(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON document")
}

fn render_linux(vm: &Vm, l: LinuxSpec, agent: Option<&AgentInstall>) -> Seed {
    render(vm, Some(&spec("web", SpecConfig::Linux(l))), agent).expect("render")
}

#[test]
fn full_spec_renders_every_setting() {
    let vm = vm_with_macs();
    let seed = render_linux(&vm, full_linux(), Some(&agent()));
    assert_eq!(seed.kind, SeedKind::NoCloud);
    assert_eq!(seed.volume_label(), "cidata");
    let names: Vec<&str> = seed.entries().iter().map(|(p, _)| *p).collect();
    assert_eq!(names, ["user-data", "meta-data", "network-config"]);

    let cc = cloud_config_of(&seed.files.user_data);
    assert_eq!(cc["hostname"], "web-7");
    assert_eq!(cc["fqdn"], "web-7.corp.example");
    assert_eq!(cc["preserve_hostname"], false);
    assert_eq!(cc["timezone"], "Europe/Berlin");
    assert_eq!(cc["ssh_authorized_keys"], json!([key(2, "admin@desk")]));
    assert_eq!(cc["users"][0], "default");
    assert_eq!(cc["users"][1]["name"], "ops");
    assert_eq!(cc["users"][1]["sudo"], "ALL=(ALL) NOPASSWD:ALL");
    assert_eq!(cc["users"][1]["lock_passwd"], true);
    assert_eq!(
        cc["users"][1]["ssh_authorized_keys"],
        json!([key(1, "ops@laptop")])
    );
    assert_eq!(cc["users"][2]["name"], "deploy");
    assert!(cc["users"][2].get("ssh_authorized_keys").is_none());
    assert_eq!(cc["package_update"], true);
    assert_eq!(cc["packages"], json!(["nginx", "git"]));

    let runcmd = cc["runcmd"].as_array().expect("runcmd");
    assert_eq!(runcmd.len(), 2 + 5, "{runcmd:?}");
    assert_eq!(runcmd[0], "systemctl enable --now nginx");
    assert_eq!(runcmd[1], "echo done > /root/ok");
    assert_eq!(runcmd[2][0], "curl");
    assert_eq!(
        runcmd[2].as_array().and_then(|a| a.last()),
        Some(&json!(agent().url))
    );
    // Fetched without checking the host's certificate, installed only if the checksum the
    // host put in the seed matches.
    assert!(runcmd[2]
        .as_array()
        .is_some_and(|a| a.contains(&json!("--insecure"))));
    assert_eq!(
        runcmd[3],
        json!([
            "sh",
            "-c",
            format!(
                "echo '{}  /usr/local/bin/quantix-agent.download' | sha256sum -c - && install -m 0755 /usr/local/bin/quantix-agent.download /usr/local/bin/quantix-agent",
                "ab".repeat(32)
            )
        ])
    );
    assert_eq!(
        runcmd[6],
        json!(["systemctl", "enable", "--now", "quantix-agent.service"])
    );
    assert_eq!(cc["write_files"][0]["path"], linux::AGENT_UNIT_PATH);
    let unit = cc["write_files"][0]["content"].as_str().expect("unit");
    assert!(
        unit.contains("ExecStart=/usr/local/bin/quantix-agent"),
        "{unit}"
    );

    let meta = doc(&seed.files.meta_data);
    assert_eq!(
        meta,
        json!({"instance-id": "iid-web1-7", "local-hostname": "web-7"})
    );

    let net = doc(seed
        .files
        .network_config
        .as_deref()
        .expect("network-config"));
    assert_eq!(net["version"], 2);
    let nic0 = &net["ethernets"]["nic0"];
    assert_eq!(nic0["match"], json!({"macaddress": "52:54:00:aa:bb:01"}));
    assert_eq!(nic0["addresses"], json!(["10.0.0.50/24"]));
    assert_eq!(nic0["dhcp4"], false);
    assert_eq!(
        nic0["routes"],
        json!([{"to": "0.0.0.0/0", "via": "10.0.0.1"}])
    );
    let ns = json!({"addresses": ["10.0.0.2", "10.0.0.3"], "search": ["corp.example"]});
    assert_eq!(nic0["nameservers"], ns);
    let nic1 = &net["ethernets"]["nic1"];
    assert_eq!(nic1["match"], json!({"macaddress": "52:54:00:aa:bb:02"}));
    assert_eq!(nic1["dhcp4"], true);
    assert!(nic1.get("addresses").is_none());
    assert_eq!(nic1["nameservers"], ns);
}

#[test]
fn overrides_win() {
    let mut vm = vm_with_macs();
    vm.overrides.hostname = Some("db-primary".into());
    vm.overrides.timezone = Some("America/New_York".into());
    // The spec's key again (spaced differently) and a new one.
    let spaced = key(2, "admin@desk").replace(' ', "   ");
    vm.overrides.ssh_keys = vec![spaced, key(3, "oncall")];
    let seed = render_linux(&vm, full_linux(), None);
    let cc = cloud_config_of(&seed.files.user_data);
    assert_eq!(cc["hostname"], "db-primary");
    assert_eq!(cc["fqdn"], "db-primary.corp.example");
    assert_eq!(cc["timezone"], "America/New_York");
    assert_eq!(
        cc["ssh_authorized_keys"],
        json!([key(2, "admin@desk"), key(3, "oncall")])
    );
    assert_eq!(doc(&seed.files.meta_data)["local-hostname"], "db-primary");
    // No agent address: nothing to install even though the spec asks for it.
    assert_eq!(cc["runcmd"].as_array().map(Vec::len), Some(2));
    assert!(cc.get("write_files").is_none());
}

#[test]
fn no_spec_uses_vm_name_and_dhcp() {
    let mut vm = sample("plain");
    vm.id = 3;
    vm.overrides.ssh_keys = vec![key(4, "me")];
    let seed = render(&vm, None, Some(&agent())).expect("render");
    let cc = cloud_config_of(&seed.files.user_data);
    assert_eq!(cc["hostname"], "plain");
    assert!(cc.get("fqdn").is_none());
    assert!(cc.get("timezone").is_none(), "image's time zone stays");
    assert_eq!(cc["ssh_authorized_keys"], json!([key(4, "me")]));
    for absent in ["users", "packages", "package_update"] {
        assert!(cc.get(absent).is_none(), "{absent}");
    }
    // Like linux-default: the agent is installed.
    assert_eq!(cc["runcmd"].as_array().map(Vec::len), Some(5));
    assert_eq!(doc(&seed.files.meta_data)["instance-id"], "iid-plain-3");
    let net = doc(seed
        .files
        .network_config
        .as_deref()
        .expect("network-config"));
    assert_eq!(
        net,
        json!({"version": 2, "ethernets": {"all": {"match": {"name": "e*"}, "dhcp4": true}}})
    );
}

#[test]
fn built_in_default_spec_renders() {
    let mut vm = sample("vm9");
    vm.spec = Some(LINUX_DEFAULT.into());
    let defaults = crate::model::spec::defaults(0);
    let seed = render(&vm, defaults.first(), None).expect("render");
    let cc = cloud_config_of(&seed.files.user_data);
    assert_eq!(cc["hostname"], "vm9");
    assert_eq!(cc["timezone"], "UTC");
}

#[test]
fn agent_only_when_the_spec_wants_it() {
    let mut l = full_linux();
    l.install_agent = false;
    let seed = render_linux(&vm_with_macs(), l, Some(&agent()));
    let cc = cloud_config_of(&seed.files.user_data);
    assert_eq!(cc["runcmd"].as_array().map(Vec::len), Some(2));
    assert!(!seed.files.user_data.contains("quantix-agent"));
}

#[test]
fn network_variants() {
    type Edit = fn(&mut Vm, &mut LinuxSpec);
    // (case, edit, expected ethernets or error text)
    type Case = (&'static str, Edit, Result<Option<Value>, &'static str>);
    let cases: Vec<Case> = vec![
        (
            "no NIC: no network-config",
            |vm, _| vm.nics.clear(),
            Ok(None),
        ),
        (
            "static on the only NIC without a MAC",
            |vm, _| {
                vm.nics.truncate(1);
                vm.nics[0].mac = None;
            },
            Ok(Some(json!({"all": {
                "match": {"name": "e*"}, "addresses": ["10.0.0.50/24"], "dhcp4": false,
                "routes": [{"to": "0.0.0.0/0", "via": "10.0.0.1"}],
                "nameservers": {"addresses": ["10.0.0.2", "10.0.0.3"], "search": ["corp.example"]}
            }}))),
        ),
        (
            "static on two NICs, one without a MAC",
            |vm, _| vm.nics[1].mac = None,
            Err("needs a MAC address on every NIC"),
        ),
        (
            "DHCP on NICs without MACs",
            |vm, l| {
                vm.nics[1].mac = None;
                l.network = Network::Dhcp;
                l.dns_servers.clear();
                l.search_domains.clear();
            },
            Ok(Some(
                json!({"all": {"match": {"name": "e*"}, "dhcp4": true}}),
            )),
        ),
        (
            "IPv6 static without gateway, DHCP elsewhere",
            |vm, l| {
                vm.nics.truncate(1);
                l.network = Network::Static(StaticNetwork {
                    address: ip("2001:db8::50"),
                    prefix: 64,
                    gateway: None,
                });
                l.dns_servers = vec![ip("2001:db8::53")];
                l.search_domains.clear();
            },
            Ok(Some(json!({"nic0": {
                "match": {"macaddress": "52:54:00:aa:bb:01"}, "addresses": ["2001:db8::50/64"],
                "dhcp6": false, "nameservers": {"addresses": ["2001:db8::53"], "search": []}
            }}))),
        ),
        (
            "IPv6 gateway is a ::/0 route",
            |vm, l| {
                vm.nics.truncate(1);
                l.network = Network::Static(StaticNetwork {
                    address: ip("2001:db8::50"),
                    prefix: 64,
                    gateway: Some(ip("2001:db8::1")),
                });
                l.dns_servers.clear();
                l.search_domains.clear();
            },
            Ok(Some(json!({"nic0": {
                "match": {"macaddress": "52:54:00:aa:bb:01"}, "addresses": ["2001:db8::50/64"],
                "dhcp6": false, "routes": [{"to": "::/0", "via": "2001:db8::1"}]
            }}))),
        ),
    ];
    for (case, edit, want) in cases {
        let mut vm = vm_with_macs();
        let mut l = full_linux();
        edit(&mut vm, &mut l);
        let got = render(&vm, Some(&spec("web", SpecConfig::Linux(l))), None);
        match (got, want) {
            (Ok(seed), Ok(want)) => {
                let ethernets = seed
                    .files
                    .network_config
                    .map(|n| doc(&n)["ethernets"].clone());
                assert_eq!(ethernets, want, "{case}");
            }
            (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{case}: {e}"),
            (got, want) => panic!("{case}: got {got:?}, wanted {want:?}"),
        }
    }
}

#[test]
fn refusals_name_the_problem() {
    let mut long = full_linux();
    long.hostname_pattern = format!("{}-{{vm}}", "a".repeat(60));
    let e = render(
        &vm_with_macs(),
        Some(&spec("web", SpecConfig::Linux(long))),
        None,
    )
    .expect_err("hostname too long");
    assert!(matches!(e, SeedError::Hostname { .. }), "{e}");
    assert!(e.to_string().contains("web1"), "{e}");

    let e = render(
        &vm_with_macs(),
        Some(&spec("other", SpecConfig::Linux(full_linux()))),
        None,
    )
    .expect_err("spec of another VM");
    assert!(e.to_string().contains("uses spec 'web'"), "{e}");

    for (url, problem) in [
        ("ftp://x/agent", "must start with http"),
        ("https:///agent", "has no host"),
        ("https://x/a b", "spaces"),
    ] {
        let a = AgentInstall {
            url: url.into(),
            sha256: None,
        };
        let e = render(&sample("v"), None, Some(&a)).expect_err(url);
        assert!(e.to_string().contains(problem), "{url}: {e}");
    }
}

fn with_override(user_data: &str) -> Result<Seed, SeedError> {
    let mut vm = vm_with_macs();
    vm.overrides.user_data = Some(user_data.into());
    render(
        &vm,
        Some(&spec("web", SpecConfig::Linux(full_linux()))),
        None,
    )
}

#[test]
fn user_data_override_merge() {
    let plain = render_linux(&vm_with_macs(), full_linux(), None)
        .files
        .user_data;

    // Empty or header-only overrides change nothing.
    for nothing in ["", "  \n", "#cloud-config\n", "#cloud-config\n\n"] {
        assert_eq!(
            with_override(nothing).expect(nothing).files.user_data,
            plain
        );
    }

    // A JSON cloud-config merges here: lists appended, scalars replaced, new keys added.
    let seed = with_override(
        "#cloud-config\n{\"packages\": [\"htop\"], \"runcmd\": [\"echo extra\"], \
         \"timezone\": \"UTC\", \"write_files\": [{\"path\": \"/etc/motd\", \"content\": \"hi\"}], \
         \"users\": [{\"name\": \"extra\"}], \"ntp\": {\"enabled\": true}}",
    )
    .expect("json override");
    let cc = cloud_config_of(&seed.files.user_data);
    assert_eq!(cc["packages"], json!(["nginx", "git", "htop"]));
    let runcmd = cc["runcmd"].as_array().expect("runcmd");
    assert_eq!(runcmd.first(), Some(&json!("systemctl enable --now nginx")));
    assert_eq!(runcmd.last(), Some(&json!("echo extra")));
    assert_eq!(cc["timezone"], "UTC");
    assert_eq!(cc["users"].as_array().map(Vec::len), Some(4));
    assert_eq!(cc["ntp"]["enabled"], true);
    assert_eq!(cc["hostname"], "web-7");

    // A YAML cloud-config: multipart, override first, ours second with the merge header.
    let yaml = "#cloud-config\npackages:\n  - htop\nruncmd:\n  - [sh, -c, 'echo é']\n";
    let seed = with_override(yaml).expect("yaml override");
    let p = parts(&seed.files.user_data);
    assert_eq!(p.len(), 2);
    assert!(
        p[0].0.contains("Content-Type: text/cloud-config"),
        "{}",
        p[0].0
    );
    assert_eq!(p[0].1, yaml, "override intact, non-ASCII included");
    assert!(!p[0].0.contains("Merge-Type"));
    assert!(
        p[1].0.contains(&format!("Merge-Type: {MERGE_TYPE}")),
        "{}",
        p[1].0
    );
    assert_eq!(p[1].1, plain);

    // A shell script: ours first, then the script.
    let script = "#!/bin/sh\necho hello\n";
    let p = parts(&with_override(script).expect("script").files.user_data);
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].1, plain);
    assert!(
        p[1].0.contains("Content-Type: text/x-shellscript"),
        "{}",
        p[1].0
    );
    assert_eq!(p[1].1, script);

    // A MIME document is nested as it is.
    let mime = "Content-Type: multipart/mixed; boundary=\"inner\"\nMIME-Version: 1.0\n\n\
                --inner\nContent-Type: text/x-shellscript\n\necho inner\n--inner--\n";
    let ud = with_override(mime).expect("mime").files.user_data;
    assert!(ud.contains(mime), "{ud}");
    assert_eq!(parts(&ud)[0].1, plain);

    // Anything else is refused without quoting it.
    let e = with_override("packages: [secret-pkg]").expect_err("no header");
    assert!(
        e.to_string()
            .contains("must start with one of #cloud-config"),
        "{e}"
    );
    assert!(!e.to_string().contains("secret-pkg"), "{e}");
    let e = with_override("#cloud-config\n[1, 2]").expect_err("not a mapping");
    assert!(e.to_string().contains("not a mapping"), "{e}");
}

/// Runs python3 with `script` on `input`; `None` when python3 or PyYAML is missing.
fn python(script: &str, input: &str) -> Option<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(input.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("No module named 'yaml'"),
            "python3 failed: {err}"
        );
        return None;
    }
    Some(String::from_utf8(out.stdout).expect("utf-8"))
}

#[test]
fn pyyaml_reads_the_documents_as_cloud_init_does() {
    let load = "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))";
    let mut vm = vm_with_macs();
    vm.overrides.user_data =
        Some("#cloud-config\n{\"runcmd\": [\"echo 'ü' \\\"q\\\"\\t\"]}".into());
    let seed = render_linux(&vm, full_linux(), Some(&agent()));
    let docs = [
        (
            seed.files.user_data.clone(),
            cloud_config_of(&seed.files.user_data),
        ),
        (seed.files.meta_data.clone(), doc(&seed.files.meta_data)),
        (
            seed.files.network_config.clone().unwrap_or_default(),
            doc(seed.files.network_config.as_deref().unwrap_or("null")),
        ),
    ];
    for (text, want) in docs {
        let Some(out) = python(load, &text) else {
            println!("SKIP pyyaml check: python3 with PyYAML is not installed");
            return;
        };
        assert_eq!(doc(&out), want, "PyYAML reads {text}");
    }

    // The multipart form: Python's email package (both guests use it) finds the parts and
    // decodes them to the exact text.
    vm.overrides.user_data = Some("#cloud-config\nruncmd:\n  - echo ü\n".into());
    let seed = render_linux(&vm, full_linux(), None);
    let walk = "import sys, email, json\n\
                msg = email.message_from_string(sys.stdin.read())\n\
                print(json.dumps([[p.get_content_type(), p.get('Merge-Type'), \
                p.get_payload(decode=True).decode('utf-8')] for p in msg.walk() \
                if not p.is_multipart()]))";
    let Some(out) = python(walk, &seed.files.user_data) else {
        println!("SKIP email check: python3 is not installed");
        return;
    };
    let got = doc(&out);
    assert_eq!(got[0][0], "text/cloud-config");
    assert_eq!(got[0][2], "#cloud-config\nruncmd:\n  - echo ü\n");
    assert_eq!(got[1][1], MERGE_TYPE);
    assert_eq!(
        cloud_config_of(got[1][2].as_str().unwrap_or_default())["hostname"],
        "web-7"
    );
}
