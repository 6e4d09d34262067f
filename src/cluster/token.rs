//! Join tokens: one line a user copies from any member to a new host. The token carries the
//! member addresses to contact, the cluster id, the token id and secret (the cluster stores
//! only the secret's SHA-256) and the expiry. A slot for the cluster CA fingerprint is there
//! for peer TLS. Encoding: a prefix with the format version, then base64url of JSON.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::model::UnixMillis;

const PREFIX: &str = "qxjoin1.";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    pub cluster_id: String,
    /// gRPC addresses of members at the time the token was made, leader first.
    pub addrs: Vec<String>,
    pub token_id: String,
    /// Hex of 32 random bytes.
    pub secret: String,
    pub expires_at: UnixMillis,
    /// SHA-256 fingerprint of the cluster CA, once peer TLS exists.
    #[serde(default)]
    pub ca_fingerprint: Option<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("join token is malformed: it must start with '{PREFIX}' (copy the whole line `quantix cluster token` printed)")]
    Prefix,
    #[error("join token is malformed: {0}")]
    Body(String),
    #[error("join token names no member address")]
    NoAddress,
}

impl JoinToken {
    pub fn encode(&self) -> String {
        // Serialising a struct of strings and integers to JSON cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    pub fn decode(text: &str) -> Result<JoinToken, TokenError> {
        let body = text.trim().strip_prefix(PREFIX).ok_or(TokenError::Prefix)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|e| TokenError::Body(format!("not base64url: {e}")))?;
        let tok: JoinToken =
            serde_json::from_slice(&json).map_err(|e| TokenError::Body(e.to_string()))?;
        if tok.addrs.is_empty() {
            return Err(TokenError::NoAddress);
        }
        Ok(tok)
    }
}

pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn new_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> JoinToken {
        JoinToken {
            cluster_id: "c".into(),
            addrs: vec!["127.0.0.1:7401".into()],
            token_id: "t".into(),
            secret: new_secret(),
            expires_at: 5,
            ca_fingerprint: None,
        }
    }

    #[test]
    fn round_trip_is_one_line() {
        let t = sample();
        let s = t.encode();
        assert!(!s.contains('\n') && !s.contains(' '));
        assert_eq!(JoinToken::decode(&format!("  {s}\n")).unwrap(), t);
    }

    #[test]
    fn malformed_tokens() {
        assert_eq!(JoinToken::decode("hello"), Err(TokenError::Prefix));
        assert!(matches!(
            JoinToken::decode("qxjoin1.!!!"),
            Err(TokenError::Body(_))
        ));
        let no_addr = JoinToken {
            addrs: vec![],
            ..sample()
        }
        .encode();
        assert_eq!(JoinToken::decode(&no_addr), Err(TokenError::NoAddress));
        let truncated = &sample().encode()[..20];
        assert!(JoinToken::decode(truncated).is_err());
    }

    #[test]
    fn secrets_are_random_and_hash_is_stable() {
        assert_ne!(new_secret(), new_secret());
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
