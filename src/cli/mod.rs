//! The `quantix` client: parses the command line, picks the host and the credential
//! (`connect::resolve`: flags and environment, then a remote from `config_file`, then the local
//! socket), calls the gRPC API, prints a table or one JSON document. Errors print one line on
//! stderr and exit non-zero. Owns: the CLI's config file (`config_file`), nothing in the
//! cluster. May use: the generated proto clients, `tls` (to dial and to make keys and CSRs).

mod access;
mod bench;
mod bench_vms;
mod cluster;
mod config_file;
pub mod connect;
mod event;
mod folder;
mod host;
mod image;
mod output;
mod pool;
pub mod remote;
mod spec;
mod vm;

use clap::{Parser, Subcommand, ValueEnum};

pub use connect::{connect, Conn};
pub use output::Format;

#[derive(Parser)]
#[command(
    name = "quantix",
    version,
    about = "Manage a Quantix cluster",
    propagate_version = true
)]
pub struct Cli {
    /// Any host of the cluster: https://HOST:PORT, or unix:///PATH/quantixd.sock (the host's
    /// administrator socket, root only). Default: the chosen or default remote, else
    /// unix:///var/lib/quantix/quantixd.sock.
    #[arg(long, global = true, env = "QUANTIX_ENDPOINT")]
    pub endpoint: Option<String>,
    /// A remote from `quantix remote add` (default: the default remote).
    #[arg(long, global = true, env = "QUANTIX_REMOTE")]
    pub remote: Option<String>,
    /// The cluster CA certificate (PEM) to trust.
    #[arg(long, global = true, env = "QUANTIX_CA")]
    pub ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM), from `quantix cluster add-client`.
    #[arg(long, global = true, env = "QUANTIX_CERT")]
    pub cert: Option<std::path::PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, global = true, env = "QUANTIX_KEY")]
    pub key: Option<std::path::PathBuf>,
    /// Bearer token, from `quantix cluster add-token`.
    #[arg(long, global = true, env = "QUANTIX_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
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
    /// Clusters this CLI knows and how it authenticates to each.
    #[command(subcommand)]
    Remote(remote::RemoteCmd),
    /// Who the cluster takes you for.
    Whoami,
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
    // A connection that broke (e.g. the server refused our certificate after the handshake)
    // says why only in the error chain under the status.
    let detail = crate::tls::connector::status_detail(s);
    let msg = if detail.is_empty() {
        "no details"
    } else {
        detail.as_str()
    };
    let hint = if detail.contains("UnknownCA") || detail.contains("BadCertificate") {
        " (the host refused this client certificate: it was not issued by this cluster's CA)"
    } else if s.code() == tonic::Code::Unauthenticated && detail.contains("add-client") {
        // The host already said where credentials come from.
        " (then keep it with `quantix remote add`)"
    } else if s.code() == tonic::Code::Unauthenticated {
        " (get a credential with `quantix cluster add-client` or `add-token` on a host, then `quantix remote add`)"
    } else {
        ""
    };
    format!("{msg} ({:?}){hint}", s.code())
}

pub(crate) use crate::tls::connector::source_chain;

/// Runs the CLI; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    match run_inner(cli).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

async fn run_inner(cli: Cli) -> Result<(), CliError> {
    if let Cmd::Remote(c) = cli.command {
        return remote::run(cli.output, c).await;
    }
    let given = connect::Given {
        endpoint: cli.endpoint.clone(),
        remote: cli.remote.clone(),
        ca: cli.ca.clone(),
        cert: cli.cert.clone(),
        key: cli.key.clone(),
        token: cli.token.clone(),
    };
    let target = connect::resolve(
        &given,
        &config_file::Config::load(config_file::config_dir())?,
    )?;
    let endpoint = target.endpoint.clone();
    connect::set_credentials(target);
    let e = endpoint.as_str();
    let out = cli.output;
    match cli.command {
        Cmd::Cluster(cluster::ClusterCmd::Access(c)) => access::run(e, out, c).await,
        Cmd::Cluster(c) => cluster::run(e, out, c).await,
        Cmd::Folder(c) => folder::run(e, out, c).await,
        Cmd::Bench(c) => bench::run(e, out, c).await,
        Cmd::Vm(c) => vm::run(e, out, c).await,
        Cmd::Host(c) => host::run(e, out, c).await,
        Cmd::Spec(c) => spec::run(e, out, c).await,
        Cmd::Image(c) => image::run(e, out, c).await,
        Cmd::Pool(c) => pool::run(e, out, c).await,
        Cmd::Events(c) => event::run(e, out, c).await,
        Cmd::Whoami => access::whoami(e, out).await,
        Cmd::Remote(_) => Ok(()),
    }
}

/// A fresh request id, so a retried call applies once.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct E(String, #[source] Option<Box<E>>);

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = E("No such file or directory (os error 2)".into(), None);
        let mid = E(
            "transport error: No such file or directory (os error 2)".into(),
            Some(Box::new(io)),
        );
        let top = E("transport error".into(), Some(Box::new(mid)));
        assert_eq!(
            super::source_chain(&top),
            "transport error: transport error: No such file or directory (os error 2)"
        );
        let plain = E("refused".into(), Some(Box::new(E("by peer".into(), None))));
        assert_eq!(super::source_chain(&plain), "refused: by peer");
    }
}
