//! The event log (what happened, who proposed it, when, the outcome) and the change feed
//! (which entity changed at which revision) that `Watch` streams from. Both are bounded and
//! trimmed oldest first by count, inside `apply`, so every host keeps the same window.
//! `Recording` wraps the state during one command and notes every write to a watched table,
//! so no entity module has to remember to publish its changes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::codec::decode;
use super::command::{Outcome, Request};
use super::kv::{Kv, KvError, KvRead, Pairs, Table};
use super::tables;
use crate::model::UnixMillis;

/// Events kept.
pub const MAX_EVENTS: u64 = 10_000;
/// Changes kept for watchers that reconnect.
pub const MAX_CHANGES: u64 = 100_000;

const EVENT_SEQ: &[u8] = b"event_seq";
const REVISION: &[u8] = b"revision";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at: UnixMillis,
    /// Host that proposed the command.
    pub by: String,
    /// Command kind, e.g. `create_vm`.
    pub what: String,
    /// What it was about: a name or path.
    pub target: String,
    pub ok: bool,
    /// The refusal, when not ok.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub revision: u64,
    /// `vm`, `folder`, `spec`, `image`, `pool`, `host` or `event`.
    pub entity: String,
    /// The entity's name (folder: its id; event: its sequence number).
    pub key: String,
    pub deleted: bool,
    pub at: UnixMillis,
}

/// Host inventory and maintenance live in the meta table under this prefix (`state::hosts`).
const HOST_INVENTORY: &[u8] = b"host_inventory/";

/// The entity and display key a write publishes as, if it is watched at all.
pub fn watched(t: Table, key: &[u8]) -> Option<(&'static str, String)> {
    let text = || String::from_utf8_lossy(key).into_owned();
    let number = || {
        <[u8; 8]>::try_from(key)
            .map(|b| u64::from_be_bytes(b).to_string())
            .unwrap_or_else(|_| text())
    };
    match t {
        Table::Vms => Some(("vm", text())),
        Table::Folders => Some(("folder", number())),
        Table::Specs => Some(("spec", text())),
        Table::Images => Some(("image", text())),
        Table::Pools => Some(("pool", text())),
        Table::Hosts => Some(("host", text())),
        Table::Events => Some(("event", number())),
        Table::Meta => key
            .strip_prefix(HOST_INVENTORY)
            .map(|name| ("host", String::from_utf8_lossy(name).into_owned())),
        _ => None,
    }
}

/// The state during one command, noting writes to watched tables.
pub struct Recording<'a, K: Kv> {
    inner: &'a mut K,
    /// (table, key) -> deleted; the last write to a key wins.
    changes: BTreeMap<(Table, Vec<u8>), bool>,
}

impl<'a, K: Kv> Recording<'a, K> {
    pub fn new(inner: &'a mut K) -> Self {
        Recording {
            inner,
            changes: BTreeMap::new(),
        }
    }

    pub fn into_changes(self) -> BTreeMap<(Table, Vec<u8>), bool> {
        self.changes
    }
}

impl<K: Kv> KvRead for Recording<'_, K> {
    fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.inner.get(t, key)
    }
    fn range(
        &self,
        t: Table,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, KvError> {
        self.inner.range(t, from, to, limit)
    }
    fn len(&self, t: Table) -> Result<u64, KvError> {
        self.inner.len(t)
    }
}

impl<K: Kv> Kv for Recording<'_, K> {
    fn put(&mut self, t: Table, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        if watched(t, key).is_some() {
            self.changes.insert((t, key.to_vec()), false);
        }
        self.inner.put(t, key, value)
    }
    fn delete(&mut self, t: Table, key: &[u8]) -> Result<(), KvError> {
        if watched(t, key).is_some() {
            self.changes.insert((t, key.to_vec()), true);
        }
        self.inner.delete(t, key)
    }
}

fn counter(kv: &impl KvRead, key: &[u8], what: &'static str) -> Result<u64, KvError> {
    Ok(tables::get(kv, Table::Meta, what, key)?.unwrap_or(0))
}

/// Drops the oldest rows of a table keyed by big-endian sequence numbers beyond `keep`.
fn trim(kv: &mut impl Kv, t: Table, newest: u64, keep: u64) -> Result<(), KvError> {
    if newest <= keep {
        return Ok(());
    }
    let cutoff = (newest - keep + 1).to_be_bytes();
    for (key, _) in kv.range(t, &[], Some(&cutoff), 1024)? {
        kv.delete(t, &key)?;
    }
    Ok(())
}

/// Records the event for `req` and publishes `changes` (plus the event itself).
pub fn record(
    kv: &mut impl Kv,
    req: &Request,
    outcome: &Outcome,
    mut changes: BTreeMap<(Table, Vec<u8>), bool>,
) -> Result<(), KvError> {
    let seq = counter(kv, EVENT_SEQ, "event seq")? + 1;
    let (ok, message) = match outcome {
        Outcome::Applied(_) => (true, String::new()),
        Outcome::Rejected(r) => (false, r.message.clone()),
    };
    let event = Event {
        seq,
        at: req.at,
        by: req.by.clone(),
        what: req.cmd.kind().to_string(),
        target: req.cmd.target(),
        ok,
        message,
    };
    tables::put(kv, Table::Events, &seq.to_be_bytes(), &event)?;
    tables::put(kv, Table::Meta, EVENT_SEQ, &seq)?;
    trim(kv, Table::Events, seq, MAX_EVENTS)?;
    changes.insert((Table::Events, seq.to_be_bytes().to_vec()), false);

    let mut revision = counter(kv, REVISION, "revision")?;
    for ((t, key), deleted) in changes {
        let Some((entity, key)) = watched(t, &key) else {
            continue;
        };
        revision += 1;
        let change = Change {
            revision,
            entity: entity.into(),
            key,
            deleted,
            at: req.at,
        };
        tables::put(kv, Table::Changes, &revision.to_be_bytes(), &change)?;
    }
    tables::put(kv, Table::Meta, REVISION, &revision)?;
    trim(kv, Table::Changes, revision, MAX_CHANGES)
}

/// The revision of the newest change (0 before any).
pub fn revision(kv: &impl KvRead) -> Result<u64, KvError> {
    counter(kv, REVISION, "revision")
}

/// Changes after `after`, at most `limit`; `Err(oldest)` if some were already trimmed.
pub fn changes_after(
    kv: &impl KvRead,
    after: u64,
    limit: usize,
) -> Result<Result<Vec<Change>, u64>, KvError> {
    let rows = kv.range(Table::Changes, &(after + 1).to_be_bytes(), None, limit)?;
    let oldest = match kv.range(Table::Changes, &[], None, 1)?.first() {
        Some((_, v)) => decode::<Change>("change", v)?.revision,
        None => revision(kv)? + 1,
    };
    if after + 1 < oldest {
        return Ok(Err(oldest));
    }
    rows.iter()
        .map(|(_, v)| decode("change", v).map_err(KvError::from))
        .collect::<Result<_, _>>()
        .map(Ok)
}

/// Events after `after`, oldest first, at most `limit`.
pub fn events_after(kv: &impl KvRead, after: u64, limit: usize) -> Result<Vec<Event>, KvError> {
    kv.range(Table::Events, &(after + 1).to_be_bytes(), None, limit)?
        .iter()
        .map(|(_, v)| decode("event", v).map_err(KvError::from))
        .collect()
}

/// The newest `limit` events, oldest first.
pub fn latest_events(kv: &impl KvRead, limit: usize) -> Result<Vec<Event>, KvError> {
    let newest = counter(kv, EVENT_SEQ, "event seq")?;
    events_after(kv, newest.saturating_sub(limit as u64), limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::apply::tests::init;
    use crate::state::{apply, Command};

    fn req(id: &str, cmd: Command) -> Request {
        Request {
            id: Some(id.into()),
            by: "h1".into(),
            at: 50,
            cmd,
        }
    }

    #[test]
    fn every_command_leaves_an_event_with_its_outcome() {
        let mut kv = init();
        apply(
            &mut kv,
            2,
            &req(
                "a",
                Command::CreateFolder {
                    path: "/a".into(),
                    parents: false,
                },
            ),
        )
        .unwrap();
        apply(
            &mut kv,
            3,
            &req(
                "b",
                Command::CreateFolder {
                    path: "/a".into(),
                    parents: false,
                },
            ),
        )
        .unwrap();
        let ev = latest_events(&kv, 2).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(
            (
                ev[0].what.as_str(),
                ev[0].target.as_str(),
                ev[0].ok,
                ev[0].by.as_str()
            ),
            ("create_folder", "/a", true, "h1")
        );
        assert!(
            !ev[1].ok && ev[1].message.contains("already exists"),
            "{:?}",
            ev[1]
        );
        assert_eq!(ev[1].seq, ev[0].seq + 1);
    }

    #[test]
    fn changes_name_the_entity_and_resume_from_a_revision() {
        let mut kv = init();
        let start = revision(&kv).unwrap();
        apply(
            &mut kv,
            2,
            &req(
                "a",
                Command::CreateFolder {
                    path: "/a".into(),
                    parents: false,
                },
            ),
        )
        .unwrap();
        apply(
            &mut kv,
            3,
            &req("d", Command::DeleteFolder { path: "/a".into() }),
        )
        .unwrap();
        let ch = changes_after(&kv, start, 100).unwrap().unwrap();
        let summary: Vec<(&str, bool)> =
            ch.iter().map(|c| (c.entity.as_str(), c.deleted)).collect();
        // Within one command: the entity's change, then its event.
        assert_eq!(
            summary,
            [
                ("folder", false),
                ("event", false),
                ("folder", true),
                ("event", false)
            ]
        );
        assert!(ch.windows(2).all(|w| w[1].revision == w[0].revision + 1));
        // Resume after the second change: only the later ones come back.
        let later = changes_after(&kv, ch[1].revision, 100).unwrap().unwrap();
        assert_eq!(later.len(), 2);
        assert_eq!(
            changes_after(&kv, revision(&kv).unwrap(), 100)
                .unwrap()
                .unwrap(),
            vec![]
        );
    }

    #[test]
    fn event_window_is_bounded() {
        let mut kv = init();
        for i in 0..(MAX_EVENTS + 10) {
            apply(&mut kv, 10 + i, &req(&format!("n{i}"), Command::Noop)).unwrap();
        }
        assert_eq!(kv.len(Table::Events).unwrap(), MAX_EVENTS);
        assert_eq!(latest_events(&kv, 1).unwrap()[0].seq, MAX_EVENTS + 11);
    }

    #[test]
    fn a_trimmed_revision_is_reported_with_the_oldest_kept() {
        let mut kv = init();
        for i in 0..10 {
            apply(&mut kv, 10 + i, &req(&format!("n{i}"), Command::Noop)).unwrap();
        }
        let newest = revision(&kv).unwrap();
        trim(&mut kv, Table::Changes, newest, 5).unwrap();
        assert_eq!(changes_after(&kv, 0, 100).unwrap(), Err(newest - 4));
        assert_eq!(
            changes_after(&kv, newest - 5, 100).unwrap().unwrap().len(),
            5
        );
    }
}
