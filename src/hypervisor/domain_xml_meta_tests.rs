//! Reading our metadata back (`parse_meta`) from domain XML as libvirt returns it, and the
//! render → parse round trip.

use super::tests::golden_specs;
use super::*;

#[test]
fn parse_meta_reads_only_our_element() {
    let ns = QUANTIX_XMLNS;
    let ok = Some(QuantixMeta {
        generation: 42,
        cluster: "a&b'c".into(),
    });
    let cases: Vec<(&str, String, Option<QuantixMeta>)> = vec![
        (
            "libvirt's reformatting",
            format!(
                "<domain type='kvm'>\n  <name>x</name>\n  <metadata>\n    \
                 <quantix:vm xmlns:quantix=\"{ns}\" generation=\"42\" cluster=\"a&amp;b'c\"/>\n  \
                 </metadata>\n</domain>"
            ),
            ok.clone(),
        ),
        (
            "another prefix, beside foreign metadata",
            format!(
                "<domain><metadata><other:vm xmlns:other='urn:other' generation='1' \
                 cluster='z'/><q:vm xmlns:q='{ns}' generation='42' cluster='a&amp;b&apos;c'/>\
                 </metadata></domain>"
            ),
            ok.clone(),
        ),
        (
            "bare element with its namespace",
            format!("<quantix:vm xmlns:quantix=\"{ns}\" generation=\"42\" cluster=\"a&amp;b'c\"/>"),
            ok.clone(),
        ),
        (
            "element from virDomainGetMetadata(ELEMENT), namespace stripped",
            "<vm generation=\"42\" cluster=\"a&amp;b'c\"/>".into(),
            ok,
        ),
        (
            "root vm of another namespace",
            "<o:vm xmlns:o='urn:other' generation='42' cluster='c'/>".into(),
            None,
        ),
        ("no metadata", "<domain><name>x</name></domain>".into(), None),
        (
            "foreign only",
            "<domain><metadata><vm generation='1' cluster='c'/></metadata></domain>".into(),
            None,
        ),
        (
            "outside metadata",
            format!("<domain><devices><q:vm xmlns:q='{ns}' generation='1' cluster='c'/></devices></domain>"),
            None,
        ),
        (
            "bad generation",
            format!("<domain><metadata><q:vm xmlns:q='{ns}' generation='-1' cluster='c'/></metadata></domain>"),
            None,
        ),
        (
            "no cluster",
            format!("<domain><metadata><q:vm xmlns:q='{ns}' generation='1'/></metadata></domain>"),
            None,
        ),
        ("not xml", "<domain><metadata>".into(), None),
        ("empty", String::new(), None),
    ];
    for (label, xml, want) in cases {
        assert_eq!(parse_meta(&xml), want, "{label}");
    }
}

#[test]
fn render_then_parse_meta_round_trips() {
    for (name, spec) in golden_specs() {
        assert_eq!(
            parse_meta(&render(&spec).unwrap()),
            Some(spec.metadata),
            "{name}"
        );
    }
}

#[test]
fn the_guest_agent_socket_is_read_from_live_xml() {
    let live = "<domain type='qemu'><name>web1</name><devices>\
        <channel type='unix'><source mode='bind' path='/run/libvirt/qemu/channel/1-web1/org.qemu.guest_agent.0'/>\
        <target type='virtio' name='org.qemu.guest_agent.0'/></channel>\
        <channel type='unix'><source mode='bind' path='/run/libvirt/qemu/channel/1-web1/org.quantix.agent.0'/>\
        <target type='virtio' name='org.quantix.agent.0' state='connected'/></channel>\
        </devices></domain>";
    assert_eq!(
        guest_agent_socket(live),
        Some(std::path::PathBuf::from(
            "/run/libvirt/qemu/channel/1-web1/org.quantix.agent.0"
        ))
    );
    assert_eq!(guest_agent_socket("<domain><devices/></domain>"), None);
    assert_eq!(guest_agent_socket("not xml"), None);
}
