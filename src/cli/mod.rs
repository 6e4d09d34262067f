//! The `quantix` client: parses the command line, calls the gRPC API of the host at
//! `--endpoint`, prints a table or one JSON document. Errors print one line on stderr and exit
//! non-zero. Owns: nothing stored. May use: the generated proto client only.

mod bench;
mod bench_vms;
mod cluster;
mod event;
mod folder;
mod host;
mod image;
mod output;
mod pool;
mod spec;
mod vm;

use clap::{Parser, Subcommand, ValueEnum};
use tonic::transport::Channel;

pub use output::Format;

#[derive(Parser)]
#[command(
    name = "quantix",
    version,
    about = "Manage a Quantix cluster",
    propagate_version = true
)]
pub struct Cli {
    /// gRPC endpoint of any host of the cluster.
    #[arg(
        long,
        global = true,
        env = "QUANTIX_ENDPOINT",
        default_value = "http://127.0.0.1:7400"
    )]
    pub endpoint: String,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Cluster membership (bootstrap, join, status, removal) and the placement policy.
    #[command(subcommand)]
    Cluster(cluster::ClusterCmd),
    /// The folder tree that organises VMs.
    #[command(subcommand)]
    Folder(folder::FolderCmd),
    /// Virtual machines.
    #[command(subcommand)]
    Vm(vm::VmCmd),
    /// Hosts and their inventory.
    #[command(subcommand)]
    Host(host::HostCmd),
    /// Customization specs (Linux and Windows guest set-up).
    #[command(subcommand)]
    Spec(spec::SpecCmd),
    /// Cloud images and ISOs.
    #[command(subcommand)]
    Image(image::ImageCmd),
    /// Storage pools.
    #[command(subcommand)]
    Pool(pool::PoolCmd),
    /// What happened in the cluster; `--follow` to keep watching.
    #[command(subcommand)]
    Events(event::EventCmd),
    /// Load generators against a running cluster.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
}

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, ValueEnum, Default)]
pub enum Consistency {
    #[default]
    Linearizable,
    Stale,
}

impl Consistency {
    pub fn proto(self) -> i32 {
        match self {
            Consistency::Linearizable => crate::proto::v1::ReadConsistency::Linearizable as i32,
            Consistency::Stale => crate::proto::v1::ReadConsistency::Stale as i32,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot reach quantixd at {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("{}", status_line(.0))]
    Status(#[from] tonic::Status),
    #[error("{0}")]
    Usage(String),
}

fn status_line(s: &tonic::Status) -> String {
    let msg = if s.message().is_empty() {
        "no details"
    } else {
        s.message()
    };
    format!("{msg} ({:?})", s.code())
}

pub async fn connect(endpoint: &str) -> Result<Channel, CliError> {
    let err = |message: String| CliError::Connect {
        endpoint: endpoint.into(),
        message,
    };
    Channel::from_shared(endpoint.to_string())
        .map_err(|e| err(format!("bad endpoint URL: {e}")))?
        .connect_timeout(std::time::Duration::from_secs(3))
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| err(source_chain(&e)))
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s = format!("{s}: {c}");
        cur = c.source();
    }
    s
}

/// Runs the CLI; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Cmd::Cluster(c) => cluster::run(&cli.endpoint, cli.output, c).await,
        Cmd::Folder(c) => folder::run(&cli.endpoint, cli.output, c).await,
        Cmd::Bench(c) => bench::run(&cli.endpoint, cli.output, c).await,
        Cmd::Vm(c) => vm::run(&cli.endpoint, cli.output, c).await,
        Cmd::Host(c) => host::run(&cli.endpoint, cli.output, c).await,
        Cmd::Spec(c) => spec::run(&cli.endpoint, cli.output, c).await,
        Cmd::Image(c) => image::run(&cli.endpoint, cli.output, c).await,
        Cmd::Pool(c) => pool::run(&cli.endpoint, cli.output, c).await,
        Cmd::Events(c) => event::run(&cli.endpoint, cli.output, c).await,
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// A fresh request id, so a retried call applies once.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
