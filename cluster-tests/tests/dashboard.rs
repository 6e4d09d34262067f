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
