//! Harness for multi-process tests: real `quantixd` processes on loopback, each with its own
//! data directory and ports, that can be SIGKILLed, stopped and restarted. Waits are on
//! conditions with deadlines and say what they expected when they give up.
//!
//! The binaries come from the workspace's `target/debug` (or `QUANTIX_BIN_DIR`); build them
//! first with `cargo build --bins` (`make cluster-test` does).
//!
//! Credentials: a host that has no cluster certificate yet is driven through its root-only
//! Unix socket (bootstrap, join, token), as an administrator on the host would. Once it has
//! one, the CLI and gRPC clients go over TLS with an `admin` client certificate made through
//! that socket (`cluster add-client`) the first time it is needed, one per cluster CA
//! (`Node::admin`), exactly as a user would.

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use quantix::proto::v1::cluster_service_client::ClusterServiceClient;
use quantix::proto::v1::folder_service_client::FolderServiceClient;
use quantix::proto::v1::{ClusterStatus, GetStatusRequest, ReadConsistency};
use tonic::transport::Channel;

mod access;

pub use access::{insecure_tls, Creds};

pub type Result<T> = anyhow::Result<T>;

pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("QUANTIX_BIN_DIR") {
        return PathBuf::from(d);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug")
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not found: build the binaries first (cargo build --bins)",
        p.display()
    );
    p
}

/// A free loopback port below the kernel's ephemeral range (32768+), so a port this test has
/// picked but not yet bound cannot be handed to another process's `bind(0)` or outgoing
/// connection meanwhile. Each test process (nextest runs one per test) takes ports from its
/// own block, chosen by pid, and checks each is free.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let block = (std::process::id() % 500) as u16;
    for _ in 0..64 {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % 40;
        let port = 12_000 + block * 40 + offset;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// Per-test cluster settings.
#[derive(Clone, Debug)]
pub struct Opts {
    pub snapshot_after_entries: u64,
    pub keep_entries_after_snapshot: u64,
    /// Per host (in order), its size as libvirt's test driver reports it: (CPUs, memory MiB).
    /// Hosts beyond the list get 4 CPUs and 8 GiB.
    pub sizes: Vec<(u32, u64)>,
    /// Which libvirt each host uses.
    pub hypervisor: Hv,
}

/// The libvirt a test host talks to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Hv {
    /// libvirt's test driver, one instance per host (sized by `Opts::sizes`).
    #[default]
    TestDriver,
    /// Real QEMU under TCG through an embedded driver of its own (`qemu:///embed?root=`).
    QemuEmbed,
    /// Real QEMU through the machine's libvirtd (`qemu:///system`), started by setup.sh.
    QemuSystem,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            snapshot_after_entries: 10_000,
            keep_entries_after_snapshot: 1_000,
            sizes: Vec::new(),
            hypervisor: Hv::TestDriver,
        }
    }
}

pub struct Node {
    pub name: String,
    pub port: u16,
    /// The `http_addr` port: /metrics, /healthz.
    pub http_port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// The TLS gRPC endpoint.
    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The host's administrator socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("data/quantixd.sock")
    }

    pub fn socket_endpoint(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The host's TLS directory.
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.join("data/tls")
    }

    /// True once the host has its cluster certificate (bootstrapped or joined).
    pub fn has_cert(&self) -> bool {
        self.tls_dir().join("host.crt").exists()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("quantixd.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("quantixd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Starts the daemon and waits until its gRPC port accepts connections.
    pub async fn start(&mut self) -> Result<()> {
        anyhow::ensure!(!self.is_running(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = Command::new(bin("quantixd"))
            .arg("--config")
            .arg(self.config_path())
            .env(
                "RUST_LOG",
                std::env::var("QUANTIX_TEST_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let port = self.port;
        let name = self.name.clone();
        wait_for(
            Duration::from_secs(20),
            &format!("{name} to accept on port {port} and its socket"),
            || {
                let socket = self.socket();
                async move {
                    tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .is_ok()
                        && tokio::net::UnixStream::connect(socket).await.is_ok()
                }
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n--- {} log ---\n{}", self.name, self.log()))
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            )?;
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Some(status) = c.try_wait()? {
                    anyhow::ensure!(
                        status.success(),
                        "{} exited with {status} after SIGTERM",
                        self.name
                    );
                    return Ok(());
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    anyhow::bail!("{} did not exit within 15 s of SIGTERM", self.name);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    pub async fn folders(&self) -> Result<FolderServiceClient<Channel>> {
        Ok(FolderServiceClient::new(self.channel().await?))
    }

    pub async fn cluster(&self) -> Result<ClusterServiceClient<Channel>> {
        Ok(ClusterServiceClient::new(self.channel().await?))
    }

    pub async fn status(&self, stale: bool) -> Result<ClusterStatus> {
        let consistency = if stale {
            ReadConsistency::Stale
        } else {
            ReadConsistency::Linearizable
        } as i32;
        Ok(self
            .cluster()
            .await?
            .get_status(GetStatusRequest { consistency })
            .await?
            .into_inner())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        kill_guests_under(&self.dir);
    }
}

/// Kills QEMU processes whose command line mentions `dir`: guests of an embedded driver outlive
/// their quantixd (they are daemonized), so a test must not leave them running.
pub fn kill_guests_under(dir: &Path) {
    let needle = dir.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains("qemu-system") && cmd.contains(&needle) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Writes configs for `n` hosts (host1..hostN) and starts them; none is bootstrapped.
    pub async fn start(n: usize, opts: Opts) -> Result<Cluster> {
        let dir = tempfile::Builder::new().prefix("quantix-ct-").tempdir()?;
        let mut nodes = Vec::new();
        for i in 1..=n {
            let node_dir = dir.path().join(format!("host{i}"));
            std::fs::create_dir_all(&node_dir)?;
            let port = free_port();
            let http_port = free_port();
            let (cpus, memory_mib) = opts.sizes.get(i - 1).copied().unwrap_or((4, 8192));
            let node_xml = node_dir.join("host.xml");
            std::fs::write(
                &node_xml,
                format!(
                    "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>{cpus}</cores>\
                     <threads>1</threads><active>{cpus}</active><mhz>2000</mhz>\
                     <model>x86_64</model></cpu><memory>{}</memory></node>\n",
                    memory_mib * 1024
                ),
            )?;
            let config = format!(
                "name = \"host{i}\"\ndata_dir = \"{}\"\ngrpc_addr = \"127.0.0.1:{port}\"\nhttp_addr = \"127.0.0.1:{}\"\n\n\
                 [hypervisor]\n{}\n\
                 [raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 500\nelection_timeout_max_ms = 1000\n\
                 snapshot_after_entries = {}\nkeep_entries_after_snapshot = {}\n\n\
                 [images]\nurl_hosts = [\"127.0.0.1\", \"localhost\"]\n",
                node_dir.join("data").display(),
                http_port,
                match opts.hypervisor {
                    Hv::TestDriver => format!("uri = \"test://{}\"\n", node_xml.display()),
                    Hv::QemuEmbed => format!(
                        "uri = \"qemu:///embed?root={}\"\ndomain_type = \"qemu\"\ncpu_mode = \"default\"\n",
                        node_dir.join("qemu").display()
                    ),
                    Hv::QemuSystem => "uri = \"qemu:///system\"\ndomain_type = \"qemu\"\ncpu_mode = \"default\"\n".to_string(),
                },
                opts.snapshot_after_entries,
                opts.keep_entries_after_snapshot,
            );
            std::fs::write(node_dir.join("quantixd.toml"), config)?;
            nodes.push(Node {
                name: format!("host{i}"),
                port,
                http_port,
                dir: node_dir,
                child: None,
            });
        }
        for node in &mut nodes {
            node.start().await?;
        }
        Ok(Cluster { nodes, _dir: dir })
    }

    /// Bootstraps host1 (with `max_voters`) and joins every other host with a fresh token
    /// made on a different member each time.
    pub async fn form(n: usize, max_voters: u32, opts: Opts) -> Result<Cluster> {
        let c = Cluster::start(n, opts).await?;
        let out = c.nodes[0].cli(&[
            "cluster",
            "bootstrap",
            "--max-voters",
            &max_voters.to_string(),
        ]);
        anyhow::ensure!(
            out.status.success(),
            "bootstrap failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for i in 1..n {
            let token = c.token(i - 1)?;
            let out = c.nodes[i].cli(&["cluster", "join", &token]);
            anyhow::ensure!(
                out.status.success(),
                "join of host{} failed: {}",
                i + 1,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(c)
    }

    /// A join token made on host `i`.
    pub fn token(&self, i: usize) -> Result<String> {
        let out = self.nodes[i].cli(&["cluster", "token"]);
        anyhow::ensure!(
            out.status.success(),
            "token on {} failed: {}",
            self.nodes[i].name,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .expect("node by name")
    }

    pub fn node_mut(&mut self, name: &str) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .expect("node by name")
    }

    /// Waits until every running host agrees on one leader; returns its name.
    pub async fn wait_for_leader(&mut self, timeout: Duration) -> Result<String> {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect();
        let deadline = Instant::now() + timeout;
        loop {
            let mut leaders = Vec::new();
            for &i in &running {
                match self.nodes[i].status(true).await {
                    Ok(s) => leaders.push(s.leader),
                    Err(_) => leaders.push(String::new()),
                }
            }
            leaders.dedup();
            if leaders.len() == 1 && !leaders[0].is_empty() {
                let leader = leaders.remove(0);
                if running.iter().any(|&i| self.nodes[i].name == leader) {
                    return Ok(leader);
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for one leader; hosts report {leaders:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until every running host has applied at least the leader's commit index.
    pub async fn wait_converged(&mut self, timeout: Duration) -> Result<()> {
        let leader = self.wait_for_leader(timeout).await?;
        // A linearizable read on the leader returns only once the leader has committed an
        // entry of its own term, so the commit index read after it covers every write
        // acknowledged by any earlier leader.
        let mut folders = self.node(&leader).folders().await?;
        folders
            .get_folder(quantix::proto::v1::GetFolderRequest {
                path: "/".into(),
                consistency: ReadConsistency::Linearizable as i32,
            })
            .await?;
        let target = self.node(&leader).status(false).await?.commit_index;
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect();
        let nodes = &self.nodes;
        wait_for(
            timeout,
            &format!("every running host to apply index {target}"),
            || {
                let running = running.clone();
                async move {
                    for i in running {
                        match nodes[i].status(true).await {
                            Ok(s) if s.applied_index >= target => {}
                            _ => return false,
                        }
                    }
                    true
                }
            },
        )
        .await
    }
}

/// Polls `cond` every 25 ms until it holds or `timeout` passes.
pub async fn wait_for<F, Fut>(timeout: Duration, what: &str, mut cond: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
