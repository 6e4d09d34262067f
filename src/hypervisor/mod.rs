//! libvirt, really: one connection per host to the URI in its config (`qemu:///system` in
//! production, `test:///PATH/host.xml` or `qemu:///embed?root=DIR` in tests), through the
//! `virt` crate. Owns: the connection (opened lazily, reopened after an error) and the
//! translation of libvirt's answers and errors into ours. May use: `model`.
//!
//! libvirt calls block: async callers go through `Hypervisor::call`, which runs them on
//! tokio's blocking pool. One connection is kept for the host's lifetime because a test-driver
//! instance (`test:///PATH`) lives exactly as long as its connection.

pub mod disks;
pub mod domain_xml;
pub mod domains;

use std::sync::{Arc, Mutex};

use virt::connect::Connect;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HypervisorError {
    #[error("cannot connect to libvirt at {uri}: {message}")]
    Connect { uri: String, message: String },
    #[error("libvirt {what} failed: {message}")]
    Call { what: &'static str, message: String },
    #[error("libvirt worker stopped: {0}")]
    Worker(String),
    #[error("libvirt {what} did not answer within {secs} s (libvirtd or QEMU stuck?)")]
    Timeout { what: &'static str, secs: u64 },
}

/// How long one libvirt call may take before the caller stops waiting. A define while
/// libvirtd probes QEMU takes seconds; a minute means something is stuck.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// What the host offers to VMs, as libvirt's node info reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeCapacity {
    pub cpus: u32,
    pub memory_mib: u64,
    /// Free memory (virNodeGetFreeMemory); `None` where the driver reports none (the test
    /// driver with a host.xml says 0).
    pub free_memory_mib: Option<u64>,
}

/// A host's libvirt. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Hypervisor {
    uri: Arc<str>,
    conn: Arc<Mutex<Option<Arc<Connect>>>>,
    timeout: std::time::Duration,
}

impl std::fmt::Debug for Hypervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hypervisor")
            .field("uri", &self.uri)
            .finish()
    }
}

impl Hypervisor {
    /// Does not connect yet; the first call does.
    pub fn new(uri: &str) -> Hypervisor {
        // libvirt prints every error to stderr by default; ours carry them in results.
        static QUIET: std::sync::Once = std::sync::Once::new();
        QUIET.call_once(virt::error::clear_error_callback);
        if uri.contains("/embed") {
            start_event_loop();
            prepare_embed_root(uri);
        }
        Hypervisor {
            uri: uri.into(),
            conn: Arc::new(Mutex::new(None)),
            timeout: CALL_TIMEOUT,
        }
    }

    /// The same connection with another per-call time limit.
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Hypervisor {
        self.timeout = timeout;
        self
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Runs `f` with the connection on the blocking pool. A failed call drops the connection so
    /// the next call reconnects (libvirtd may have restarted). A call that does not answer
    /// within the time limit is an error for the caller (the agent backs off and reports it on
    /// the VM); the stuck thread is left to finish on its own, as no libvirt call can be
    /// cancelled.
    pub async fn call<T, F>(&self, what: &'static str, f: F) -> Result<T, HypervisorError>
    where
        T: Send + 'static,
        F: FnOnce(&Connect) -> Result<T, virt::error::Error> + Send + 'static,
    {
        let this = self.clone();
        let work = tokio::task::spawn_blocking(move || this.call_blocking(what, f));
        match tokio::time::timeout(self.timeout, work).await {
            Ok(joined) => joined.map_err(|e| HypervisorError::Worker(e.to_string()))?,
            Err(_) => {
                tracing::error!(what, uri = %self.uri, "libvirt call timed out");
                Err(HypervisorError::Timeout {
                    what,
                    secs: self.timeout.as_secs().max(1),
                })
            }
        }
    }

    fn call_blocking<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Connect) -> Result<T, virt::error::Error>,
    ) -> Result<T, HypervisorError> {
        // The lock guards only (re)connecting: a libvirt connection is thread-safe, and one
        // slow call (a define while libvirtd probes QEMU) must not hold up the others.
        let conn = {
            let mut guard = self
                .conn
                .lock()
                .map_err(|_| HypervisorError::Worker("connection lock poisoned".into()))?;
            match guard.as_ref() {
                Some(c) => Arc::clone(c),
                None => {
                    let c = Arc::new(Connect::open(Some(&self.uri)).map_err(|e| {
                        HypervisorError::Connect {
                            uri: self.uri.to_string(),
                            message: e.to_string(),
                        }
                    })?);
                    *guard = Some(Arc::clone(&c));
                    c
                }
            }
        };
        match f(&conn) {
            Ok(v) => Ok(v),
            Err(e) => {
                // Keep the connection if it is still alive: a test-driver instance's domains
                // live in it, and an embedded driver cannot be opened twice in one process.
                // Drop it only when libvirt says it is gone (libvirtd restarted).
                if !conn.is_alive().unwrap_or(false) {
                    if let Ok(mut guard) = self.conn.lock() {
                        if guard.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn)) {
                            *guard = None;
                        }
                    }
                }
                Err(HypervisorError::Call {
                    what,
                    message: e.to_string(),
                })
            }
        }
    }

    /// CPUs and memory of the host (libvirt node info).
    pub async fn capacity(&self) -> Result<NodeCapacity, HypervisorError> {
        let (info, free) = self
            .call("node info", |c| {
                let info = c.node_info()?;
                // libvirt says 0 (an error to the binding) when the driver does not know.
                Ok((info, c.free_memory().ok().filter(|&b| b > 0)))
            })
            .await?;
        Ok(NodeCapacity {
            cpus: info.cpus,
            memory_mib: info.memory / 1024,
            free_memory_mib: free.map(|b| b / (1024 * 1024)),
        })
    }
}

/// Gives an embedded QEMU driver's root a `qemu.conf` (unless it has one): QEMU runs as this
/// process's user, and guest consoles go to files rather than to virtlogd. Without it the
/// driver runs QEMU as `libvirt-qemu` and needs virtlogd; and where `/dev/kvm` is root-only
/// (no udev), libvirt probes QEMU with KVM, then finds KVM unusable as that user and probes
/// again on every call, each probe taking seconds.
/// The embedded driver is for tests and single-machine clusters; production uses
/// `qemu:///system`.
fn prepare_embed_root(uri: &str) {
    let Some(root) = uri
        .split_once("root=")
        .map(|(_, r)| r.split('&').next().unwrap_or(r))
    else {
        return;
    };
    let etc = std::path::Path::new(root).join("etc");
    let conf = etc.join("qemu.conf");
    if conf.exists() {
        return;
    }
    let text = "# Written by quantixd for the embedded QEMU driver.\n\
                user = \"root\"\ngroup = \"root\"\nstdio_handler = \"file\"\n";
    if let Err(e) = std::fs::create_dir_all(&etc).and_then(|()| std::fs::write(&conf, text)) {
        tracing::warn!(path = %conf.display(), error = %e, "cannot write the embedded driver's qemu.conf");
    }
}

/// The embedded QEMU driver (`qemu:///embed?root=DIR`) runs inside this process and needs a
/// libvirt event loop here; started once, on a thread of its own.
fn start_event_loop() {
    static EVENTS: std::sync::Once = std::sync::Once::new();
    EVENTS.call_once(|| {
        if let Err(e) = virt::event::event_register_default_impl() {
            tracing::error!(error = %e, "cannot register libvirt's event loop");
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("libvirt-events".into())
            .spawn(|| loop {
                if let Err(e) = virt::event::event_run_default_impl() {
                    tracing::error!(error = %e, "libvirt event loop failed");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start libvirt's event loop thread");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_xml(dir: &std::path::Path, cpus: u32, memory_kib: u64) -> String {
        let path = dir.join("host.xml");
        let xml = format!(
            "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>{cpus}</cores>\
             <threads>1</threads><active>{cpus}</active><mhz>2000</mhz><model>x86_64</model>\
             </cpu><memory>{memory_kib}</memory></node>"
        );
        std::fs::write(&path, xml).unwrap();
        format!("test://{}", path.display())
    }

    #[tokio::test]
    async fn capacity_comes_from_the_test_driver_node() {
        let dir = tempfile::tempdir().unwrap();
        let h = Hypervisor::new(&node_xml(dir.path(), 6, 12 * 1024 * 1024));
        assert_eq!(
            h.capacity().await.unwrap(),
            NodeCapacity {
                cpus: 6,
                memory_mib: 12 * 1024,
                free_memory_mib: None,
            }
        );
    }

    #[tokio::test]
    async fn a_stuck_call_is_a_timeout_error_and_the_connection_still_works() {
        let dir = tempfile::tempdir().unwrap();
        let h = Hypervisor::new(&node_xml(dir.path(), 2, 4 * 1024 * 1024))
            .with_timeout(std::time::Duration::from_millis(200));
        let e = h
            .call("define", |c| {
                std::thread::sleep(std::time::Duration::from_secs(2));
                c.node_info()
            })
            .await
            .unwrap_err();
        assert_eq!(
            e,
            HypervisorError::Timeout {
                what: "define",
                secs: 1
            }
        );
        assert!(e.to_string().contains("did not answer within"), "{e}");
        assert_eq!(h.capacity().await.unwrap().cpus, 2);
    }

    #[tokio::test]
    async fn a_bad_uri_is_a_clear_error() {
        let h = Hypervisor::new("test:///nonexistent/dir/host.xml");
        let e = h.capacity().await.unwrap_err().to_string();
        assert!(
            e.contains("cannot connect to libvirt at test:///nonexistent/dir/host.xml"),
            "{e}"
        );
    }
}
