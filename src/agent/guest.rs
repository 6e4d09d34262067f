//! Listens to the guest agents of the VMs running on this host: for each, it connects to the
//! socket of the domain's `org.quantix.agent.0` channel (its path read from the live XML),
//! reads the agent's JSON lines, and relays a report through Raft (`VmCommand::Guest`) only
//! when the guest's hostname, addresses or agent changed, at most once per `MIN_REPORT_GAP`
//! per VM. Guests are untrusted: lines are bounded (`model::guest::MAX_LINE`), checked, and a
//! bad one is logged and dropped; a guest cannot make this host write faster than the gap.
//!
//! Owns: `spawn`, `Lines`. Uses: `cluster::Host`, `hypervisor`, `model::guest`, `state` (reads).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::cluster::Host;
use crate::hypervisor::{domain_xml, Hypervisor};
use crate::model::guest::{self, GuestInfo, MAX_LINE};
use crate::model::vm::Status;
use crate::state::vms::VmCommand;
use crate::state::{placement, vms, Command};

/// How often the running VMs are looked at for channels to open.
pub const LOOK: Duration = Duration::from_secs(5);
/// Shortest time between two reports of one VM.
pub const MIN_REPORT_GAP: Duration = Duration::from_secs(5);

/// Splits a byte stream into lines of at most `MAX_LINE` bytes; a longer line is dropped
/// whole (up to its newline), so one bad guest line cannot grow memory.
#[derive(Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
    skipping: bool,
}

impl Lines {
    /// Feeds bytes; returns the complete lines they finish.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                if !self.skipping && !self.buf.is_empty() {
                    out.push(String::from_utf8_lossy(&self.buf).into_owned());
                }
                self.buf.clear();
                self.skipping = false;
            } else if !self.skipping {
                self.buf.push(b);
                if self.buf.len() > MAX_LINE {
                    self.buf.clear();
                    self.skipping = true;
                }
            }
        }
        out
    }
}

enum Heard {
    Report(String, GuestInfo),
    Closed(String),
}

/// Starts the listener; it waits until the host is a member.
pub fn spawn(host: Host, hv: Hypervisor) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { run(host, hv).await })
}

async fn run(host: Host, hv: Hypervisor) {
    let (tx, mut rx) = mpsc::channel::<Heard>(256);
    let mut readers: BTreeMap<String, tokio::task::JoinHandle<()>> = BTreeMap::new();
    let mut no_channel: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_sent: BTreeMap<String, Instant> = BTreeMap::new();
    let mut tick = tokio::time::interval(LOOK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if host.is_member() {
                    look(&host, &hv, &tx, &mut readers, &mut no_channel).await;
                }
            }
            heard = rx.recv() => match heard {
                Some(Heard::Closed(vm)) => { readers.remove(&vm); }
                Some(Heard::Report(vm, info)) => relay(&host, &vm, info, &mut last_sent).await,
                None => return,
            }
        }
    }
}

/// Opens a reader for every running VM placed here that has none, and stops the readers of
/// VMs that left. A VM whose domain has no agent channel is not looked at again until its
/// generation changes (`no_channel`), so hosts with many VMs do not read XML every look.
async fn look(
    host: &Host,
    hv: &Hypervisor,
    tx: &mpsc::Sender<Heard>,
    readers: &mut BTreeMap<String, tokio::task::JoinHandle<()>>,
    no_channel: &mut BTreeMap<String, u64>,
) {
    let running: Vec<(String, u64)> = {
        let Ok(state) = host.state() else { return };
        let Ok(names) = placement::placed_on(&state, host.name()) else {
            return;
        };
        names
            .into_iter()
            .filter_map(|n| {
                let v = vms::get(&state, &n).ok().flatten()?;
                (v.observed.status == Status::Running).then_some((n, v.generation))
            })
            .collect()
    };
    readers.retain(|vm, task| {
        let keep = running.iter().any(|(n, _)| n == vm) && !task.is_finished();
        if !keep {
            task.abort();
        }
        keep
    });
    no_channel.retain(|vm, g| running.iter().any(|(n, gen)| n == vm && gen == g));
    for (vm, generation) in running {
        if readers.contains_key(&vm) || no_channel.contains_key(&vm) {
            continue;
        }
        let path = match hv.live_xml(&vm).await {
            Ok(Some(xml)) => {
                let path = domain_xml::guest_agent_socket(&xml);
                if path.is_none() {
                    no_channel.insert(vm.clone(), generation);
                }
                path
            }
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(vm = %vm, error = %e, "cannot read live XML for the guest channel");
                None
            }
        };
        let Some(path) = path.filter(|p| p.exists()) else {
            continue;
        };
        let tx = tx.clone();
        let name = vm.clone();
        readers.insert(
            vm,
            tokio::spawn(async move {
                read_channel(&name, &path, &tx).await;
                let _ = tx.send(Heard::Closed(name)).await;
            }),
        );
    }
}

async fn read_channel(vm: &str, path: &std::path::Path, tx: &mpsc::Sender<Heard>) {
    let mut stream = match tokio::net::UnixStream::connect(path).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(vm, path = %path.display(), error = %e, "cannot open the guest channel");
            return;
        }
    };
    let mut lines = Lines::default();
    let mut buf = [0u8; 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for line in lines.push(&buf[..n]) {
            match guest::parse_report(&line) {
                Ok(info) => {
                    if tx.send(Heard::Report(vm.to_string(), info)).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::info!(vm, error = %e, "guest agent report dropped"),
            }
        }
    }
}

/// Writes the report when it differs from the stored one and the VM's gap has passed (a
/// change inside the gap is picked up by the agent's next periodic line).
async fn relay(host: &Host, vm: &str, info: GuestInfo, last_sent: &mut BTreeMap<String, Instant>) {
    if last_sent
        .get(vm)
        .is_some_and(|t| t.elapsed() < MIN_REPORT_GAP)
    {
        return;
    }
    let stored = match host.state() {
        Ok(state) => crate::state::guest::get(&state, vm).ok().flatten(),
        Err(_) => return,
    };
    if stored.is_some_and(|s| s.same_as(&info)) {
        return;
    }
    last_sent.insert(vm.to_string(), Instant::now());
    let cmd = Command::Vm(VmCommand::Guest {
        name: vm.to_string(),
        host: host.name().to_string(),
        info,
    });
    match host.write(cmd, None).await {
        Ok(crate::state::Outcome::Rejected(r)) => {
            tracing::info!(vm, reason = %r.message, "guest report refused")
        }
        Ok(_) => tracing::info!(vm, "guest report recorded"),
        Err(e) => tracing::warn!(vm, error = %e, "cannot relay the guest report"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_overlong_ones_dropped() {
        let mut l = Lines::default();
        assert_eq!(l.push(b"{\"a\":1}\n{\"b\""), vec!["{\"a\":1}"]);
        assert_eq!(l.push(b":2}\n\n"), vec!["{\"b\":2}"]);
        let long = vec![b'x'; MAX_LINE + 10];
        assert!(l.push(&long).is_empty());
        assert!(l.push(b"still the long line\nok\n") == vec!["ok"]);
    }

    #[tokio::test]
    async fn a_channel_socket_is_read_line_by_line() {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("org.quantix.agent.0");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let p = path.clone();
        let reader = tokio::spawn(async move { read_channel("web1", &p, &tx).await });
        let (mut guest_side, _) = listener.accept().await.unwrap();
        guest_side
            .write_all(
                b"garbage\n{\"format\":1,\"hostname\":\"web1\",\"addresses\":[\"10.0.2.15\"]}\n",
            )
            .await
            .unwrap();
        let heard = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        match heard {
            Heard::Report(vm, info) => {
                assert_eq!(vm, "web1");
                assert_eq!(info.addresses, vec!["10.0.2.15"]);
            }
            Heard::Closed(_) => panic!("closed"),
        }
        drop(guest_side);
        tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .unwrap()
            .unwrap();
    }
}
