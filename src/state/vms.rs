//! Vm commands (`VmCommand`), their apply, and vms queries.
//! May use: `model`, `state::{kv, tables, codec, refs}`.

use serde::{Deserialize, Serialize};

use super::command::Outcome;
use super::kv::{Kv, KvError};
use crate::model::UnixMillis;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmCommand {}

impl VmCommand {
    pub fn kind(&self) -> &'static str {
        match *self {}
    }

    /// The entity the command is about, for the event log.
    pub fn target(&self) -> String {
        match *self {}
    }
}

/// What a successful VmCommand returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmApplied {}

pub fn apply(_kv: &mut impl Kv, _at: UnixMillis, cmd: &VmCommand) -> Result<Outcome, KvError> {
    match *cmd {}
}

/// VMs that refer to `r` (see `state::refs`).
pub fn referrers(
    _kv: &impl super::kv::KvRead,
    _r: super::refs::Ref<'_>,
    _limit: usize,
) -> Result<Vec<String>, KvError> {
    Ok(Vec::new())
}
