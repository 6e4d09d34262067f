//! `quantix bench vms`: loads N VM records through the API (concurrent clients), then times
//! point gets and 100-VM list pages. Memory and disk figures come from `scripts/bench-vms.sh`,
//! which reads them off the daemons.

use hdrhistogram::Histogram;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::output::{self, Format};
use super::{connect, request_id, CliError};
use crate::proto::v1::vm_service_client::VmServiceClient;
use crate::proto::v1::*;

fn vm(name: String) -> CreateVmRequest {
    CreateVmRequest {
        name,
        cpus: 2,
        memory_mib: 2048,
        boot: Some(BootMedia {
            media: Some(boot_media::Media::Pxe(true)),
        }),
        nics: vec![Nic {
            network: "user".into(),
            mac: String::new(),
        }],
        stopped: true,
        request_id: request_id(),
        ..Default::default()
    }
}

fn hist() -> Result<Histogram<u64>, CliError> {
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| CliError::Usage(e.to_string()))
}

pub async fn run(
    endpoint: &str,
    out: Format,
    count: u64,
    clients: usize,
    reads: Duration,
) -> Result<(), CliError> {
    let prefix = format!("b{}", &request_id()[..6]);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let mut c = VmServiceClient::new(connect(endpoint).await?);
        let (next, prefix) = (next.clone(), prefix.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), tonic::Status>(());
                }
                c.create_vm(vm(format!("{prefix}-{i}"))).await?;
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| CliError::Usage(e.to_string()))??;
    }
    let load_secs = started.elapsed().as_secs_f64();

    let mut c = VmServiceClient::new(connect(endpoint).await?);
    let (mut get_h, mut list_h) = (hist()?, hist()?);
    let deadline = Instant::now() + reads;
    let mut i = 0u64;
    while Instant::now() < deadline {
        let name = format!("{prefix}-{}", (i * 7919) % count.max(1));
        let t = Instant::now();
        c.get_vm(GetVmRequest {
            name,
            consistency: 0,
        })
        .await?;
        get_h.saturating_record(t.elapsed().as_micros() as u64);
        let t = Instant::now();
        let page = c
            .list_vms(ListVmsRequest {
                page_size: 100,
                page_token: format!("{prefix}-{}", i % count.max(1)),
                ..Default::default()
            })
            .await?;
        list_h.saturating_record(t.elapsed().as_micros() as u64);
        drop(page);
        i += 1;
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let doc = json!({
        "vms": count, "clients": clients, "load_seconds": load_secs, "creates_per_sec": count as f64 / load_secs,
        "get_p50_ms": ms(&get_h, 0.5), "get_p99_ms": ms(&get_h, 0.99),
        "list100_p50_ms": ms(&list_h, 0.5), "list100_p99_ms": ms(&list_h, 0.99),
    });
    match out {
        Format::Json => output::json(&doc),
        Format::Table => println!(
            "loaded {count} VMs in {load_secs:.1}s ({:.0}/s, {clients} clients); get p50 {:.2} ms p99 {:.2} ms; list of 100 p50 {:.2} ms p99 {:.2} ms",
            count as f64 / load_secs,
            ms(&get_h, 0.5),
            ms(&get_h, 0.99),
            ms(&list_h, 0.5),
            ms(&list_h, 0.99)
        ),
    }
    Ok(())
}
