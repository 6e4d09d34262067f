//! The per-host agent: runs on every host. It keeps the replicated state told about what this
//! host has (`inventory`: capacity from libvirt, pool reachability), and converges libvirt to
//! the VMs placed here (`reconcile`, driven by the pure `plan`, with `desired` for file layout
//! and domain spec and `seed` for cloud-init ISOs). Reports go through Raft only on change.
//! May use: `cluster::Host` (state reads, writes), `hypervisor`, `model`, `state` (reads).

pub mod desired;
pub mod guest;
pub mod images;
pub mod inventory;
pub mod nfs;
pub mod plan;
pub mod pool_check;
pub mod reboots;
pub mod reconcile;
pub mod seed;
