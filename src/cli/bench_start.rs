//! `quantix bench start`: how long from the API call that creates a VM until the cluster
//! reports it `running` (scheduler placement, Raft commits, the host agent defining and
//! starting the libvirt domain, the observed status going back through Raft). Run against the
//! test driver and real QEMU by `scripts/bench-start.sh`.
//!
//! How the end is seen: before the first create it takes a `ListVms` revision and opens one
//! `Watch` on `vm` changes from there, on the same endpoint. Each change to a bench VM wakes
//! that VM's waiter, which re-reads the VM (a stale read is enough: the feed is served by the
//! same host after it applied the change). The latency is taken when that read answers
//! `running`, so it includes one local read (~0.2 ms). If the stream breaks, waiters fall back
//! to polling `GetVm` every 20 ms and the report says so.
//!
//! Owns: nothing stored; the VMs it creates are deleted (and waited for) unless `--keep`.
//! May use: the generated proto clients only.

use crate::cli::Conn as Channel;
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

use super::output::{self, Format};
use super::{connect, request_id, CliError};
use crate::model::size::parse_mib;
use crate::proto::v1::event_service_client::EventServiceClient;
use crate::proto::v1::vm_service_client::VmServiceClient;
use crate::proto::v1::*;

/// Longest wait for one VM to run, or to be gone after its delete.
const TIMEOUT: Duration = Duration::from_secs(120);
/// Poll interval once the change feed is lost.
const POLL: Duration = Duration::from_millis(20);

#[derive(Args)]
pub struct StartArgs {
    /// VMs to create.
    #[arg(long, default_value_t = 50)]
    count: usize,
    /// VMs between create and running at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Storage pool for the disk.
    #[arg(long)]
    pool: Option<String>,
    /// Size of each VM's disk (MiB, or with a unit). 0 = no disk.
    #[arg(long, default_value = "0")]
    disk_size: String,
    /// Memory of each VM (MiB, or with a unit).
    #[arg(long, default_value = "128MiB")]
    memory: String,
    /// Leave the VMs in place afterwards.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("{what} {vm} failed: {message} ({code:?})")]
    Call {
        what: &'static str,
        vm: String,
        code: tonic::Code,
        message: String,
    },
    #[error("VM {vm} is not {wanted} after {secs} s: last status '{status}', reason '{reason}', host '{host}'")]
    Timeout {
        vm: String,
        wanted: &'static str,
        secs: u64,
        status: String,
        reason: String,
        host: String,
    },
}

impl StartError {
    fn call(what: &'static str, vm: &str, s: tonic::Status) -> Self {
        StartError::Call {
            what,
            vm: vm.to_string(),
            code: s.code(),
            message: s.message().to_string(),
        }
    }
}

impl From<StartError> for CliError {
    fn from(e: StartError) -> Self {
        CliError::Usage(e.to_string())
    }
}

/// Wakes a VM's waiter whenever the change feed says that VM changed.
struct Feed {
    wake: HashMap<String, Arc<Notify>>,
    /// False once the stream ended or failed: waiters poll instead.
    live: AtomicBool,
}

async fn follow(mut stream: tonic::Streaming<Change>, feed: Arc<Feed>) {
    loop {
        match stream.message().await {
            Ok(Some(c)) => {
                if let Some(n) = feed.wake.get(&c.key) {
                    n.notify_one();
                }
            }
            Ok(None) => {
                eprintln!("warning: the watch stream ended; polling GetVm every 20 ms");
                break;
            }
            Err(s) => {
                eprintln!(
                    "warning: the watch stream failed ({:?}: {}); polling GetVm every 20 ms",
                    s.code(),
                    s.message()
                );
                break;
            }
        }
    }
    feed.live.store(false, Ordering::SeqCst);
    for n in feed.wake.values() {
        n.notify_one();
    }
}

/// What a waiter waits for.
#[derive(Clone, Copy)]
enum Until {
    Running,
    Gone,
}

impl Until {
    fn name(self) -> &'static str {
        match self {
            Until::Running => "running",
            Until::Gone => "gone",
        }
    }

    fn reached(self, vm: Option<&Vm>) -> bool {
        match self {
            Until::Running => vm.is_some_and(|v| v.status == "running"),
            Until::Gone => vm.is_none(),
        }
    }
}

/// Re-reads `name` after each change the feed reports for it (every `POLL` once the feed is
/// lost) until `until` holds; returns when the read that showed it answered.
async fn wait_for(
    c: &mut VmServiceClient<Channel>,
    feed: &Feed,
    name: &str,
    until: Until,
    deadline: Instant,
) -> Result<Instant, StartError> {
    let wake = feed.wake.get(name).cloned().unwrap_or_default();
    let mut last: Option<Vm> = None;
    loop {
        let got = match c
            .get_vm(GetVmRequest {
                name: name.to_string(),
                consistency: ReadConsistency::Stale as i32,
            })
            .await
        {
            Ok(r) => Some(r.into_inner()),
            // Before the create is applied here, or after the delete finished.
            Err(s) if s.code() == tonic::Code::NotFound => None,
            Err(s) => return Err(StartError::call("GetVm", name, s)),
        };
        let now = Instant::now();
        if until.reached(got.as_ref()) {
            return Ok(now);
        }
        if got.is_some() {
            last = got;
        }
        if now >= deadline {
            let last = last.unwrap_or_default();
            return Err(StartError::Timeout {
                vm: name.to_string(),
                wanted: until.name(),
                secs: TIMEOUT.as_secs(),
                status: if last.status.is_empty() {
                    "not found".into()
                } else {
                    last.status
                },
                reason: last.reason,
                host: last.host,
            });
        }
        let left = deadline - now;
        let wait = if feed.live.load(Ordering::SeqCst) {
            left
        } else {
            POLL.min(left)
        };
        // A change that came before this point left a permit, so none is missed.
        let _ = tokio::time::timeout(wait, wake.notified()).await;
    }
}

fn hist() -> Result<Histogram<u64>, CliError> {
    Histogram::new_with_bounds(1, 600_000_000, 3).map_err(|e| CliError::Usage(e.to_string()))
}

/// Latencies in microseconds, one entry per VM.
#[derive(Default)]
struct Samples {
    /// CreateVm call → its answer.
    ack: Vec<u64>,
    /// CreateVm call → first read that shows `running`.
    running: Vec<u64>,
}

/// Runs `work(index)` for 0..count on `concurrency` tasks, each with its own VM client; stops
/// handing out indices after the first error. Returns the per-index results in any order and
/// how many indices were handed out.
async fn fan_out<F, Fut, T>(
    channel: &Channel,
    count: usize,
    concurrency: usize,
    work: F,
) -> (Vec<Result<T, StartError>>, usize)
where
    F: Fn(VmServiceClient<Channel>, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (VmServiceClient<Channel>, Result<T, StartError>)> + Send,
    T: Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.min(count) {
        let (next, stop, work) = (next.clone(), stop.clone(), work.clone());
        let mut c = VmServiceClient::new(channel.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    break;
                }
                let (back, r) = work(c, i).await;
                c = back;
                if r.is_err() {
                    stop.store(true, Ordering::SeqCst);
                }
                out.push(r);
            }
            out
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        match t.await {
            Ok(mut r) => results.append(&mut r),
            Err(e) => results.push(Err(StartError::Call {
                what: "bench task",
                vm: String::new(),
                code: tonic::Code::Internal,
                message: e.to_string(),
            })),
        }
    }
    (results, next.load(Ordering::SeqCst).min(count))
}

/// One bench VM: PXE, one `user` NIC, 1 CPU, an optional blank disk.
fn template(a: &StartArgs, memory_mib: u64, disk_mib: u64) -> CreateVmRequest {
    let disks = if disk_mib > 0 {
        vec![Disk {
            size_mib: disk_mib,
            pool: a.pool.clone().unwrap_or_default(),
            image: String::new(),
        }]
    } else {
        Vec::new()
    };
    CreateVmRequest {
        cpus: 1,
        memory_mib,
        disks,
        boot: Some(BootMedia {
            media: Some(boot_media::Media::Pxe(true)),
        }),
        nics: vec![Nic {
            network: "user".into(),
            mac: String::new(),
        }],
        ..Default::default()
    }
}

pub async fn run(endpoint: &str, out: Format, a: StartArgs) -> Result<(), CliError> {
    if a.count == 0 || a.concurrency == 0 {
        return Err(CliError::Usage(
            "--count and --concurrency must be at least 1".into(),
        ));
    }
    let usage = |e: crate::model::size::SizeError| CliError::Usage(e.to_string());
    let memory_mib = parse_mib("--memory", &a.memory).map_err(usage)?;
    let disk_mib = parse_mib("--disk-size", &a.disk_size).map_err(usage)?;
    let channel = connect(endpoint).await?;

    let prefix = format!("bench-start-{}", &request_id()[..6]);
    let names: Arc<Vec<String>> = Arc::new((0..a.count).map(|i| format!("{prefix}-{i}")).collect());
    let feed = Arc::new(Feed {
        wake: names
            .iter()
            .map(|n| (n.clone(), Arc::new(Notify::new())))
            .collect(),
        live: AtomicBool::new(true),
    });
    let from_revision = VmServiceClient::new(channel.clone())
        .list_vms(ListVmsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner()
        .revision;
    let stream = EventServiceClient::new(channel.clone())
        .watch(WatchRequest {
            from_revision,
            entities: vec!["vm".into()],
        })
        .await?
        .into_inner();
    let follower = tokio::spawn(follow(stream, feed.clone()));

    // Create → running, `concurrency` VMs in flight.
    let (concurrency, keep) = (a.concurrency, a.keep);
    let template = Arc::new(template(&a, memory_mib, disk_mib));
    let started = Instant::now();
    let (results, handed_out) = {
        let (names, feed) = (names.clone(), feed.clone());
        fan_out(&channel, names.len(), concurrency, move |mut c, i| {
            let (names, feed, template) = (names.clone(), feed.clone(), template.clone());
            async move {
                let name = &names[i];
                let create = CreateVmRequest {
                    name: name.clone(),
                    request_id: request_id(),
                    ..(*template).clone()
                };
                let t0 = Instant::now();
                let r = match c.create_vm(create).await {
                    Err(s) => Err(StartError::call("CreateVm", name, s)),
                    Ok(vm) => {
                        let acked = Instant::now();
                        let ran = if vm.get_ref().status == "running" {
                            Ok(acked)
                        } else {
                            wait_for(&mut c, &feed, name, Until::Running, t0 + TIMEOUT).await
                        };
                        ran.map(|ran| (us(acked - t0), us(ran - t0)))
                    }
                };
                (c, r)
            }
        })
        .await
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut samples = Samples::default();
    let mut first_error = None;
    for r in results {
        match r {
            Ok((ack, running)) => {
                samples.ack.push(ack);
                samples.running.push(running);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }

    // Delete what was handed out (some may not exist) and wait until each is gone.
    let mut cleanup = None;
    let mut gone_hist = hist()?;
    if !keep {
        let t = Instant::now();
        let (names, feed) = (names.clone(), feed.clone());
        let (results, _) = fan_out(&channel, handed_out, concurrency, move |mut c, i| {
            let (names, feed) = (names.clone(), feed.clone());
            async move {
                let name = &names[i];
                let t0 = Instant::now();
                let r = match c
                    .delete_vm(DeleteVmRequest {
                        name: name.clone(),
                        request_id: request_id(),
                    })
                    .await
                {
                    Ok(_) => wait_for(&mut c, &feed, name, Until::Gone, t0 + TIMEOUT)
                        .await
                        .map(|gone| us(gone - t0)),
                    Err(s) if s.code() == tonic::Code::NotFound => Ok(0),
                    Err(s) => Err(StartError::call("DeleteVm", name, s)),
                };
                (c, r)
            }
        })
        .await;
        for r in results {
            match r {
                Ok(0) => {}
                Ok(v) => gone_hist.saturating_record(v),
                Err(e) => {
                    eprintln!("error: cleanup: {e}");
                    first_error.get_or_insert(e);
                }
            }
        }
        cleanup = Some(t.elapsed().as_secs_f64());
    }
    let watch_live = feed.live.load(Ordering::SeqCst);
    follower.abort();
    if let Some(e) = first_error {
        return Err(e.into());
    }

    let (mut run_h, mut ack_h) = (hist()?, hist()?);
    for &v in &samples.running {
        run_h.saturating_record(v.max(1));
    }
    for &v in &samples.ack {
        ack_h.saturating_record(v.max(1));
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let n = samples.running.len();
    let rate = n as f64 / seconds;
    let doc = json!({
        "bench": "start", "vms": n, "concurrency": concurrency, "memory_mib": memory_mib,
        "disk_mib": disk_mib, "seconds": seconds, "vms_per_sec": rate,
        "p50_ms": ms(&run_h, 0.5), "p90_ms": ms(&run_h, 0.9), "p99_ms": ms(&run_h, 0.99),
        "max_ms": run_h.max() as f64 / 1000.0, "min_ms": run_h.min() as f64 / 1000.0,
        "create_call_p50_ms": ms(&ack_h, 0.5), "create_call_p99_ms": ms(&ack_h, 0.99),
        "watch": if watch_live { "live" } else { "lost, polled" },
        "kept": cleanup.is_none(), "cleanup_seconds": cleanup,
        "delete_to_gone_p50_ms": cleanup.map(|_| ms(&gone_hist, 0.5)),
        "delete_to_gone_p99_ms": cleanup.map(|_| ms(&gone_hist, 0.99)),
    });
    match out {
        Format::Json => output::json(&doc),
        Format::Table => {
            println!(
                "start: {n} VMs running in {seconds:.1}s with concurrency {} = {rate:.1} VMs/s; create → running p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; CreateVm call p50 {:.1} ms, p99 {:.1} ms{}",
                concurrency,
                ms(&run_h, 0.5),
                ms(&run_h, 0.9),
                ms(&run_h, 0.99),
                run_h.max() as f64 / 1000.0,
                ms(&ack_h, 0.5),
                ms(&ack_h, 0.99),
                if watch_live { "" } else { " (watch lost: polled)" },
            );
            match cleanup {
                Some(s) => println!(
                    "cleanup: deleted in {s:.1}s; delete → gone p50 {:.1} ms, p99 {:.1} ms",
                    ms(&gone_hist, 0.5),
                    ms(&gone_hist, 0.99)
                ),
                None => println!("kept: {prefix}-0 … {prefix}-{}", n.saturating_sub(1)),
            }
        }
    }
    Ok(())
}

fn us(d: Duration) -> u64 {
    d.as_micros() as u64
}
