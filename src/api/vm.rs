//! `quantix.v1.VmService`: conversions between the model and the wire, and the handlers.

use std::collections::HashMap;
use tonic::{Request, Response, Status};

use super::cluster::is_stale;
use super::status::to_status;
use crate::cluster::{ClusterError, Host};
use crate::model::vm::{self as m, Power, Status as VmStatus};
use crate::model::{FolderId, UnixMillis};
use crate::proto::v1::vm_service_server::VmService;
use crate::proto::v1::*;
use crate::state::vms::{self, PowerAction, VmApplied, VmCommand};
use crate::state::{events, tables, Applied, Command, KvRead};

pub struct VmApi {
    pub host: Host,
}

fn invalid(msg: impl Into<String>) -> Status {
    to_status(ClusterError::InvalidArgument(msg.into()))
}

fn internal(e: impl std::fmt::Display) -> Status {
    to_status(ClusterError::internal(e))
}

fn opt(s: String) -> Option<String> {
    (!s.trim().is_empty()).then_some(s)
}

fn boot_from(b: Option<BootMedia_>) -> Result<m::BootMedia, Status> {
    match b.and_then(|b| b.media) {
        Some(boot_media::Media::CloudImage(i)) if !i.is_empty() => Ok(m::BootMedia::CloudImage(i)),
        Some(boot_media::Media::Iso(i)) if !i.is_empty() => Ok(m::BootMedia::Iso(i)),
        Some(boot_media::Media::Pxe(true)) => Ok(m::BootMedia::Pxe),
        Some(boot_media::Media::Foreign(_)) => Err(invalid(
            "boot: 'foreign' describes a domain found on a host; choose a cloud image, an ISO or PXE",
        )),
        None => Err(invalid("boot: choose a cloud image, an ISO or PXE")),
        Some(_) => Err(invalid("boot: the image or ISO name must not be empty")),
    }
}

type BootMedia_ = crate::proto::v1::BootMedia;
type GuestInfo_ = crate::model::guest::GuestInfo;

fn guest_of(kv: &impl KvRead, vm: &str) -> Result<Option<GuestInfo_>, Status> {
    crate::state::guest::get(kv, vm).map_err(internal)
}

fn boot_to(b: &m::BootMedia) -> BootMedia_ {
    let media = match b {
        m::BootMedia::CloudImage(i) => boot_media::Media::CloudImage(i.clone()),
        m::BootMedia::Iso(i) => boot_media::Media::Iso(i.clone()),
        m::BootMedia::Pxe => boot_media::Media::Pxe(true),
        m::BootMedia::Foreign => boot_media::Media::Foreign(true),
    };
    BootMedia_ { media: Some(media) }
}

/// Folder paths by id, resolved once per response.
struct Paths<'a, K: KvRead> {
    kv: &'a K,
    cache: HashMap<FolderId, String>,
}

impl<K: KvRead> Paths<'_, K> {
    fn path(&mut self, id: FolderId) -> Result<String, Status> {
        if let Some(p) = self.cache.get(&id) {
            return Ok(p.clone());
        }
        let p = tables::folder_path(self.kv, id)
            .map_err(internal)?
            .map(|p| p.to_string())
            .unwrap_or_default();
        self.cache.insert(id, p.clone());
        Ok(p)
    }
}

fn to_proto(v: &m::Vm, folder: String, guest: Option<GuestInfo_>) -> Vm {
    Vm {
        guest: guest.map(|g| crate::proto::v1::GuestInfo {
            hostname: g.hostname,
            addresses: g.addresses,
            agent: g.agent,
            reported_at_ms: g.at,
        }),
        id: v.id,
        name: v.name.clone(),
        folder,
        cpus: v.cpus,
        memory_mib: v.memory_mib,
        disks: v
            .disks
            .iter()
            .map(|d| Disk {
                size_mib: d.size_mib,
                pool: d.pool.clone(),
                image: d.image.clone().unwrap_or_default(),
            })
            .collect(),
        boot: Some(boot_to(&v.boot)),
        nics: v
            .nics
            .iter()
            .map(|n| Nic {
                network: n.network.clone(),
                mac: n.mac.clone().unwrap_or_default(),
            })
            .collect(),
        spec: v.spec.clone().unwrap_or_default(),
        overrides: Some(Overrides {
            hostname: v.overrides.hostname.clone().unwrap_or_default(),
            timezone: v.overrides.timezone.clone().unwrap_or_default(),
            ssh_keys: v.overrides.ssh_keys.clone(),
            user_data: v.overrides.user_data.clone().unwrap_or_default(),
        }),
        host_pin: v.host_pin.clone().unwrap_or_default(),
        scheduled_at_ms: v.scheduled_at.unwrap_or(0),
        power: v.power.as_str().into(),
        host: v.placement.clone().unwrap_or_default(),
        status: v.observed.status.as_str().into(),
        reason: v.observed.reason.clone(),
        generation: v.generation,
        created_at_ms: v.created_at,
        updated_at_ms: v.updated_at,
        observed_at_ms: v.observed.at,
        anti_affinity: v.anti_affinity.clone().unwrap_or_default(),
        affinity: v.affinity.clone().unwrap_or_default(),
    }
}

fn new_vm(r: CreateVmRequest) -> Result<(m::Vm, String), Status> {
    let boot = boot_from(r.boot)?;
    let overrides = r.overrides.unwrap_or_default();
    let vm = m::Vm {
        id: 0,
        name: r.name,
        folder: FolderId::ROOT,
        cpus: if r.cpus == 0 { 1 } else { r.cpus },
        memory_mib: if r.memory_mib == 0 {
            1024
        } else {
            r.memory_mib
        },
        disks: r
            .disks
            .into_iter()
            .map(|d| m::Disk {
                size_mib: d.size_mib,
                pool: d.pool,
                image: opt(d.image),
            })
            .collect(),
        boot,
        nics: r
            .nics
            .into_iter()
            .map(|n| m::Nic {
                network: n.network,
                mac: opt(n.mac),
            })
            .collect(),
        spec: opt(r.spec),
        overrides: m::Overrides {
            hostname: opt(overrides.hostname),
            timezone: opt(overrides.timezone),
            ssh_keys: overrides.ssh_keys,
            user_data: opt(overrides.user_data),
        },
        host_pin: opt(r.host_pin),
        anti_affinity: opt(r.anti_affinity),
        affinity: opt(r.affinity),
        scheduled_at: (r.scheduled_at_ms > 0).then_some(r.scheduled_at_ms as UnixMillis),
        power: if r.stopped {
            Power::Stopped
        } else {
            Power::Running
        },
        force_stop: false,
        reboot_seq: 0,
        placement: None,
        observed: m::Observed {
            status: VmStatus::Pending,
            reason: String::new(),
            host: None,
            at: 0,
        },
        generation: 0,
        created_at: 0,
        updated_at: 0,
    };
    let folder = if r.folder.is_empty() {
        "/".to_string()
    } else {
        r.folder
    };
    Ok((vm, folder))
}

impl VmApi {
    async fn write_vm(&self, cmd: VmCommand, request_id: String) -> Result<Response<Vm>, Status> {
        match self
            .host
            .write_ok(Command::Vm(cmd), Some(request_id))
            .await
            .map_err(to_status)?
        {
            Applied::Vm(VmApplied::Created(v) | VmApplied::Updated(v)) => {
                let state = self.host.state().map_err(to_status)?;
                let folder = tables::folder_path(&state, v.folder)
                    .map_err(internal)?
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                let guest = guest_of(&state, &v.name)?;
                Ok(Response::new(to_proto(&v, folder, guest)))
            }
            other => Err(internal(format!("unexpected outcome {other:?}"))),
        }
    }

    async fn power(
        &self,
        name: String,
        action: PowerAction,
        request_id: String,
    ) -> Result<Response<Vm>, Status> {
        self.write_vm(VmCommand::Power { name, action }, request_id)
            .await
    }
}

#[tonic::async_trait]
impl VmService for VmApi {
    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn create_vm(&self, req: Request<CreateVmRequest>) -> Result<Response<Vm>, Status> {
        let r = req.into_inner();
        let request_id = r.request_id.clone();
        let (vm, folder) = new_vm(r)?;
        vm.validate().map_err(|e| invalid(e.to_string()))?;
        self.write_vm(
            VmCommand::Create {
                vm: Box::new(vm),
                folder,
            },
            request_id,
        )
        .await
    }

    async fn get_vm(&self, req: Request<GetVmRequest>) -> Result<Response<Vm>, Status> {
        let r = req.into_inner();
        self.host
            .read_barrier(is_stale(r.consistency))
            .await
            .map_err(to_status)?;
        let state = self.host.state().map_err(to_status)?;
        let vm = vms::get(&state, &r.name)
            .map_err(internal)?
            .ok_or_else(|| {
                to_status(ClusterError::NotFound(format!(
                    "vm {} does not exist",
                    r.name
                )))
            })?;
        let folder = Paths {
            kv: &state,
            cache: HashMap::new(),
        }
        .path(vm.folder)?;
        let guest = guest_of(&state, &vm.name)?;
        Ok(Response::new(to_proto(&vm, folder, guest)))
    }

    async fn list_vms(
        &self,
        req: Request<ListVmsRequest>,
    ) -> Result<Response<ListVmsResponse>, Status> {
        let r = req.into_inner();
        self.host
            .read_barrier(is_stale(r.consistency))
            .await
            .map_err(to_status)?;
        let state = self.host.state().map_err(to_status)?;
        let folder = match opt(r.folder) {
            None => None,
            Some(path) => {
                let p = crate::model::FolderPath::parse("folder", &path)
                    .map_err(|e| invalid(e.to_string()))?;
                Some(
                    crate::state::folders::resolve(&state, &p)
                        .map_err(internal)?
                        .ok_or_else(|| {
                            to_status(ClusterError::NotFound(format!("folder {p} does not exist")))
                        })?,
                )
            }
        };
        let status = match opt(r.status) {
            None => None,
            Some(s) => Some(VmStatus::parse(&s).ok_or_else(|| {
                invalid(format!("status '{s}' is not one of pending, creating, running, stopped, paused, failed, deleting"))
            })?),
        };
        let filter = vms::Filter {
            folder,
            host: opt(r.host),
            status,
        };
        let page_size = match r.page_size {
            0 => 100,
            n => n.min(1000) as usize,
        };
        let revision = events::revision(&state).map_err(internal)?;
        let (list, next) = vms::list(&state, &filter, opt(r.page_token).as_deref(), page_size)
            .map_err(internal)?;
        let mut paths = Paths {
            kv: &state,
            cache: HashMap::new(),
        };
        let vms = list
            .iter()
            .map(|v| {
                Ok(to_proto(
                    v,
                    paths.path(v.folder)?,
                    guest_of(&state, &v.name)?,
                ))
            })
            .collect::<Result<_, Status>>()?;
        Ok(Response::new(ListVmsResponse {
            vms,
            next_page_token: next.unwrap_or_default(),
            revision,
        }))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn update_vm(&self, req: Request<UpdateVmRequest>) -> Result<Response<Vm>, Status> {
        let r = req.into_inner();
        let cmd = VmCommand::Update {
            name: r.name,
            cpus: (r.cpus > 0).then_some(r.cpus),
            memory_mib: (r.memory_mib > 0).then_some(r.memory_mib),
            new_name: opt(r.new_name),
            folder: opt(r.folder),
        };
        self.write_vm(cmd, r.request_id).await
    }

    async fn start_vm(&self, req: Request<VmPowerRequest>) -> Result<Response<Vm>, Status> {
        let r = req.into_inner();
        self.power(r.name, PowerAction::Start, r.request_id).await
    }

    async fn stop_vm(&self, req: Request<StopVmRequest>) -> Result<Response<Vm>, Status> {
        let r = req.into_inner();
        self.power(r.name, PowerAction::Stop { force: r.force }, r.request_id)
            .await
    }

    async fn reboot_vm(&self, req: Request<VmPowerRequest>) -> Result<Response<Vm>, Status> {
        let r = req.into_inner();
        self.power(r.name, PowerAction::Reboot, r.request_id).await
    }

    async fn pause_vm(&self, req: Request<VmPowerRequest>) -> Result<Response<Vm>, Status> {
        let r = req.into_inner();
        self.power(r.name, PowerAction::Pause, r.request_id).await
    }

    async fn resume_vm(&self, req: Request<VmPowerRequest>) -> Result<Response<Vm>, Status> {
        let r = req.into_inner();
        self.power(r.name, PowerAction::Resume, r.request_id).await
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn delete_vm(
        &self,
        req: Request<DeleteVmRequest>,
    ) -> Result<Response<DeleteVmResponse>, Status> {
        let r = req.into_inner();
        match self
            .host
            .write_ok(
                Command::Vm(VmCommand::Delete { name: r.name }),
                Some(r.request_id),
            )
            .await
            .map_err(to_status)?
        {
            Applied::Vm(VmApplied::Deleted { removed }) => {
                Ok(Response::new(DeleteVmResponse { removed }))
            }
            other => Err(internal(format!("unexpected outcome {other:?}"))),
        }
    }
}
