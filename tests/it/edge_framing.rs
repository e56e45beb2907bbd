//! Framing at the edge, through the real gateway on raw sockets in front of an upstream that
//! records raw bytes: a body length that could be read two ways is refused before anything is
//! forwarded (RFC 9112 §6.1, §6.3; what pingora 0.9.1 refuses itself is in `src/proxy/edge.rs`).
//! A lenient peer reading such a body as a second request is the smuggling this prevents.

use crate::harness::*;
use crate::raw::*;

/// A head for `/site/x` (forwarded unchecked with [`SITE`]) with `framing` header lines.
fn head(framing: &str) -> String {
    format!("POST /site/x HTTP/1.1\r\nHost: cms\r\n{framing}\r\n")
}

/// Sends `request`, expects `status` (and the gateway's `error` id, when it wrote the reply),
/// and checks the connection is closed and that no byte reached the upstream.
async fn refused(gw: &Gateway, up: &RawUpstream, request: &str, status: u16, error: &str) {
    let mut c = Raw::connect(gw.proxy).await;
    c.send(request.as_bytes()).await;
    let r = c.response().await.expect("a response");
    assert_eq!(r.status, status, "{request:?}: {r:?}");
    assert_eq!(r.error(), error, "{request:?}");
    assert!(c.closed_within(PATIENCE).await, "{request:?}: closed");
    assert!(up.received().is_empty(), "{request:?} reached the upstream");
}

#[tokio::test]
async fn repeated_content_length_or_one_beside_transfer_encoding_is_400_and_never_forwarded() {
    let up = RawUpstream::start().await;
    let gw = spawn_gateway(SITE, up.addr, "").await;
    // The body of each would be a whole second request to a peer that reads it as one.
    let smuggled = "GET /umbraco/management/api/v1/user HTTP/1.1\r\nHost: cms\r\n\r\n";
    let n = smuggled.len();
    for framing in [
        format!("Content-Length: {n}, {n}\r\n"),
        format!("Content-Length: {n}\r\nContent-Length: {n}\r\n"),
        format!("Content-Length: {n}\r\nTransfer-Encoding: chunked\r\n"),
        format!("Transfer-Encoding: chunked\r\nContent-Length: {n}\r\n"),
    ] {
        let request = format!("{}{smuggled}", head(&framing));
        refused(&gw, &up, &request, 400, "bad_framing").await;
    }
    // Differing values: pingora refuses them itself (a plain 400, before any filter).
    let request = format!("{}{smuggled}", head(&format!("Content-Length: {n}, 1\r\n")));
    refused(&gw, &up, &request, 400, "").await;
}

#[tokio::test]
async fn a_transfer_encoding_other_than_one_chunked_is_501_and_never_forwarded() {
    let up = RawUpstream::start().await;
    let gw = spawn_gateway(SITE, up.addr, "").await;
    let body = "5\r\nhello\r\n0\r\n\r\n";
    for framing in [
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    ] {
        let request = format!("{}{body}", head(framing));
        refused(&gw, &up, &request, 501, "unsupported_transfer_coding").await;
    }
    // A final coding other than chunked cannot be framed at all: pingora's plain 400.
    let request = format!("{}{body}", head("Transfer-Encoding: gzip\r\n"));
    refused(&gw, &up, &request, 400, "").await;
}

#[tokio::test]
async fn framing_is_refused_before_authentication_on_the_apis_too() {
    let up = RawUpstream::start().await;
    let gw = spawn_gateway("", up.addr, "").await;
    let request = "POST /umbraco/management/api/v1/document HTTP/1.1\r\nHost: cms\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}";
    refused(&gw, &up, request, 400, "bad_framing").await;
}

#[tokio::test]
async fn a_well_framed_chunked_body_reaches_the_upstream_whole() {
    let up = RawUpstream::start().await;
    let gw = spawn_gateway(SITE, up.addr, "").await;
    let request = format!(
        "{}5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        head("Transfer-Encoding: chunked\r\n")
    );
    let r = exchange(gw.proxy, request.as_bytes())
        .await
        .expect("response");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-upstream"), Some("raw"));
    let got = String::from_utf8_lossy(&up.received()).into_owned();
    assert!(got.starts_with("POST /site/x HTTP/1.1\r\n"), "{got}");
    assert!(got.ends_with("0\r\n\r\n"), "a whole chunked body: {got}");
}

/// A chunk whose size line cannot be read (over 16 hex digits, or still unfinished after
/// pingora's 8 KiB) fails the request: the upstream, which got the head while the
/// body streamed, never receives a whole request — no terminating chunk, and its connection is
/// closed — and never the bad line.
async fn bad_chunk(gw: &Gateway, up: &RawUpstream, body: &[u8]) {
    let mut c = Raw::connect(gw.proxy).await;
    c.send(head("Transfer-Encoding: chunked\r\n").as_bytes())
        .await;
    c.send(body).await;
    let r = c.response().await.expect("a response");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(c.closed_within(PATIENCE).await);
    wait_until(PATIENCE, || async { up.conns().iter().all(|c| c.closed) })
        .await
        .expect("the upstream connection is closed");
    let got = up.received();
    assert!(!got.ends_with(b"0\r\n\r\n"), "never a whole request");
    assert!(
        !find_bytes(&got, b"ext="),
        "the chunk line is never forwarded"
    );
}

fn find_bytes(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn an_overflowing_chunk_size_is_400_and_the_upstream_never_gets_a_whole_request() {
    let up = RawUpstream::start().await;
    let gw = spawn_gateway(SITE, up.addr, "").await;
    bad_chunk(
        &gw,
        &up,
        b"5;ext=1\r\nhello\r\n10000000000000005\r\nhello\r\n0\r\n\r\n",
    )
    .await;
}

#[tokio::test]
async fn an_over_long_chunk_line_is_400_and_the_upstream_never_gets_a_whole_request() {
    let up = RawUpstream::start().await;
    let gw = spawn_gateway(SITE, up.addr, "").await;
    // The line never ends: pingora gives up on it past 8 KiB.
    let long = format!("5;ext={}", "x".repeat(16 * 1024));
    bad_chunk(&gw, &up, long.as_bytes()).await;
}
