//! Rename, move and recursive delete of folders. A folder is stored by id, with a
//! `(parent, name)` entry in the `FolderNames` index; every change here rewrites the record and
//! its index entry in the same apply (one transaction), so the index never names a stale
//! parent or name. Invariants kept: names unique among siblings, no cycles (a folder is never
//! moved under itself or its descendants), nesting at most `MAX_DEPTH`, the root and built-in
//! folders keep their paths, and no folder holding a VM is deleted.

use super::{list, resolve, FolderApplied, BUILT_IN};
use crate::model::folder::{validate_segment, MAX_DEPTH};
use crate::model::{Folder, FolderId, FolderPath};
use crate::state::command::{Applied, Outcome, RejectKind};
use crate::state::kv::{Kv, KvError, KvRead, Table};
use crate::state::refs::{referrers, Ref};
use crate::state::tables;

fn reject(kind: RejectKind, message: String) -> Result<Outcome, KvError> {
    Ok(Outcome::reject(kind, message))
}

/// Parses `path` and finds a folder that may be changed: not the root, not built in, existing.
/// The outer error is storage; the inner one is the refusal to return.
fn changeable(
    kv: &impl KvRead,
    path: &str,
    verb: &str,
) -> Result<Result<(FolderPath, Folder), Outcome>, KvError> {
    let path = match FolderPath::parse("folder path", path) {
        Ok(p) => p,
        Err(e) => {
            return Ok(Err(Outcome::reject(
                RejectKind::InvalidArgument,
                e.to_string(),
            )))
        }
    };
    if path.is_root() || BUILT_IN.contains(&path.to_string().as_str()) {
        return Ok(Err(Outcome::reject(
            RejectKind::FailedPrecondition,
            format!("folder {path} is built in and cannot be {verb}"),
        )));
    }
    let Some(id) = resolve(kv, &path)? else {
        return Ok(Err(Outcome::reject(
            RejectKind::NotFound,
            format!("folder {path} does not exist"),
        )));
    };
    let f = record(kv, id)?;
    Ok(Ok((path, f)))
}

fn record(kv: &impl KvRead, id: FolderId) -> Result<Folder, KvError> {
    tables::folder(kv, id)?.ok_or_else(|| {
        KvError::Storage(format!(
            "folder index names id {} but the folder record is missing",
            id.0
        ))
    })
}

/// Re-files `f` (already changed) under its new `(parent, name)`, dropping the old entry.
fn refile(
    kv: &mut impl Kv,
    old_parent: FolderId,
    old_name: &str,
    f: &Folder,
) -> Result<(), KvError> {
    kv.delete(
        Table::FolderNames,
        &tables::folder_name_key(old_parent, old_name),
    )?;
    tables::put_folder(kv, f)
}

pub(super) fn rename(kv: &mut impl Kv, path: &str, new_name: &str) -> Result<Outcome, KvError> {
    let (path, mut f) = match changeable(kv, path, "renamed")? {
        Ok(found) => found,
        Err(refusal) => return Ok(refusal),
    };
    if let Err(e) = validate_segment("new folder name", new_name, new_name) {
        return reject(RejectKind::InvalidArgument, e.to_string());
    }
    let (parent_path, _) = path
        .split_last()
        .ok_or_else(|| KvError::Storage("a non-root path has a parent".into()))?;
    let new_path = parent_path.join(new_name);
    let Some(parent) = f.parent else {
        return Err(KvError::Storage(format!(
            "folder {path} (id {}) has no parent",
            f.id.0
        )));
    };
    if f.name != new_name {
        if tables::child_folder(kv, parent, new_name)?.is_some() {
            return reject(
                RejectKind::AlreadyExists,
                format!("cannot rename folder {path}: folder {new_path} already exists"),
            );
        }
        let old_name = std::mem::replace(&mut f.name, new_name.to_string());
        refile(kv, parent, &old_name, &f)?;
    }
    Ok(Outcome::Applied(Applied::Folder(FolderApplied::Renamed {
        path: new_path.to_string(),
        folder: f,
    })))
}

pub(super) fn move_to(kv: &mut impl Kv, path: &str, new_parent: &str) -> Result<Outcome, KvError> {
    let (path, mut f) = match changeable(kv, path, "moved")? {
        Ok(found) => found,
        Err(refusal) => return Ok(refusal),
    };
    let dest = match FolderPath::parse("new parent folder", new_parent) {
        Ok(p) => p,
        Err(e) => return reject(RejectKind::InvalidArgument, e.to_string()),
    };
    let Some(dest_id) = resolve(kv, &dest)? else {
        return reject(
            RejectKind::NotFound,
            format!("new parent folder {dest} does not exist"),
        );
    };
    // The cycle check walks the stored parent links up from the destination, so it holds
    // whatever the paths say.
    if is_at_or_below(kv, dest_id, f.id)? {
        let what = if dest_id == f.id {
            "itself".to_string()
        } else {
            format!("its own subfolder {dest}")
        };
        return reject(
            RejectKind::FailedPrecondition,
            format!("cannot move folder {path} into {what}: folders cannot form a cycle"),
        );
    }
    let new_path = dest.join(&f.name);
    let Some(old_parent) = f.parent else {
        return Err(KvError::Storage(format!(
            "folder {path} (id {}) has no parent",
            f.id.0
        )));
    };
    if old_parent != dest_id {
        if tables::child_folder(kv, dest_id, &f.name)?.is_some() {
            return reject(
                RejectKind::AlreadyExists,
                format!("cannot move folder {path}: folder {new_path} already exists"),
            );
        }
        let height = list(kv, Some(&path))?
            .iter()
            .map(|(p, _)| p.segments().len() - path.segments().len())
            .max()
            .unwrap_or(0);
        let depth = new_path.segments().len() + height;
        if depth > MAX_DEPTH {
            return reject(
                RejectKind::InvalidArgument,
                format!(
                    "cannot move folder {path} under {dest}: folders would nest {depth} deep, more than the limit of {MAX_DEPTH}"
                ),
            );
        }
        f.parent = Some(dest_id);
        let name = f.name.clone();
        refile(kv, old_parent, &name, &f)?;
    }
    Ok(Outcome::Applied(Applied::Folder(FolderApplied::Moved {
        path: new_path.to_string(),
        folder: f,
    })))
}

/// True if `id` is `ancestor` or lies below it, following stored parent links.
fn is_at_or_below(kv: &impl KvRead, mut id: FolderId, ancestor: FolderId) -> Result<bool, KvError> {
    // Bounded: a parent chain is at most MAX_DEPTH long; anything longer is a corrupt tree.
    for _ in 0..=MAX_DEPTH + 1 {
        if id == ancestor {
            return Ok(true);
        }
        match record(kv, id)?.parent {
            Some(p) => id = p,
            None => return Ok(false),
        }
    }
    Err(KvError::Storage(format!(
        "folder {} has a parent chain longer than {MAX_DEPTH}",
        id.0
    )))
}

pub(super) fn delete_tree(kv: &mut impl Kv, path: &str) -> Result<Outcome, KvError> {
    let (path, _) = match changeable(kv, path, "deleted")? {
        Ok(found) => found,
        Err(refusal) => return Ok(refusal),
    };
    // Parents come before their children in `list`, so the reverse deletes leaves first.
    let tree = list(kv, Some(&path))?;
    for (p, f) in &tree {
        let vms = referrers(kv, Ref::Folder(f.id), 3)?;
        if !vms.is_empty() {
            let place = if *p == path {
                "it".to_string()
            } else {
                format!("its subfolder {p}")
            };
            return reject(
                RejectKind::FailedPrecondition,
                format!(
                    "folder {path} cannot be deleted: {place} holds {}; move or delete them first",
                    vms.join(", ")
                ),
            );
        }
    }
    let mut deleted = Vec::with_capacity(tree.len());
    for (p, f) in tree.into_iter().rev() {
        kv.delete(Table::Folders, &tables::folder_key(f.id))?;
        if let Some(parent) = f.parent {
            kv.delete(
                Table::FolderNames,
                &tables::folder_name_key(parent, &f.name),
            )?;
        }
        deleted.push(p.to_string());
    }
    Ok(Outcome::Applied(Applied::Folder(
        FolderApplied::TreeDeleted(deleted),
    )))
}

#[cfg(test)]
mod tests {
    use super::super::{apply, create, get, FolderCommand};
    use super::*;
    use crate::state::apply::tests::init;
    use crate::state::kv::MemKv;

    fn paths(kv: &impl KvRead) -> Vec<String> {
        list(kv, None)
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.to_string())
            .collect()
    }

    fn tree(folders: &[&str]) -> MemKv {
        let mut kv = init();
        for p in folders {
            assert!(
                matches!(create(&mut kv, 1, p, true).unwrap(), Outcome::Applied(_)),
                "{p}"
            );
        }
        kv
    }

    /// Every index entry points at a record whose (parent, name) is that entry, and every
    /// non-root record has exactly its own index entry.
    fn assert_index_consistent(kv: &MemKv) {
        let records = kv.prefix(Table::Folders, b"").unwrap();
        let index = kv.prefix(Table::FolderNames, b"").unwrap();
        assert_eq!(
            index.len() + 1,
            records.len(),
            "one entry per non-root folder"
        );
        for (key, value) in index {
            let id: FolderId = crate::state::codec::decode("id", &value).unwrap();
            let f = tables::folder(kv, id)
                .unwrap()
                .expect("index names a record");
            assert_eq!(
                key,
                tables::folder_name_key(f.parent.unwrap(), &f.name),
                "{f:?}"
            );
        }
    }

    type Want<'a> = Result<&'a str, (RejectKind, &'a str)>;

    fn check(kv: &mut MemKv, cmd: FolderCommand, want: Want<'_>) {
        let label = format!("{cmd:?}");
        let before = kv.clone();
        let out = apply(kv, 9, &cmd).unwrap();
        match (want, out) {
            (Ok(p), Outcome::Applied(Applied::Folder(a))) => {
                let got = match a {
                    FolderApplied::Renamed { path, .. } | FolderApplied::Moved { path, .. } => path,
                    FolderApplied::TreeDeleted(v) => v.last().cloned().unwrap_or_default(),
                };
                assert_eq!(got, p, "{label}");
            }
            (Err((kind, msg)), Outcome::Rejected(r)) => {
                assert_eq!(r.kind, kind, "{label}: {}", r.message);
                assert!(r.message.contains(msg), "{label}: {}", r.message);
                assert_eq!(*kv, before, "{label}: a refusal changes nothing");
            }
            (want, got) => panic!("{label}: wanted {want:?}, got {got:?}"),
        }
        assert_index_consistent(kv);
    }

    fn rename_cmd(path: &str, new_name: &str) -> FolderCommand {
        FolderCommand::Rename {
            path: path.into(),
            new_name: new_name.into(),
        }
    }

    fn move_cmd(path: &str, new_parent: &str) -> FolderCommand {
        FolderCommand::Move {
            path: path.into(),
            new_parent: new_parent.into(),
        }
    }

    #[test]
    fn rename_table() {
        let mut kv = tree(&["/a/b/c", "/a/x", "/z"]);
        let a_id = get(&kv, &FolderPath::parse("p", "/a").unwrap())
            .unwrap()
            .unwrap()
            .id;
        let cases: Vec<(FolderCommand, Want<'static>)> = vec![
            (rename_cmd("/a", "prod"), Ok("/prod")),
            (
                rename_cmd("/prod/b", "x"),
                Err((RejectKind::AlreadyExists, "folder /prod/x already exists")),
            ),
            (rename_cmd("/prod/b", "b"), Ok("/prod/b")),
            (
                rename_cmd("/prod/b", "web servers"),
                Ok("/prod/web servers"),
            ),
            (
                rename_cmd("/z", "Discovered"),
                Err((
                    RejectKind::AlreadyExists,
                    "folder /Discovered already exists",
                )),
            ),
            (
                rename_cmd("/", "root"),
                Err((
                    RejectKind::FailedPrecondition,
                    "folder / is built in and cannot be renamed",
                )),
            ),
            (
                rename_cmd("/Discovered", "found"),
                Err((
                    RejectKind::FailedPrecondition,
                    "folder /Discovered is built in",
                )),
            ),
            (
                rename_cmd("/nope", "x"),
                Err((RejectKind::NotFound, "folder /nope does not exist")),
            ),
            (
                rename_cmd("/z", "a/b"),
                Err((
                    RejectKind::InvalidArgument,
                    "new folder name 'a/b' may contain only",
                )),
            ),
            (
                rename_cmd("/z", ".."),
                Err((RejectKind::InvalidArgument, "reserved segment")),
            ),
            (
                rename_cmd("/z", ""),
                Err((RejectKind::InvalidArgument, "new folder name")),
            ),
            (
                rename_cmd("z", "y"),
                Err((RejectKind::InvalidArgument, "must start with '/'")),
            ),
        ];
        for (cmd, want) in cases {
            check(&mut kv, cmd, want);
        }
        assert_eq!(
            paths(&kv),
            vec![
                "/",
                "/Discovered",
                "/prod",
                "/prod/web servers",
                "/prod/web servers/c",
                "/prod/x",
                "/z"
            ]
        );
        // The same folder (same id), and the old name is free again.
        assert_eq!(
            get(&kv, &FolderPath::parse("p", "/prod").unwrap())
                .unwrap()
                .unwrap()
                .id,
            a_id
        );
        assert!(matches!(
            create(&mut kv, 1, "/a", false).unwrap(),
            Outcome::Applied(_)
        ));
    }

    #[test]
    fn move_table() {
        let mut kv = tree(&["/a/b/c", "/d/b", "/e"]);
        let cases: Vec<(FolderCommand, Want<'static>)> = vec![
            (
                move_cmd("/a", "/a"),
                Err((
                    RejectKind::FailedPrecondition,
                    "cannot move folder /a into itself",
                )),
            ),
            (
                move_cmd("/a", "/a/b/c"),
                Err((
                    RejectKind::FailedPrecondition,
                    "into its own subfolder /a/b/c",
                )),
            ),
            (
                move_cmd("/a/b", "/d"),
                Err((RejectKind::AlreadyExists, "folder /d/b already exists")),
            ),
            (
                move_cmd("/a/b", "/nope"),
                Err((
                    RejectKind::NotFound,
                    "new parent folder /nope does not exist",
                )),
            ),
            (
                move_cmd("/Discovered", "/e"),
                Err((
                    RejectKind::FailedPrecondition,
                    "built in and cannot be moved",
                )),
            ),
            (
                move_cmd("/", "/e"),
                Err((RejectKind::FailedPrecondition, "built in")),
            ),
            (
                move_cmd("/a", "e"),
                Err((
                    RejectKind::InvalidArgument,
                    "new parent folder 'e' must start with '/'",
                )),
            ),
            (
                move_cmd("/nope", "/e"),
                Err((RejectKind::NotFound, "folder /nope does not exist")),
            ),
            (move_cmd("/a/b", "/e"), Ok("/e/b")),
            (move_cmd("/e/b", "/e"), Ok("/e/b")),
            (move_cmd("/a", "/Discovered"), Ok("/Discovered/a")),
            (move_cmd("/e", "/d/b"), Ok("/d/b/e")),
            // /e (holding b/c) is now under /d/b: moving /d under its grandchild is a cycle.
            (
                move_cmd("/d", "/d/b/e/b"),
                Err((RejectKind::FailedPrecondition, "its own subfolder /d/b/e/b")),
            ),
            (move_cmd("/d/b/e", "/"), Ok("/e")),
        ];
        for (cmd, want) in cases {
            check(&mut kv, cmd, want);
        }
        assert_eq!(
            paths(&kv),
            vec![
                "/",
                "/Discovered",
                "/Discovered/a",
                "/d",
                "/d/b",
                "/e",
                "/e/b",
                "/e/b/c"
            ]
        );
    }

    #[test]
    fn move_refuses_nesting_beyond_the_limit() {
        // A chain 30 deep plus a folder 3 deep: under the chain it would be 33 deep.
        let chain = "/n".repeat(MAX_DEPTH - 2);
        let mut kv = tree(&[&chain, "/t/u/v"]);
        check(
            &mut kv,
            move_cmd("/t", &chain),
            Err((RejectKind::InvalidArgument, "would nest 33 deep")),
        );
        // Two deep fits exactly.
        let fits = format!("{chain}/u");
        check(&mut kv, move_cmd("/t/u", &chain), Ok(&fits));
    }

    #[test]
    fn delete_recursive_table() {
        let mut kv = tree(&["/a/b/c", "/a/d", "/keep/a"]);
        let del = |p: &str| FolderCommand::DeleteRecursive { path: p.into() };
        let cases: Vec<(FolderCommand, Want<'static>)> = vec![
            (
                del("/"),
                Err((
                    RejectKind::FailedPrecondition,
                    "folder / is built in and cannot be deleted",
                )),
            ),
            (
                del("/Discovered"),
                Err((RejectKind::FailedPrecondition, "built in")),
            ),
            (
                del("/nope"),
                Err((RejectKind::NotFound, "folder /nope does not exist")),
            ),
            (
                del("a"),
                Err((RejectKind::InvalidArgument, "must start with '/'")),
            ),
            // Deepest first: the last one deleted is the folder itself.
            (del("/a"), Ok("/a")),
            // A leaf works too.
            (del("/keep/a"), Ok("/keep/a")),
        ];
        for (cmd, want) in cases {
            check(&mut kv, cmd, want);
        }
        assert_eq!(paths(&kv), vec!["/", "/Discovered", "/keep"]);
        // Names are free again.
        assert!(matches!(
            create(&mut kv, 1, "/a/b/c", true).unwrap(),
            Outcome::Applied(_)
        ));
    }

    #[test]
    fn delete_recursive_reports_every_folder_leaves_first() {
        let mut kv = tree(&["/a/b/c", "/a/d"]);
        let out = apply(
            &mut kv,
            1,
            &FolderCommand::DeleteRecursive { path: "/a".into() },
        )
        .unwrap();
        let Outcome::Applied(Applied::Folder(FolderApplied::TreeDeleted(v))) = out else {
            panic!("{out:?}");
        };
        assert_eq!(v, vec!["/a/d", "/a/b/c", "/a/b", "/a"]);
    }

    #[test]
    fn kinds_and_targets() {
        let c = rename_cmd("/a", "b");
        assert_eq!(
            (c.kind(), c.target()),
            ("rename_folder", "folder /a".to_string())
        );
        let c = move_cmd("/a", "/b");
        assert_eq!(c.kind(), "move_folder");
        let c = FolderCommand::DeleteRecursive { path: "/a".into() };
        assert_eq!(c.kind(), "delete_folder_recursive");
    }
}
