//! Transport security (issue 8, foundations): the cluster CA and the certificates it signs
//! (`ca`), the rustls configurations for host-to-host mutual TLS, API clients and joining
//! hosts (`config`), and the 0600 files a host keeps them in (`files`); the cluster key that
//! seals spec secrets at rest (`sealing`, in use). Wiring the certificates into the
//! listeners, the transport, joins and the CLI is not done yet (see docs/ARCHITECTURE.md,
//! "Not built yet").
//! May use: nothing of ours; `rcgen`, `rustls`, `x509-parser`, `sha2`, `ring`.

pub mod acceptor;
pub mod ca;
pub mod config;
pub mod connector;
pub mod files;
pub mod sealing;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot {what}: {message}")]
    Cert { what: &'static str, message: String },
    #[error("TLS setup: cannot {what}: {message}")]
    Config { what: &'static str, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests;
