//! `GET /agent/quantix-agent`: every host serves the guest agent binary, so a new guest can
//! fetch it from the host it runs on (the cloud-init seed's run commands do). The binary is
//! the `quantix-agent` installed next to `quantixd` (both come from one build).
//! Owns: `handler`. May use: std, axum.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// The guest agent binary beside this executable.
fn binary_path() -> Option<std::path::PathBuf> {
    Some(
        std::env::current_exe()
            .ok()?
            .parent()?
            .join("quantix-agent"),
    )
}

/// SHA-256 (hex) of the binary served, read once (seeds carry it so guests can check what
/// they download).
pub fn binary_sha256() -> Option<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(binary_path()?).ok()?;
    Some(hex::encode(Sha256::digest(&bytes)))
}

pub async fn handler() -> Response {
    let Some(path) = binary_path() else {
        return (
            StatusCode::NOT_FOUND,
            "cannot tell where quantixd is installed\n",
        )
            .into_response();
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => (
            StatusCode::NOT_FOUND,
            format!(
                "the guest agent is not installed on this host ({}: {e})\n",
                path.display()
            ),
        )
            .into_response(),
    }
}
