//! What every answer of the HTTP listener carries, whoever asks: a request that changes
//! something (any method but GET, HEAD, OPTIONS) and says it comes from another origin is
//! refused before any route sees it, whatever credential it carries; and every response
//! forbids being framed by another site and content sniffing. Small request bodies are read
//! whole before anything decides (see `guard`).
//!
//! Why the origin check here as well as in `session`: a browser sends a client certificate on
//! its own, like a cookie, so a page of another site could make it post a form to this host;
//! the session check only covers cookies. The CLI, curl and gRPC clients send no `Origin`.
//! No Strict-Transport-Security: the certificate is of the cluster's own CA, and HSTS would
//! make the browser's warning about it one that cannot be clicked through.
//!
//! Owns: `guard` (an axum middleware), `refuses_cross_site`. Uses: `web::session::same_origin`.

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// True when a request must be refused as cross-site: it may change something and its
/// `Origin` is not the host it was sent to.
pub fn refuses_cross_site(method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
    let reads = [Method::GET, Method::HEAD, Method::OPTIONS];
    !reads.contains(method) && !super::session::same_origin(uri, headers)
}

const HEADERS: [(header::HeaderName, &str); 4] = [
    (header::X_FRAME_OPTIONS, "DENY"),
    (
        header::CONTENT_SECURITY_POLICY,
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "same-origin"),
];

const REFUSED: &str = "cross-site request refused (Origin is not this host)";

/// The refusal of a cross-site request: for a gRPC or gRPC-web call a trailers-only answer
/// with `PERMISSION_DENIED` (what the auth layer answers behind tonic-web, so the page's
/// client and the CLI see a status, not a bare HTTP error), else a plain 403.
fn refusal(request: &HeaderMap) -> Response {
    let grpc = request
        .get(header::CONTENT_TYPE)
        .filter(|v| v.as_bytes().starts_with(b"application/grpc"))
        .cloned();
    match grpc {
        Some(content_type) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, content_type),
                (
                    header::HeaderName::from_static("grpc-status"),
                    HeaderValue::from_static("7"),
                ),
                (
                    header::HeaderName::from_static("grpc-message"),
                    HeaderValue::from_static(REFUSED),
                ),
            ],
        )
            .into_response(),
        None => (
            StatusCode::FORBIDDEN,
            [(header::CACHE_CONTROL, "no-store")],
            format!("{REFUSED}\n"),
        )
            .into_response(),
    }
}

/// Request bodies up to this size (by `Content-Length`) are read before anything decides.
const SMALL_BODY: u64 = 64 * 1024;

/// True when the request says its body is small enough to read whole first.
fn small_body(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > 0 && n <= SMALL_BODY)
}

pub async fn guard(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // A refusal (here, in the auth layer, a bad login) answers before reading the body; over
    // HTTP/2 the stream then ends with RST_STREAM(NO_ERROR), which curl before 8.1 (Debian
    // 12's) reports as a framing error instead of showing the answer. Reading small bodies
    // first avoids that; large ones (image uploads) stream on untouched.
    let req = if small_body(req.headers()) {
        let (parts, body) = req.into_parts();
        match axum::body::to_bytes(body, SMALL_BODY as usize).await {
            Ok(bytes) => axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes)),
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request: {e}\n"),
                )
                    .into_response()
            }
        }
    } else {
        req
    };
    let mut resp = if refuses_cross_site(req.method(), req.uri(), req.headers()) {
        tracing::info!(path = %req.uri().path(), origin = ?req.headers().get(header::ORIGIN), "refused a cross-site request");
        refusal(req.headers())
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    for (name, value) in HEADERS {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_changing_requests_from_another_origin_are_refused() {
        let host = "10.0.0.1:7480";
        let cases = [
            // (method, Origin, refused)
            (Method::POST, None, false),
            (Method::POST, Some("https://10.0.0.1:7480"), false),
            (Method::POST, Some("https://evil.example"), true),
            (Method::POST, Some("https://10.0.0.1:7481"), true),
            (Method::POST, Some("null"), true),
            (Method::PUT, Some("https://evil.example"), true),
            (Method::DELETE, Some("https://evil.example"), true),
            (Method::GET, Some("https://evil.example"), false),
            (Method::HEAD, Some("https://evil.example"), false),
            (Method::OPTIONS, Some("https://evil.example"), false),
        ];
        let uri = Uri::from_static("/logout");
        for (method, origin, want) in cases {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static(host));
            if let Some(o) = origin {
                h.insert(header::ORIGIN, HeaderValue::from_static(o));
            }
            assert_eq!(
                refuses_cross_site(&method, &uri, &h),
                want,
                "{method} from {origin:?}"
            );
        }
    }

    #[test]
    fn only_small_declared_bodies_are_read_first() {
        let cases = [
            (None, false),
            (Some("0"), false),
            (Some("5"), true),
            (Some("65536"), true),
            (Some("65537"), false),
            (Some("-1"), false),
            (Some("lots"), false),
        ];
        for (length, want) in cases {
            let mut h = HeaderMap::new();
            if let Some(n) = length {
                h.insert(header::CONTENT_LENGTH, HeaderValue::from_static(n));
            }
            assert_eq!(small_body(&h), want, "{length:?}");
        }
    }

    #[test]
    fn grpc_calls_are_refused_with_a_status_others_with_403() {
        let web = "application/grpc-web+proto";
        let cases = [
            (Some(web), StatusCode::OK, Some("7"), web),
            (
                Some("application/grpc"),
                StatusCode::OK,
                Some("7"),
                "application/grpc",
            ),
            (
                Some("application/x-www-form-urlencoded"),
                StatusCode::FORBIDDEN,
                None,
                "text/plain; charset=utf-8",
            ),
            (
                None,
                StatusCode::FORBIDDEN,
                None,
                "text/plain; charset=utf-8",
            ),
        ];
        for (sent, status, grpc_status, content_type) in cases {
            let mut h = HeaderMap::new();
            if let Some(t) = sent {
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static(t));
            }
            let r = refusal(&h);
            assert_eq!(r.status(), status, "{sent:?}");
            let get = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok());
            assert_eq!(get("grpc-status"), grpc_status, "{sent:?}");
            assert_eq!(get("content-type"), Some(content_type), "{sent:?}");
            if grpc_status.is_some() {
                assert_eq!(get("grpc-message"), Some(REFUSED));
            }
        }
    }
}
