//! `PoolService.ScanPool`: imports files already in a pool as images (the old system's "ISO
//! scanning"). Only regular files at the top level of the pool's directory are looked at: VM
//! directories (`<pool>/<vm>/`) and the agent's `images/` are subdirectories, so neither a
//! VM's disk nor a managed copy is ever imported. `.iso` files become ISO images, `.qcow2`
//! and `.img` files with the qcow2 magic become cloud images. The image's source is
//! `pool:FILE`: the file stays where it is, and the agent on each host that has it links it
//! into `images/` (see `agent::images`), hashes it and reports it ready. Deleting such an
//! image removes that link and never the user's file, so a later scan imports it again.
//! Owns: `scan`, `plan` (pure). Uses: `cluster::Host`, `state::{images, pools}`, `model::image`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use tonic::Status;

use crate::api::status::to_status;
use crate::cluster::{ClusterError, Host};
use crate::model::image::{name_from_file, ImageFormat, ImageKind, ImageSource, ImageSpec};
use crate::proto::v1 as pb;
use crate::state::images::{self, ImageCommand};
use crate::state::{pools, Command};

const QCOW2_MAGIC: &[u8; 4] = b"QFI\xfb";

/// What a top-level file is, from its name and first bytes; `Err` says why it is skipped.
pub fn kind_of(file: &str, head: &[u8]) -> Result<(ImageKind, ImageFormat), &'static str> {
    let lower = file.to_ascii_lowercase();
    if lower.ends_with(".iso") {
        return Ok((ImageKind::Iso, ImageFormat::Iso));
    }
    if lower.ends_with(".qcow2") || lower.ends_with(".img") {
        return if head.starts_with(QCOW2_MAGIC) {
            Ok((ImageKind::Cloud, ImageFormat::Qcow2))
        } else {
            Err("not a qcow2 file (no qcow2 header)")
        };
    }
    Err("not an .iso, .qcow2 or .img file")
}

/// One decision of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    pub file: String,
    pub image: String,
    /// `Some` when it is to be imported.
    pub spec: Option<ImageSpec>,
    pub reason: String,
}

/// What `kind_of` found for one file.
pub type FileKind = Result<(ImageKind, ImageFormat), &'static str>;

/// Decides for each `(file, kind)` found in `pool`, given the existing images (name → url).
pub fn plan(
    pool: &str,
    found: &[(String, FileKind)],
    existing: &BTreeMap<String, String>,
) -> Vec<Scanned> {
    use std::collections::btree_map::Entry;
    let mut taken = existing.clone();
    let mut out = Vec::new();
    for (file, kind) in found {
        let url = ImageSource::pool_url(file);
        let name = name_from_file(file).unwrap_or_default();
        let mut s = Scanned {
            file: file.clone(),
            image: name.clone(),
            spec: None,
            reason: String::new(),
        };
        if let Some((n, _)) = taken.iter().find(|(_, u)| **u == url) {
            s.image = n.clone();
            s.reason = format!("already imported as image {n}");
        } else if name.is_empty() && kind.is_ok() {
            s.reason = "no image name can be made from the file name".into();
        } else {
            match (kind, taken.entry(name.clone())) {
                (Err(why), _) => {
                    s.image = String::new();
                    s.reason = (*why).to_string();
                }
                (Ok(_), Entry::Occupied(_)) => {
                    s.reason = format!("an image named {name} already exists");
                }
                (Ok((kind, format)), Entry::Vacant(slot)) => {
                    let spec = ImageSpec {
                        name: name.clone(),
                        kind: *kind,
                        os: String::new(),
                        format: *format,
                        url: url.clone(),
                        sha256: None,
                        pool: pool.to_string(),
                    };
                    match spec.validate() {
                        Ok(spec) => {
                            slot.insert(url);
                            s.spec = Some(spec);
                        }
                        Err(e) => s.reason = e.to_string(),
                    }
                }
            }
        }
        out.push(s);
    }
    out
}

/// Regular files at the top level of `dir` with their first bytes, in name order.
fn list_top_level(dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if !e.file_type()?.is_file() {
            continue;
        }
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let mut head = vec![0u8; 8];
        let n = std::fs::File::open(e.path())
            .and_then(|mut f| f.read(&mut head))
            .unwrap_or(0);
        head.truncate(n);
        out.push((name, head));
    }
    out.sort();
    Ok(out)
}

pub async fn scan(host: &Host, r: pb::ScanPoolRequest) -> Result<pb::ScanPoolResponse, Status> {
    let me = host.name().to_string();
    let internal = |e: crate::state::KvError| to_status(ClusterError::internal(e));
    host.read_barrier(false).await.map_err(to_status)?;
    let (pool, existing) = {
        let state = host.state().map_err(to_status)?;
        let pool = pools::get(&state, &r.name)
            .map_err(internal)?
            .ok_or_else(|| {
                to_status(ClusterError::NotFound(format!(
                    "pool {} does not exist",
                    r.name
                )))
            })?;
        let existing: BTreeMap<String, String> = images::list(&state, None)
            .map_err(internal)?
            .into_iter()
            .map(|i| {
                let url = if i.spec.pool == r.name {
                    i.spec.url
                } else {
                    String::new()
                };
                (i.spec.name, url)
            })
            .collect();
        (pool, existing)
    };
    let dir = Path::new(pool.spec.kind.local_path()).to_path_buf();
    let listed = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || list_top_level(&dir)
    })
    .await
    .map_err(|e| to_status(ClusterError::internal(e)))?
    .map_err(|e| {
        to_status(ClusterError::FailedPrecondition(format!(
            "host {me} cannot read pool {} at {}: {e}",
            pool.spec.name,
            dir.display()
        )))
    })?;
    let found: Vec<_> = listed
        .iter()
        .map(|(name, head)| (name.clone(), kind_of(name, head)))
        .collect();
    let mut files = Vec::new();
    for (i, s) in plan(&pool.spec.name, &found, &existing)
        .into_iter()
        .enumerate()
    {
        let mut out = pb::ScannedFile {
            file: s.file,
            image: s.image,
            imported: false,
            reason: s.reason,
        };
        if let Some(spec) = s.spec {
            let id = (!r.request_id.is_empty()).then(|| format!("{}-{i}", r.request_id));
            match host
                .write_ok(Command::Image(ImageCommand::CreateImage(spec)), id)
                .await
            {
                Ok(_) => out.imported = true,
                Err(e) => out.reason = e.to_string(),
            }
        }
        files.push(out);
    }
    tracing::info!(pool = %pool.spec.name, imported = files.iter().filter(|f| f.imported).count(), "pool scanned");
    Ok(pb::ScanPoolResponse { files, host: me })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_recognised_by_name_and_header() {
        assert_eq!(
            kind_of("Debian.ISO", b""),
            Ok((ImageKind::Iso, ImageFormat::Iso))
        );
        assert_eq!(
            kind_of("jammy.img", b"QFI\xfb\0\0\0\x03"),
            Ok((ImageKind::Cloud, ImageFormat::Qcow2))
        );
        assert!(kind_of("raw.img", b"\0\0\0\0").is_err());
        assert!(kind_of("notes.txt", b"hello").is_err());
    }

    #[test]
    fn a_scan_imports_new_files_once_and_says_why_it_skips() {
        let found = vec![
            ("a.iso".to_string(), Ok((ImageKind::Iso, ImageFormat::Iso))),
            ("b.iso".to_string(), Ok((ImageKind::Iso, ImageFormat::Iso))),
            ("B.iso".to_string(), Ok((ImageKind::Iso, ImageFormat::Iso))),
            (
                "c.qcow2".to_string(),
                Ok((ImageKind::Cloud, ImageFormat::Qcow2)),
            ),
            ("x.txt".to_string(), Err("not an .iso, .qcow2 or .img file")),
            (
                "taken.iso".to_string(),
                Ok((ImageKind::Iso, ImageFormat::Iso)),
            ),
        ];
        let existing: BTreeMap<String, String> = [
            ("old-a".to_string(), ImageSource::pool_url("a.iso")),
            ("taken".to_string(), "https://x.org/t.iso".to_string()),
        ]
        .into();
        let out = plan("isos", &found, &existing);
        let summary: Vec<(&str, &str, bool, &str)> = out
            .iter()
            .map(|s| {
                (
                    s.file.as_str(),
                    s.image.as_str(),
                    s.spec.is_some(),
                    s.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("a.iso", "old-a", false, "already imported as image old-a"),
                ("b.iso", "b", true, ""),
                ("B.iso", "b", false, "an image named b already exists"),
                ("c.qcow2", "c", true, ""),
                ("x.txt", "", false, "not an .iso, .qcow2 or .img file"),
                (
                    "taken.iso",
                    "taken",
                    false,
                    "an image named taken already exists"
                ),
            ]
        );
        let b = out[1].spec.as_ref().unwrap();
        assert_eq!(b.url, "pool:b.iso");
        assert_eq!((b.kind, b.pool.as_str()), (ImageKind::Iso, "isos"));
    }
}
