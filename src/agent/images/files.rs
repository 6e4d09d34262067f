//! An image's files on this host, all under `<pool dir>/images/` (`desired::image_path`):
//!
//! - `<name>.<format>`: the published copy, only ever made by publishing a complete, verified
//!   file; publishing never replaces an existing file (hard link, so a concurrent publisher on
//!   shared storage loses cleanly instead of clobbering).
//! - `<name>.<format>.quantix.json` (`Sidecar`): written just before publishing. It says which
//!   image incarnation (name and `created_at`) the file belongs to, its sha256 and size, and
//!   which host wrote it. Only files with a sidecar naming this host are ever removed by this
//!   host; a file someone else put in `images/` is never touched.
//! - `<name>.<format>.<host>.part` and `.part.json` (`PartMeta`): a download in progress,
//!   one per host so hosts sharing a directory never write into the same file; the meta keeps
//!   the URL, incarnation and the server's validator (ETag / Last-Modified) for a Range resume.
//!
//! Owns: the names above, `Sidecar`, `PartMeta`, `publish`, `hash_file`, `link_into`,
//! `leftovers` (pure: which of this host's files no longer belong to an image).
//! Uses: `model::image`, the file system.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::ImagesError;
use crate::model::UnixMillis;

const SIDECAR: &str = ".quantix.json";

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// This host's partial download of `final_path`.
pub fn part_path(final_path: &Path, me: &str) -> PathBuf {
    with_suffix(final_path, &format!(".{me}.part"))
}

pub fn part_meta_path(final_path: &Path, me: &str) -> PathBuf {
    with_suffix(final_path, &format!(".{me}.part.json"))
}

pub fn sidecar_path(final_path: &Path) -> PathBuf {
    with_suffix(final_path, SIDECAR)
}

/// What Quantix knows about a published file, next to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidecar {
    pub image: String,
    /// The image record's `created_at`: an image deleted and created again under the same name
    /// is another incarnation, and an old file is not taken for it.
    pub created_at: UnixMillis,
    pub sha256: String,
    pub size_bytes: u64,
    /// The host that wrote the file; only it removes the file.
    pub host: String,
    pub source: String,
}

/// What a resumed download must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    pub url: String,
    pub created_at: UnixMillis,
    /// A strong ETag or a Last-Modified date, sent as `If-Range` on resume.
    pub validator: Option<String>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ImagesError + '_ {
    move |source| ImagesError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a small JSON file; `None` if it is missing or unreadable (treated as absent).
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes a small JSON file atomically (temporary file, fsync, rename).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ImagesError> {
    // Hosts sharing the directory may write the same sidecar at once: each its own temp file.
    let tmp = with_suffix(path, &format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| ImagesError::Io {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    })?;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Removes a file; a missing one is fine.
pub fn remove(path: &Path) -> Result<(), ImagesError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// The outcome of publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// `part` is now at the final path.
    Done,
    /// Another file already holds the final path (a host sharing the directory won); `part`
    /// is left for the caller.
    Taken,
}

/// Makes `part` appear at `final_path` without ever replacing a file there, then drops the
/// `part` name. The hard link is atomic: no reader ever sees a partial final file.
pub fn publish(part: &Path, final_path: &Path) -> Result<Published, ImagesError> {
    match std::fs::hard_link(part, final_path) {
        Ok(()) => {
            remove(part)?;
            Ok(Published::Done)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Published::Taken),
        Err(e) => Err(io_err(final_path)(e)),
    }
}

/// Makes a file already in the pool (a scanned one) appear at `final_path`: a hard link (no
/// copy, same bytes), or a relative symbolic link when a hard link is not possible.
pub fn link_into(source: &Path, final_path: &Path) -> Result<Published, ImagesError> {
    match std::fs::hard_link(source, final_path) {
        Ok(()) => Ok(Published::Done),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Published::Taken),
        Err(_) => match std::os::unix::fs::symlink(source, final_path) {
            Ok(()) => Ok(Published::Done),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Published::Taken),
            Err(e) => Err(io_err(final_path)(e)),
        },
    }
}

/// sha256 (lower-case hex) and length of a file, calling `progress(bytes so far)` as it goes.
/// Blocking: run it on the blocking pool.
pub fn hash_file(path: &Path, mut progress: impl FnMut(u64)) -> Result<(String, u64), ImagesError> {
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        progress(done);
    }
    Ok((hex::encode(hasher.finalize()), done))
}

/// Feeds the first `len` bytes of `path` into `hasher` (a resumed download's earlier part).
pub fn hash_prefix(path: &Path, len: u64, hasher: &mut Sha256) -> Result<(), ImagesError> {
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut r = f.take(len);
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = r.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    if done != len {
        return Err(io_err(path)(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("expected {len} bytes, read {done}"),
        )));
    }
    Ok(())
}

/// One file in an `images/` directory, as `leftovers` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// `<file>.<host>.part` (with `.part.json`): a download by `host`.
    Part { file: String, host: String },
    /// `<file>.<host>.upload`: an upload received by `host` (see `api::image::upload`).
    Upload { host: String },
    /// A published file's sidecar: `<file>.quantix.json` with what it says.
    Sidecar { file: String, sidecar: Sidecar },
    /// Anything else: never touched.
    Other,
}

/// Classifies a directory entry's name (`read_sidecar` reads a sidecar by file name).
pub fn classify(name: &str, read_sidecar: impl Fn(&str) -> Option<Sidecar>) -> Found {
    if let Some(file) = name.strip_suffix(SIDECAR) {
        return match read_sidecar(name) {
            Some(sidecar) => Found::Sidecar {
                file: file.to_string(),
                sidecar,
            },
            None => Found::Other,
        };
    }
    if let Some((_, host)) = name
        .strip_suffix(".upload")
        .and_then(|s| s.rsplit_once('.'))
    {
        if !host.is_empty() {
            return Found::Upload {
                host: host.to_string(),
            };
        }
    }
    let stem = name
        .strip_suffix(".part.json")
        .or_else(|| name.strip_suffix(".part"));
    if let Some((file, host)) = stem.and_then(|s| s.rsplit_once('.')) {
        if !host.is_empty() && !file.is_empty() {
            return Found::Part {
                file: file.to_string(),
                host: host.to_string(),
            };
        }
    }
    Found::Other
}

/// Which of this host's files in one `images/` directory belong to no current image.
/// `current` maps each file name the pool's images should have (`<name>.<format>`) to the
/// image's `created_at`. A part is this host's if its name says so; a published file is this
/// host's if its sidecar says so. An upload file of this host is left over once `idle` says
/// nothing wrote it for a while (an upload that died with its connection or its daemon).
/// Returns names to remove (file and sidecar, or part and meta).
pub fn leftovers(
    found: &[(String, Found)],
    current: &BTreeMap<String, UnixMillis>,
    me: &str,
    part_incarnation: impl Fn(&str) -> Option<UnixMillis>,
    idle: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, f) in found {
        match f {
            Found::Upload { host } if host == me && idle(name) => out.push(name.clone()),
            Found::Part { file, host } if host == me => {
                let keep = match (current.get(file), part_incarnation(name)) {
                    (Some(c), Some(p)) => *c == p,
                    // A part without its meta is kept while the image exists: the next try
                    // finds no validator and starts again.
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if !keep {
                    out.push(name.clone());
                }
            }
            Found::Sidecar { file, sidecar }
                if sidecar.host == me && current.get(file) != Some(&sidecar.created_at) =>
            {
                out.push(file.clone());
                out.push(name.clone());
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sidecar(host: &str, created_at: u64) -> Sidecar {
        Sidecar {
            image: "a".into(),
            created_at,
            sha256: "00".repeat(32),
            size_bytes: 1,
            host: host.into(),
            source: "http://x.org/a".into(),
        }
    }

    #[test]
    fn names_are_classified() {
        let read = |n: &str| (n == "a.iso.quantix.json").then(|| sidecar("h1", 5));
        assert_eq!(
            classify("a.iso.host1.part", read),
            Found::Part {
                file: "a.iso".into(),
                host: "host1".into()
            }
        );
        assert_eq!(
            classify("a.iso.host1.part.json", read),
            Found::Part {
                file: "a.iso".into(),
                host: "host1".into()
            }
        );
        assert_eq!(
            classify("a.iso.quantix.json", read),
            Found::Sidecar {
                file: "a.iso".into(),
                sidecar: sidecar("h1", 5)
            }
        );
        assert_eq!(classify("b.iso.quantix.json", read), Found::Other);
        assert_eq!(classify("a.iso", read), Found::Other);
        assert_eq!(
            classify("a.iso.host2.upload", read),
            Found::Upload {
                host: "host2".into()
            }
        );
        assert_eq!(classify(".part", read), Found::Other);
    }

    #[test]
    fn only_this_hosts_files_of_gone_images_are_left_over() {
        let found: Vec<(String, Found)> = [
            ("kept.iso.quantix.json", sidecar("h1", 5)),
            ("gone.iso.quantix.json", sidecar("h1", 5)),
            ("recreated.iso.quantix.json", sidecar("h1", 5)),
            ("theirs.iso.quantix.json", sidecar("h2", 5)),
        ]
        .into_iter()
        .map(|(n, s)| {
            (
                n.to_string(),
                Found::Sidecar {
                    file: n.trim_end_matches(SIDECAR).to_string(),
                    sidecar: s,
                },
            )
        })
        .chain(
            [
                ("kept.iso.h1.part", "kept.iso", "h1"),
                ("gone.iso.h1.part", "gone.iso", "h1"),
                ("gone.iso.h1.part.json", "gone.iso", "h1"),
                ("gone.iso.h2.part", "gone.iso", "h2"),
                ("recreated.iso.h1.part.json", "recreated.iso", "h1"),
            ]
            .into_iter()
            .map(|(n, f, h)| {
                (
                    n.to_string(),
                    Found::Part {
                        file: f.into(),
                        host: h.into(),
                    },
                )
            }),
        )
        .chain([("user.iso".to_string(), Found::Other)])
        .collect();
        let current: BTreeMap<String, u64> = [
            ("kept.iso".to_string(), 5),
            ("recreated.iso".to_string(), 9),
            ("theirs.iso".to_string(), 1),
        ]
        .into();
        let part_incarnation = |n: &str| n.starts_with("recreated").then_some(5);
        let mut found = found;
        found.push((
            "up.iso.h1.upload".into(),
            Found::Upload { host: "h1".into() },
        ));
        found.push((
            "live.iso.h1.upload".into(),
            Found::Upload { host: "h1".into() },
        ));
        let idle = |n: &str| n.starts_with("up.");
        let mut out = leftovers(&found, &current, "h1", part_incarnation, idle);
        out.sort();
        assert_eq!(
            out,
            [
                "gone.iso",
                "gone.iso.h1.part",
                "gone.iso.h1.part.json",
                "gone.iso.quantix.json",
                "recreated.iso",
                "recreated.iso.h1.part.json",
                "recreated.iso.quantix.json",
                "up.iso.h1.upload",
            ]
        );
    }

    #[test]
    fn publishing_never_replaces_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let final_path = tmp.path().join("a.iso");
        let part = part_path(&final_path, "h1");
        assert_eq!(part, tmp.path().join("a.iso.h1.part"));
        std::fs::write(&part, b"mine").unwrap();
        assert_eq!(publish(&part, &final_path).unwrap(), Published::Done);
        assert!(!part.exists());
        let other = part_path(&final_path, "h2");
        std::fs::write(&other, b"theirs").unwrap();
        assert_eq!(publish(&other, &final_path).unwrap(), Published::Taken);
        assert_eq!(std::fs::read(&final_path).unwrap(), b"mine");
        assert!(other.exists(), "the loser's part is left to its owner");

        let (sha, len) = hash_file(&final_path, |_| {}).unwrap();
        assert_eq!(len, 4);
        assert_eq!(sha, hex::encode(Sha256::digest(b"mine")));
        let mut h = Sha256::new();
        hash_prefix(&final_path, 2, &mut h).unwrap();
        assert_eq!(
            hex::encode(h.finalize()),
            hex::encode(Sha256::digest(b"mi"))
        );
        assert!(hash_prefix(&final_path, 9, &mut Sha256::new()).is_err());

        let meta = PartMeta {
            url: "http://x.org/a".into(),
            created_at: 3,
            validator: Some("\"e1\"".into()),
        };
        let mp = part_meta_path(&final_path, "h1");
        write_json(&mp, &meta).unwrap();
        assert_eq!(read_json::<PartMeta>(&mp), Some(meta));
        remove(&mp).unwrap();
        remove(&mp).unwrap();
        assert_eq!(read_json::<PartMeta>(&mp), None);

        let scanned = tmp.path().join("top.iso");
        std::fs::write(&scanned, b"iso").unwrap();
        let linked = tmp.path().join("linked.iso");
        assert_eq!(link_into(&scanned, &linked).unwrap(), Published::Done);
        assert_eq!(std::fs::read(&linked).unwrap(), b"iso");
        assert_eq!(link_into(&scanned, &linked).unwrap(), Published::Taken);
    }
}
