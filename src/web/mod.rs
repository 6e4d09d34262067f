//! The HTTP listener on `http_addr`: Prometheus metrics at `/metrics`, a liveness probe at
//! `/healthz`, the public `quantix.v1` services as gRPC-web (`api::public_routes` behind
//! tonic-web, same origin as the dashboard, so no CORS), and the dashboard itself.
//!
//! It speaks only TLS (`tls_listener`: the host's certificate, as on the gRPC port). Open to
//! anyone: `/healthz`, the login page (`login`, which shows no data) and the guest agent
//! binary (`guest_agent`; guests check its SHA-256). Everything else needs a credential:
//! gRPC-web, `/metrics` and `/session` pass `auth::AuthLayer`, which takes a bearer token, a
//! client certificate or the dashboard's session cookie (`session`, with its CSRF checks);
//! pages without one go to `/login`. `guard` refuses state-changing requests from another
//! origin whatever they carry, and sets the anti-framing headers on every answer.
//!
//! Only the leader serves the dashboard's pages. Any other host answers a page request with a
//! redirect to the leader's HTTP address (`state::http_addrs`, which each host publishes for
//! itself through Raft at start, `publish_http_addr`), or, while there is no leader or its
//! address is not known yet, with a small page that reloads itself every second. A page that
//! lost its leader comes with `?after_term=N` (the term it knew): it is sent only to a leader
//! of a later term, not back to the dead one a follower may still believe in for a moment.
//! gRPC-web calls are answered by every host, like gRPC.
//!
//! The dashboard's files are embedded at build time from `web/dist` (`assets`); a binary built
//! before `npm run build` says so instead of serving a page.
//!
//! Owns: the process-wide metrics recorder, the HTTP routes, the embedded assets. May use:
//! `cluster` (Raft gauges, leadership), `api` (the gRPC-web services), `auth`, `tls`, `state`
//! (reads).

mod assets;
mod guard;
pub mod guest_agent;
mod login;
pub mod session;
mod tls_listener;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

use crate::cluster::{ClusterError, Host};
use crate::state::{http_addrs, Command};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("metrics recorder: {0}")]
    Metrics(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("http server: {0}")]
    Serve(#[from] std::io::Error),
}

/// Installs the global metrics recorder (once per process); every metric carries `host`.
pub fn install_metrics(host_name: &str) -> Result<PrometheusHandle, WebError> {
    PrometheusBuilder::new()
        .add_global_label("host", host_name)
        .set_buckets(&[
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])
        .map_err(|e| WebError::Metrics(e.to_string()))?
        .install_recorder()
        .map_err(|e| WebError::Metrics(e.to_string()))
}

#[derive(Clone)]
struct AppState {
    host: Host,
    metrics: PrometheusHandle,
    sessions: std::sync::Arc<session::Sessions>,
}

/// Serves until `shutdown` resolves. The caller binds the listener (tests use port 0).
/// `http_addr` is the `host:port` browsers use for this listener (`Config::advertised_http`);
/// it is published in the replicated state while the listener runs.
pub async fn serve(
    listener: TcpListener,
    host: Host,
    metrics: PrometheusHandle,
    http_addr: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    let publisher = tokio::spawn(publish_http_addr(host.clone(), http_addr));
    let sessions = std::sync::Arc::new(session::Sessions { host: host.clone() });
    let auth = crate::auth::AuthLayer::new(host.clone()).with_sessions(sessions.clone());
    let grpc_web = crate::api::public_routes(&host)
        .into_axum_router()
        .reset_fallback()
        // Inside tonic-web, so a refusal reaches the browser as a gRPC-web status.
        .layer(auth.clone())
        .layer(tonic_web::GrpcWebLayer::new());
    let state = AppState {
        host: host.clone(),
        metrics,
        sessions,
    };
    let guarded = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/session", get(login::session))
        .layer(auth)
        .with_state(state.clone());
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            crate::agent::desired::GUEST_AGENT_PATH,
            get(guest_agent::handler),
        )
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", axum::routing::post(login::logout))
        .fallback(dashboard)
        .with_state(state)
        .merge(guarded)
        .merge(grpc_web)
        .layer(axum::middleware::from_fn(tls_listener::peer_info))
        .layer(axum::middleware::from_fn(guard::guard));
    let acceptor = crate::tls::acceptor::Acceptor::new(host.tls_dir().clone())
        .map_err(|e| WebError::Tls(e.to_string()))?;
    let listener = tls_listener::TlsListener::new(listener, acceptor)?;
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<crate::tls::acceptor::PeerInfo>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    publisher.abort();
    served?;
    Ok(())
}

/// Raft gauges are read from openraft's metrics at scrape time, so they are never stale.
async fn render_metrics(State(s): State<AppState>) -> String {
    let m = s.host.raft().metrics().borrow().clone();
    let leader = m.current_leader == Some(s.host.id());
    metrics::gauge!("quantix_raft_term").set(m.current_term as f64);
    metrics::gauge!("quantix_raft_is_leader").set(if leader { 1.0 } else { 0.0 });
    metrics::gauge!("quantix_raft_last_log_index").set(m.last_log_index.unwrap_or(0) as f64);
    metrics::gauge!("quantix_raft_applied_index").set(m.last_applied.map_or(0, |l| l.index) as f64);
    metrics::gauge!("quantix_raft_snapshot_index").set(m.snapshot.map_or(0, |l| l.index) as f64);
    metrics::gauge!("quantix_raft_voters").set(m.membership_config.voter_ids().count() as f64);
    metrics::gauge!("quantix_raft_members").set(m.membership_config.nodes().count() as f64);
    if let Some(repl) = &m.replication {
        let last = m.last_log_index.unwrap_or(0);
        for (id, matched) in repl {
            let lag = last.saturating_sub(matched.map_or(0, |l| l.index));
            metrics::gauge!("quantix_raft_follower_lag_entries", "peer" => id.to_string())
                .set(lag as f64);
        }
    }
    s.metrics.render()
}

/// Where a page request goes, decided from this host's view of the cluster.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PageRoute {
    /// This host leads: serve the page.
    Serve,
    /// Another host leads and published where browsers reach it (`host:port`).
    Redirect(String),
    /// No page can be served yet; the text says why.
    Wait(String),
}

/// `after_term`: the page came here because the leader it knew (in that term) stopped
/// answering; redirect only to a leader of a later term, never back to the one that died.
pub(crate) fn route_page(host: &Host, after_term: Option<u64>) -> PageRoute {
    if !host.is_member() {
        return PageRoute::Wait(format!(
            "Host {} is not part of a cluster yet. Bootstrap one (quantix cluster bootstrap) or \
             join one (quantix cluster join TOKEN).",
            host.name()
        ));
    }
    let (leader, term) = {
        let m = host.raft().metrics().borrow().clone();
        (m.current_leader, m.current_term)
    };
    let Some(leader) = leader else {
        return PageRoute::Wait("The cluster is electing a leader.".into());
    };
    if leader == host.id() {
        return PageRoute::Serve;
    }
    if after_term.is_some_and(|t| term <= t) {
        return PageRoute::Wait(
            "The leader stopped answering; the cluster is electing a new one.".into(),
        );
    }
    let (members, _) = host.membership();
    let Some(name) = members.get(&leader).map(|m| m.name.clone()) else {
        return PageRoute::Wait("The leader is not in this host's membership yet.".into());
    };
    let addr = host
        .state()
        .ok()
        .and_then(|s| http_addrs::get(&s, &name).ok().flatten());
    match addr {
        Some(a) => PageRoute::Redirect(a),
        None => PageRoute::Wait(format!(
            "The leader, {name}, has not published its dashboard address yet."
        )),
    }
}

/// Every path that is not metrics, health or gRPC-web: the dashboard's files, for a logged-in
/// browser (a session, or a client certificate); others go to the login page.
async fn dashboard(
    State(s): State<AppState>,
    uri: Uri,
    headers: http::HeaderMap,
    peer: Option<axum::Extension<crate::tls::acceptor::PeerInfo>>,
) -> Response {
    let after_term = uri.query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("after_term="))
            .and_then(|t| t.parse::<u64>().ok())
    });
    match route_page(&s.host, after_term) {
        PageRoute::Serve => {
            if login::signed_in(&s, &headers, peer.as_ref().map(|p| &p.0)) {
                serve_asset(uri.path())
            } else {
                login::to_login()
            }
        }
        PageRoute::Redirect(addr) => {
            let rest = uri.path_and_query().map_or("/", |p| p.as_str());
            // 307: the browser asks the leader for the same path; it keeps the #fragment.
            let location = format!("https://{addr}{rest}");
            match HeaderValue::from_str(&location) {
                Ok(v) => (
                    StatusCode::TEMPORARY_REDIRECT,
                    [
                        (header::LOCATION, v),
                        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                    ],
                )
                    .into_response(),
                Err(_) => waiting_page(&format!("Cannot redirect to the leader at {addr}.")),
            }
        }
        PageRoute::Wait(why) => waiting_page(&why),
    }
}

fn serve_asset(path: &str) -> Response {
    if assets::ASSETS.is_empty() {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            "Quantix dashboard not built",
            "This quantixd was built without the dashboard's assets (web/dist did not exist). \
             Run <code>make web-build</code> (or <code>npm ci &amp;&amp; npm run build</code> in \
             <code>web/</code>), then build quantixd again.",
            false,
        );
    }
    let path = if path == "/" { "/index.html" } else { path };
    match assets::ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((p, mime, bytes)) => {
            // Vite puts a content hash in every file name under /assets/.
            let cache = if p.starts_with("/assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
                    (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
                ],
                *bytes,
            )
                .into_response()
        }
        None => html(
            StatusCode::NOT_FOUND,
            "Not found",
            "No such page. The dashboard is at <a href=\"/\">/</a>.",
            false,
        ),
    }
}

fn waiting_page(why: &str) -> Response {
    let why = why
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        "Quantix: waiting for the leader",
        &format!("{why} This page tries again every second and moves to the leader's dashboard."),
        true,
    )
}

pub(crate) fn html(status: StatusCode, title: &str, body: &str, refresh: bool) -> Response {
    // The script reloads (keeping the #fragment); the meta refresh is for pages without it.
    let meta = if refresh {
        r#"<meta http-equiv="refresh" content="2"><script>setTimeout(function(){location.reload()},1000)</script>"#
    } else {
        ""
    };
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{meta}\
         <title>{title}</title></head><body style=\"font-family:sans-serif;margin:3rem\">\
         <h1>{title}</h1><p>{body}</p></body></html>"
    );
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        page,
    )
        .into_response()
}

/// Keeps this host's HTTP address in the replicated state: once the host is recorded as a
/// member, writes `SetHttpAddr` when the stored address differs (first start, changed config).
/// Looks every 500 ms until it has published, then every 30 s.
async fn publish_http_addr(host: Host, addr: String) {
    loop {
        let pause = match publish_once(&host, &addr).await {
            Ok(true) => Duration::from_secs(30),
            Ok(false) => Duration::from_millis(500),
            Err(e) => {
                tracing::warn!(error = %e, "cannot publish the HTTP address; will retry");
                Duration::from_secs(1)
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// True when the stored address is `addr` (already, or after this write).
async fn publish_once(host: &Host, addr: &str) -> Result<bool, ClusterError> {
    if !host.is_member() {
        return Ok(false);
    }
    let stored = {
        let state = host.state()?;
        if crate::state::tables::host(&state, host.name())
            .map_err(ClusterError::internal)?
            .is_none()
        {
            return Ok(false);
        }
        http_addrs::get(&state, host.name()).map_err(ClusterError::internal)?
    };
    if stored.as_deref() == Some(addr) {
        return Ok(true);
    }
    host.write_ok(
        Command::SetHttpAddr {
            host: host.name().to_string(),
            addr: addr.to_string(),
        },
        None,
    )
    .await?;
    tracing::info!(http = %addr, "published the HTTP address");
    Ok(true)
}
