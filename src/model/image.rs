//! Images: cloud images (disk images VMs boot from as a backing file) and ISOs (boot media).
//! Owns: the image record, each host's download state, the overall status derived from them,
//! the validation of what a user asks for, and the built-in catalog (`catalog`). May use:
//! `model::names`. Fetching the bytes is the agent's job; this module only records what the
//! image is and what hosts reported.
//!
//! Where the bytes come from is read from `ImageSpec::url` (`ImageSource`): an http(s) URL
//! to download, `upload://HOST/FILE` for a file streamed to HOST, or `pool:PATH` for a file
//! already in the pool (found by a pool scan). The last two are never given by users; the
//! API makes them. Keeping them in the one `url` field keeps the stored layout unchanged.

pub mod catalog;
mod source;

pub use source::{validate_pool_path, validate_source, ImageSource, MAX_SOURCE_PATH};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;

use super::names::{self, NameError, MAX_LABEL};
use super::UnixMillis;

/// Longest source URL accepted.
pub const MAX_URL: usize = 2048;
/// Longest OS description.
pub const MAX_OS: usize = 64;
/// Longest failure reason kept from a host's report; longer ones are cut, not refused, so a
/// verbose error never loses the report.
pub const MAX_REASON: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImageError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("image name '{value}' must not have empty parts between dots, and each part must start and end with a letter or digit")]
    BadNameParts { value: String },
    #[error("url '{value}' {rule}")]
    BadUrl { value: String, rule: &'static str },
    #[error("sha256 '{value}' must be 64 hexadecimal characters")]
    BadSha256 { value: String },
    #[error("os '{value}' {rule}")]
    BadOs { value: String, rule: &'static str },
    #[error("format {format} does not fit kind {kind}: {rule}")]
    FormatMismatch {
        format: ImageFormat,
        kind: ImageKind,
        rule: &'static str,
    },
    #[error("kind '{value}' is not one of cloud, iso")]
    BadKind { value: String },
    #[error("format '{value}' is not one of qcow2, raw, iso")]
    BadFormat { value: String },
    #[error("percent {value} is above 100")]
    BadPercent { value: u8 },
    #[error("bytes done ({done}) exceed bytes total ({total})")]
    BadBytes { done: u64, total: u64 },
    #[error("reason must say why the download failed")]
    NoReason,
    #[error("source '{value}' {rule}")]
    BadSource { value: String, rule: &'static str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageKind {
    /// A disk image with cloud-init, used as the backing file of VM disks.
    Cloud,
    /// An installer or live ISO, attached as a CD-ROM.
    Iso,
}

impl ImageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Cloud => "cloud",
            ImageKind::Iso => "iso",
        }
    }

    pub fn parse(s: &str) -> Result<ImageKind, ImageError> {
        match s {
            "cloud" => Ok(ImageKind::Cloud),
            "iso" => Ok(ImageKind::Iso),
            other => Err(ImageError::BadKind {
                value: other.to_string(),
            }),
        }
    }

    /// The format an image of this kind has when the user does not say.
    pub fn default_format(self) -> ImageFormat {
        match self {
            ImageKind::Cloud => ImageFormat::Qcow2,
            ImageKind::Iso => ImageFormat::Iso,
        }
    }
}

impl fmt::Display for ImageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageFormat {
    Qcow2,
    Raw,
    Iso,
}

impl ImageFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Raw => "raw",
            ImageFormat::Iso => "iso",
        }
    }

    pub fn parse(s: &str) -> Result<ImageFormat, ImageError> {
        match s {
            "qcow2" => Ok(ImageFormat::Qcow2),
            "raw" => Ok(ImageFormat::Raw),
            "iso" => Ok(ImageFormat::Iso),
            other => Err(ImageError::BadFormat {
                value: other.to_string(),
            }),
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a user asks for: a validated, normalised image definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub name: String,
    pub kind: ImageKind,
    /// Free text such as "ubuntu 24.04"; may be empty.
    pub os: String,
    pub format: ImageFormat,
    pub url: String,
    /// Lower-case hex, when the user gave one.
    pub sha256: Option<String>,
    /// The pool the image is stored in.
    pub pool: String,
}

impl ImageSpec {
    /// Where the bytes come from.
    pub fn source(&self) -> ImageSource<'_> {
        ImageSource::of(&self.url)
    }

    /// Checks every field and returns the normalised spec (sha256 lower-case, os trimmed).
    pub fn validate(&self) -> Result<ImageSpec, ImageError> {
        validate_name(&self.name)?;
        names::validate_label("pool name", &self.pool)?;
        validate_source(&self.url)?;
        let os = self.os.trim();
        if os.chars().count() > MAX_OS {
            return Err(ImageError::BadOs {
                value: self.os.clone(),
                rule: "is longer than 64 characters",
            });
        }
        if os.chars().any(char::is_control) {
            return Err(ImageError::BadOs {
                value: self.os.clone(),
                rule: "must not contain control characters",
            });
        }
        match (self.kind, self.format) {
            (ImageKind::Iso, ImageFormat::Iso)
            | (ImageKind::Cloud, ImageFormat::Qcow2 | ImageFormat::Raw) => {}
            (ImageKind::Iso, format) => {
                return Err(ImageError::FormatMismatch {
                    format,
                    kind: self.kind,
                    rule: "an iso image has format iso",
                })
            }
            (ImageKind::Cloud, format) => {
                return Err(ImageError::FormatMismatch {
                    format,
                    kind: self.kind,
                    rule: "a cloud image is qcow2 or raw (use --kind iso for an ISO)",
                })
            }
        }
        let sha256 = match &self.sha256 {
            Some(s) => Some(validate_sha256(s)?),
            None => None,
        };
        Ok(ImageSpec {
            os: os.to_string(),
            sha256,
            ..self.clone()
        })
    }
}

/// An image name: like a DNS name of at most 63 characters (lower-case letters, digits, '-'
/// and '.'), each dot-separated part starting and ending with a letter or digit. Dots are
/// allowed, unlike VM and pool names, because image names carry versions (`ubuntu-24.04`).
pub fn validate_name(value: &str) -> Result<(), ImageError> {
    let field = "image name";
    if value.is_empty() {
        return Err(NameError::Empty { field }.into());
    }
    if value.len() > MAX_LABEL {
        return Err(NameError::TooLong {
            field,
            value: value.to_string(),
            max: MAX_LABEL,
        }
        .into());
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(NameError::BadChar {
            field,
            value: value.to_string(),
            allowed: "lower-case letters, digits, '-' and '.'",
        }
        .into());
    }
    if value
        .split('.')
        .any(|part| names::validate_label(field, part).is_err())
    {
        return Err(ImageError::BadNameParts {
            value: value.to_string(),
        });
    }
    Ok(())
}

/// An http or https URL with a host, no credentials, no spaces or control characters.
/// Credentials are refused because image records are shown to every user of the cluster.
pub fn validate_url(value: &str) -> Result<(), ImageError> {
    let bad = |rule| ImageError::BadUrl {
        value: value.to_string(),
        rule,
    };
    if value.is_empty() {
        return Err(bad("must not be empty"));
    }
    if value.len() > MAX_URL {
        return Err(bad("is longer than 2048 characters"));
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("must not contain spaces or control characters"));
    }
    let lower = value.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &value["https://".len()..]
    } else if lower.starts_with("http://") {
        &value["http://".len()..]
    } else {
        return Err(bad("must start with http:// or https://"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad("must not carry a user name or password"));
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, port)) if addr.parse::<std::net::Ipv6Addr>().is_ok() => {
                check_port(port).map_err(|()| bad("has a bad port"))?;
                addr
            }
            _ => return Err(bad("has a bad IPv6 address")),
        }
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if let Some(p) = port {
            check_port(&format!(":{p}")).map_err(|()| bad("has a bad port"))?;
        }
        let host_ok = !host.is_empty()
            && host
                .trim_end_matches('.')
                .split('.')
                .all(|l| names::validate_label("host", &l.to_ascii_lowercase()).is_ok());
        if !host_ok {
            return Err(bad("must name a host (such as cloud-images.ubuntu.com)"));
        }
        host
    };
    if host.is_empty() {
        return Err(bad("must name a host (such as cloud-images.ubuntu.com)"));
    }
    Ok(())
}

/// `""` or `":N"` with N in 1..=65535.
fn check_port(s: &str) -> Result<(), ()> {
    if s.is_empty() {
        return Ok(());
    }
    match s.strip_prefix(':').map(str::parse::<u16>) {
        Some(Ok(p)) if p > 0 => Ok(()),
        _ => Err(()),
    }
}

/// An image name made from a file name: the stem (without `.iso`, `.qcow2`, `.img`, `.raw`)
/// lower-cased, other characters turned into '-', runs of them into one, cut to 63
/// characters. `None` when nothing valid is left.
pub fn name_from_file(file: &str) -> Option<String> {
    let base = file.rsplit('/').next().unwrap_or(file);
    let lower = base.to_ascii_lowercase();
    let stem = [".iso", ".qcow2", ".img", ".raw"]
        .iter()
        .find_map(|ext| lower.strip_suffix(ext))
        .unwrap_or(&lower);
    let mut out = String::new();
    for c in stem.chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' {
            c
        } else {
            '-'
        };
        let prev = out.chars().last();
        if matches!((prev, c), (Some('-' | '.'), '-' | '.')) {
            continue;
        }
        out.push(c);
    }
    let mut out: String = out
        .trim_matches(['-', '.'])
        .chars()
        .take(MAX_LABEL)
        .collect();
    while out.ends_with(['-', '.']) {
        out.pop();
    }
    validate_name(&out).ok().map(|()| out)
}

/// 64 hex characters; returned lower-case.
pub fn validate_sha256(value: &str) -> Result<String, ImageError> {
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ImageError::BadSha256 {
            value: value.to_string(),
        });
    }
    Ok(value.to_ascii_lowercase())
}

/// What one host reports about its copy of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostImageStatus {
    /// `bytes_total` is 0 when the server did not say how large the image is.
    Downloading {
        percent: u8,
        bytes_done: u64,
        bytes_total: u64,
    },
    Ready,
    Failed {
        reason: String,
    },
}

impl HostImageStatus {
    /// Checks a report and returns it normalised (a long reason cut to `MAX_REASON`).
    pub fn validate(&self) -> Result<HostImageStatus, ImageError> {
        match self {
            HostImageStatus::Downloading {
                percent,
                bytes_done,
                bytes_total,
            } => {
                if *percent > 100 {
                    return Err(ImageError::BadPercent { value: *percent });
                }
                if *bytes_total > 0 && bytes_done > bytes_total {
                    return Err(ImageError::BadBytes {
                        done: *bytes_done,
                        total: *bytes_total,
                    });
                }
                Ok(self.clone())
            }
            HostImageStatus::Ready => Ok(self.clone()),
            HostImageStatus::Failed { reason } => {
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(ImageError::NoReason);
                }
                Ok(HostImageStatus::Failed {
                    reason: reason.chars().take(MAX_REASON).collect(),
                })
            }
        }
    }
}

/// A host's last report and when it was committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostImage {
    pub status: HostImageStatus,
    pub at: UnixMillis,
}

/// The status of an image as a whole, derived from the hosts' reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageStatus {
    /// No host has reported yet.
    Pending,
    /// No host has it yet; the furthest download is at `percent`.
    Downloading { percent: u8 },
    /// At least one host has it.
    Ready,
    /// Every host that reported failed; `reason` names them.
    Failed { reason: String },
}

impl ImageStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ImageStatus::Pending => "pending",
            ImageStatus::Downloading { .. } => "downloading",
            ImageStatus::Ready => "ready",
            ImageStatus::Failed { .. } => "failed",
        }
    }
}

/// An image as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub spec: ImageSpec,
    /// Size in MiB once a host learnt it (from the download's total).
    pub size_mib: Option<u64>,
    pub created_at: UnixMillis,
    /// Each host's last report, by host name.
    pub hosts: BTreeMap<String, HostImage>,
}

impl Image {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Ready as soon as one host has it: a VM can be placed there (and on a shared pool every
    /// host sees that copy). A host still downloading keeps the image from counting as failed.
    pub fn status(&self) -> ImageStatus {
        if self.hosts.is_empty() {
            return ImageStatus::Pending;
        }
        let mut furthest: Option<u8> = None;
        let mut failures = Vec::new();
        for (host, h) in &self.hosts {
            match &h.status {
                HostImageStatus::Ready => return ImageStatus::Ready,
                HostImageStatus::Downloading { percent, .. } => {
                    furthest = Some(furthest.map_or(*percent, |f| f.max(*percent)));
                }
                HostImageStatus::Failed { reason } => failures.push(format!("{host}: {reason}")),
            }
        }
        match furthest {
            Some(percent) => ImageStatus::Downloading { percent },
            None => ImageStatus::Failed {
                reason: failures.join("; "),
            },
        }
    }

    /// Hosts that report the image ready, in name order.
    pub fn ready_on(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|(_, h)| h.status == HostImageStatus::Ready)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests;
