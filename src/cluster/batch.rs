//! Proposal batching on the leader. openraft 0.9 appends and fsyncs one log entry per
//! `client_write` and waits for that fsync before taking the next, so one entry per client
//! request caps the cluster at one write per fsync. The batcher packs the requests waiting at
//! that moment into one `Proposal` entry and keeps a few proposals in flight, so batches grow
//! with load and a lone request is proposed at once.

use openraft::error::{ClientWriteError, RaftError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::ClusterError;
use crate::raft::Raft;
use crate::state::{Outcome, Proposal, Request};

/// Most requests in one log entry.
const MAX_BATCH: usize = 512;
/// Proposals handed to Raft and not yet applied.
const IN_FLIGHT: usize = 8;

type Reply = oneshot::Sender<Result<Outcome, ClusterError>>;

pub(super) struct Batcher {
    tx: mpsc::UnboundedSender<(Request, Reply)>,
}

impl Batcher {
    pub(super) fn start(raft: Raft) -> Batcher {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        Batcher { tx }
    }

    /// Proposes one request (batched with whatever else is waiting) and returns its outcome.
    pub(super) async fn propose(&self, req: Request) -> Result<Outcome, ClusterError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((req, reply))
            .map_err(|_| ClusterError::Unavailable("this host is shutting down".into()))?;
        rx.await
            .map_err(|_| ClusterError::Unavailable("this host is shutting down".into()))?
    }
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<(Request, Reply)>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Waiting for a slot is what lets the next batch fill up under load.
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let (requests, replies): (Vec<Request>, Vec<Reply>) = batch.into_iter().unzip();
            let n = requests.len();
            match propose(&raft, Proposal { requests }).await {
                Ok(outcomes) if outcomes.len() == n => {
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Ok(outcomes) => {
                    let e = ClusterError::internal(format!(
                        "proposal of {n} requests applied with {} outcomes",
                        outcomes.len()
                    ));
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        });
    }
}

async fn propose(raft: &Raft, proposal: Proposal) -> Result<Vec<Outcome>, ClusterError> {
    match raft.client_write(proposal).await {
        Ok(resp) => Ok(resp.data.0),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Err(ClusterError::NotLeader {
                leader: f.leader_node,
            })
        }
        Err(RaftError::APIError(e)) => Err(ClusterError::internal(e)),
        Err(RaftError::Fatal(e)) => Err(ClusterError::Unavailable(format!("raft stopped: {e}"))),
    }
}
