//! The scheduler: a pure placement core (`snapshot`, `filters`, `scores`, `place`) and the
//! leader loop that feeds it from the replicated state and proposes `Place` commands. Leader
//! work is soft state: nothing it decides counts until `apply` re-validates it at its log
//! position. May use: `model`, `state` (reads), `cluster` (to propose, leader loop only).

pub mod build;
pub mod filters;
pub mod leader;
pub mod place;
pub mod scores;
pub mod snapshot;
#[cfg(test)]
mod tests;
