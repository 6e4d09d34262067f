//! Domain operations on this host's libvirt: list with state and XML, define, start, shut
//! down, destroy, pause, resume, reboot, undefine. Each is idempotent where libvirt allows it
//! (starting a running domain, destroying a stopped one, undefining a missing one succeed), so
//! the agent can retry any action after a crash. Owns: `DomState`, `DomainInfo` and the
//! mapping from libvirt's states. Uses: `Hypervisor::call` (the `virt` crate).

use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::enumutil::Enum;
use virt::error::{Error, ErrorNumber};

use super::{Hypervisor, HypervisorError};

/// A domain's run state as the agent needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomState {
    Running,
    Paused,
    /// Defined, not running.
    ShutOff,
    /// Shutting down (the guest was asked to).
    ShuttingDown,
    Crashed,
    Other,
}

impl DomState {
    fn from_libvirt(s: &Enum<DomainState, virt::sys::virDomainState>) -> DomState {
        match s {
            Enum::Known(DomainState::Running | DomainState::Blocked) => DomState::Running,
            Enum::Known(DomainState::Paused | DomainState::PMSuspended) => DomState::Paused,
            Enum::Known(DomainState::Shutoff) => DomState::ShutOff,
            Enum::Known(DomainState::Shutdown) => DomState::ShuttingDown,
            Enum::Known(DomainState::Crashed) => DomState::Crashed,
            _ => DomState::Other,
        }
    }
}

/// One defined domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInfo {
    pub name: String,
    pub state: DomState,
    /// The domain's (inactive, i.e. persistent) XML, for its metadata.
    pub xml: String,
}

fn no_domain(e: &Error) -> bool {
    matches!(e.code(), Enum::Known(ErrorNumber::NoDomain))
}

/// Looks a domain up; `Ok(None)` when there is none of that name.
fn lookup(c: &Connect, name: &str) -> Result<Option<Domain>, Error> {
    match c.lookup_domain_by_name(name) {
        Ok(d) => Ok(Some(d)),
        Err(e) if no_domain(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

fn state(d: &Domain) -> Result<DomState, Error> {
    Ok(DomState::from_libvirt(&d.state()?.0))
}

impl Hypervisor {
    /// Every domain this libvirt knows (running or only defined).
    pub async fn list_domains(&self) -> Result<Vec<DomainInfo>, HypervisorError> {
        self.call("list domains", |c| {
            let mut out = Vec::new();
            for d in c.list_all_domains(0)? {
                out.push(DomainInfo {
                    name: d.name()?,
                    state: state(&d)?,
                    xml: d.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)?,
                });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
    }

    /// One domain, or `None`.
    /// The running domain's live XML (with the paths libvirt chose, such as channel sockets);
    /// `None` when there is no such domain.
    pub async fn live_xml(&self, name: &str) -> Result<Option<String>, HypervisorError> {
        let name = name.to_string();
        self.call("read live domain XML", move |c| match lookup(c, &name)? {
            Some(d) => Ok(Some(d.xml_desc(0)?)),
            None => Ok(None),
        })
        .await
    }

    pub async fn domain(&self, name: &str) -> Result<Option<DomainInfo>, HypervisorError> {
        let name = name.to_string();
        self.call("look up domain", move |c| {
            let Some(d) = lookup(c, &name)? else {
                return Ok(None);
            };
            Ok(Some(DomainInfo {
                name: d.name()?,
                state: state(&d)?,
                xml: d.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)?,
            }))
        })
        .await
    }

    /// Defines (or redefines: libvirt updates the persistent config) a domain from XML.
    pub async fn define(&self, xml: &str) -> Result<(), HypervisorError> {
        let xml = xml.to_string();
        self.call("define domain", move |c| {
            c.define_domain_xml(&xml).map(|_| ())
        })
        .await
    }

    /// Runs `f` on the named domain if it exists; `missing_ok`: a missing domain is success.
    async fn on_domain(
        &self,
        what: &'static str,
        name: &str,
        missing_ok: bool,
        f: fn(&Domain, DomState) -> Result<(), Error>,
    ) -> Result<(), HypervisorError> {
        let name = name.to_string();
        let result = self
            .call(what, move |c| match lookup(c, &name)? {
                Some(d) => {
                    let s = state(&d)?;
                    f(&d, s).map(|_| true)
                }
                None => Ok(false),
            })
            .await?;
        if !result && !missing_ok {
            return Err(HypervisorError::Call {
                what,
                message: "no such domain".into(),
            });
        }
        Ok(())
    }

    /// Starts a defined domain; a running one is left alone.
    pub async fn start(&self, name: &str) -> Result<(), HypervisorError> {
        self.on_domain("start domain", name, false, |d, s| match s {
            DomState::ShutOff | DomState::Crashed => d.create(),
            _ => Ok(()),
        })
        .await
    }

    /// Asks the guest to shut down (ACPI); nothing if it is not running.
    pub async fn shutdown(&self, name: &str) -> Result<(), HypervisorError> {
        self.on_domain("shut down domain", name, true, |d, s| match s {
            DomState::Running | DomState::Paused => d.shutdown(),
            _ => Ok(()),
        })
        .await
    }

    /// Pulls the plug; nothing if it is not running.
    pub async fn destroy(&self, name: &str) -> Result<(), HypervisorError> {
        self.on_domain("destroy domain", name, true, |d, s| match s {
            DomState::ShutOff => Ok(()),
            _ => d.destroy(),
        })
        .await
    }

    pub async fn pause(&self, name: &str) -> Result<(), HypervisorError> {
        self.on_domain("pause domain", name, false, |d, s| match s {
            DomState::Running => d.suspend().map(|_| ()),
            _ => Ok(()),
        })
        .await
    }

    pub async fn resume(&self, name: &str) -> Result<(), HypervisorError> {
        self.on_domain("resume domain", name, false, |d, s| match s {
            DomState::Paused => d.resume().map(|_| ()),
            _ => Ok(()),
        })
        .await
    }

    pub async fn reboot(&self, name: &str) -> Result<(), HypervisorError> {
        self.on_domain("reboot domain", name, false, |d, s| match s {
            DomState::Running => d.reboot(0),
            _ => Ok(()),
        })
        .await
    }

    /// Stops (if needed) and undefines a domain with its managed save, snapshots metadata and
    /// NVRAM; a missing domain is success.
    pub async fn undefine(&self, name: &str) -> Result<(), HypervisorError> {
        self.on_domain("undefine domain", name, true, |d, s| {
            if s != DomState::ShutOff {
                d.destroy()?;
            }
            let base = virt::sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                | virt::sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
            match d.undefine_flags(base | virt::sys::VIR_DOMAIN_UNDEFINE_NVRAM) {
                // Drivers without NVRAM support (the test driver) refuse the flag.
                Err(e) if matches!(e.code(), Enum::Known(ErrorNumber::InvalidArg)) => {
                    d.undefine_flags(base)
                }
                other => other,
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_driver() -> (tempfile::TempDir, Hypervisor) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.xml");
        std::fs::write(
            &path,
            "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads>\
             <active>4</active><mhz>2000</mhz><model>x86_64</model></cpu>\
             <memory>8388608</memory></node>",
        )
        .unwrap();
        let uri = format!("test://{}", path.display());
        (dir, Hypervisor::new(&uri))
    }

    const XML: &str = "<domain type='test'><name>web1</name><uuid>6f1e3c1a-8b0e-4f6e-9d7a-2a8f4c9b1e01</uuid><memory unit='MiB'>256</memory>\
        <vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>";

    #[tokio::test]
    async fn define_start_stop_undefine_round_trip_and_repeat_safely() {
        let (_d, h) = test_driver();
        assert!(h.list_domains().await.unwrap().is_empty());
        assert!(h.domain("web1").await.unwrap().is_none());
        h.define(XML).await.unwrap();
        h.define(XML).await.unwrap();
        let d = h.domain("web1").await.unwrap().unwrap();
        assert_eq!(d.state, DomState::ShutOff);
        for _ in 0..2 {
            h.start("web1").await.unwrap();
        }
        assert_eq!(
            h.domain("web1").await.unwrap().unwrap().state,
            DomState::Running
        );
        h.pause("web1").await.unwrap();
        assert_eq!(
            h.domain("web1").await.unwrap().unwrap().state,
            DomState::Paused
        );
        h.resume("web1").await.unwrap();
        h.shutdown("web1").await.unwrap();
        assert_eq!(
            h.domain("web1").await.unwrap().unwrap().state,
            DomState::ShutOff
        );
        h.start("web1").await.unwrap();
        for _ in 0..2 {
            h.destroy("web1").await.unwrap();
        }
        assert_eq!(
            h.domain("web1").await.unwrap().unwrap().state,
            DomState::ShutOff
        );
        h.start("web1").await.unwrap();
        for _ in 0..2 {
            h.undefine("web1").await.unwrap();
        }
        assert!(h.domain("web1").await.unwrap().is_none());
        let e = h.start("web1").await.unwrap_err().to_string();
        assert!(e.contains("no such domain"), "{e}");
    }

    #[tokio::test]
    async fn libvirt_errors_come_back_with_its_message() {
        let (_d, h) = test_driver();
        let e = h.define("<domain>").await.unwrap_err().to_string();
        assert!(e.starts_with("libvirt define domain failed:"), "{e}");
    }
}
