//! Who refers to what: used to refuse deleting something still referenced, naming the
//! referrer. Every entity that holds references adds its scan here.

use super::command::{Outcome, RejectKind};
use super::kv::{KvError, KvRead};

/// Something that can be referred to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ref<'a> {
    Folder(crate::model::FolderId),
    Spec(&'a str),
    Image(&'a str),
    Pool(&'a str),
    Host(&'a str),
}

/// Names of the entities (as "vm web1", "image ubuntu") that refer to `r`, at most `limit`.
pub fn referrers(kv: &impl KvRead, r: Ref<'_>, limit: usize) -> Result<Vec<String>, KvError> {
    let mut out = super::vms::referrers(kv, r, limit)?;
    if out.len() < limit {
        out.extend(super::images::referrers(kv, r, limit - out.len())?);
    }
    Ok(out)
}

/// The refusal for deleting `r` while something refers to it, or `None` when nothing does.
/// `message` gets the referrers ("vm web1, vm web2") and words the refusal for its entity.
pub fn refuse_if_referenced(
    kv: &impl KvRead,
    r: Ref<'_>,
    message: impl FnOnce(&str) -> String,
) -> Result<Option<Outcome>, KvError> {
    let users = referrers(kv, r, 3)?;
    if users.is_empty() {
        return Ok(None);
    }
    Ok(Some(Outcome::reject(
        RejectKind::FailedPrecondition,
        message(&users.join(", ")),
    )))
}
