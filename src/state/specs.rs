//! Customization-spec commands (`SpecCommand`), their apply, and spec queries. Specs are
//! stored in `Table::Specs` keyed by name, so names are unique by construction.
//! Invariants kept here: every stored spec passed `SpecConfig::validate`; the built-ins
//! (`linux-default`, `windows-default`) always exist; a spec is not deleted while a VM
//! refers to it; an update never changes a spec's OS and keeps the secrets it does not
//! replace. Outcomes carry specs with secrets redacted, so the remembered-request table
//! holds no secret. Secrets are stored in plain text for now (encryption at rest is a
//! later issue). May use: `model`, `state::{kv, tables, codec, refs}`.

use serde::{Deserialize, Serialize};

use super::codec::decode;
use super::command::{Applied, Outcome, RejectKind};
use super::kv::{Kv, KvError, KvRead, Table};
use super::refs::{self, Ref};
use super::tables;
use crate::model::spec::{self, check, SecretField, Spec, SpecConfig, SpecError};
use crate::model::UnixMillis;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpecCommand {
    CreateSpec {
        name: String,
        description: String,
        config: Box<SpecConfig>,
    },
    /// Replaces the description and config. Secrets the new config leaves out are kept,
    /// unless listed in `clear`. With `expected_revision`, refused if the spec changed since.
    UpdateSpec {
        name: String,
        description: String,
        config: Box<SpecConfig>,
        clear: Vec<SecretField>,
        expected_revision: Option<u64>,
    },
    DeleteSpec {
        name: String,
    },
}

impl SpecCommand {
    pub fn kind(&self) -> &'static str {
        match self {
            SpecCommand::CreateSpec { .. } => "create_spec",
            SpecCommand::UpdateSpec { .. } => "update_spec",
            SpecCommand::DeleteSpec { .. } => "delete_spec",
        }
    }

    /// The entity the command is about, for the event log.
    pub fn target(&self) -> String {
        match self {
            SpecCommand::CreateSpec { name, .. }
            | SpecCommand::UpdateSpec { name, .. }
            | SpecCommand::DeleteSpec { name } => format!("spec {name}"),
        }
    }
}

/// What a successful SpecCommand returns. Specs here are [`Spec::redacted`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpecApplied {
    SpecCreated(Box<Spec>),
    SpecUpdated(Box<Spec>),
    SpecDeleted { name: String },
}

pub fn apply(kv: &mut impl Kv, at: UnixMillis, cmd: &SpecCommand) -> Result<Outcome, KvError> {
    match cmd {
        SpecCommand::CreateSpec {
            name,
            description,
            config,
        } => create(kv, at, name, description, config),
        SpecCommand::UpdateSpec {
            name,
            description,
            config,
            clear,
            expected_revision,
        } => update(kv, at, name, description, config, clear, *expected_revision),
        SpecCommand::DeleteSpec { name } => delete(kv, name),
    }
}

/// Creates the built-in specs. Called once, by `InitCluster`.
pub fn create_defaults(kv: &mut impl Kv, at: UnixMillis) -> Result<(), KvError> {
    for s in spec::defaults(at) {
        put(kv, &s)?;
    }
    Ok(())
}

fn applied(a: SpecApplied) -> Outcome {
    Outcome::Applied(Applied::Spec(a))
}

fn invalid(e: SpecError) -> Outcome {
    Outcome::reject(RejectKind::InvalidArgument, e.to_string())
}

fn put(kv: &mut impl Kv, s: &Spec) -> Result<(), KvError> {
    tables::put(kv, Table::Specs, s.name.as_bytes(), s)
}

/// Name and description rules, then the config in canonical form, validated.
fn checked(name: &str, description: &str, config: &SpecConfig) -> Result<SpecConfig, SpecError> {
    check::spec_name(name)?;
    check::description(description)?;
    let mut config = config.clone();
    config.normalize();
    config.validate()?;
    Ok(config)
}

fn create(
    kv: &mut impl Kv,
    at: UnixMillis,
    name: &str,
    description: &str,
    config: &SpecConfig,
) -> Result<Outcome, KvError> {
    let config = match checked(name, description, config) {
        Ok(c) => c,
        Err(e) => return Ok(invalid(e)),
    };
    if get(kv, name)?.is_some() {
        return Ok(Outcome::reject(
            RejectKind::AlreadyExists,
            format!("spec {name} already exists"),
        ));
    }
    let s = Spec {
        name: name.into(),
        description: description.into(),
        built_in: false,
        revision: 1,
        created_at: at,
        updated_at: at,
        config,
    };
    put(kv, &s)?;
    Ok(applied(SpecApplied::SpecCreated(Box::new(s.redacted()))))
}

fn update(
    kv: &mut impl Kv,
    at: UnixMillis,
    name: &str,
    description: &str,
    config: &SpecConfig,
    clear: &[SecretField],
    expected_revision: Option<u64>,
) -> Result<Outcome, KvError> {
    let Some(old) = get(kv, name)? else {
        return Ok(Outcome::reject(
            RejectKind::NotFound,
            format!("spec {name} does not exist"),
        ));
    };
    if let Some(want) = expected_revision {
        if want != old.revision {
            return Ok(Outcome::reject(
                RejectKind::FailedPrecondition,
                format!(
                    "spec {name} changed since it was read (revision {} now, {want} expected); read it again and retry",
                    old.revision
                ),
            ));
        }
    }
    if config.os() != old.config.os() {
        return Ok(Outcome::reject(
            RejectKind::FailedPrecondition,
            format!(
                "os: spec {name} is a {} spec and cannot become a {} spec; create a new spec instead",
                old.config.os().as_str(),
                config.os().as_str()
            ),
        ));
    }
    let mut merged = config.clone();
    merged.keep_secrets(&old.config, clear);
    let merged = match checked(name, description, &merged) {
        Ok(c) => c,
        Err(e) => return Ok(invalid(e)),
    };
    let s = Spec {
        description: description.into(),
        revision: old.revision + 1,
        updated_at: at,
        config: merged,
        ..old
    };
    put(kv, &s)?;
    Ok(applied(SpecApplied::SpecUpdated(Box::new(s.redacted()))))
}

fn delete(kv: &mut impl Kv, name: &str) -> Result<Outcome, KvError> {
    let Some(s) = get(kv, name)? else {
        return Ok(Outcome::reject(
            RejectKind::NotFound,
            format!("spec {name} does not exist"),
        ));
    };
    if s.built_in {
        return Ok(Outcome::reject(
            RejectKind::FailedPrecondition,
            format!("spec {name} is built in and cannot be deleted"),
        ));
    }
    if let Some(refusal) = refs::refuse_if_referenced(kv, Ref::Spec(name), |users| {
        format!("spec {name} is in use by {users}; delete those or change their spec first")
    })? {
        return Ok(refusal);
    }
    kv.delete(Table::Specs, name.as_bytes())?;
    Ok(applied(SpecApplied::SpecDeleted { name: name.into() }))
}

/// One spec by name, secrets included (for the code that renders guests; the API redacts).
pub fn get(kv: &impl KvRead, name: &str) -> Result<Option<Spec>, KvError> {
    tables::get(kv, Table::Specs, "spec", name.as_bytes())
}

/// Every spec, in name order, secrets included.
pub fn list(kv: &impl KvRead) -> Result<Vec<Spec>, KvError> {
    kv.prefix(Table::Specs, b"")?
        .into_iter()
        .map(|(_, v)| decode("spec", &v).map_err(KvError::from))
        .collect()
}

#[cfg(test)]
mod tests;
