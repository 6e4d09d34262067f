//! `quantix.v1.EventService`: the event log and `Watch`, a resumable stream of changes read
//! from this host's change feed as entries are applied here.

use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::cluster::is_stale;
use super::status::to_status;
use crate::cluster::{ClusterError, Host};
use crate::proto::v1::event_service_server::EventService;
use crate::proto::v1::*;
use crate::state::events;

pub struct EventApi {
    pub host: Host,
}

fn internal(e: impl std::fmt::Display) -> Status {
    to_status(ClusterError::internal(e))
}

fn event_to_proto(e: events::Event) -> Event {
    Event {
        seq: e.seq,
        at_ms: e.at,
        by: e.by,
        what: e.what,
        target: e.target,
        ok: e.ok,
        message: e.message,
    }
}

/// Changes sent to a watcher per read of the feed.
const BATCH: usize = 512;

#[tonic::async_trait]
impl EventService for EventApi {
    async fn list_events(
        &self,
        req: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        let r = req.into_inner();
        self.host
            .read_barrier(is_stale(r.consistency))
            .await
            .map_err(to_status)?;
        let state = self.host.state().map_err(to_status)?;
        let limit = match r.limit {
            0 => 50,
            n => n.min(1000) as usize,
        };
        let list = if r.after_seq == 0 {
            events::latest_events(&state, limit)
        } else {
            events::events_after(&state, r.after_seq, limit)
        }
        .map_err(internal)?;
        Ok(Response::new(ListEventsResponse {
            events: list.into_iter().map(event_to_proto).collect(),
        }))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<Change, Status>> + Send>>;

    async fn watch(
        &self,
        req: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let r = req.into_inner();
        const ENTITIES: [&str; 7] = ["vm", "folder", "spec", "image", "pool", "host", "event"];
        if let Some(bad) = r.entities.iter().find(|e| !ENTITIES.contains(&e.as_str())) {
            return Err(to_status(ClusterError::InvalidArgument(format!(
                "entity '{bad}' is not one of {}",
                ENTITIES.join(", ")
            ))));
        }
        let mut after = if r.from_revision == 0 {
            events::revision(&self.host.state().map_err(to_status)?).map_err(internal)?
        } else {
            r.from_revision
        };
        // Check the start now, so a compacted revision fails the call rather than the stream.
        if let Err(oldest) = events::changes_after(&self.host.state().map_err(to_status)?, after, 1)
            .map_err(internal)?
        {
            return Err(compacted(after, oldest));
        }
        let host = self.host.clone();
        let mut applied = host.applied();
        let (tx, rx) = tokio::sync::mpsc::channel(BATCH);
        tokio::spawn(async move {
            loop {
                let batch = match host
                    .state()
                    .map_err(to_status)
                    .and_then(|s| events::changes_after(&s, after, BATCH).map_err(internal))
                {
                    Ok(Ok(b)) => b,
                    Ok(Err(oldest)) => {
                        let _ = tx.send(Err(compacted(after, oldest))).await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                let full = batch.len() == BATCH;
                for c in batch {
                    after = c.revision;
                    if !r.entities.is_empty() && !r.entities.contains(&c.entity) {
                        continue;
                    }
                    let change = Change {
                        revision: c.revision,
                        entity: c.entity,
                        key: c.key,
                        deleted: c.deleted,
                        at_ms: c.at,
                    };
                    if tx.send(Ok(change)).await.is_err() {
                        return; // the watcher went away
                    }
                }
                if !full && applied.changed().await.is_err() {
                    return; // the host is shutting down
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

fn compacted(after: u64, oldest: u64) -> Status {
    to_status(ClusterError::FailedPrecondition(format!(
        "revision {after} is older than the kept change window (oldest {oldest}): list again and watch from the list's revision"
    )))
}
