//! `quantix bench ...`: load generators against a running cluster, printing throughput and
//! latency percentiles. `write` also reports the longest gap between two committed writes,
//! which is the failover time when a leader is killed during the run.

use clap::Subcommand;
use hdrhistogram::Histogram;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::output::{self, Format};
use super::{connect, request_id, CliError, Consistency};
use crate::proto::v1::folder_service_client::FolderServiceClient;
use crate::proto::v1::*;

// Declared here rather than in `cli/mod.rs` so `bench start` stays inside the bench module.
#[path = "bench_start.rs"]
mod bench_start;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Concurrent writes (folder records) spread over the given hosts.
    Write {
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Comma-separated endpoints; clients are spread over them. Default: --endpoint.
        #[arg(long, value_delimiter = ',')]
        endpoints: Vec<String>,
    },
    /// Load VM records, then time VM gets and list pages (see scripts/bench-vms.sh).
    Vms {
        #[arg(long, default_value_t = 100_000)]
        count: u64,
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// How long to time reads after loading.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        reads: Duration,
    },
    /// Concurrent point reads of one folder.
    Read {
        #[arg(long, default_value_t = 1)]
        clients: usize,
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        duration: Duration,
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
    /// Time API create → VM running for N VMs (see scripts/bench-start.sh).
    Start(bench_start::StartArgs),
}

#[derive(Default)]
struct Tally {
    hist: Option<Histogram<u64>>,
    ok: u64,
    errors: u64,
    last_error: Option<String>,
    last_ok: Option<Instant>,
    max_gap: Duration,
}

impl Tally {
    fn record(&mut self, started: Instant, result: Result<(), tonic::Status>) {
        let now = Instant::now();
        match result {
            Ok(()) => {
                let us = now.duration_since(started).as_micros() as u64;
                if let Some(h) = self.hist.as_mut() {
                    h.saturating_record(us.max(1));
                }
                self.ok += 1;
                if let Some(prev) = self.last_ok {
                    self.max_gap = self.max_gap.max(now.duration_since(prev));
                }
                self.last_ok = Some(now);
            }
            Err(s) => {
                self.errors += 1;
                self.last_error = Some(format!("{:?}: {}", s.code(), s.message()));
            }
        }
    }
}

fn lock(t: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

pub async fn run(endpoint: &str, out: Format, cmd: BenchCmd) -> Result<(), CliError> {
    if let BenchCmd::Vms {
        count,
        clients,
        reads,
    } = cmd
    {
        return super::bench_vms::run(endpoint, out, count, clients, reads).await;
    }
    if let BenchCmd::Start(args) = cmd {
        return bench_start::run(endpoint, out, args).await;
    }
    let hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let tally = Arc::new(Mutex::new(Tally {
        hist: Some(hist),
        ..Default::default()
    }));
    let (kind, clients, duration) = match &cmd {
        BenchCmd::Write {
            clients, duration, ..
        } => ("write", *clients, *duration),
        BenchCmd::Read {
            clients, duration, ..
        } => ("read", *clients, *duration),
        BenchCmd::Vms { .. } | BenchCmd::Start(_) => return Ok(()),
    };
    if clients == 0 {
        return Err(CliError::Usage("--clients must be at least 1".into()));
    }
    let base = format!("/bench-{}", &request_id()[..8]);
    let mut setup = FolderServiceClient::new(connect(endpoint).await?);
    setup
        .create_folder(CreateFolderRequest {
            path: base.clone(),
            parents: false,
            request_id: request_id(),
        })
        .await?;
    let endpoints = match &cmd {
        BenchCmd::Write { endpoints, .. } if !endpoints.is_empty() => endpoints.clone(),
        _ => vec![endpoint.to_string()],
    };
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for i in 0..clients {
        let mut c = FolderServiceClient::new(connect(&endpoints[i % endpoints.len()]).await?);
        let tally = tally.clone();
        let base = base.clone();
        let consistency = match &cmd {
            BenchCmd::Read { consistency, .. } => consistency.proto(),
            BenchCmd::Write { .. } | BenchCmd::Vms { .. } | BenchCmd::Start(_) => 0,
        };
        let write = matches!(cmd, BenchCmd::Write { .. });
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let result = if write {
                    let path = format!("{base}/c{i}-{n}");
                    c.create_folder(CreateFolderRequest {
                        path,
                        parents: false,
                        request_id: request_id(),
                    })
                    .await
                    .map(|_| ())
                } else {
                    c.get_folder(GetFolderRequest {
                        path: base.clone(),
                        consistency,
                    })
                    .await
                    .map(|_| ())
                };
                if result.is_err() {
                    // Back off briefly on errors (e.g. during a failover) instead of spinning.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                lock(&tally).record(t0, result);
                n += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let t = lock(&tally);
    let h = t
        .hist
        .as_ref()
        .ok_or_else(|| CliError::Usage("no histogram".into()))?;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let rate = t.ok as f64 / elapsed;
    let doc = json!({
        "bench": kind, "clients": clients, "endpoints": endpoints, "seconds": elapsed,
        "ok": t.ok, "errors": t.errors, "ops_per_sec": rate,
        "p50_ms": ms(0.50), "p99_ms": ms(0.99), "p999_ms": ms(0.999), "max_ms": h.max() as f64 / 1000.0,
        "max_gap_ms": t.max_gap.as_secs_f64() * 1000.0, "last_error": t.last_error,
    });
    match out {
        Format::Json => output::json(&doc),
        Format::Table => {
            println!(
                "{kind}: {} ok, {} errors in {elapsed:.1}s with {clients} clients = {rate:.0} ops/s; latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; longest gap between commits {:.0} ms",
                t.ok, t.errors, ms(0.5), ms(0.99), ms(0.999), h.max() as f64 / 1000.0, t.max_gap.as_secs_f64() * 1000.0
            );
            if let Some(e) = &t.last_error {
                println!("last error: {e}");
            }
        }
    }
    Ok(())
}
