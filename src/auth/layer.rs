//! The tower layer in front of every service on a host's listeners: decides from the path
//! what a call needs (`Need`), authenticates the caller (`rules`), refuses with
//! `UNAUTHENTICATED` / `PERMISSION_DENIED` before any handler runs, and otherwise hands the
//! `Principal` to the handler in the request's extensions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Method, Request, Response};
use tonic::transport::server::UdsConnectInfo;

use super::rules::{authenticate, Caller};
use super::{AuthError, Principal};
use crate::cluster::Host;
use crate::tls::acceptor::PeerInfo;

/// What a call needs, by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Health checks and the join request (a joining host has no certificate yet; its token
    /// is the credential, checked by the leader).
    Open,
    /// Host-to-host transport: a member host's certificate.
    Host,
    /// Everything else: any authenticated principal.
    Principal,
}

pub fn need(path: &str) -> Need {
    const TRANSPORT: &str = "/quantix.internal.v1.RaftTransport/";
    if path.starts_with("/grpc.health.v1.Health/")
        || path == "/quantix.internal.v1.RaftTransport/Join"
    {
        Need::Open
    } else if path.starts_with(TRANSPORT) {
        Need::Host
    } else {
        Need::Principal
    }
}

/// A second way in, for the web listener: the dashboard's session cookie. `None` when the
/// request carries no session at all (then the usual rules decide).
pub trait SessionCheck: Send + Sync {
    fn check(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
    ) -> Option<Result<Principal, AuthError>>;
}

#[derive(Clone)]
pub struct AuthLayer {
    host: Host,
    sessions: Option<Arc<dyn SessionCheck>>,
}

impl AuthLayer {
    pub fn new(host: Host) -> AuthLayer {
        AuthLayer {
            host,
            sessions: None,
        }
    }

    pub fn with_sessions(mut self, sessions: Arc<dyn SessionCheck>) -> AuthLayer {
        self.sessions = Some(sessions);
        self
    }

    /// The principal behind `req`, or why there is none acceptable for `need`.
    pub fn decide<B>(&self, req: &Request<B>, need: Need) -> Result<Option<Principal>, AuthError> {
        if need == Need::Open {
            return Ok(None);
        }
        let ext = req.extensions();
        let caller = Caller {
            unix_uid: ext
                .get::<UdsConnectInfo>()
                .and_then(|u| u.peer_cred)
                .map(|c| c.uid()),
            cert: ext.get::<PeerInfo>().and_then(|p| p.cert.as_ref()),
            headers: Some(req.headers()),
        };
        let principal = match authenticate(&self.host, &caller) {
            Err(AuthError::Missing) => match &self.sessions {
                Some(s) => match s.check(req.method(), req.uri(), req.headers()) {
                    Some(r) => r?,
                    None => return Err(AuthError::Missing),
                },
                None => return Err(AuthError::Missing),
            },
            other => other?,
        };
        if need == Need::Host && !matches!(principal, Principal::Host { .. }) {
            return Err(AuthError::Forbidden(format!(
                "{} may not use the host-to-host transport; only member hosts may",
                principal.describe()
            )));
        }
        Ok(Some(principal))
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    layer: AuthLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<Request<B>> for Auth<S>
where
    S: tower::Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let need = need(req.uri().path());
        // The clone is ready-polled next time; this one was polled by the caller.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        let first = layer.decide(&req, need);
        Box::pin(async move {
            let decided = match first {
                // A credential or member made a moment ago on another host may not have
                // reached this one: catch up with the leader once, then decide for good.
                Err(AuthError::Unknown(_)) => {
                    let caught_up =
                        tokio::time::timeout(CATCH_UP, layer.host.read_barrier(false)).await;
                    match caught_up {
                        Ok(Ok(())) => layer.decide(&req, need),
                        _ => first,
                    }
                }
                other => other,
            };
            match decided {
                Ok(principal) => {
                    if let Some(p) = principal {
                        req.extensions_mut().insert(p);
                    }
                    inner.call(req).await
                }
                Err(e) => {
                    metrics::counter!("quantix_auth_refused_total", "need" => format!("{need:?}").to_lowercase()).increment(1);
                    tracing::info!(path = %req.uri().path(), error = %e, "refused an unauthenticated call");
                    Ok(refusal::<B, R>(&req, e))
                }
            }
        })
    }
}

/// A gRPC status for gRPC callers; for plain HTTP (e.g. `/metrics`) a 401 or 403 with the
/// reason in `x-quantix-error` and a `WWW-Authenticate: Bearer` challenge.
fn refusal<B, R: Default>(req: &Request<B>, e: AuthError) -> Response<R> {
    let grpc = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        return crate::api::status::auth_status(e).into_http::<R>();
    }
    let code = match e {
        AuthError::Forbidden(_) => http::StatusCode::FORBIDDEN,
        AuthError::Internal(_) => http::StatusCode::SERVICE_UNAVAILABLE,
        _ => http::StatusCode::UNAUTHORIZED,
    };
    let mut resp = Response::new(R::default());
    *resp.status_mut() = code;
    let reason = e.to_string().replace(['\r', '\n'], " ");
    if let Ok(v) = http::HeaderValue::from_str(&reason) {
        resp.headers_mut().insert("x-quantix-error", v);
    }
    resp.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer"),
    );
    resp
}

/// Longest a request waits for this host to catch up before an unknown credential is refused.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_path_needs() {
        assert_eq!(need("/grpc.health.v1.Health/Check"), Need::Open);
        assert_eq!(need("/quantix.internal.v1.RaftTransport/Join"), Need::Open);
        assert_eq!(
            need("/quantix.internal.v1.RaftTransport/AppendEntries"),
            Need::Host
        );
        assert_eq!(
            need("/quantix.internal.v1.RaftTransport/Forward"),
            Need::Host
        );
        assert_eq!(need("/quantix.v1.VmService/CreateVm"), Need::Principal);
        assert_eq!(
            need("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Need::Principal
        );
        assert_eq!(need("/quantix.internal.v1.RaftTransport/JoinX"), Need::Host);
    }
}
