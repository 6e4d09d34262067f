//! `GET /agent/quantix-agent`: every host serves the guest agent binary, so a new guest can
//! fetch it from the host it runs on (the cloud-init seed's run commands do). The binary is
//! the `quantix-agent` installed next to `quantixd` (both come from one build).
//!
//! The file is read once per process, the first time it is asked for (the agent's settings
//! ask at start for its SHA-256), and those bytes are what the route serves from then on: the
//! checksum a seed carries is always the checksum of what the host hands out, even if the
//! file on disk is replaced while `quantixd` runs (a restart picks the new one up). Guests
//! fetch it with `curl --insecure` (they cannot know the cluster's CA), so that checksum is
//! what the download's integrity rests on. The binary is small (a few MiB).
//!
//! Owns: `handler`, `binary_sha256`, the loaded binary. May use: std, axum, sha2.

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Debug, thiserror::Error)]
pub enum GuestAgentError {
    #[error("cannot tell where quantixd is installed: {0}")]
    NoExecutable(String),
    #[error("the guest agent is not installed on this host ({path}: {source})")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The binary as read once, with its SHA-256 (hex).
struct Binary {
    bytes: Bytes,
    sha256: String,
}

static BINARY: OnceLock<Result<Binary, GuestAgentError>> = OnceLock::new();

/// The guest agent binary beside this executable.
fn binary_path() -> Result<PathBuf, GuestAgentError> {
    let exe = std::env::current_exe().map_err(|e| GuestAgentError::NoExecutable(e.to_string()))?;
    let dir = exe.parent().ok_or_else(|| {
        GuestAgentError::NoExecutable(format!("{} has no directory", exe.display()))
    })?;
    Ok(dir.join("quantix-agent"))
}

fn load(path: PathBuf) -> Result<Binary, GuestAgentError> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(&path).map_err(|source| GuestAgentError::Read { path, source })?;
    Ok(Binary {
        sha256: hex::encode(Sha256::digest(&bytes)),
        bytes: Bytes::from(bytes),
    })
}

fn binary() -> &'static Result<Binary, GuestAgentError> {
    BINARY.get_or_init(|| binary_path().and_then(load))
}

/// SHA-256 (hex) of the binary this host serves, `None` when it has none (seeds carry it so
/// guests check what they download).
pub fn binary_sha256() -> Option<String> {
    match binary() {
        Ok(b) => Some(b.sha256.clone()),
        Err(e) => {
            tracing::warn!(error = %e, "guests cannot get the quantix agent from this host");
            None
        }
    }
}

pub async fn handler() -> Response {
    match binary() {
        Ok(b) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            b.bytes.clone(),
        )
            .into_response(),
        Err(e) => (StatusCode::NOT_FOUND, format!("{e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_of_the_bytes_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quantix-agent");
        std::fs::write(&path, b"abc").unwrap();
        let b = load(path.clone()).unwrap();
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            b.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(&b.bytes[..], b"abc");
        std::fs::remove_file(&path).unwrap();
        let e = load(path).err().unwrap().to_string();
        assert!(e.contains("not installed on this host"), "{e}");
        assert!(e.contains("quantix-agent"), "{e}");
    }
}
