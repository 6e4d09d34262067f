//! Spec commands (`SpecCommand`), their apply, and specs queries.
//! May use: `model`, `state::{kv, tables, codec, refs}`.

use serde::{Deserialize, Serialize};

use super::command::Outcome;
use super::kv::{Kv, KvError};
use crate::model::UnixMillis;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpecCommand {}

impl SpecCommand {
    pub fn kind(&self) -> &'static str {
        match *self {}
    }

    /// The entity the command is about, for the event log.
    pub fn target(&self) -> String {
        match *self {}
    }
}

/// What a successful SpecCommand returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpecApplied {}

pub fn apply(_kv: &mut impl Kv, _at: UnixMillis, cmd: &SpecCommand) -> Result<Outcome, KvError> {
    match *cmd {}
}
