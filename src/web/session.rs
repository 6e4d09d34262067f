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

/// Why a session cookie is not accepted. Each text tells the browser's user what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("session cookie is malformed; log in again")]
    Malformed,
    #[error("session cookie has a bad signature (altered, or from another cluster); log in again")]
    BadSignature,
    #[error("session cookie has an unknown format (made by another version?); log in again")]
    UnknownFormat,
    #[error("the session has expired; log in again")]
    Expired,
    #[error("the token this session was made from has been revoked; log in again")]
    TokenRevoked,
    #[error("the token this session was made from has expired; log in again")]
    TokenExpired,
    #[error("this host is not in a cluster yet")]
    NoClusterKey,
    #[error("cross-site request refused: the Origin is not this host")]
    CrossOrigin,
    #[error("cross-site request refused: a call made with the session cookie needs the x-quantix-csrf header from GET /session")]
    CsrfMissing,
    #[error("cross-site request refused: the x-quantix-csrf header does not belong to this session (reload the page)")]
    CsrfWrong,
    #[error("cannot check the session: {0}")]
    State(String),
}

impl From<SessionError> for AuthError {
    fn from(e: SessionError) -> AuthError {
        match e {
            SessionError::State(why) => AuthError::Internal(why),
            SessionError::CrossOrigin | SessionError::CsrfMissing | SessionError::CsrfWrong => {
                AuthError::Forbidden(e.to_string())
            }
            _ => AuthError::Refused(e.to_string()),
        }
    }
}

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

    /// The session in `value` if its signature holds and it has not expired at `now`. The
    /// signature is checked first, so nothing of an unsigned value is interpreted.
    pub fn verify(
        value: &str,
        secret: &[u8; 32],
        now: UnixMillis,
    ) -> Result<Session, SessionError> {
        let (body, tag) = value.rsplit_once('.').ok_or(SessionError::Malformed)?;
        let tag = hex::decode(tag).map_err(|_| SessionError::Malformed)?;
        hmac::verify(&key(secret), body.as_bytes(), &tag)
            .map_err(|_| SessionError::BadSignature)?;
        let rest = body
            .strip_prefix(PREFIX)
            .ok_or(SessionError::UnknownFormat)?;
        let (token_id, expires) = rest.split_once('.').ok_or(SessionError::Malformed)?;
        let expires_at: UnixMillis = expires.parse().map_err(|_| SessionError::Malformed)?;
        if now >= expires_at {
            return Err(SessionError::Expired);
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

    /// Who the cookie in `headers` belongs to, with the session's CSRF value (no CSRF or
    /// origin check: for page loads and `/session`). `None` without a session cookie.
    pub fn principal(
        &self,
        headers: &HeaderMap,
    ) -> Option<Result<(Principal, String), SessionError>> {
        let value = cookie(headers, COOKIE)?;
        Some(self.verify(value))
    }

    fn verify(&self, value: &str) -> Result<(Principal, String), SessionError> {
        let secret = self.secret().ok_or(SessionError::NoClusterKey)?;
        let now = now_ms();
        let s = Session::verify(value, &secret, now)?;
        let state = self
            .host
            .state()
            .map_err(|e| SessionError::State(e.to_string()))?;
        let cred = crate::state::credentials::by_token_id(&state, &s.token_id)
            .map_err(|e| SessionError::State(e.to_string()))?
            .ok_or(SessionError::TokenRevoked)?;
        if !matches!(cred.kind, CredentialKind::Token { .. }) || cred.expired(now) {
            return Err(SessionError::TokenExpired);
        }
        Ok((Principal::Session { name: cred.name }, csrf(&secret, value)))
    }
}

/// The checks on a request the session cookie authenticates: an `Origin`, when sent, is
/// this host, and anything but GET/HEAD carries the session's CSRF value (`want`).
pub fn check_same_site(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    want: &str,
) -> Result<(), SessionError> {
    if !same_origin(uri, headers) {
        return Err(SessionError::CrossOrigin);
    }
    if method == Method::GET || method == Method::HEAD {
        return Ok(());
    }
    let got = headers
        .get(CSRF_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if got.is_empty() {
        return Err(SessionError::CsrfMissing);
    }
    // Compared without stopping at the first difference.
    let same = got.len() == want.len()
        && got
            .iter()
            .zip(want.as_bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0;
    if same {
        Ok(())
    } else {
        Err(SessionError::CsrfWrong)
    }
}

impl SessionCheck for Sessions {
    fn check(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
    ) -> Option<Result<Principal, AuthError>> {
        let checked = self.principal(headers)?.and_then(|(principal, want)| {
            check_same_site(method, uri, headers, &want).map(|()| principal)
        });
        Some(checked.map_err(AuthError::from))
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
        assert_eq!(Session::verify(&v, &K, 0), Ok(s.clone()));
        assert_eq!(Session::verify(&v, &K, 999), Ok(s.clone()));
        // A body signed with the right key but in another format version.
        let v2 = {
            let body = "qxs2.0011223344556677.1000";
            format!("{body}.{}", mac(&K, body))
        };
        let unsigned_time = {
            let body = "qxs1.0011223344556677.soon";
            format!("{body}.{}", mac(&K, body))
        };
        use SessionError::*;
        let cases: Vec<(&str, String, [u8; 32], UnixMillis, SessionError)> = vec![
            ("expired at the instant", v.clone(), K, 1_000, Expired),
            ("expired later", v.clone(), K, 5_000, Expired),
            (
                "longer life",
                v.replace(".1000.", ".9999."),
                K,
                0,
                BadSignature,
            ),
            (
                "another token",
                v.replace("0011", "9911"),
                K,
                0,
                BadSignature,
            ),
            ("another cluster's key", v.clone(), [8; 32], 0, BadSignature),
            (
                "signature cut",
                v[..v.len() - 2].to_string(),
                K,
                0,
                BadSignature,
            ),
            ("signature not hex", format!("{v}zz"), K, 0, Malformed),
            ("no signature", "qxs1".into(), K, 0, Malformed),
            ("empty", String::new(), K, 0, Malformed),
            ("format v2", v2, K, 0, UnknownFormat),
            ("expiry not a number", unsigned_time, K, 0, Malformed),
        ];
        for (what, value, key, now, want) in cases {
            assert_eq!(
                Session::verify(&value, &key, now),
                Err(want),
                "{what}: {value}"
            );
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
    fn cookie_calls_need_this_origin_and_the_csrf_value() {
        use SessionError::*;
        let want = csrf(&K, "qxs1.a.1.x");
        let other = csrf(&K, "qxs1.b.1.x");
        let host = ("host", "10.0.0.1:7480");
        let here = ("origin", "https://10.0.0.1:7480");
        let evil = ("origin", "https://evil.example");
        type Case<'a> = (Method, Vec<(&'a str, &'a str)>, Result<(), SessionError>);
        let cases: Vec<Case> = vec![
            // Reads need no CSRF value, but not from another origin either.
            (Method::GET, vec![host], Ok(())),
            (Method::HEAD, vec![host, here], Ok(())),
            (Method::GET, vec![host, evil], Err(CrossOrigin)),
            // Anything else needs the session's own value.
            (
                Method::POST,
                vec![host, here, ("x-quantix-csrf", &want)],
                Ok(()),
            ),
            (Method::POST, vec![host, ("x-quantix-csrf", &want)], Ok(())),
            (Method::POST, vec![host, here], Err(CsrfMissing)),
            (
                Method::POST,
                vec![host, ("x-quantix-csrf", "")],
                Err(CsrfMissing),
            ),
            (
                Method::POST,
                vec![host, ("x-quantix-csrf", &other)],
                Err(CsrfWrong),
            ),
            (
                Method::POST,
                vec![host, ("x-quantix-csrf", &want[..31])],
                Err(CsrfWrong),
            ),
            (
                Method::DELETE,
                vec![host, ("x-quantix-csrf", "x")],
                Err(CsrfWrong),
            ),
            (
                Method::POST,
                vec![host, evil, ("x-quantix-csrf", &want)],
                Err(CrossOrigin),
            ),
        ];
        let uri = http::Uri::from_static("/quantix.v1.VmService/CreateVm");
        for (method, pairs, expect) in cases {
            assert_eq!(
                check_same_site(&method, &uri, &headers(&pairs), &want),
                expect,
                "{method} {pairs:?}"
            );
        }
    }

    #[test]
    fn refusals_map_to_auth_errors() {
        use SessionError::*;
        for e in [CrossOrigin, CsrfMissing, CsrfWrong] {
            assert!(matches!(AuthError::from(e), AuthError::Forbidden(_)));
        }
        for e in [
            Malformed,
            BadSignature,
            UnknownFormat,
            Expired,
            TokenRevoked,
            TokenExpired,
            NoClusterKey,
        ] {
            let text = e.to_string();
            assert!(
                matches!(AuthError::from(e), AuthError::Refused(t) if t == text),
                "{text}"
            );
        }
        assert!(matches!(
            AuthError::from(State("redb".into())),
            AuthError::Internal(t) if t == "redb"
        ));
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
