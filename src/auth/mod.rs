//! Who is calling, and may they. Every request to a host's listeners is authenticated here
//! before any handler runs:
//! - the root-only Unix socket (`<data_dir>/quantixd.sock`) is the host's own administrator
//!   (`Principal::Local`), the bootstrap path (as Incus's local socket);
//! - a TLS client certificate signed by the cluster CA: role `host` for member hosts (checked
//!   against the member's recorded fingerprint, so a removed host is cut off), role `client`
//!   for API clients (checked against the credentials in the replicated state, so a revoked
//!   one is refused);
//! - a bearer token (`authorization: Bearer qxtok1...`) checked against its stored SHA-256;
//! - a dashboard session cookie (`web::session`), made from a token at login.
//!
//! The authenticated `Principal` is put in the request's extensions, where handlers read it.
//! Owns: `Principal`, `AuthError`, the authorization rules. May use: `cluster::Host`
//! (state reads, membership), `state`, `model::credential`, `tls::ca`.

pub mod layer;
mod rules;

pub use layer::{AuthLayer, Need, SessionCheck};
pub use rules::{authenticate, authenticate_bearer, authorize_host, Caller};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The Unix socket on the host itself (uid of the peer process).
    Local { uid: u32 },
    /// A member host, by its certificate.
    Host { name: String },
    /// An API client certificate, by credential name.
    Client { name: String },
    /// A bearer token, by credential name.
    Token { name: String },
    /// A dashboard session, by the name of the token it was made from.
    Session { name: String },
}

impl Principal {
    /// "local", "host", "client", "token" or "session".
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::Local { .. } => "local",
            Principal::Host { .. } => "host",
            Principal::Client { .. } => "client",
            Principal::Token { .. } => "token",
            Principal::Session { .. } => "session",
        }
    }

    pub fn name(&self) -> String {
        match self {
            Principal::Local { uid } => format!("uid {uid}"),
            Principal::Host { name }
            | Principal::Client { name }
            | Principal::Token { name }
            | Principal::Session { name } => name.clone(),
        }
    }

    /// For event logs and `created_by`: "client admin", "token ci", "local uid 0".
    pub fn describe(&self) -> String {
        format!("{} {}", self.kind(), self.name())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No credential at all.
    #[error("this call needs a credential: a client certificate from `quantix cluster add-client`, a bearer token from `quantix cluster add-token`, or the host's Unix socket")]
    Missing,
    /// A credential that is not (or no longer) valid; the text says which and why.
    #[error("{0}")]
    Refused(String),
    /// A credential (or member) this host's state does not know, maybe only not yet: the
    /// layer checks again once the state has caught up with the leader, then refuses.
    #[error("{0}")]
    Unknown(String),
    /// Authenticated, but not allowed to make this call.
    #[error("{0}")]
    Forbidden(String),
    /// The state could not be read to decide.
    #[error("cannot check the credential: {0}")]
    Internal(String),
}
