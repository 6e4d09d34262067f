//! Proto ↔ model conversions of the spec API.

use super::*;

fn windows_input() -> WindowsSettingsInput {
    WindowsSettingsInput {
        computer_name: String::new(),
        timezone: String::new(),
        workgroup: String::new(),
        domain_join: None,
        admin_password: "admin-pass-1".into(),
        product_key: "ABCDE-12345-FGHIJ-67890-KLMNO".into(),
        join_password: String::new(),
        clear_admin_password: false,
        clear_product_key: false,
    }
}

#[test]
fn linux_defaults_and_parse_errors() {
    let l = linux_from_proto(LinuxSettings::default()).unwrap();
    assert_eq!(l.hostname_pattern, "{vm}");
    assert_eq!(l.timezone, "UTC");
    assert!(l.install_agent);
    assert_eq!(l.network, Network::Dhcp);
    let bad = LinuxSettings {
        dns_servers: vec!["1.1.1.1".into(), "dns.example".into()],
        ..Default::default()
    };
    let e = linux_from_proto(bad).unwrap_err().to_string();
    assert!(
        e.contains("dns_servers[1]") && e.contains("not an IP address"),
        "{e}"
    );
    let bad = LinuxSettings {
        static_network: Some(StaticNetwork {
            address: "10.0.0.5".into(),
            prefix: 24,
            gateway: "gw".into(),
        }),
        ..Default::default()
    };
    let e = linux_from_proto(bad).unwrap_err().to_string();
    assert!(e.contains("static_network.gateway"), "{e}");
}

#[test]
fn linux_round_trips_through_proto() {
    let l = crate::model::spec::check::tests::linux_spec();
    assert_eq!(linux_from_proto(linux_to_proto(&l)).unwrap(), l);
}

#[test]
fn windows_membership_and_secret_flags() {
    let (w, clear) = windows_from_proto(windows_input()).unwrap();
    assert_eq!(w.membership, Membership::Workgroup("WORKGROUP".into()));
    assert_eq!(w.computer_name, "{vm}");
    assert!(clear.is_empty());
    let both = WindowsSettingsInput {
        workgroup: "LAB".into(),
        domain_join: Some(DomainJoin::default()),
        ..windows_input()
    };
    assert!(windows_from_proto(both)
        .unwrap_err()
        .to_string()
        .contains("workgroup"));
    let stray = WindowsSettingsInput {
        join_password: "pw-pw-pw-pw".into(),
        ..windows_input()
    };
    assert!(windows_from_proto(stray)
        .unwrap_err()
        .to_string()
        .contains("join_password"));
    let clash = WindowsSettingsInput {
        clear_product_key: true,
        ..windows_input()
    };
    assert!(windows_from_proto(clash)
        .unwrap_err()
        .to_string()
        .contains("product_key"));
    let clear = WindowsSettingsInput {
        clear_product_key: true,
        clear_admin_password: true,
        product_key: String::new(),
        admin_password: String::new(),
        ..windows_input()
    };
    let (w, c) = windows_from_proto(clear).unwrap();
    assert_eq!(c, [SecretField::AdminPassword, SecretField::ProductKey]);
    assert!(w.admin_password.is_none());
}

#[test]
fn read_side_never_carries_secrets() {
    let (mut w, _) = windows_from_proto(WindowsSettingsInput {
        domain_join: Some(DomainJoin {
            domain: "corp.example".into(),
            user: "joiner".into(),
        }),
        join_password: "join-pass-xyz".into(),
        ..windows_input()
    })
    .unwrap();
    w.timezone = "Europe/Berlin".into();
    let spec = m::Spec {
        name: "w".into(),
        description: String::new(),
        built_in: false,
        revision: 1,
        created_at: 0,
        updated_at: 0,
        config: SpecConfig::Windows(w),
    };
    let p = to_proto(&spec);
    let text = format!("{p:?}");
    let bytes = prost::Message::encode_to_vec(&p);
    for secret in ["admin-pass-1", "ABCDE-12345", "join-pass-xyz"] {
        assert!(!text.contains(secret), "{text}");
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    let Some(customization_spec::Settings::Windows(ws)) = p.settings else {
        panic!("not windows");
    };
    assert!(ws.has_admin_password && ws.has_product_key && ws.has_join_password);
}

#[test]
fn unknown_timezone_is_refused_before_proposing() {
    let e = config_from_proto(
        Some(LinuxSettings {
            timezone: "Mars/Olympus_Mons".into(),
            ..Default::default()
        }),
        None,
    )
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("timezone"), "{}", e.message());
    let e = config_from_proto(None, None).unwrap_err();
    assert!(e.message().contains("settings"), "{}", e.message());
}
