//! The dashboard's server side on `http_addr`: every host answers gRPC-web, only the leader
//! serves pages, followers redirect to the leader's published HTTP address, and a page that
//! lost its leader is not sent back to it. (The pages themselves are tested in a browser by
//! `web/e2e`, `make web-e2e`.)

use cluster_tests::{wait_for, Cluster, Node, Opts};
use std::time::Duration;

/// One HTTP/1.1 exchange over TLS with the host's HTTP listener, as `admin` (its client
/// certificate): (status line and headers, body).
async fn http(
    node: &Node,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<(String, Vec<u8>)> {
    node.https_request(method, path, headers, body).await
}

/// Undoes chunked transfer encoding (gRPC-web answers stream their body).
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..eol]).unwrap_or("0").trim(), 16)
                .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
    out
}

/// GetStatus through gRPC-web on a host's HTTP port: the message frame's payload (protobuf;
/// its strings appear as they are) and the trailer frame's text.
async fn grpc_web_status(node: &Node) -> anyhow::Result<(Vec<u8>, String)> {
    // An empty GetStatusRequest: flag 0, length 0.
    let (head, body) = http(
        node,
        "POST",
        "/quantix.v1.ClusterService/GetStatus",
        &[
            ("Content-Type", "application/grpc-web+proto"),
            ("X-Grpc-Web", "1"),
        ],
        &[0, 0, 0, 0, 0],
    )
    .await?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "gRPC-web answer: {head}");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    // Frames: flag byte (0 = message, 0x80 = trailers), 4-byte length, payload.
    let (mut message, mut trailers, mut rest) = (None, String::new(), &body[..]);
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        anyhow::ensure!(rest.len() >= 5 + len, "short frame");
        let payload = &rest[5..5 + len];
        if rest[0] & 0x80 == 0 {
            message = Some(payload.to_vec());
        } else {
            trailers = String::from_utf8_lossy(payload).into_owned();
        }
        rest = &rest[5 + len..];
    }
    Ok((
        message.ok_or_else(|| anyhow::anyhow!("no message frame"))?,
        trailers,
    ))
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_redirect_pages_to_the_leader_and_every_host_answers_grpc_web(
) -> anyhow::Result<()> {
    let mut c = Cluster::form(3, 3, Opts::default()).await?;
    let leader = c.wait_for_leader(Duration::from_secs(20)).await?;
    let follower = c
        .nodes
        .iter()
        .find(|n| n.name != leader)
        .expect("a follower");
    let leader_http = c.node(&leader).http_port;

    // Every member publishes its HTTP address through Raft; GetStatus carries them, here
    // through gRPC-web on a follower's HTTP port.
    let status = follower.status(false).await?;
    wait_for(
        Duration::from_secs(15),
        "every member's http_address",
        || async {
            follower.status(false).await.is_ok_and(|s| {
                s.members.len() == 3 && s.members.iter().all(|m| !m.http_address.is_empty())
            })
        },
    )
    .await?;
    let (message, trailers) = grpc_web_status(follower).await?;
    assert!(trailers.contains("grpc-status:0"), "trailers: {trailers}");
    assert!(
        contains(&message, &format!("127.0.0.1:{leader_http}")),
        "{message:?}"
    );
    assert!(
        contains(&message, &follower.name),
        "answered by the follower"
    );

    // A follower sends pages to the leader, same path and query.
    let (head, _) = http(follower, "GET", "/some/page?x=1", &[], b"").await?;
    assert!(head.starts_with("HTTP/1.1 307"), "{head}");
    assert!(
        head.contains(&format!(
            "location: https://127.0.0.1:{leader_http}/some/page?x=1"
        )),
        "{head}"
    );
    // A page that lost the leader of this term waits for a later one instead.
    let (head, body) = http(
        follower,
        "GET",
        &format!("/?after_term={}", status.term),
        &[],
        b"",
    )
    .await?;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("electing a new one"));
    let (head, _) = http(
        follower,
        "GET",
        &format!("/?after_term={}", status.term - 1),
        &[],
        b"",
    )
    .await?;
    assert!(head.starts_with("HTTP/1.1 307"), "{head}");

    // The leader serves the page itself: the embedded dashboard, or, in a binary built before
    // the web assets, a page that says so.
    let (head, body) = http(c.node(&leader), "GET", "/", &[], b"").await?;
    let body = String::from_utf8_lossy(&body);
    if head.starts_with("HTTP/1.1 200") {
        assert!(body.contains("<div id=\"root\">"), "{body}");
    } else {
        assert!(head.starts_with("HTTP/1.1 503"), "{head}");
        assert!(body.contains("not built"), "{body}");
    }
    // /healthz and /metrics are unchanged on followers.
    assert_eq!(follower.http_get("/healthz").await?, "ok\n");
    Ok(())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A gRPC-web GetStatus with the given headers; the `grpc-status` it ends with.
async fn grpc_web_code(
    n: &Node,
    tls: std::sync::Arc<rustls::ClientConfig>,
    extra: &[(&str, &str)],
) -> anyhow::Result<String> {
    let mut headers = vec![
        ("Content-Type", "application/grpc-web+proto"),
        ("X-Grpc-Web", "1"),
    ];
    headers.extend_from_slice(extra);
    let (head, body) = n
        .https_request_with(
            tls,
            "POST",
            "/quantix.v1.ClusterService/GetStatus",
            &headers,
            &[0, 0, 0, 0, 0],
        )
        .await?;
    if let Some(code) = header(&head, "grpc-status") {
        return Ok(code.to_string());
    }
    let text = String::from_utf8_lossy(&dechunk(&body)).into_owned();
    let text = if text.is_empty() {
        String::from_utf8_lossy(&body).into_owned()
    } else {
        text
    };
    Ok(text
        .split("grpc-status:")
        .nth(1)
        .map(|r| r.trim().chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_else(|| format!("none in {head}")))
}

/// A browser without a client certificate: the login page is all it gets until it logs in
/// with a token; the cookie is HttpOnly, Secure, SameSite=Strict; calls made with it need the
/// CSRF header and a same-site Origin; revoking the token ends the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_needs_a_login_and_refuses_cross_site_calls() -> anyhow::Result<()> {
    let mut c = Cluster::form(1, 1, Opts::default()).await?;
    c.wait_for_leader(Duration::from_secs(20)).await?;
    let n = &c.nodes[0];
    let ca = std::fs::read_to_string(n.tls_dir().join("ca.crt"))?;
    let browser = quantix::tls::config::client(&ca, None)?;
    let get = |path: &'static str, headers: Vec<(&'static str, String)>| {
        let browser = browser.clone();
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            n.https_request_with(browser, "GET", path, &h, b"").await
        }
    };

    // Nothing but the login page and health without a login.
    let (head, _) = get("/", vec![]).await?;
    assert!(head.starts_with("HTTP/1.1 303"), "{head}");
    assert_eq!(header(&head, "location"), Some("/login"));
    let (head, body) = get("/login", vec![]).await?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("name=\"token\""));
    let (head, _) = get("/metrics", vec![]).await?;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(
        header(&head, "x-quantix-error").is_some_and(|e| e.contains("credential")),
        "{head}"
    );
    let (head, _) = get("/session", vec![]).await?;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert_eq!(grpc_web_code(n, browser.clone(), &[]).await?, "16");
    assert_eq!(get("/healthz", vec![]).await?.1, b"ok\n");

    // A wrong token: refused, with the reason on the page.
    let login = |token: String| {
        let browser = browser.clone();
        async move {
            let form = format!("token={token}");
            n.https_request_with(
                browser,
                "POST",
                "/login",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                form.as_bytes(),
            )
            .await
        }
    };
    let (head, body) = login("qxtok1.nope".into()).await?;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("malformed"));

    // The right one: a session cookie.
    let out = n.cli(&["cluster", "add-token", "web"]);
    assert!(out.status.success(), "{}", cluster_tests::stderr(&out));
    let token = cluster_tests::stdout(&out).trim().to_string();
    let (head, _) = login(token.clone()).await?;
    assert!(head.starts_with("HTTP/1.1 303"), "{head}");
    let set = header(&head, "set-cookie").unwrap_or_default().to_string();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    let cookie = set.split(';').next().unwrap_or_default().to_string();
    assert!(cookie.starts_with("qx_session=qxs1."), "{cookie}");

    let (head, _) = get("/", vec![("Cookie", cookie.clone())]).await?;
    assert!(!head.starts_with("HTTP/1.1 303"), "{head}");
    let (head, body) = get("/session", vec![("Cookie", cookie.clone())]).await?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let session: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(session["kind"], "session");
    assert_eq!(session["name"], "web");
    let csrf = session["csrf"].as_str().unwrap_or_default().to_string();
    assert_eq!(csrf.len(), 32);

    // Calls with the cookie: refused without the CSRF header or from another origin.
    let host = format!("127.0.0.1:{}", n.http_port);
    let ok_origin = format!("https://{host}");
    let code = grpc_web_code(n, browser.clone(), &[("Cookie", &cookie)]).await?;
    assert_eq!(code, "7", "no CSRF header");
    let code = grpc_web_code(
        n,
        browser.clone(),
        &[
            ("Cookie", &cookie),
            ("x-quantix-csrf", &csrf),
            ("Origin", "https://evil.example"),
        ],
    )
    .await?;
    assert_eq!(code, "7", "another origin");
    let code = grpc_web_code(
        n,
        browser.clone(),
        &[
            ("Cookie", &cookie),
            ("x-quantix-csrf", &csrf),
            ("Origin", &ok_origin),
        ],
    )
    .await?;
    assert_eq!(code, "0", "same origin with the header");
    // A cookie that was tampered with.
    let forged = cookie.replacen(".1", ".9", 1);
    let (head, _) = get("/", vec![("Cookie", forged)]).await?;
    assert!(head.starts_with("HTTP/1.1 303"), "{head}");

    // Revoking the token ends the session.
    let out = n.cli(&["cluster", "revoke", "web"]);
    assert!(out.status.success(), "{}", cluster_tests::stderr(&out));
    let (head, _) = get("/", vec![("Cookie", cookie.clone())]).await?;
    assert!(head.starts_with("HTTP/1.1 303"), "{head}");
    let code = grpc_web_code(
        n,
        browser,
        &[("Cookie", &cookie), ("x-quantix-csrf", &csrf)],
    )
    .await?;
    assert_eq!(code, "16");
    Ok(())
}
