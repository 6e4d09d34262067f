//! The dashboard's login: `GET /login` (a small page of its own, open to anyone: it shows no
//! data), `POST /login` with a bearer token (form field `token`), which sets the session
//! cookie (`session`), `POST /logout`, and `GET /session` (who you are and the CSRF value the
//! page sends with every call). Pages go to the leader first, like every other page.
//! Owns: these handlers. Uses: `web::session`, `auth`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;

use super::session::{Session, COOKIE, LIFETIME_MS};
use super::{html, route_page, AppState, PageRoute};
use crate::auth::Principal;
use crate::cluster::now_ms;
use crate::tls::acceptor::PeerInfo;

#[derive(serde::Deserialize)]
pub struct LoginForm {
    token: String,
}

/// A browser with a valid session, or a client certificate the cluster accepts.
pub fn signed_in(s: &AppState, headers: &HeaderMap, peer: Option<&PeerInfo>) -> bool {
    if let Some(Ok(_)) = s.sessions.principal(headers) {
        return true;
    }
    let caller = crate::auth::Caller {
        cert: peer.and_then(|p| p.cert.as_ref()),
        ..Default::default()
    };
    caller.cert.is_some() && crate::auth::authenticate(&s.host, &caller).is_ok()
}

pub fn to_login() -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, HeaderValue::from_static("/login")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn form(status: StatusCode, error: Option<&str>) -> Response {
    let error = error
        .map(|e| {
            format!(
                "<p role=\"alert\" id=\"login-error\" style=\"color:#b00020\">{}</p>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "Paste an API token (from <code>quantix cluster add-token NAME</code> on a host, or \
         the one <code>make demo</code> printed).</p>{error}\
         <form method=\"post\" action=\"/login\">\
         <label for=\"token\">Token</label><br>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" size=\"60\" autofocus required>\
         <button type=\"submit\">Log in</button></form><p>"
    );
    html(status, "Quantix: log in", &body, false)
}

/// Where a login page request goes: the leader serves it.
fn leader_or(s: &AppState) -> Option<Response> {
    match route_page(&s.host, None) {
        PageRoute::Serve => None,
        PageRoute::Redirect(addr) => Some(
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, format!("https://{addr}/login"))],
            )
                .into_response(),
        ),
        PageRoute::Wait(why) => Some(html(
            StatusCode::SERVICE_UNAVAILABLE,
            "Quantix",
            &escape(&why),
            true,
        )),
    }
}

/// The login form; when the browser still sends a session cookie that is no longer good (its
/// token was revoked, it expired), the form says so, since that is why the page came here.
pub async fn page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = leader_or(&s) {
        return r;
    }
    let ended = match s.sessions.principal(&headers) {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    form(StatusCode::OK, ended.as_deref())
}

pub async fn submit(
    State(s): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !super::session::same_origin(&uri, &headers) {
        return form(StatusCode::FORBIDDEN, Some("cross-site login refused"));
    }
    let principal = match crate::auth::authenticate_bearer(&s.host, &f.token) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(error = %e, "dashboard login refused");
            return form(StatusCode::UNAUTHORIZED, Some(&e.to_string()));
        }
    };
    let (Some(secret), Ok(token)) = (
        s.sessions.secret(),
        crate::model::credential::ApiToken::parse(&f.token),
    ) else {
        return form(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("this host is not in a cluster yet"),
        );
    };
    let value = Session {
        token_id: token.id,
        expires_at: now_ms() + LIFETIME_MS,
    }
    .encode(&secret);
    let cookie = format!(
        "{COOKIE}={value}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
        LIFETIME_MS / 1000
    );
    tracing::info!(who = %principal.describe(), "dashboard login");
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/".to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
}

pub async fn logout() -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                format!("{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"),
            ),
            (header::LOCATION, "/login".to_string()),
        ],
    )
        .into_response()
}

/// Behind the auth layer: who you are, and the CSRF value for calls the cookie authenticates.
pub async fn session(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::Extension(p): axum::Extension<Principal>,
) -> Response {
    let csrf = match s.sessions.principal(&headers) {
        Some(Ok((_, csrf))) => csrf,
        _ => String::new(),
    };
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({"kind": p.kind(), "name": p.name(), "csrf": csrf})),
    )
        .into_response()
}
