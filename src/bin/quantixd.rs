//! `quantixd`: the daemon every host runs. Loads the config, opens the host's stores, starts
//! Raft and serves gRPC until SIGTERM/SIGINT, then shuts down cleanly.

// glibc malloc showed up as ~12% of a loaded host's CPU profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "quantixd", version, about = "Quantix host daemon")]
struct Args {
    /// Path to the TOML config file.
    #[arg(long, short = 'c', env = "QUANTIXD_CONFIG")]
    config: PathBuf,
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_target(false)
        .init();
    let cfg = match quantix::config::Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("quantixd: {e}");
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("quantixd: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    let span = tracing::info_span!("host", host = %cfg.name);
    if let Err(e) = rt.block_on(tracing::Instrument::instrument(run(cfg), span)) {
        eprintln!("quantixd: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cfg: quantix::config::Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(cfg.grpc_addr)
        .await
        .with_context(|| format!("cannot listen on grpc_addr {}", cfg.grpc_addr))?;
    let http = tokio::net::TcpListener::bind(cfg.http_addr)
        .await
        .with_context(|| format!("cannot listen on http_addr {}", cfg.http_addr))?;
    let metrics = quantix::web::install_metrics(&cfg.name)?;
    let host = quantix::cluster::Host::start(&cfg).await?;
    tracing::info!(id = host.id(), grpc = %cfg.grpc_addr, advertise = %cfg.advertised(), data_dir = %cfg.data_dir.display(), "quantixd started");
    let scheduler = quantix::scheduler::leader::spawn(host.clone());
    let hypervisor = quantix::hypervisor::Hypervisor::new(&cfg.hypervisor.uri);
    let inventory = quantix::agent::inventory::spawn(host.clone(), hypervisor.clone());
    let images = quantix::agent::images::spawn(
        host.clone(),
        quantix::agent::images::UrlHosts::new(cfg.images.url_hosts.clone()),
    );
    let guests = quantix::agent::guest::spawn(host.clone(), hypervisor.clone());
    let agent = quantix::agent::reconcile::spawn(
        host.clone(),
        hypervisor,
        quantix::agent::desired::Settings::from_config(&cfg),
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(());
        let _ = http_stop_tx.send(());
    });
    let web_host = host.clone();
    let http_advertised = cfg.advertised_http();
    tokio::spawn(async move {
        let stop = async {
            let _ = http_stop_rx.await;
        };
        if let Err(e) = quantix::web::serve(http, web_host, metrics, http_advertised, stop).await {
            tracing::error!(error = %e, "http listener stopped");
        }
    });
    let socket = bind_socket(&cfg.socket_path())?;
    quantix::api::serve(listener, Some(socket), host.clone(), async {
        let _ = stop_rx.await;
    })
    .await?;
    tracing::info!("shutting down");
    scheduler.abort();
    inventory.abort();
    images.abort();
    guests.abort();
    agent.abort();
    host.shutdown().await;
    Ok(())
}

/// The administrator socket: a stale one from a previous run is replaced; only the owner
/// (root, or the daemon's user) may connect.
fn bind_socket(path: &std::path::Path) -> anyhow::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("cannot remove stale socket {}", path.display()))
        }
    }
    // Made 0600 from the start (no window with the usual umask), then checked below.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = tokio::net::UnixListener::bind(path);
    rustix::process::umask(old);
    let sock = bound.with_context(|| format!("cannot listen on socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict socket {}", path.display()))?;
    Ok(sock)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
