//! Quantix: virtual machines across a cluster of hypervisor hosts, with no external database.
//!
//! Every host runs `quantixd`; the daemons form one Raft group whose state lives in redb on
//! every host. Module map (each module's header says what it owns and may use):
//!
//! | module    | owns                                                          |
//! |-----------|---------------------------------------------------------------|
//! | `model`   | plain domain types and their validation                       |
//! | `state`   | `Command`, `apply`, tables, queries                           |
//! | `raft`    | openraft type config, redb log store and state machine, wire  |
//! | `cluster` | a running host: write path with forwarding, reads, membership |
//! | `scheduler` | placement core (pure) and the leader loop                   |
//! | `hypervisor` | the libvirt connection (`virt` crate)                      |
//! | `agent`   | per-host work: inventory reports, VM reconcile, guest seeds   |
//! | `api`     | public tonic services and the one gRPC error mapping          |
//! | `config`  | the daemon's TOML config                                      |
//! | `cli`     | the `quantix` client                                          |
//! | `web`     | the HTTP listener: `/metrics`, `/healthz`, gRPC-web, dashboard |
//! | `tls`     | cluster CA, certificates, rustls configs (not wired in yet)    |

pub mod agent;
pub mod api;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod hypervisor;
pub mod model;
pub mod proto;
pub mod raft;
pub mod scheduler;
pub mod state;
pub mod tls;
pub mod web;
