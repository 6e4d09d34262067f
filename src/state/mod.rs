//! The replicated state: `Command`s, the deterministic `apply`, the tables it writes and the
//! queries the API reads with. Owns: the redb schema of the state file. May use: `model`, and
//! the scheduler's pure core (`scheduler::{snapshot, filters, place}`) to re-validate placements.
//!
//! Invariants: `apply` is a pure function of (state, request); every stored value carries a
//! format version (`codec`); a refused command is an `Outcome::Rejected`, never an error.

pub mod apply;
pub mod cluster;
pub mod codec;
pub mod command;
pub mod credentials;
pub mod discover;
pub mod events;
pub mod folders;
pub mod guest;
pub mod host_certs;
pub mod hosts;
pub mod http_addrs;
pub mod images;
pub mod kv;
pub mod placement;
pub mod pools;
pub mod redb_kv;
pub mod refs;
pub mod specs;
pub mod tables;
pub mod vms;

pub use apply::apply;
pub use command::{Applied, Command, Outcome, Outcomes, Proposal, RejectKind, Rejection, Request};
pub use kv::{Kv, KvError, KvRead, MemKv, Table};
