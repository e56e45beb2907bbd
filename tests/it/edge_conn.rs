//! Connections at the edge, through the real gateway on raw sockets: the request-head deadline
//! (silent connections, fewer bytes than the h2c preface peek, trickled heads), the keep-alive
//! idle timeout, and the connection cap that keeps the admin listener answering.
//! Deadlines are configured short; every wait for their effect is bounded by `PATIENCE`.

use crate::harness::*;
use crate::raw::*;
use std::time::Duration;

/// Short deadlines for the tests (the defaults are 10 s and 60 s).
const FAST: &[(&str, &str)] = &[
    ("PORTCULLIS_LISTEN__REQUEST_HEAD_TIMEOUT", "300ms"),
    ("PORTCULLIS_LISTEN__KEEPALIVE_TIMEOUT", "300ms"),
];

const GET: &[u8] = b"GET /site/page HTTP/1.1\r\nHost: cms\r\n\r\n";

async fn timed_out(gw: &Gateway, reason: &str) -> f64 {
    let series = format!("portcullis_connections_timed_out_total{{reason=\"{reason}\"}}");
    gw.metric(&series).await.unwrap_or(0.0)
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_head_deadline_without_a_response() {
    let up = Upstream::start().await;
    let gw = spawn_gateway_with_env(SITE, up.addr, "", FAST).await;
    let mut c = Raw::connect(gw.proxy).await;
    let r = c.response().await;
    assert!(r.is_none(), "closed without a response: {r:?}");
    assert!(timed_out(&gw, "head_timeout").await >= 1.0);
}

#[tokio::test]
async fn fewer_bytes_than_the_h2c_preface_get_408_and_the_connection_closes() {
    let up = Upstream::start().await;
    let gw = spawn_gateway_with_env(SITE, up.addr, "", FAST).await;
    for partial in [&b"GET / HT"[..], b"PRI * HTTP/2.0\r\n"] {
        let mut c = Raw::connect(gw.proxy).await;
        c.send(partial).await;
        let r = c.response().await.expect("408");
        assert_eq!(r.status, 408, "{partial:?}: {r:?}");
        assert_eq!(r.error(), "request_timeout");
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.closed_within(PATIENCE).await);
    }
    assert!(up.requests().is_empty());
}

#[tokio::test]
async fn a_head_trickled_a_byte_at_a_time_is_408_at_the_deadline() {
    let up = Upstream::start().await;
    let gw = spawn_gateway_with_env(SITE, up.addr, "", FAST).await;
    let mut c = Raw::connect(gw.proxy).await;
    // Each byte well within any per-read timeout; the whole head far beyond the deadline.
    let head = format!(
        "GET /site/page HTTP/1.1\r\nHost: cms\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(400)
    );
    let r = c
        .trickle(head.as_bytes(), Duration::from_millis(50))
        .await
        .expect("408");
    assert_eq!(r.status, 408, "{r:?}");
    assert!(c.closed_within(PATIENCE).await);
    // Empty lines before the request line (which the parser skips) do not end the head early.
    let mut c = Raw::connect(gw.proxy).await;
    c.send(b"\r\n\r\n\n\n").await;
    let r = c
        .trickle(head.as_bytes(), Duration::from_millis(50))
        .await
        .expect("408");
    assert_eq!(r.status, 408, "{r:?}");
    assert!(
        up.requests().is_empty(),
        "the trickled requests were never forwarded"
    );
}

#[tokio::test]
async fn a_head_over_the_size_limit_is_431_at_once_not_at_the_deadline() {
    let up = Upstream::start().await;
    let env = [("PORTCULLIS_LISTEN__REQUEST_HEAD_TIMEOUT", "5m")];
    let gw = spawn_gateway_with_env(SITE, up.addr, "", &env).await;
    let mut c = Raw::connect(gw.proxy).await;
    // 40 KiB (over the 32 KiB default) and no end: answered long before the 5-minute deadline.
    let head = format!(
        "GET /site/page HTTP/1.1\r\nHost: cms\r\nX-Pad: {}",
        "a".repeat(40 * 1024)
    );
    c.send(head.as_bytes()).await;
    let r = c.response().await.expect("431");
    assert_eq!(r.status, 431, "{r:?}");
    assert_eq!(r.error(), "head_too_large");
    assert!(c.closed_within(PATIENCE).await);
    assert!(up.requests().is_empty());
}

#[tokio::test]
async fn small_requests_and_h2c_work_behind_the_edge_and_idle_h2c_is_closed() {
    let up = Upstream::start().await;
    let gw = spawn_gateway_with_env(SITE, up.addr, "", FAST).await;
    // 18 bytes, fewer than the h2c preface: answered at once, not after a 24-byte peek.
    let r = exchange(gw.proxy, b"GET /site HTTP/1.0\r\n\r\n")
        .await
        .expect("response");
    assert_eq!(r.status, 200, "{r:?}");
    // h2c with prior knowledge: the preface and an empty SETTINGS frame (RFC 9113 §3.4, §6.5)
    // are answered with the server's SETTINGS frame.
    let mut c = Raw::connect(gw.proxy).await;
    c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await;
    let frame = c.read_exact(9).await.expect("a frame header");
    assert_eq!(frame[3], 0x4, "a SETTINGS frame: {frame:?}");
    // An h2c connection with no stream open is closed after the keep-alive idle timeout.
    assert!(
        c.closed_within(PATIENCE).await,
        "idle h2c connection closed"
    );
}

#[tokio::test]
async fn a_kept_alive_connection_serves_its_next_request_and_is_closed_once_idle() {
    let up = Upstream::start().await;
    // Long enough for the second request to arrive on a loaded machine, short enough to wait.
    let env = [("PORTCULLIS_LISTEN__KEEPALIVE_TIMEOUT", "3s")];
    let gw = spawn_gateway_with_env(SITE, up.addr, "", &env).await;
    let mut c = Raw::connect(gw.proxy).await;
    for _ in 0..2 {
        c.send(GET).await;
        let r = c.response().await.expect("response");
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert_eq!(up.requests().len(), 2, "both on one connection");
    assert!(c.closed_within(PATIENCE).await, "closed once idle");
    assert!(timed_out(&gw, "idle_timeout").await >= 1.0);
}

#[tokio::test]
async fn at_the_connection_cap_further_proxy_connections_are_closed_and_the_admin_answers() {
    const CAP: usize = 20;
    let up = Upstream::start().await;
    let env = [
        ("PORTCULLIS_LISTEN__MAX_CONNECTIONS", "20"),
        // The idle sockets that fill the cap must outlive the test.
        ("PORTCULLIS_LISTEN__REQUEST_HEAD_TIMEOUT", "5m"),
    ];
    let gw = spawn_gateway_with_env(SITE, up.addr, "", &env).await;
    let mut idle = Vec::new();
    for _ in 0..CAP {
        idle.push(Raw::connect(gw.proxy).await);
    }
    let gw = &gw;
    wait_until(PATIENCE, || async move {
        gw.metric("portcullis_connections_open").await == Some(CAP as f64)
    })
    .await
    .expect("the cap is full");
    let mut extra = Raw::connect(gw.proxy).await;
    extra.send(GET).await;
    assert!(
        extra.response().await.is_none(),
        "refused: closed, not served"
    );
    assert!(gw.metric("portcullis_connections_refused_total").await >= Some(1.0));
    let health = client()
        .get(gw.admin_url("/healthz"))
        .send()
        .await
        .expect("admin answers");
    assert_eq!(health.status(), 200);
    assert!(up.requests().is_empty());
    // A freed slot admits the next connection.
    drop(idle.pop());
    wait_until(PATIENCE, || async {
        exchange(gw.proxy, GET)
            .await
            .is_some_and(|r| r.status == 200)
    })
    .await
    .expect("served once a slot is free");
}

#[tokio::test]
async fn under_a_low_file_descriptor_limit_the_derived_cap_keeps_the_admin_listener_answering() {
    // (512 − 256 − 16) / 2 = 120 proxy connections; 600 would exhaust 512 descriptors without it.
    const OFFERED: usize = 600;
    let up = Upstream::start().await;
    let env = [
        ("PORTCULLIS_UPSTREAM__KEEPALIVE_POOL", "16"),
        ("PORTCULLIS_LISTEN__REQUEST_HEAD_TIMEOUT", "5m"),
    ];
    let launcher = ["prlimit", "--nofile=512", "--"];
    let gw = spawn_gateway_under(&launcher, SITE, up.addr, "", &env).await;
    let mut held = Vec::new();
    for _ in 0..OFFERED {
        held.push(Raw::connect(gw.proxy).await);
    }
    let gw = &gw;
    wait_until(PATIENCE, || async move {
        let refused = gw.metric("portcullis_connections_refused_total").await;
        refused == Some((OFFERED - 120) as f64)
    })
    .await
    .unwrap_or_else(|| panic!("120 admitted, the rest refused; log:\n{}", gw.log()));
    assert_eq!(gw.metric("portcullis_connections_open").await, Some(120.0));
    for path in ["/healthz", "/metrics"] {
        let r = client().get(gw.admin_url(path)).send().await;
        assert_eq!(r.expect("admin answers").status(), 200, "{path}");
    }
    drop(held);
    wait_until(PATIENCE, || async move {
        exchange(gw.proxy, GET)
            .await
            .is_some_and(|r| r.status == 200)
    })
    .await
    .expect("the proxy serves again once the connections are gone");
}

#[test]
fn check_config_refuses_zero_and_absurd_connection_limits_and_names_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("limits.toml");
    std::fs::write(
        &path,
        "[listen]\nrequest_head_timeout = \"0s\"\nkeepalive_timeout = \"30days\"\nbody_timeout = \"2h\"\nmax_connections = 0\n\
         [upstream]\nmanagement = \"127.0.0.1:5000\"\n[store]\nkind = \"postgres\"\n",
    )
    .expect("write");
    let (code, text) = check_config(&[&path]);
    assert_eq!(code, Some(64), "{text}");
    for needle in [
        "listen.request_head_timeout: must be greater than zero",
        "listen.keepalive_timeout: must be at most 1h",
        "listen.body_timeout: must be at most 1h",
        "listen.max_connections: must be at least 1",
    ] {
        assert!(text.contains(needle), "`{needle}` not reported in:\n{text}");
    }
}
