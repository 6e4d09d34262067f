//! Image commands (`ImageCommand`), their apply, and images queries. Images are stored in
//! `Table::Images` keyed by name, so the name is unique by construction.
//! Invariants kept here: an image's pool exists when it is created (and `pools::delete`
//! refuses while an image names it, through `referrers`); an image is not deleted while a VM
//! refers to it; download reports come only from member hosts and are kept per host.
//! May use: `model`, `state::{kv, tables, codec, refs}`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::codec::decode;
use super::command::{Applied, Outcome, RejectKind};
use super::kv::{Kv, KvError, KvRead, Table};
use super::refs::{self, Ref};
use super::{pools, tables};
use crate::model::image::{HostImage, HostImageStatus, Image, ImageSpec};
use crate::model::UnixMillis;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageCommand {
    /// Registers an image; no host has it yet (status pending).
    CreateImage(ImageSpec),
    DeleteImage {
        name: String,
    },
    /// A host's report on its copy: download progress, ready, or failed.
    Observe {
        image: String,
        host: String,
        status: HostImageStatus,
    },
    /// A host's copy is complete and hashed: records the host ready and the size, and pins the
    /// image's checksum to `sha256` if it had none (the first verified copy sets it; every
    /// later copy must match it). Refused with the two checksums when they differ.
    Verified {
        image: String,
        host: String,
        sha256: String,
        size_bytes: u64,
    },
}

impl ImageCommand {
    pub fn kind(&self) -> &'static str {
        match self {
            ImageCommand::CreateImage(_) => "create_image",
            ImageCommand::DeleteImage { .. } => "delete_image",
            ImageCommand::Observe { .. } => "observe_image",
            ImageCommand::Verified { .. } => "verify_image",
        }
    }

    /// The entity the command is about, for the event log.
    pub fn target(&self) -> String {
        match self {
            ImageCommand::CreateImage(s) => format!("image {}", s.name),
            ImageCommand::DeleteImage { name } => format!("image {name}"),
            ImageCommand::Observe { image, .. } | ImageCommand::Verified { image, .. } => {
                format!("image {image}")
            }
        }
    }
}

/// What a successful ImageCommand returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageApplied {
    ImageCreated(Image),
    ImageDeleted { name: String },
    ImageObserved(Image),
}

pub fn apply(kv: &mut impl Kv, at: UnixMillis, cmd: &ImageCommand) -> Result<Outcome, KvError> {
    match cmd {
        ImageCommand::CreateImage(spec) => create(kv, at, spec),
        ImageCommand::DeleteImage { name } => delete(kv, name),
        ImageCommand::Observe {
            image,
            host,
            status,
        } => observe(kv, at, image, host, status),
        ImageCommand::Verified {
            image,
            host,
            sha256,
            size_bytes,
        } => verified(kv, at, image, host, sha256, *size_bytes),
    }
}

fn applied(a: ImageApplied) -> Outcome {
    Outcome::Applied(Applied::Image(a))
}

fn create(kv: &mut impl Kv, at: UnixMillis, spec: &ImageSpec) -> Result<Outcome, KvError> {
    let spec = match spec.validate() {
        Ok(s) => s,
        Err(e) => return Ok(Outcome::reject(RejectKind::InvalidArgument, e.to_string())),
    };
    if get(kv, &spec.name)?.is_some() {
        return Ok(Outcome::reject(
            RejectKind::AlreadyExists,
            format!("image {} already exists", spec.name),
        ));
    }
    if pools::get(kv, &spec.pool)?.is_none() {
        return Ok(Outcome::reject(
            RejectKind::NotFound,
            format!(
                "pool {} does not exist (image {} is stored in it; create it with `quantix pool create`)",
                spec.pool, spec.name
            ),
        ));
    }
    let image = Image {
        spec,
        size_mib: None,
        created_at: at,
        hosts: BTreeMap::new(),
    };
    tables::put(kv, Table::Images, image.name().as_bytes(), &image)?;
    Ok(applied(ImageApplied::ImageCreated(image)))
}

fn delete(kv: &mut impl Kv, name: &str) -> Result<Outcome, KvError> {
    if get(kv, name)?.is_none() {
        return Ok(Outcome::reject(
            RejectKind::NotFound,
            format!("image {name} does not exist"),
        ));
    }
    if let Some(refusal) = refs::refuse_if_referenced(kv, Ref::Image(name), |users| {
        format!("image {name} is in use by {users}; delete those first")
    })? {
        return Ok(refusal);
    }
    kv.delete(Table::Images, name.as_bytes())?;
    Ok(applied(ImageApplied::ImageDeleted { name: name.into() }))
}

/// The image a host reports on, or the refusal: the image must exist and the host be a member.
fn reported(kv: &impl Kv, name: &str, host: &str) -> Result<Result<Image, Outcome>, KvError> {
    let Some(image) = get(kv, name)? else {
        return Ok(Err(Outcome::reject(
            RejectKind::NotFound,
            format!("image {name} does not exist"),
        )));
    };
    if tables::host(kv, host)?.is_none() {
        return Ok(Err(Outcome::reject(
            RejectKind::NotFound,
            format!("host {host} is not a member (reporting on image {name})"),
        )));
    }
    Ok(Ok(image))
}

fn observe(
    kv: &mut impl Kv,
    at: UnixMillis,
    name: &str,
    host: &str,
    status: &HostImageStatus,
) -> Result<Outcome, KvError> {
    let mut image = match reported(kv, name, host)? {
        Ok(image) => image,
        Err(refusal) => return Ok(refusal),
    };
    let status = match status.validate() {
        Ok(s) => s,
        Err(e) => {
            return Ok(Outcome::reject(
                RejectKind::InvalidArgument,
                format!("report on image {name} from host {host}: {e}"),
            ))
        }
    };
    if let HostImageStatus::Downloading { bytes_total, .. } = status {
        if bytes_total > 0 {
            image.size_mib = Some(bytes_total.div_ceil(1024 * 1024));
        }
    }
    image
        .hosts
        .insert(host.to_string(), HostImage { status, at });
    tables::put(kv, Table::Images, name.as_bytes(), &image)?;
    Ok(applied(ImageApplied::ImageObserved(image)))
}

fn verified(
    kv: &mut impl Kv,
    at: UnixMillis,
    name: &str,
    host: &str,
    sha256: &str,
    size_bytes: u64,
) -> Result<Outcome, KvError> {
    let mut image = match reported(kv, name, host)? {
        Ok(image) => image,
        Err(refusal) => return Ok(refusal),
    };
    let got = match crate::model::image::validate_sha256(sha256) {
        Ok(s) => s,
        Err(e) => {
            return Ok(Outcome::reject(
                RejectKind::InvalidArgument,
                format!("report on image {name} from host {host}: {e}"),
            ))
        }
    };
    match &image.spec.sha256 {
        Some(want) if *want != got => {
            return Ok(Outcome::reject(
                RejectKind::FailedPrecondition,
                format!(
                    "checksum mismatch for image {name} on host {host}: expected sha256 {want}, got {got}"
                ),
            ))
        }
        Some(_) => {}
        None => image.spec.sha256 = Some(got),
    }
    image.size_mib = Some(size_bytes.div_ceil(1024 * 1024));
    image.hosts.insert(
        host.to_string(),
        HostImage {
            status: HostImageStatus::Ready,
            at,
        },
    );
    tables::put(kv, Table::Images, name.as_bytes(), &image)?;
    Ok(applied(ImageApplied::ImageObserved(image)))
}

/// One image by name.
pub fn get(kv: &impl KvRead, name: &str) -> Result<Option<Image>, KvError> {
    tables::get(kv, Table::Images, "image", name.as_bytes())
}

/// Every image (only those in `pool`, when given), in name order.
pub fn list(kv: &impl KvRead, pool: Option<&str>) -> Result<Vec<Image>, KvError> {
    let mut out = Vec::new();
    for (_, v) in kv.prefix(Table::Images, b"")? {
        let image: Image = decode("image", &v)?;
        if pool.is_none_or(|p| image.spec.pool == p) {
            out.push(image);
        }
    }
    Ok(out)
}

/// Images that refer to `r` (see `state::refs`): an image refers to its pool.
pub fn referrers(kv: &impl KvRead, r: Ref<'_>, limit: usize) -> Result<Vec<String>, KvError> {
    let Ref::Pool(pool) = r else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (_, v) in kv.prefix(Table::Images, b"")? {
        if out.len() >= limit {
            break;
        }
        let image: Image = decode("image", &v)?;
        if image.spec.pool == pool {
            out.push(format!("image {}", image.spec.name));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
