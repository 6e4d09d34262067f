//! API credentials in the replicated state (`model::credential`): table `credentials` by name,
//! and `credential_index` from `fp:<certificate sha256>` and `tok:<token id>` to the name, so
//! a caller is looked up in one read per request.
//! Commands: `Add` (refused for a bad or used name, or a fingerprint or token id already
//! registered) and `Revoke` (drops the record and its index entry, so the next request with
//! it is refused on every host).
//! May use: `model`, `state::{kv, tables, codec}`.

use serde::{Deserialize, Serialize};

use super::command::{Applied, Outcome, RejectKind};
use super::kv::{Kv, KvError, KvRead, Table};
use super::tables;
use crate::model::credential::{Credential, CredentialKind};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CredentialCommand {
    Add { credential: Credential },
    Revoke { name: String },
}

impl CredentialCommand {
    pub fn kind(&self) -> &'static str {
        match self {
            CredentialCommand::Add { .. } => "add_credential",
            CredentialCommand::Revoke { .. } => "revoke_credential",
        }
    }

    pub fn target(&self) -> String {
        match self {
            CredentialCommand::Add { credential } => format!("credential {}", credential.name),
            CredentialCommand::Revoke { name } => format!("credential {name}"),
        }
    }
}

pub fn apply(kv: &mut impl Kv, cmd: &CredentialCommand) -> Result<Outcome, KvError> {
    match cmd {
        CredentialCommand::Add { credential } => add(kv, credential),
        CredentialCommand::Revoke { name } => {
            let Some(cred) = get(kv, name)? else {
                return Ok(Outcome::reject(
                    RejectKind::NotFound,
                    format!("no credential named {name}"),
                ));
            };
            kv.delete(Table::Credentials, name.as_bytes())?;
            kv.delete(Table::CredentialIndex, &index_key(&cred.kind))?;
            Ok(Outcome::Applied(Applied::Credential(cred)))
        }
    }
}

fn add(kv: &mut impl Kv, c: &Credential) -> Result<Outcome, KvError> {
    if let Err(e) = crate::model::names::validate_label("credential name", &c.name) {
        return Ok(Outcome::reject(RejectKind::InvalidArgument, e.to_string()));
    }
    let hexish = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let well_formed = match &c.kind {
        CredentialKind::Certificate { fingerprint } => hexish(fingerprint, 64),
        CredentialKind::Token { id, secret_sha256 } => hexish(id, 16) && hexish(secret_sha256, 64),
    };
    if !well_formed {
        return Ok(Outcome::reject(
            RejectKind::InvalidArgument,
            format!(
                "credential {}: fingerprint or token digest is not hex of the right length",
                c.name
            ),
        ));
    }
    if get(kv, &c.name)?.is_some() {
        return Ok(Outcome::reject(
            RejectKind::AlreadyExists,
            format!(
                "a credential named {} already exists; revoke it first or pick another name",
                c.name
            ),
        ));
    }
    let key = index_key(&c.kind);
    if let Some(other) =
        tables::get::<String>(kv, Table::CredentialIndex, "credential index", &key)?
    {
        return Ok(Outcome::reject(
            RejectKind::AlreadyExists,
            format!(
                "this {} is already registered as credential {other}",
                c.kind_str()
            ),
        ));
    }
    tables::put(kv, Table::Credentials, c.name.as_bytes(), c)?;
    tables::put(kv, Table::CredentialIndex, &key, &c.name)?;
    Ok(Outcome::Applied(Applied::Credential(c.clone())))
}

/// The index key of a credential.
pub fn index_key(kind: &CredentialKind) -> Vec<u8> {
    match kind {
        CredentialKind::Certificate { fingerprint } => format!("fp:{fingerprint}").into_bytes(),
        CredentialKind::Token { id, .. } => format!("tok:{id}").into_bytes(),
    }
}

pub fn get(kv: &impl KvRead, name: &str) -> Result<Option<Credential>, KvError> {
    tables::get(kv, Table::Credentials, "credential", name.as_bytes())
}

fn by_index(kv: &impl KvRead, key: &[u8]) -> Result<Option<Credential>, KvError> {
    let Some(name): Option<String> =
        tables::get(kv, Table::CredentialIndex, "credential index", key)?
    else {
        return Ok(None);
    };
    get(kv, &name)
}

/// The client certificate credential with this fingerprint (hex SHA-256 of the DER).
pub fn by_fingerprint(kv: &impl KvRead, fingerprint: &str) -> Result<Option<Credential>, KvError> {
    by_index(kv, format!("fp:{fingerprint}").as_bytes())
}

/// The token credential with this public id.
pub fn by_token_id(kv: &impl KvRead, id: &str) -> Result<Option<Credential>, KvError> {
    by_index(kv, format!("tok:{id}").as_bytes())
}

/// Every credential, by name.
pub fn list(kv: &impl KvRead) -> Result<Vec<Credential>, KvError> {
    kv.prefix(Table::Credentials, b"")?
        .into_iter()
        .map(|(_, v)| Ok(super::codec::decode("credential", &v)?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::kv::MemKv;

    fn cert(name: &str, fp: char) -> Credential {
        Credential {
            name: name.into(),
            kind: CredentialKind::Certificate {
                fingerprint: fp.to_string().repeat(64),
            },
            created_at: 1,
            expires_at: None,
            created_by: "local uid 0".into(),
        }
    }

    fn token(name: &str, id: char) -> Credential {
        Credential {
            kind: CredentialKind::Token {
                id: id.to_string().repeat(16),
                secret_sha256: "b".repeat(64),
            },
            ..cert(name, 'a')
        }
    }

    fn run(kv: &mut MemKv, cmd: CredentialCommand) -> Outcome {
        apply(kv, &cmd).expect("apply")
    }

    fn refused(o: &Outcome, kind: RejectKind, words: &str) {
        match o {
            Outcome::Rejected(r) => {
                assert_eq!(r.kind, kind, "{r:?}");
                assert!(r.message.contains(words), "{r:?}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn add_look_up_and_revoke() {
        let mut kv = MemKv::default();
        let c = cert("admin", 'a');
        let t = token("ci", 'c');
        for x in [&c, &t] {
            let out = run(
                &mut kv,
                CredentialCommand::Add {
                    credential: x.clone(),
                },
            );
            assert_eq!(out, Outcome::Applied(Applied::Credential(x.clone())));
        }
        assert_eq!(
            by_fingerprint(&kv, &"a".repeat(64)).unwrap(),
            Some(c.clone())
        );
        assert_eq!(by_token_id(&kv, &"c".repeat(16)).unwrap(), Some(t.clone()));
        assert_eq!(list(&kv).unwrap(), vec![c.clone(), t.clone()]);
        let out = run(&mut kv, CredentialCommand::Revoke { name: "ci".into() });
        assert_eq!(out, Outcome::Applied(Applied::Credential(t)));
        assert_eq!(by_token_id(&kv, &"c".repeat(16)).unwrap(), None);
        assert_eq!(get(&kv, "ci").unwrap(), None);
        assert_eq!(list(&kv).unwrap(), vec![c.clone()]);
        // The name and the token id are free again.
        let again = token("ci", 'c');
        let out = run(
            &mut kv,
            CredentialCommand::Add {
                credential: again.clone(),
            },
        );
        assert_eq!(out, Outcome::Applied(Applied::Credential(again.clone())));
        assert_eq!(by_token_id(&kv, &"c".repeat(16)).unwrap(), Some(again));
        // Revoking everything leaves no index entry behind.
        for name in ["admin", "ci"] {
            let out = run(&mut kv, CredentialCommand::Revoke { name: name.into() });
            assert!(matches!(out, Outcome::Applied(_)), "{out:?}");
        }
        assert_eq!(by_fingerprint(&kv, &"a".repeat(64)).unwrap(), None);
        assert!(kv.prefix(Table::CredentialIndex, b"").unwrap().is_empty());
        assert!(list(&kv).unwrap().is_empty());
    }

    #[test]
    fn refusals_change_nothing() {
        let mut kv = MemKv::default();
        for c in [cert("admin", 'a'), token("ci", 'c')] {
            let out = run(&mut kv, CredentialCommand::Add { credential: c });
            assert!(matches!(out, Outcome::Applied(_)), "{out:?}");
        }
        let before = (list(&kv).unwrap(), kv.clone());
        let cases = [
            (
                cert("Bad_Name", 'd'),
                RejectKind::InvalidArgument,
                "credential name",
            ),
            (
                cert("admin", 'e'),
                RejectKind::AlreadyExists,
                "already exists",
            ),
            (
                cert("other", 'a'),
                RejectKind::AlreadyExists,
                "already registered as credential admin",
            ),
            (
                Credential {
                    kind: CredentialKind::Certificate {
                        fingerprint: "zz".into(),
                    },
                    ..cert("short", 'a')
                },
                RejectKind::InvalidArgument,
                "not hex",
            ),
            (
                cert("", 'd'),
                RejectKind::InvalidArgument,
                "credential name",
            ),
            (
                cert(&"x".repeat(64), 'd'),
                RejectKind::InvalidArgument,
                "credential name",
            ),
            (
                token("ci", 'd'),
                RejectKind::AlreadyExists,
                "already exists",
            ),
            (
                token("ci2", 'c'),
                RejectKind::AlreadyExists,
                "this token is already registered as credential ci",
            ),
            (
                Credential {
                    kind: CredentialKind::Token {
                        id: "c".repeat(15),
                        secret_sha256: "b".repeat(64),
                    },
                    ..token("short-id", 'c')
                },
                RejectKind::InvalidArgument,
                "not hex",
            ),
            (
                Credential {
                    kind: CredentialKind::Token {
                        id: "e".repeat(16),
                        secret_sha256: "g".repeat(64),
                    },
                    ..token("bad-digest", 'e')
                },
                RejectKind::InvalidArgument,
                "not hex",
            ),
        ];
        for (c, kind, words) in cases {
            let out = run(&mut kv, CredentialCommand::Add { credential: c });
            refused(&out, kind, words);
        }
        // Neither the records nor the index changed.
        assert_eq!((list(&kv).unwrap(), kv.clone()), before);
        let out = run(
            &mut kv,
            CredentialCommand::Revoke {
                name: "ghost".into(),
            },
        );
        refused(&out, RejectKind::NotFound, "no credential named ghost");
        assert_eq!((list(&kv).unwrap(), kv.clone()), before);
    }
}
