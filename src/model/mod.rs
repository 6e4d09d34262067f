//! Plain domain types and their validation. Owns: ids, names, folder paths, host records.
//! May use: nothing of ours (only serde). Everything here is pure and cheap to clone.

pub mod credential;
pub mod folder;
pub mod guest;
pub mod host;
pub mod image;
pub mod names;
pub mod policy;
pub mod pool;
pub mod size;
pub mod spec;
pub mod vm;

pub use folder::{Folder, FolderId, FolderPath};
pub use host::{HostId, HostRecord, Role};
pub use names::NameError;

/// Milliseconds since the Unix epoch. Fixed by whoever proposes a command, never read in `apply`.
pub type UnixMillis = u64;
