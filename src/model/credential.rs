//! API credentials as the replicated state keeps them: a client certificate (by the SHA-256 of
//! its DER) or a bearer token (by its public id and the SHA-256 of its secret). The token text
//! itself exists only in the answer that made it. Pure; no I/O.
//! Owns: `Credential`, `CredentialKind`, `ApiToken` (the `qxtok1.<id>.<secret>` text).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::UnixMillis;

/// The prefix, with the format version, of every bearer token.
pub const TOKEN_PREFIX: &str = "qxtok1.";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Unique among all credentials; what `revoke` takes.
    pub name: String,
    pub kind: CredentialKind,
    pub created_at: UnixMillis,
    /// `None`: never expires.
    pub expires_at: Option<UnixMillis>,
    /// The principal that made it (`Principal::describe`).
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CredentialKind {
    /// A client certificate signed by the cluster CA; hex SHA-256 of its DER.
    Certificate { fingerprint: String },
    /// A bearer token: its public id and the hex SHA-256 of its secret.
    Token { id: String, secret_sha256: String },
}

impl Credential {
    pub fn kind_str(&self) -> &'static str {
        match self.kind {
            CredentialKind::Certificate { .. } => "certificate",
            CredentialKind::Token { .. } => "token",
        }
    }

    /// True once `now` has reached the expiry.
    pub fn expired(&self, now: UnixMillis) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }
}

/// A bearer token split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub secret: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenTextError {
    #[error("bearer token is malformed: it must look like {TOKEN_PREFIX}<id>.<secret>")]
    Malformed,
}

impl ApiToken {
    /// A fresh token: 8 random bytes of id, 32 of secret, hex.
    pub fn generate() -> ApiToken {
        ApiToken {
            id: hex::encode(rand::random::<[u8; 8]>()),
            secret: hex::encode(rand::random::<[u8; 32]>()),
        }
    }

    pub fn text(&self) -> String {
        format!("{TOKEN_PREFIX}{}.{}", self.id, self.secret)
    }

    pub fn parse(text: &str) -> Result<ApiToken, TokenTextError> {
        let body = text
            .trim()
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(TokenTextError::Malformed)?;
        let (id, secret) = body.split_once('.').ok_or(TokenTextError::Malformed)?;
        let hexish = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hexish(id, 16) || !hexish(secret, 64) {
            return Err(TokenTextError::Malformed);
        }
        Ok(ApiToken {
            id: id.to_ascii_lowercase(),
            secret: secret.to_ascii_lowercase(),
        })
    }

    pub fn secret_sha256(&self) -> String {
        hex::encode(Sha256::digest(self.secret.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_malformed_ones_are_refused() {
        let t = ApiToken::generate();
        assert_eq!(ApiToken::parse(&t.text()), Ok(t.clone()));
        assert_eq!(ApiToken::parse(&format!(" {}\n", t.text())), Ok(t.clone()));
        for bad in [
            "",
            "qxtok1.",
            "qxtok1.abc.def",
            "qxjoin1.0011223344556677.00",
            &t.text()[..t.text().len() - 1],
            &format!("{}x", t.text()),
        ] {
            assert_eq!(
                ApiToken::parse(bad),
                Err(TokenTextError::Malformed),
                "{bad}"
            );
        }
        assert_ne!(ApiToken::generate(), t);
        assert_eq!(t.secret_sha256().len(), 64);
    }

    #[test]
    fn expiry() {
        let c = Credential {
            name: "ci".into(),
            kind: CredentialKind::Token {
                id: "i".into(),
                secret_sha256: "s".into(),
            },
            created_at: 1,
            expires_at: Some(10),
            created_by: "local".into(),
        };
        assert!(!c.expired(9));
        assert!(c.expired(10));
        assert!(!Credential {
            expires_at: None,
            ..c
        }
        .expired(u64::MAX));
    }
}
