//! The per-host agent: runs on every host and keeps the replicated state told about what this
//! host has. Today: its capacity (libvirt node info) and, for every pool, whether the host
//! reaches it (`inventory`). Reports go through Raft only when something changed.
//! May use: `cluster::Host` (state reads, writes), `hypervisor`, `model`, `state` (reads).

pub mod desired;
pub mod inventory;
pub mod plan;
pub mod pool_check;
pub mod reconcile;
pub mod seed;
