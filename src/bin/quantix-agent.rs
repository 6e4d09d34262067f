//! `quantix-agent`: the guest agent. A Linux guest made by Quantix downloads it from its host
//! at first boot (the cloud-init seed's run commands) and runs it as `quantix-agent.service`.
//! It tells the host what only the guest knows: its hostname and IP addresses, one JSON line
//! (`{"format":1,...}`) at start and then every `PERIOD` or when they change, over the
//! virtio-serial port `org.quantix.agent.0` that Quantix puts in every domain. The host's
//! daemon reads the line from the port's socket (`agent::guest`) and records it.
//!
//! Standalone on purpose: std and serde_json only, no cluster code, so the binary is small and
//! runs on any glibc Linux guest.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const PORT: &str = "/dev/virtio-ports/org.quantix.agent.0";
/// Longest time between two reports.
const PERIOD: Duration = Duration::from_secs(30);
/// How often the guest's addresses are looked at.
const LOOK: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--version") {
        println!("quantix-agent {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if std::env::args().any(|a| a == "--once") {
        println!("{}", report_line());
        return ExitCode::SUCCESS;
    }
    loop {
        match std::fs::OpenOptions::new().write(true).open(PORT) {
            Ok(mut port) => {
                let mut last = String::new();
                let mut sent = Instant::now();
                loop {
                    let line = report_line();
                    if line != last || sent.elapsed() >= PERIOD {
                        if let Err(e) = port.write_all(format!("{line}\n").as_bytes()) {
                            eprintln!("quantix-agent: writing {PORT}: {e}");
                            break;
                        }
                        last = line;
                        sent = Instant::now();
                    }
                    std::thread::sleep(LOOK);
                }
            }
            Err(e) => eprintln!("quantix-agent: opening {PORT}: {e}; retrying"),
        }
        std::thread::sleep(Duration::from_secs(10));
    }
}

/// The report: hostname and global addresses (sorted, so an unchanged guest sends the same
/// line and the host records nothing new).
fn report_line() -> String {
    serde_json::json!({
        "format": 1,
        "agent": concat!("quantix-agent ", env!("CARGO_PKG_VERSION")),
        "hostname": hostname(),
        "addresses": addresses(),
    })
    .to_string()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Global-scope addresses from `ip -o addr`, without their prefix length.
fn addresses() -> Vec<String> {
    let Ok(out) = std::process::Command::new("ip")
        .args(["-o", "addr", "show", "scope", "global"])
        .output()
    else {
        return Vec::new();
    };
    let mut found: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6")?;
            let addr = words.next()?;
            Some(addr.split('/').next().unwrap_or(addr).to_string())
        })
        .collect();
    found.sort();
    found.dedup();
    found
}
