//! Folder commands and queries. Invariants kept here: names unique among siblings (by the
//! `FolderNames` index), the root and built-in folders are never deleted, a folder with
//! children is not deleted, and a folder that holds a VM is not deleted (checked through
//! `refs`). Rename, move and recursive delete are in `tree`.

mod tree;

use super::codec::decode;
use super::command::{Applied, Outcome, RejectKind};
use super::kv::{Kv, KvError, KvRead, Table};
use super::refs::{self, Ref};
use super::tables;
use crate::model::{Folder, FolderId, FolderPath, UnixMillis};

/// Folders every cluster has from its first entry.
pub const BUILT_IN: &[&str] = &["/Discovered"];

/// Creates the root and the built-in folders. Called once, by `InitCluster`.
pub fn create_defaults(kv: &mut impl Kv, at: UnixMillis) -> Result<(), KvError> {
    tables::put_folder(
        kv,
        &Folder {
            id: FolderId::ROOT,
            parent: None,
            name: String::new(),
            created_at: at,
        },
    )?;
    for path in BUILT_IN {
        let name = path.trim_start_matches('/');
        let id = FolderId(tables::next_id(kv)?);
        tables::put_folder(
            kv,
            &Folder {
                id,
                parent: Some(FolderId::ROOT),
                name: name.into(),
                created_at: at,
            },
        )?;
    }
    Ok(())
}

/// Resolves a path to a folder id, walking from the root.
pub fn resolve(kv: &impl KvRead, path: &FolderPath) -> Result<Option<FolderId>, KvError> {
    let mut id = FolderId::ROOT;
    for seg in path.segments() {
        match tables::child_folder(kv, id, seg)? {
            Some(child) => id = child,
            None => return Ok(None),
        }
    }
    Ok(Some(id))
}

pub fn create(
    kv: &mut impl Kv,
    at: UnixMillis,
    path: &str,
    parents: bool,
) -> Result<Outcome, KvError> {
    let path = match FolderPath::parse("folder path", path) {
        Ok(p) => p,
        Err(e) => return Ok(Outcome::reject(RejectKind::InvalidArgument, e.to_string())),
    };
    if resolve(kv, &path)?.is_some() {
        return Ok(Outcome::reject(
            RejectKind::AlreadyExists,
            format!("folder {path} already exists"),
        ));
    }
    let mut parent = FolderId::ROOT;
    let mut walked = FolderPath::root();
    let mut created = Vec::new();
    let last = path.segments().len() - 1;
    for (i, seg) in path.segments().iter().enumerate() {
        walked = walked.join(seg);
        if let Some(existing) = tables::child_folder(kv, parent, seg)? {
            parent = existing;
            continue;
        }
        if i < last && !parents {
            return Ok(Outcome::reject(
                RejectKind::NotFound,
                format!(
                    "parent folder {walked} does not exist (create it first, or pass --parents)"
                ),
            ));
        }
        let f = Folder {
            id: FolderId(tables::next_id(kv)?),
            parent: Some(parent),
            name: seg.clone(),
            created_at: at,
        };
        tables::put_folder(kv, &f)?;
        parent = f.id;
        created.push((walked.to_string(), f));
    }
    Ok(Outcome::Applied(Applied::FoldersCreated(created)))
}

pub fn delete(kv: &mut impl Kv, path: &str) -> Result<Outcome, KvError> {
    let path = match FolderPath::parse("folder path", path) {
        Ok(p) => p,
        Err(e) => return Ok(Outcome::reject(RejectKind::InvalidArgument, e.to_string())),
    };
    if path.is_root() || BUILT_IN.contains(&path.to_string().as_str()) {
        return Ok(Outcome::reject(
            RejectKind::FailedPrecondition,
            format!("folder {path} is built in and cannot be deleted"),
        ));
    }
    let Some(id) = resolve(kv, &path)? else {
        return Ok(Outcome::reject(
            RejectKind::NotFound,
            format!("folder {path} does not exist"),
        ));
    };
    let children = kv.range(
        Table::FolderNames,
        &id.0.to_be_bytes(),
        Some(&(id.0 + 1).to_be_bytes()),
        1,
    )?;
    if let Some((key, _)) = children.first() {
        let child = String::from_utf8_lossy(&key[8..]);
        return Ok(Outcome::reject(
            RejectKind::FailedPrecondition,
            format!(
                "folder {path} is not empty: it holds folder {} (delete it first, or pass --recursive)",
                path.join(&child)
            ),
        ));
    }
    if let Some(refusal) = refs::refuse_if_referenced(kv, Ref::Folder(id), |vms| {
        format!("folder {path} is not empty: it holds {vms}; move or delete them first")
    })? {
        return Ok(refusal);
    }
    let Some(folder) = tables::folder(kv, id)? else {
        return Err(KvError::Storage(format!(
            "folder index names id {} but the folder record is missing",
            id.0
        )));
    };
    kv.delete(Table::Folders, &tables::folder_key(id))?;
    if let Some(parent) = folder.parent {
        kv.delete(
            Table::FolderNames,
            &tables::folder_name_key(parent, &folder.name),
        )?;
    }
    Ok(Outcome::Applied(Applied::FolderDeleted))
}

/// Every folder at or below `under` (all when `None`), with its path, in tree order.
/// Walks only that subtree, through the name index.
pub fn list(
    kv: &impl KvRead,
    under: Option<&FolderPath>,
) -> Result<Vec<(FolderPath, Folder)>, KvError> {
    let start_path = under.cloned().unwrap_or_else(FolderPath::root);
    let Some(start) = resolve(kv, &start_path)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut stack = vec![(start, start_path)];
    while let Some((id, path)) = stack.pop() {
        let Some(f) = tables::folder(kv, id)? else {
            continue;
        };
        let children = kv.prefix(Table::FolderNames, &id.0.to_be_bytes())?;
        // Reverse, so the stack pops children in name order.
        for (key, value) in children.into_iter().rev() {
            let child: FolderId = decode("folder name", &value)?;
            stack.push((child, path.join(&String::from_utf8_lossy(&key[8..]))));
        }
        out.push((path, f));
    }
    Ok(out)
}

/// One folder by path.
pub fn get(kv: &impl KvRead, path: &FolderPath) -> Result<Option<Folder>, KvError> {
    match resolve(kv, path)? {
        Some(id) => tables::folder(kv, id),
        None => Ok(None),
    }
}

/// Folder commands beyond create/delete: rename, move, recursive delete (applied in `tree`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FolderCommand {
    /// Give a folder a new name under the same parent.
    Rename { path: String, new_name: String },
    /// Put a folder, with everything below it, under another parent; it keeps its name.
    Move { path: String, new_parent: String },
    /// Delete a folder and every folder below it; refused while any of them holds a VM.
    DeleteRecursive { path: String },
}

impl FolderCommand {
    pub fn kind(&self) -> &'static str {
        match self {
            FolderCommand::Rename { .. } => "rename_folder",
            FolderCommand::Move { .. } => "move_folder",
            FolderCommand::DeleteRecursive { .. } => "delete_folder_recursive",
        }
    }

    /// The entity the command is about, for the event log.
    pub fn target(&self) -> String {
        match self {
            FolderCommand::Rename { path, .. }
            | FolderCommand::Move { path, .. }
            | FolderCommand::DeleteRecursive { path } => format!("folder {path}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FolderApplied {
    /// The folder's path after the rename, and its record.
    Renamed { path: String, folder: Folder },
    /// The folder's path after the move, and its record.
    Moved { path: String, folder: Folder },
    /// Every folder deleted, deepest first.
    TreeDeleted(Vec<String>),
}

pub fn apply(kv: &mut impl Kv, _at: UnixMillis, cmd: &FolderCommand) -> Result<Outcome, KvError> {
    match cmd {
        FolderCommand::Rename { path, new_name } => tree::rename(kv, path, new_name),
        FolderCommand::Move { path, new_parent } => tree::move_to(kv, path, new_parent),
        FolderCommand::DeleteRecursive { path } => tree::delete_tree(kv, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::apply::tests::init;
    use crate::state::command::Rejection;

    fn rejected(out: Outcome) -> Rejection {
        match out {
            Outcome::Rejected(r) => r,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn paths(kv: &impl KvRead) -> Vec<String> {
        list(kv, None)
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.to_string())
            .collect()
    }

    #[test]
    fn defaults_exist_after_init() {
        let kv = init();
        assert_eq!(paths(&kv), vec!["/", "/Discovered"]);
    }

    #[test]
    fn create_table() {
        struct Case {
            path: &'static str,
            parents: bool,
            want: Result<usize, (RejectKind, &'static str)>,
        }
        let cases = [
            Case {
                path: "/prod",
                parents: false,
                want: Ok(1),
            },
            Case {
                path: "/prod",
                parents: false,
                want: Err((RejectKind::AlreadyExists, "folder /prod already exists")),
            },
            Case {
                path: "/",
                parents: false,
                want: Err((RejectKind::AlreadyExists, "folder / already exists")),
            },
            Case {
                path: "/x/y",
                parents: false,
                want: Err((RejectKind::NotFound, "parent folder /x does not exist")),
            },
            Case {
                path: "/x/y/z",
                parents: true,
                want: Ok(3),
            },
            Case {
                path: "/prod/web",
                parents: false,
                want: Ok(1),
            },
            Case {
                path: "prod",
                parents: false,
                want: Err((
                    RejectKind::InvalidArgument,
                    "folder path 'prod' must start with '/'",
                )),
            },
            Case {
                path: "/a//b",
                parents: true,
                want: Err((RejectKind::InvalidArgument, "empty segment")),
            },
        ];
        let mut kv = init();
        for c in cases {
            let out = create(&mut kv, 5, c.path, c.parents).unwrap();
            match (c.want, out) {
                (Ok(n), Outcome::Applied(Applied::FoldersCreated(v))) => {
                    assert_eq!(v.len(), n, "{}", c.path)
                }
                (Err((kind, msg)), Outcome::Rejected(r)) => {
                    assert_eq!(r.kind, kind, "{}", c.path);
                    assert!(r.message.contains(msg), "{}: {}", c.path, r.message);
                }
                (want, got) => panic!("{}: wanted {want:?}, got {got:?}", c.path),
            }
        }
        assert_eq!(
            paths(&kv),
            vec![
                "/",
                "/Discovered",
                "/prod",
                "/prod/web",
                "/x",
                "/x/y",
                "/x/y/z"
            ]
        );
    }

    #[test]
    fn same_name_in_different_parents_is_fine() {
        let mut kv = init();
        for p in ["/a", "/b", "/a/web", "/b/web"] {
            assert!(
                matches!(create(&mut kv, 1, p, false).unwrap(), Outcome::Applied(_)),
                "{p}"
            );
        }
    }

    #[test]
    fn delete_rules() {
        let mut kv = init();
        create(&mut kv, 1, "/a/b", true).unwrap();
        let r = rejected(delete(&mut kv, "/a").unwrap());
        assert_eq!(r.kind, RejectKind::FailedPrecondition);
        assert!(
            r.message.contains("not empty") && r.message.contains("/a/b"),
            "{}",
            r.message
        );
        assert_eq!(
            rejected(delete(&mut kv, "/").unwrap()).kind,
            RejectKind::FailedPrecondition
        );
        assert_eq!(
            rejected(delete(&mut kv, "/Discovered").unwrap()).kind,
            RejectKind::FailedPrecondition
        );
        assert_eq!(
            rejected(delete(&mut kv, "/nope").unwrap()).kind,
            RejectKind::NotFound
        );
        assert_eq!(
            delete(&mut kv, "/a/b").unwrap(),
            Outcome::Applied(Applied::FolderDeleted)
        );
        assert_eq!(
            delete(&mut kv, "/a").unwrap(),
            Outcome::Applied(Applied::FolderDeleted)
        );
        assert_eq!(paths(&kv), vec!["/", "/Discovered"]);
        // The name is free again.
        assert!(matches!(
            create(&mut kv, 1, "/a", false).unwrap(),
            Outcome::Applied(_)
        ));
    }

    #[test]
    fn list_under_a_subtree() {
        let mut kv = init();
        create(&mut kv, 1, "/a/b/c", true).unwrap();
        create(&mut kv, 1, "/z", true).unwrap();
        let under = FolderPath::parse("p", "/a/b").unwrap();
        let got: Vec<String> = list(&kv, Some(&under))
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(got, vec!["/a/b", "/a/b/c"]);
        let missing = FolderPath::parse("p", "/nope").unwrap();
        assert!(list(&kv, Some(&missing)).unwrap().is_empty());
    }

    /// Folders holding a VM are not deleted, plainly or recursively; the message names the VM.
    /// (The VM record is stored directly: only its folder matters to `refs`.)
    #[test]
    fn folders_holding_vms_are_not_deleted() {
        let mut kv = init();
        create(&mut kv, 1, "/a/b/c", true).unwrap();
        let c = get(&kv, &FolderPath::parse("p", "/a/b/c").unwrap())
            .unwrap()
            .unwrap();
        let mut vm = crate::model::vm::tests::sample("web1");
        vm.folder = c.id;
        tables::put(&mut kv, Table::Vms, b"web1", &vm).unwrap();
        let before = kv.clone();

        let r = rejected(delete(&mut kv, "/a/b/c").unwrap());
        assert_eq!(r.kind, RejectKind::FailedPrecondition);
        assert!(
            r.message
                .contains("folder /a/b/c is not empty: it holds vm web1"),
            "{}",
            r.message
        );
        let recursive = |p: &str| FolderCommand::DeleteRecursive { path: p.into() };
        let r = rejected(apply(&mut kv, 1, &recursive("/a")).unwrap());
        assert_eq!(r.kind, RejectKind::FailedPrecondition);
        assert!(
            r.message
                .contains("folder /a cannot be deleted: its subfolder /a/b/c holds vm web1"),
            "{}",
            r.message
        );
        let r = rejected(apply(&mut kv, 1, &recursive("/a/b/c")).unwrap());
        assert!(r.message.contains(": it holds vm web1"), "{}", r.message);
        assert_eq!(kv, before, "refusals change nothing");

        // Once the VM is gone, the recursive delete goes through.
        kv.delete(Table::Vms, b"web1").unwrap();
        assert!(matches!(
            apply(&mut kv, 1, &recursive("/a")).unwrap(),
            Outcome::Applied(Applied::Folder(FolderApplied::TreeDeleted(_)))
        ));
        assert_eq!(paths(&kv), vec!["/", "/Discovered"]);
    }
}
