//! Dashboard sessions: a browser logs in with a bearer token once and then carries a cookie.
//! The cookie is stateless and signed, so every host accepts it (a leader change does not log
//! anyone out): `qxs1.<token id>.<expiry ms>.<hmac>`, the HMAC (SHA-256, hex) keyed with a key
//! derived from the cluster key. It is good until it expires and while the token it came from
//! is still registered (revoking the token ends its sessions) and unexpired.
//!
//! Cross-site requests: the cookie is `SameSite=Strict`, and a call it authenticates must
//! also carry `x-quantix-csrf` with the session's CSRF value (an HMAC of the cookie, which the
//! page reads from `GET /session`; another site can neither read it nor set the header
//! without CORS, which this server never grants), and an `Origin`, when sent, must be this
//! host. Bearer tokens and client certificates are not ambient credentials and need neither.
//!
//! Owns: the cookie format, `Sessions` (the `auth::SessionCheck`). Uses: `tls::sealing`
//! (key derivation), `state::credentials`, `auth`.

use http::{HeaderMap, Method};
use ring::hmac;

use crate::auth::{AuthError, Principal, SessionCheck};
use crate::cluster::{now_ms, Host};
use crate::model::credential::CredentialKind;
use crate::model::UnixMillis;

pub const COOKIE: &str = "qx_session";
pub const CSRF_HEADER: &str = "x-quantix-csrf";
const PREFIX: &str = "qxs1.";
/// How long a login lasts.
pub const LIFETIME_MS: u64 = 12 * 3600 * 1000;

/// The signed value of a session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_id: String,
    pub expires_at: UnixMillis,
}

fn key(secret: &[u8; 32]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret)
}

fn mac(secret: &[u8; 32], text: &str) -> String {
    hex::encode(hmac::sign(&key(secret), text.as_bytes()).as_ref())
}

impl Session {
    pub fn encode(&self, secret: &[u8; 32]) -> String {
        let body = format!("{PREFIX}{}.{}", self.token_id, self.expires_at);
        let tag = mac(secret, &body);
        format!("{body}.{tag}")
    }

    /// The session in `value` if its signature holds and it has not expired at `now`.
    pub fn verify(value: &str, secret: &[u8; 32], now: UnixMillis) -> Result<Session, String> {
        let (body, tag) = value
            .rsplit_once('.')
            .ok_or_else(|| "session cookie is malformed".to_string())?;
        let tag = hex::decode(tag).map_err(|_| "session cookie is malformed".to_string())?;
        hmac::verify(&key(secret), body.as_bytes(), &tag).map_err(|_| {
            "session cookie has a bad signature (altered, or from another cluster)".to_string()
        })?;
        let rest = body
            .strip_prefix(PREFIX)
            .ok_or_else(|| "session cookie has an unknown format".to_string())?;
        let (token_id, expires) = rest
            .split_once('.')
            .ok_or_else(|| "session cookie is malformed".to_string())?;
        let expires_at: UnixMillis = expires
            .parse()
            .map_err(|_| "session cookie is malformed".to_string())?;
        if now >= expires_at {
            return Err("the session has expired; log in again".into());
        }
        Ok(Session {
            token_id: token_id.into(),
            expires_at,
        })
    }
}

/// The CSRF value for a session cookie.
pub fn csrf(secret: &[u8; 32], cookie: &str) -> String {
    mac(secret, &format!("csrf:{cookie}"))[..32].to_string()
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// False when the request says it comes from another origin than the host it was sent to
/// (HTTP/2 names that host in the URI's authority, HTTP/1.1 in `Host`).
pub fn same_origin(uri: &http::Uri, headers: &HeaderMap) -> bool {
    let Some(origin) = headers
        .get(http::header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return true;
    };
    let host = uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or_default();
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or(origin);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// The session check of the HTTP listener.
pub struct Sessions {
    pub host: Host,
}

impl Sessions {
    /// The key sessions are signed with, once the host has the cluster key.
    pub fn secret(&self) -> Option<[u8; 32]> {
        self.host
            .cluster_key()
            .map(|k| k.derive("quantix dashboard session v1"))
    }

    /// Who the cookie in `headers` belongs to (no CSRF check: for page loads and /session).
    pub fn principal(&self, headers: &HeaderMap) -> Option<Result<(Principal, String), AuthError>> {
        let value = cookie(headers, COOKIE)?;
        let Some(secret) = self.secret() else {
            return Some(Err(AuthError::Refused(
                "this host is not in a cluster yet".into(),
            )));
        };
        let s = match Session::verify(value, &secret, now_ms()) {
            Ok(s) => s,
            Err(e) => return Some(Err(AuthError::Refused(e))),
        };
        let state = match self.host.state() {
            Ok(st) => st,
            Err(e) => return Some(Err(AuthError::Internal(e.to_string()))),
        };
        let cred = match crate::state::credentials::by_token_id(&state, &s.token_id) {
            Ok(Some(c)) => c,
            Ok(None) => {
                return Some(Err(AuthError::Refused(
                    "the token this session was made from has been revoked; log in again".into(),
                )))
            }
            Err(e) => return Some(Err(AuthError::Internal(e.to_string()))),
        };
        if !matches!(cred.kind, CredentialKind::Token { .. }) || cred.expired(now_ms()) {
            return Some(Err(AuthError::Refused(
                "the token this session was made from has expired; log in again".into(),
            )));
        }
        Some(Ok((
            Principal::Session { name: cred.name },
            csrf(&secret, value),
        )))
    }
}

impl SessionCheck for Sessions {
    fn check(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
    ) -> Option<Result<Principal, AuthError>> {
        let (principal, want) = match self.principal(headers)? {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        if !same_origin(uri, headers) {
            return Some(Err(AuthError::Forbidden(
                "cross-site request refused (Origin is not this host)".into(),
            )));
        }
        if method != Method::GET && method != Method::HEAD {
            let got = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if got != Some(want.as_str()) {
                return Some(Err(AuthError::Forbidden(format!(
                    "cross-site request refused: a call made with the session cookie needs the {CSRF_HEADER} header from GET /session"
                ))));
            }
        }
        Some(Ok(principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: [u8; 32] = [7; 32];

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn sessions_verify_until_they_expire_and_not_when_altered() {
        let s = Session {
            token_id: "0011223344556677".into(),
            expires_at: 1_000,
        };
        let v = s.encode(&K);
        assert!(v.starts_with("qxs1.0011223344556677.1000."));
        assert_eq!(Session::verify(&v, &K, 999), Ok(s.clone()));
        assert!(Session::verify(&v, &K, 1_000)
            .unwrap_err()
            .contains("expired"));
        // Longer life, another token, another key, truncation: all refused.
        let later = v.replace(".1000.", ".9999.");
        assert!(Session::verify(&later, &K, 0)
            .unwrap_err()
            .contains("bad signature"));
        let other = v.replace("0011", "9911");
        assert!(Session::verify(&other, &K, 0)
            .unwrap_err()
            .contains("bad signature"));
        assert!(Session::verify(&v, &[8; 32], 0)
            .unwrap_err()
            .contains("bad signature"));
        for bad in ["", "qxs1", &v[..v.len() - 3], "a.b"] {
            assert!(Session::verify(bad, &K, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn csrf_values_are_per_session() {
        let a = csrf(&K, "qxs1.a.1.x");
        assert_eq!(a.len(), 32);
        assert_eq!(a, csrf(&K, "qxs1.a.1.x"));
        assert_ne!(a, csrf(&K, "qxs1.b.1.x"));
        assert_ne!(a, csrf(&[1; 32], "qxs1.a.1.x"));
    }

    #[test]
    fn cookies_and_origins() {
        let h = headers(&[("cookie", "a=1; qx_session=v.2; b=3")]);
        assert_eq!(cookie(&h, COOKIE), Some("v.2"));
        assert_eq!(cookie(&h, "c"), None);
        let cases = [
            (vec![("host", "10.0.0.1:7480")], true),
            (
                vec![
                    ("host", "10.0.0.1:7480"),
                    ("origin", "https://10.0.0.1:7480"),
                ],
                true,
            ),
            (
                vec![
                    ("host", "10.0.0.1:7480"),
                    ("origin", "https://evil.example"),
                ],
                false,
            ),
            (
                vec![
                    ("host", "10.0.0.1:7480"),
                    ("origin", "https://10.0.0.1:7481"),
                ],
                false,
            ),
            (vec![("origin", "https://10.0.0.1:7480")], false),
        ];
        let bare = http::Uri::from_static("/x");
        for (pairs, want) in cases {
            assert_eq!(same_origin(&bare, &headers(&pairs)), want, "{pairs:?}");
        }
        // HTTP/2: the host is the URI's authority, there is no Host header.
        let h2 = http::Uri::from_static("https://10.0.0.1:7480/x");
        let o = headers(&[("origin", "https://10.0.0.1:7480")]);
        assert!(same_origin(&h2, &o));
        assert!(!same_origin(
            &h2,
            &headers(&[("origin", "https://evil.example")])
        ));
    }
}
