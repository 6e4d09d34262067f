//! The leader loop: on the current leader only, place pending VMs and keep their pending
//! reasons current. Soft state: it is rebuilt from the replicated state every round, and what
//! it decides counts only once `apply` has re-validated the `Place` at its log position, so a
//! stale view, a deposed leader or two leaders in a term change can never double-place or
//! overcommit.
//!
//! A round runs when the applied index moves (a VM created, a host reporting, a pool becoming
//! reachable, capacity freed), when a scheduled VM falls due, and at least every `TICK` (host
//! liveness is not in the log). Rounds are at least `MIN_GAP` apart so a busy log does not
//! turn into a busy scheduler.
//!
//! Owns: `spawn`, `round`. Uses: `cluster::Host` (state reads, liveness, writes), `build`,
//! `place`.

use std::time::{Duration, Instant};

use futures::StreamExt;

use super::build::{self, Plan};
use super::place::place_batch;
use crate::cluster::{now_ms, ClusterError, Host};
use crate::state::vms::VmCommand;
use crate::state::{Command, Outcome};

/// Longest wait between rounds while leading.
pub const TICK: Duration = Duration::from_secs(1);
/// Shortest gap between the end of one round and the start of the next.
pub const MIN_GAP: Duration = Duration::from_millis(20);
/// Commands in flight at once; the leader's batcher packs them into log entries.
const IN_FLIGHT: usize = 1024;

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// VMs that were due.
    pub due: usize,
    /// Placements committed.
    pub placed: usize,
    /// Placements `apply` refused (the view was stale; the next round retries them).
    pub refused: usize,
    /// Pending reasons changed.
    pub explained: usize,
    /// When a scheduled VM falls due next.
    pub next_due: Option<u64>,
    /// Time spent reading the state into a plan, placing, and committing.
    pub plan_time: Duration,
    pub place_time: Duration,
    pub commit_time: Duration,
}

/// Starts the loop on this host; it idles while the host does not lead.
pub fn spawn(host: Host) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { run(host).await })
}

async fn run(host: Host) {
    let mut applied = host.applied();
    let mut next_due: Option<u64> = None;
    let mut backoff = MIN_GAP;
    loop {
        let wait = next_due
            .map(|t| Duration::from_millis(t.saturating_sub(now_ms())))
            .unwrap_or(TICK)
            .min(TICK);
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(wait) => {}
        }
        if !host.is_leader() {
            next_due = None;
            continue;
        }
        let started = Instant::now();
        let online = |name: &str| host.is_online_by_name(name);
        let span = tracing::info_span!("schedule", host = %host.name(), term = host.term());
        let result = tracing::Instrument::instrument(round(&host, online), span).await;
        metrics::histogram!("quantix_scheduler_round_seconds")
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(r) => {
                next_due = r.next_due;
                backoff = MIN_GAP;
                if r.placed + r.refused + r.explained > 0 {
                    tracing::info!(
                        due = r.due,
                        placed = r.placed,
                        refused = r.refused,
                        explained = r.explained,
                        "scheduling round"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "scheduling round failed; retrying");
                backoff = (backoff * 2).min(TICK);
            }
        }
        tokio::time::sleep(backoff).await;
    }
}

/// One round: read the state, place what is due in one batch, propose the placements and the
/// changed reasons, and wait for their outcomes. `online` is the liveness view to use (the
/// leader's, or anything a benchmark wants).
pub async fn round(
    host: &Host,
    online: impl Fn(&str) -> bool,
) -> Result<RoundReport, ClusterError> {
    let t0 = Instant::now();
    let plan = {
        let state = host.state()?;
        build::plan(&state, online, now_ms()).map_err(ClusterError::internal)?
    };
    let Plan {
        mut snapshot,
        policy,
        due,
        next_due,
    } = plan;
    metrics::gauge!("quantix_scheduler_pending").set(due.len() as f64);
    let mut report = RoundReport {
        due: due.len(),
        next_due,
        plan_time: t0.elapsed(),
        ..RoundReport::default()
    };
    if due.is_empty() {
        return Ok(report);
    }
    let demands: Vec<_> = due.iter().map(|p| p.demand.clone()).collect();
    let t1 = Instant::now();
    let results = place_batch(&mut snapshot, &demands, &policy);
    report.place_time = t1.elapsed();
    let t2 = Instant::now();
    let mut commands = Vec::new();
    for (pending, (name, result)) in due.iter().zip(results) {
        match result {
            Ok(target) => commands.push((
                true,
                VmCommand::Place {
                    name,
                    host: target,
                    generation: pending.generation,
                },
            )),
            Err(why) => {
                let reason = why.to_string();
                if reason != pending.reason {
                    commands.push((
                        false,
                        VmCommand::Unschedulable {
                            name,
                            generation: pending.generation,
                            reason,
                        },
                    ));
                }
            }
        }
    }
    let mut outcomes = futures::stream::iter(commands)
        .map(|(is_place, cmd)| async move { (is_place, host.write(Command::Vm(cmd), None).await) })
        .buffer_unordered(IN_FLIGHT);
    let mut first_error = None;
    while let Some((is_place, outcome)) = outcomes.next().await {
        match (is_place, outcome) {
            (true, Ok(Outcome::Applied(_))) => report.placed += 1,
            (true, Ok(Outcome::Rejected(r))) => {
                tracing::debug!(reason = %r.message, "placement refused at apply");
                report.refused += 1;
            }
            (false, Ok(_)) => report.explained += 1,
            (_, Err(e)) => {
                first_error.get_or_insert(e);
            }
        }
    }
    report.commit_time = t2.elapsed();
    metrics::counter!("quantix_scheduler_placements_total").increment(report.placed as u64);
    metrics::counter!("quantix_scheduler_refused_total").increment(report.refused as u64);
    match first_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}
