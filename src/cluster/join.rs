//! Joining a host to the cluster, in two steps, so that nothing travels in the clear and the
//! cluster only ever talks to a host with a certificate it issued:
//!
//! 1. `Join` (open RPC, over TLS pinned to the CA fingerprint in the token, checked before
//!    anything is sent): the new host sends the token's id and secret, its host record and a
//!    CSR. The leader signs the CSR, then spends the token through Raft with the certificate's
//!    fingerprint (`JoinHost`: checked in `apply`, so a token works on every member and
//!    exactly once) and answers with the certificate, the CA (and its key, so any member can
//!    sign when it leads) and the cluster key.
//! 2. `Admit` (mutual TLS with the new certificate): the leader adds the host as a learner,
//!    waits for it to catch up (replicating to it over mutual TLS, which needs the certificate
//!    from step 1 on the new host's listener), and promotes it if there is room for a voter.
//!
//! Owns: `JoinAsk`, `JoinAnswer`. Uses: `cluster::{certs, write, membership}`, `tls`.

use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::membership::{change_err, CATCH_UP};
use super::token::{sha256_hex, JoinToken};
use super::write::LeaderRpc;
use super::{now_ms, ClusterError, Host};
use crate::model::{HostRecord, Role};
use crate::proto::internal::raft_transport_client::RaftTransportClient;
use crate::raft::Member;
use crate::state::{Applied, Command};

/// How long the new host keeps asking to be admitted (a member that relayed step 1 may not
/// have applied `JoinHost` yet and refuses the new certificate until it has).
const ADMIT_TRIES: Duration = Duration::from_secs(15);

/// What the new host sends to a member.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct JoinAsk {
    cluster_id: String,
    token_id: String,
    secret: String,
    host: HostRecord,
    /// A CSR for the joining host's key (PEM); the leader signs it.
    csr_pem: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinAnswer {
    pub cluster_id: String,
    /// Known after step 2; step 1 answers `NonVoter`.
    pub role: Role,
    /// The cluster key (hex), for sealing and opening spec secrets.
    pub cluster_key: Option<String>,
    /// The joining host's certificate, the CA and its key (`cluster::certs`).
    pub issued: Option<super::certs::Issued>,
}

impl Host {
    /// Runs on the new host: asks the cluster in the token to admit it.
    pub async fn join(&self, token: &str) -> Result<JoinAnswer, ClusterError> {
        if self.is_member()
            || self
                .raft()
                .is_initialized()
                .await
                .map_err(ClusterError::internal)?
        {
            let id = self
                .cluster_info()?
                .map(|c| c.id)
                .unwrap_or_else(|| "(unknown)".into());
            return Err(ClusterError::AlreadyMember(format!(
                "host {} already belongs to cluster {id}; join refused",
                self.name()
            )));
        }
        let tok =
            JoinToken::decode(token).map_err(|e| ClusterError::InvalidArgument(e.to_string()))?;
        if tok.expires_at <= now_ms() {
            return Err(ClusterError::FailedPrecondition(format!(
                "join token expired at {}; make a new one with `quantix cluster token`",
                crate::state::cluster::rfc3339(tok.expires_at)
            )));
        }
        // Trust only the CA the token names, checked in the handshake, before the token's
        // secret is sent.
        let fingerprint = tok.ca_fingerprint.clone().ok_or_else(|| {
            ClusterError::InvalidArgument(
                "join token names no cluster CA fingerprint; make a new one with `quantix cluster token`"
                    .into(),
            )
        })?;
        let pinned = crate::tls::config::pinned(&fingerprint)
            .map_err(|e| ClusterError::Internal(e.to_string()))?;
        let key = crate::tls::ca::new_key_and_csr(self.name())
            .map_err(|e| ClusterError::Internal(e.to_string()))?;
        let ask = JoinAsk {
            csr_pem: key.csr_pem.clone(),
            cluster_id: tok.cluster_id.clone(),
            token_id: tok.token_id.clone(),
            secret: tok.secret.clone(),
            host: HostRecord {
                id: self.id(),
                name: self.name().into(),
                address: self.member().addr,
                joined_at: 0,
            },
        };
        let mut answer = self.join_step_one(&tok.addrs, &ask, &pinned).await?;
        if let Some(issued) = &answer.issued {
            self.store_issued(issued, &key.key_pem)?;
        }
        if let Some(hex) = &answer.cluster_key {
            let key = crate::tls::sealing::ClusterKey::from_hex(hex)
                .map_err(|e| ClusterError::Internal(e.to_string()))?;
            self.install_cluster_key(key)?;
        }
        answer.role = self.join_step_two(&tok.addrs).await?;
        self.raft()
            .wait(Some(CATCH_UP))
            .metrics(
                |m| m.membership_config.nodes().any(|(id, _)| *id == self.id()),
                "joined membership",
            )
            .await
            .map_err(|e| {
                ClusterError::Unavailable(format!(
                    "admitted, but the membership did not arrive here: {e}"
                ))
            })?;
        tracing::info!(cluster = %answer.cluster_id, role = answer.role.as_str(), "joined cluster");
        Ok(answer)
    }

    /// Step 1 at the first member that answers, over the pinned TLS config.
    async fn join_step_one(
        &self,
        addrs: &[String],
        ask: &JoinAsk,
        pinned: &std::sync::Arc<rustls::ClientConfig>,
    ) -> Result<JoinAnswer, ClusterError> {
        let mut last = ClusterError::Unavailable("the token names no reachable member".into());
        for addr in addrs {
            let connector = crate::tls::connector::Connector::fixed(pinned.clone());
            let channel = crate::raft::network::channel(addr, connector).map_err(|e| {
                ClusterError::InvalidArgument(format!("join token address {addr}: {e}"))
            })?;
            match super::write::call_with::<JoinAsk, JoinAnswer>(
                RaftTransportClient::new(channel),
                LeaderRpc::Join,
                addr,
                ask,
                super::LEADER_WAIT + Duration::from_secs(5),
            )
            .await
            {
                Ok(answer) => return Ok(answer),
                Err(e) if e.is_retryable() => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Step 2 with this host's new certificate; retried across the token's members for a while.
    async fn join_step_two(&self, addrs: &[String]) -> Result<Role, ClusterError> {
        let deadline = Instant::now() + ADMIT_TRIES;
        let name = self.name().to_string();
        loop {
            let mut last = None;
            for addr in addrs {
                match self
                    .call_peer::<String, Role>(
                        LeaderRpc::Admit,
                        addr,
                        &name,
                        LeaderRpc::Admit.timeout(),
                    )
                    .await
                {
                    Ok(role) => return Ok(role),
                    Err(e) => last = Some(e),
                }
            }
            let e = last.unwrap_or_else(|| {
                ClusterError::Unavailable("the token names no reachable member".into())
            });
            if Instant::now() > deadline {
                return Err(e);
            }
            tracing::debug!(error = %e, "admission not granted yet; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Any member: hand step 1 to the leader.
    pub(super) async fn handle_join(&self, ask: JoinAsk) -> Result<JoinAnswer, ClusterError> {
        self.leader_call(LeaderRpc::Join, &ask, |h, a| async move {
            h.join_as_leader(a).await
        })
        .await
    }

    /// Any member: hand step 2 to the leader.
    pub(super) async fn handle_admit(&self, name: String) -> Result<Role, ClusterError> {
        self.leader_call(LeaderRpc::Admit, &name, |h, n| async move {
            h.admit_as_leader(n).await
        })
        .await
    }

    async fn join_as_leader(&self, ask: JoinAsk) -> Result<JoinAnswer, ClusterError> {
        let info = self
            .cluster_info()?
            .ok_or_else(|| ClusterError::NotInitialized {
                host: self.name().into(),
            })?;
        if info.id != ask.cluster_id {
            return Err(ClusterError::PermissionDenied(format!(
                "join token is for cluster {}, but this is cluster {}",
                ask.cluster_id, info.id
            )));
        }
        // The join RPC is open to anyone who can reach the port: refuse a token this cluster
        // does not hold, or a wrong secret, before it costs a signature and a log entry.
        // (`apply` checks again, and alone decides: this read may be behind.)
        self.precheck_token(&ask.token_id, &sha256_hex(&ask.secret))?;
        // Signed before the token is spent so the command can record the certificate's
        // fingerprint with the host; handed out only if the token is accepted.
        let issued = self
            .sign_join(&ask.csr_pem, &ask.host.name, &ask.host.address)?
            .ok_or_else(|| {
                ClusterError::FailedPrecondition(format!(
                    "host {} has no cluster CA to sign the new host's certificate",
                    self.name()
                ))
            })?;
        let cert_fingerprint = crate::tls::ca::fingerprint_pem(&issued.cert_pem)
            .map_err(|e| ClusterError::Internal(e.to_string()))?;
        // Idempotent on the host id and secret: a retried join after a lost reply must not
        // spend a new token (`keep_retried_join_cert` then records the newly signed
        // certificate), and a refused attempt with a wrong secret must not be the remembered
        // outcome for the real one.
        let secret_sha256 = sha256_hex(&ask.secret);
        let request_id = format!(
            "join-{}-{}-{}",
            ask.token_id,
            ask.host.id,
            &secret_sha256[..16]
        );
        let cmd = Command::JoinHost {
            token_id: ask.token_id,
            secret_sha256,
            host: ask.host.clone(),
            cert_fingerprint,
        };
        let Applied::HostJoined(rec) = self.write_ok(cmd, Some(request_id)).await? else {
            return Err(ClusterError::internal("unexpected outcome for a join"));
        };
        self.keep_retried_join_cert(&rec.name, &issued.cert_pem)
            .await?;
        tracing::info!(host = %rec.name, "accepted a join token; certificate issued");
        Ok(JoinAnswer {
            cluster_id: info.id,
            role: Role::NonVoter,
            cluster_key: self.cluster_key().map(|k| k.to_hex()),
            issued: Some(issued),
        })
    }

    fn precheck_token(&self, token_id: &str, secret_sha256: &str) -> Result<(), ClusterError> {
        let tok: Option<crate::state::tables::TokenRecord> = crate::state::tables::get(
            &self.state()?,
            crate::state::Table::Tokens,
            "join token",
            token_id.as_bytes(),
        )
        .map_err(ClusterError::internal)?;
        match tok {
            None => Err(ClusterError::PermissionDenied(
                "join token is not known to this cluster (forged, made for another cluster, or expired long ago)"
                    .into(),
            )),
            Some(t) if t.secret_sha256 != secret_sha256 => Err(ClusterError::PermissionDenied(
                "join token secret does not match (forged or altered token)".into(),
            )),
            Some(_) => Ok(()),
        }
    }

    async fn admit_as_leader(&self, name: String) -> Result<Role, ClusterError> {
        let info = self
            .cluster_info()?
            .ok_or_else(|| ClusterError::NotInitialized {
                host: self.name().into(),
            })?;
        let rec = crate::state::tables::host(&self.state()?, &name)
            .map_err(ClusterError::internal)?
            .ok_or_else(|| {
                ClusterError::PermissionDenied(format!(
                    "host {name} has not been accepted with a join token"
                ))
            })?;
        let _guard = self.inner.membership_lock.lock().await;
        let (nodes, voters) = self.membership();
        if voters.contains(&rec.id) {
            return Ok(Role::Voter);
        }
        if !nodes.contains_key(&rec.id) {
            let member = Member {
                name: rec.name.clone(),
                addr: rec.address.clone(),
            };
            tokio::time::timeout(CATCH_UP, self.raft().add_learner(rec.id, member, true))
                .await
                .map_err(|_| {
                    ClusterError::Unavailable(format!(
                        "host {} did not catch up within {CATCH_UP:?}",
                        rec.name
                    ))
                })?
                .map_err(change_err)?;
        }
        let (_, voters) = self.membership();
        let role = if (voters.len() as u32) < info.max_voters {
            self.raft()
                .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([rec.id])), true)
                .await
                .map_err(change_err)?;
            Role::Voter
        } else {
            Role::NonVoter
        };
        tracing::info!(host = %rec.name, role = role.as_str(), "admitted host");
        Ok(role)
    }

    /// A join retried after a lost reply (or a leader change) gets the first outcome back but
    /// a newly signed certificate: record that one instead, since it is what the joining host
    /// will present. Only reached after `JoinHost` with the same token secret and host id.
    async fn keep_retried_join_cert(&self, name: &str, cert_pem: &str) -> Result<(), ClusterError> {
        let fingerprint = crate::tls::ca::fingerprint_pem(cert_pem)
            .map_err(|e| ClusterError::Internal(e.to_string()))?;
        let recorded =
            crate::state::host_certs::get(&self.state()?, name).map_err(ClusterError::internal)?;
        if recorded.as_deref() == Some(fingerprint.as_str()) {
            return Ok(());
        }
        self.write_ok(
            Command::SetHostCert {
                host: name.into(),
                fingerprint,
            },
            None,
        )
        .await?;
        Ok(())
    }
}
