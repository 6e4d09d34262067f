//! The rules: from what a connection and a request carry to a `Principal`, or a refusal that
//! says why. Reads the replicated state (credentials, member certificates) and the Raft
//! membership on every request, so a revocation or a removal applies to the next call, also on
//! connections opened before it.

use http::HeaderMap;
use subtle_eq::ct_eq;

use super::{AuthError, Principal};
use crate::cluster::{now_ms, Host};
use crate::model::credential::{ApiToken, CredentialKind};
use crate::state::{credentials, host_certs, tables};
use crate::tls::ca::{PeerCert, Role};

/// What a request arrived with, before it is believed.
#[derive(Debug, Default)]
pub struct Caller<'a> {
    /// Peer uid on the Unix socket.
    pub unix_uid: Option<u32>,
    /// The TLS client certificate (already verified against the CA by the handshake), as
    /// read at the handshake, or why it could not be read.
    pub cert: Option<&'a Result<PeerCert, String>>,
    pub headers: Option<&'a HeaderMap>,
}

fn internal(e: impl std::fmt::Display) -> AuthError {
    AuthError::Internal(e.to_string())
}

/// Who `caller` is. A certificate wins over a bearer token; the Unix socket over both.
pub fn authenticate(host: &Host, caller: &Caller<'_>) -> Result<Principal, AuthError> {
    if let Some(uid) = caller.unix_uid {
        return local(uid);
    }
    if let Some(cert) = caller.cert {
        let peer = cert
            .as_ref()
            .map_err(|e| AuthError::Refused(format!("client certificate: {e}")))?;
        return match peer.role {
            Some(Role::Host) => authorize_host(host, peer).map(|()| Principal::Host {
                name: peer.name.clone(),
            }),
            Some(Role::Client) => client(host, peer),
            None => Err(AuthError::Refused(format!(
                "certificate {} has no Quantix role",
                peer.name
            ))),
        };
    }
    if let Some(h) = caller.headers {
        if let Some(token) = bearer(h)? {
            return authenticate_bearer(host, token);
        }
    }
    Err(AuthError::Missing)
}

/// The host's own root (or the daemon's own user) on the Unix socket.
fn local(uid: u32) -> Result<Principal, AuthError> {
    let own = rustix::process::geteuid().as_raw();
    if uid == 0 || uid == own {
        Ok(Principal::Local { uid })
    } else {
        Err(AuthError::Refused(format!(
            "uid {uid} may not use this host's socket (only root or uid {own})"
        )))
    }
}

/// The token in `authorization: Bearer ...`, if there is such a header.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let Some(v) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| AuthError::Refused("authorization header is not text".into()))?;
    match v.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(Some(token.trim())),
        _ => Err(AuthError::Refused(
            "authorization header must be `Bearer <token>`".into(),
        )),
    }
}

/// A bearer token: known id, matching secret, not expired.
pub fn authenticate_bearer(host: &Host, token: &str) -> Result<Principal, AuthError> {
    let t = ApiToken::parse(token).map_err(|e| AuthError::Refused(e.to_string()))?;
    let state = host.state().map_err(internal)?;
    let cred = credentials::by_token_id(&state, &t.id)
        .map_err(internal)?
        .ok_or_else(|| {
            AuthError::Unknown(format!(
                "bearer token {} is not known to this cluster (revoked, or never made here)",
                t.id
            ))
        })?;
    let CredentialKind::Token { secret_sha256, .. } = &cred.kind else {
        return Err(AuthError::Refused("not a token".into()));
    };
    if !ct_eq(secret_sha256.as_bytes(), t.secret_sha256().as_bytes()) {
        return Err(AuthError::Refused(format!(
            "bearer token {} has the wrong secret (forged or altered)",
            t.id
        )));
    }
    if cred.expired(now_ms()) {
        return Err(AuthError::Refused(format!(
            "bearer token {} ({}) has expired; make a new one with `quantix cluster add-token`",
            t.id, cred.name
        )));
    }
    Ok(Principal::Token { name: cred.name })
}

fn client(host: &Host, peer: &PeerCert) -> Result<Principal, AuthError> {
    let state = host.state().map_err(internal)?;
    let cred = credentials::by_fingerprint(&state, &peer.fingerprint)
        .map_err(internal)?
        .ok_or_else(|| {
            AuthError::Unknown(format!(
                "client certificate {} (sha256 {}) is not registered with this cluster (revoked?)",
                peer.name, peer.fingerprint
            ))
        })?;
    if cred.expired(now_ms()) {
        return Err(AuthError::Refused(format!(
            "client certificate {} has expired",
            cred.name
        )));
    }
    Ok(Principal::Client { name: cred.name })
}

/// A member host's certificate: its name must be a member (in the state or, while joining,
/// in the Raft membership) and, when the state recorded its certificate, the fingerprint must
/// be that one. A host that has not applied the cluster's first entry yet (a joining host
/// catching up) accepts any host certificate of the cluster's CA.
pub fn authorize_host(host: &Host, peer: &PeerCert) -> Result<(), AuthError> {
    if peer.role != Some(Role::Host) {
        return Err(AuthError::Forbidden(format!(
            "{} is not a host certificate; only member hosts may use the host-to-host transport",
            peer.name
        )));
    }
    let state = host.state().map_err(internal)?;
    if tables::cluster_info(&state).map_err(internal)?.is_none() {
        return Ok(());
    }
    if let Some(fp) = host_certs::get(&state, &peer.name).map_err(internal)? {
        if ct_eq(fp.as_bytes(), peer.fingerprint.as_bytes()) {
            return Ok(());
        }
        return Err(AuthError::Refused(format!(
            "host {}'s certificate (sha256 {}) is not the one this cluster issued to it (revoked)",
            peer.name, peer.fingerprint
        )));
    }
    let known = tables::host(&state, &peer.name)
        .map_err(internal)?
        .is_some()
        || host.membership().0.values().any(|m| m.name == peer.name);
    if known {
        Ok(())
    } else {
        Err(AuthError::Unknown(format!(
            "host {} is not a member of this cluster (removed?)",
            peer.name
        )))
    }
}

mod subtle_eq {
    /// Compares without stopping at the first difference.
    pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}
