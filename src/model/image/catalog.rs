//! The built-in catalog: common cloud images with their public download URLs, listable before
//! anything is downloaded. Creating an image "from the catalog" copies an entry into an
//! `ImageSpec` in the API layer, so the log carries the full spec and replaying it never
//! depends on the catalog of the release doing the replay.
//!
//! The URLs point at each distribution's rolling "current"/"latest" file, so no checksum is
//! pinned here: it would go stale with the next point release. Instead the first host to
//! complete a download pins the image's checksum (`ImageCommand::Verified`), and every other
//! host's copy must match it; give `--sha256` (from the distribution's SHA256SUMS) to have the
//! first copy checked too.

use super::{ImageFormat, ImageKind, ImageSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The image name it gets when created from the catalog.
    pub name: &'static str,
    pub os: &'static str,
    pub kind: ImageKind,
    pub format: ImageFormat,
    pub url: &'static str,
    /// One line for `quantix image catalog`.
    pub description: &'static str,
}

impl CatalogEntry {
    /// The spec of an image made from this entry.
    pub fn spec(&self, name: &str, pool: &str) -> ImageSpec {
        ImageSpec {
            name: name.to_string(),
            kind: self.kind,
            os: self.os.to_string(),
            format: self.format,
            url: self.url.to_string(),
            sha256: None,
            pool: pool.to_string(),
        }
    }
}

const fn cloud(
    name: &'static str,
    os: &'static str,
    url: &'static str,
    description: &'static str,
) -> CatalogEntry {
    CatalogEntry {
        name,
        os,
        kind: ImageKind::Cloud,
        format: ImageFormat::Qcow2,
        url,
        description,
    }
}

/// In the order `quantix image catalog` shows them. Names follow `<distribution>-<version>`.
pub const CATALOG: &[CatalogEntry] = &[
    cloud(
        "ubuntu-24.04",
        "ubuntu 24.04",
        "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
        "Ubuntu 24.04 LTS (Noble Numbat) server cloud image, amd64",
    ),
    cloud(
        "ubuntu-22.04",
        "ubuntu 22.04",
        "https://cloud-images.ubuntu.com/jammy/current/jammy-server-cloudimg-amd64.img",
        "Ubuntu 22.04 LTS (Jammy Jellyfish) server cloud image, amd64",
    ),
    cloud(
        "debian-13",
        "debian 13",
        "https://cloud.debian.org/images/cloud/trixie/latest/debian-13-generic-amd64.qcow2",
        "Debian 13 (trixie) generic cloud image, amd64",
    ),
    cloud(
        "debian-12",
        "debian 12",
        "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-generic-amd64.qcow2",
        "Debian 12 (bookworm) generic cloud image, amd64",
    ),
    cloud(
        "fedora-42",
        "fedora 42",
        "https://download.fedoraproject.org/pub/fedora/linux/releases/42/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2",
        "Fedora Cloud Base 42 (generic), x86_64",
    ),
    cloud(
        "rocky-9",
        "rocky 9",
        "https://dl.rockylinux.org/pub/rocky/9/images/x86_64/Rocky-9-GenericCloud-Base.latest.x86_64.qcow2",
        "Rocky Linux 9 generic cloud image, x86_64",
    ),
    cloud(
        "almalinux-9",
        "almalinux 9",
        "https://repo.almalinux.org/almalinux/9/cloud/x86_64/images/AlmaLinux-9-GenericCloud-latest.x86_64.qcow2",
        "AlmaLinux 9 generic cloud image, x86_64",
    ),
    cloud(
        "centos-stream-9",
        "centos stream 9",
        "https://cloud.centos.org/centos/9-stream/x86_64/images/CentOS-Stream-GenericCloud-9-latest.x86_64.qcow2",
        "CentOS Stream 9 generic cloud image, x86_64",
    ),
    cloud(
        "opensuse-leap-15.6",
        "opensuse leap 15.6",
        "https://download.opensuse.org/distribution/leap/15.6/appliances/openSUSE-Leap-15.6-Minimal-VM.x86_64-Cloud.qcow2",
        "openSUSE Leap 15.6 minimal VM, cloud flavour, x86_64",
    ),
    cloud(
        "alpine-3.21",
        "alpine 3.21",
        "https://dl-cdn.alpinelinux.org/alpine/v3.21/releases/cloud/nocloud_alpine-3.21.2-x86_64-bios-cloudinit-r0.qcow2",
        "Alpine Linux 3.21 NoCloud image with cloud-init, BIOS, x86_64",
    ),
];

/// The entry named `name`, if the catalog has one.
pub fn entry(name: &str) -> Option<&'static CatalogEntry> {
    CATALOG.iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_entry_is_a_valid_https_image_with_a_unique_name() {
        let mut names = BTreeSet::new();
        for e in CATALOG {
            assert!(names.insert(e.name), "{} is listed twice", e.name);
            assert!(e.url.starts_with("https://"), "{}: {}", e.name, e.url);
            let spec = e.spec(e.name, "local");
            assert_eq!(spec.validate(), Ok(spec.clone()), "{}", e.name);
        }
        for required in [
            "ubuntu-24.04",
            "ubuntu-22.04",
            "debian-12",
            "debian-13",
            "rocky-9",
            "almalinux-9",
            "centos-stream-9",
        ] {
            assert!(entry(required).is_some(), "{required} missing");
        }
        for prefix in ["fedora-", "opensuse-leap-", "alpine-"] {
            assert!(
                CATALOG.iter().any(|e| e.name.starts_with(prefix)),
                "{prefix}"
            );
        }
        assert!(entry("ubuntu-24.04").is_some_and(|e| e.url.contains("cloud-images.ubuntu.com")));
        assert!(entry("debian-12").is_some_and(|e| e.url.contains("cloud.debian.org")));
        assert!(entry("nope").is_none());
    }
}
