//! The request head at the edge, through the real gateway on raw sockets: `Host` (RFC 9112
//! §3.2), `listen.allowed_hosts`, and `[listen.limits]` — head size and field count (431),
//! query length (414), streamed body size (413) — each refused before anything is forwarded.

use crate::harness::*;
use crate::raw::*;

/// Sends `request` on a fresh connection; expects `status` and `error` (`""`: pingora's own
/// plain reply) and that the upstream received nothing.
async fn refused(gw: &Gateway, up: &RawUpstream, request: &[u8], status: u16, error: &str) {
    let mut c = Raw::connect(gw.proxy).await;
    c.send(request).await;
    let r = c.response().await.expect("a response");
    let shown = String::from_utf8_lossy(&request[..request.len().min(80)]).into_owned();
    assert_eq!(r.status, status, "{shown:?}: {r:?}");
    assert_eq!(r.error(), error, "{shown:?}");
    assert!(c.closed_within(PATIENCE).await, "{shown:?}: closed");
    assert!(up.received().is_empty(), "{shown:?} reached the upstream");
}

fn get(target: &str, lines: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\n{lines}\r\n").into_bytes()
}

#[tokio::test]
async fn http11_without_exactly_one_valid_host_is_400() {
    let up = RawUpstream::start().await;
    let gw = spawn_gateway(SITE, up.addr, "").await;
    refused(&gw, &up, &get("/site/x", ""), 400, "bad_host").await;
    refused(&gw, &up, &get("/site/x", "Host: a b\r\n"), 400, "bad_host").await;
    // Two fields: pingora refuses them itself.
    refused(&gw, &up, &get("/site/x", "Host: a\r\nHost: a\r\n"), 400, "").await;
    // HTTP/1.0 needs no Host.
    let r = exchange(gw.proxy, b"GET /site/x HTTP/1.0\r\n\r\n")
        .await
        .expect("response");
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn a_host_outside_allowed_hosts_is_421_and_a_listed_one_is_served() {
    let up = RawUpstream::start().await;
    let env = [("PORTCULLIS_LISTEN__ALLOWED_HOSTS", r#"["cms.example.com"]"#)];
    let gw = spawn_gateway_with_env(SITE, up.addr, "", &env).await;
    for host in ["evil.example.com", "cms.example.com.evil.net", "127.0.0.1"] {
        let request = get("/site/x", &format!("Host: {host}\r\n"));
        refused(&gw, &up, &request, 421, "misdirected_request").await;
    }
    // An absolute-form target names the host too (pingora requires it to equal Host).
    let request = get(
        "http://evil.example.com/site/x",
        "Host: evil.example.com\r\n",
    );
    refused(&gw, &up, &request, 421, "misdirected_request").await;
    let request = get(
        "/site/x",
        "Host: CMS.example.com:8080\r\nConnection: close\r\n",
    );
    let r = exchange(gw.proxy, &request).await.expect("response");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-upstream"), Some("raw"));
}

#[tokio::test]
async fn a_large_head_or_too_many_fields_is_431_and_a_long_query_414() {
    let up = RawUpstream::start().await;
    let gw = spawn_gateway(SITE, up.addr, "").await;
    // Defaults: 32 KiB head, 100 fields, 8 KiB query.
    let big = format!("Host: cms\r\nX-Big: {}\r\n", "a".repeat(64 * 1024));
    refused(&gw, &up, &get("/site/x", &big), 431, "head_too_large").await;
    let many: String = (0..100).map(|i| format!("X-F{i}: 1\r\n")).collect();
    let request = get("/site/x", &format!("Host: cms\r\n{many}"));
    refused(&gw, &up, &request, 431, "head_too_large").await;
    let query = format!("/site/x?q={}", "a".repeat(8 * 1024));
    refused(&gw, &up, &get(&query, "Host: cms\r\n"), 414, "uri_too_long").await;
    // The same on an API path, before authentication.
    let query = format!(
        "/umbraco/delivery/api/v2/content?q={}",
        "a".repeat(8 * 1024)
    );
    refused(&gw, &up, &get(&query, "Host: cms\r\n"), 414, "uri_too_long").await;
    // Exactly at the limits passes: 100 fields, an 8 KiB query.
    let fields: String = (0..98).map(|i| format!("X-F{i}: 1\r\n")).collect();
    let query = format!("/site/x?q={}", "a".repeat(8 * 1024 - 2));
    let request = get(
        &query,
        &format!("Host: cms\r\nConnection: close\r\n{fields}"),
    );
    let r = exchange(gw.proxy, &request).await.expect("response");
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn a_declared_body_over_the_streamed_limit_is_413_without_reading_it() {
    let up = RawUpstream::start().await;
    let gw = spawn_gateway(SITE, up.addr, "").await;
    // The default, Kestrel's: 30,000,000 bytes. Only the head is sent.
    let request = b"PUT /site/upload HTTP/1.1\r\nHost: cms\r\nContent-Length: 30000001\r\n\r\n";
    refused(&gw, &up, request, 413, "body_too_large").await;
}

#[tokio::test]
async fn a_chunked_body_is_counted_while_it_streams_and_cut_at_the_limit_with_413() {
    let up = RawUpstream::start().await;
    let env = [("PORTCULLIS_LISTEN__LIMITS__MAX_BODY_BYTES", "1000")];
    let gw = spawn_gateway_with_env(SITE, up.addr, "", &env).await;
    let chunk = format!("258\r\n{}\r\n", "b".repeat(600));
    let mut c = Raw::connect(gw.proxy).await;
    c.send(b"PUT /site/upload HTTP/1.1\r\nHost: cms\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await;
    for _ in 0..3 {
        if !c.send(chunk.as_bytes()).await {
            break;
        }
    }
    c.send(b"0\r\n\r\n").await;
    let r = c.response().await.expect("a response");
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.error(), "body_too_large");
    assert!(c.closed_within(PATIENCE).await);
    // The upstream got at most the head and the bytes under the limit (nothing at all when the
    // limit tripped before pingora connected), then a closed connection: never a whole request.
    wait_until(PATIENCE, || async { up.conns().iter().all(|c| c.closed) })
        .await
        .expect("the upstream connection is closed");
    let got = up.received();
    assert!(!got.ends_with(b"0\r\n\r\n"), "never a whole request");
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n");
    let body = head_end.map_or(&got[..0], |i| &got[i..]);
    let body_bytes = body.iter().filter(|&&b| b == b'b').count();
    assert!(body_bytes <= 1000, "{body_bytes} body bytes forwarded");
    // Under the limit, a chunked body streams through whole.
    let small = format!(
        "PUT /site/upload HTTP/1.1\r\nHost: cms\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunk}0\r\n\r\n"
    );
    let r = exchange(gw.proxy, small.as_bytes())
        .await
        .expect("response");
    assert_eq!(r.status, 200, "{r:?}");
}
