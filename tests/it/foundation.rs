//! The gateway foundation: proxying, header hygiene, upstream failures, config checking,
//! admin endpoints and lifecycle (drain, reload).

use crate::harness::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEV_PASSTHROUGH: &str = "development = true\nmode = \"passthrough\"";

/// Sends raw bytes and reads the whole response (the gateway closes with `Connection: close`).
async fn raw(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn forwards_method_path_query_headers_and_a_5_mib_body_and_returns_the_response_unchanged() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(SITE, up.addr, "").await;
    let body: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let resp = client()
        .put(gw.url("/site/page?x=1&y=two"))
        .header("x-custom", "kept")
        .header("x-request-id", "client-id-1")
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-upstream"], "recorder");
    assert_eq!(resp.headers()["x-request-id"], "client-id-1");
    let json: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(json["body_len"], 5 * 1024 * 1024);
    let rec = up.requests().pop().expect("upstream saw the request");
    assert_eq!(rec.method, "PUT");
    assert_eq!(rec.uri, "/site/page?x=1&y=two");
    assert_eq!(rec.headers["x-custom"], "kept");
    assert_eq!(rec.headers["x-request-id"], "client-id-1");
    assert!(rec.body == body, "body differs");
}

#[tokio::test]
async fn client_owned_hop_by_hop_and_connection_named_headers_never_reach_the_upstream() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(SITE, up.addr, "[headers]\nidentity = [\"X-Umbraco-User\"]").await;
    let resp = raw(
        gw.proxy,
        "GET /site/a HTTP/1.1\r\nHost: example\r\nConnection: keep-alive, X-Secret, X-Request-Id\r\n\
         X-Secret: s\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\nX-Portcullis-User: admin\r\n\
         X-PORTCULLIS-Groups: admin\r\nX-Umbraco-User: admin\r\nX-Forwarded-For: 6.6.6.6\r\nX-Request-Id: from-client\r\n\
         Proxy-Connection: keep-alive\r\nTE: trailers\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let rec = up.requests().pop().expect("upstream saw the request");
    for h in [
        "x-secret",
        "keep-alive",
        "proxy-authorization",
        "x-portcullis-user",
        "x-portcullis-groups",
        "x-umbraco-user",
        "proxy-connection",
        "te",
    ] {
        assert!(
            !rec.headers.contains_key(h),
            "{h} reached the upstream: {:?}",
            rec.headers
        );
    }
    // Headers the gateway sets survive a client naming them in `Connection`.
    assert_eq!(rec.headers["x-request-id"], "from-client");
    assert_eq!(rec.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(rec.headers["x-forwarded-proto"], "http");

    // pingora refuses a client nominating a protected header (X-Forwarded-For) in `Connection`:
    // a 400 from the gateway, nothing upstream.
    let resp = raw(
        gw.proxy,
        "GET /site/b HTTP/1.1\r\nHost: example\r\nConnection: close, X-Forwarded-For\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert_eq!(up.requests().len(), 1);
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_with_a_json_body_and_the_request_id() {
    let closed = closed_port();
    let gw = spawn_gateway(SITE, closed.addr, "").await;
    let resp = client()
        .get(gw.url("/site/x"))
        .header("x-request-id", "r-502")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["x-request-id"], "r-502");
    let json: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(
        json,
        serde_json::json!({"error": "upstream_unavailable", "request_id": "r-502"})
    );
    assert_eq!(
        gw.metric("portcullis_upstream_errors_total{kind=\"unavailable\"}")
            .await,
        Some(1.0)
    );
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_with_a_json_body_and_the_request_id() {
    let up = Upstream::start().await;
    up.set(Behaviour::Delay(Duration::from_secs(4)));
    let gw = spawn_gateway(SITE, up.addr, "").await; // read_timeout = 2s
    let resp = client()
        .get(gw.url("/site/slow"))
        .header("x-request-id", "r-504")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 504);
    let json: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(
        json,
        serde_json::json!({"error": "upstream_timeout", "request_id": "r-504"})
    );
}

#[tokio::test]
async fn requests_under_a_protected_prefix_without_a_route_are_denied_with_a_json_body() {
    let up = Upstream::start().await;
    let gw = spawn_gateway("", up.addr, "").await;
    let resp = client()
        .get(gw.url("/umbraco/management/api/v1/nonexistent"))
        .header("x-request-id", "r-404")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["x-request-id"], "r-404");
    let json: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(
        json,
        serde_json::json!({"error": "no_route", "request_id": "r-404"})
    );
    assert!(
        up.requests().is_empty(),
        "a denied request reached the upstream"
    );
}

#[tokio::test]
async fn check_config_rejects_a_config_with_several_mistakes_and_names_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "mode = \"passthrough\"\n[listen]\naddress = \"not-an-address\"\n[upstream]\nmanagment = \"typo\"\n\
         [headers]\ntrusted_proxies = [\"10.0.0.0/99\"]\n[bogus]\nx = 1\n",
    )
    .expect("write");
    let (code, text) = check_config(&[&path]);
    assert_eq!(code, Some(64), "{text}");
    for needle in [
        "mode:",
        "listen.address",
        "managment",
        "trusted_proxies[0]",
        "bogus: unknown key",
    ] {
        assert!(text.contains(needle), "`{needle}` not reported in:\n{text}");
    }
}

#[tokio::test]
async fn every_shipped_gateway_config_passes_check_config() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("config dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    assert!(files.len() >= 2, "expected shipped configs in {dir:?}");
    let (code, text) = check_config(&files);
    assert_eq!(code, Some(0), "{text}");
}

#[tokio::test]
async fn healthz_readyz_and_metrics_answer_and_the_counters_move_with_traffic() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(SITE, up.addr, "").await;
    let c = client();
    assert_eq!(
        c.get(gw.admin_url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        200
    );
    wait_until(Duration::from_secs(10), || async {
        c.get(gw.admin_url("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await
    .expect("ready once the upstream was reached");
    for _ in 0..3 {
        c.get(gw.url("/site/ok")).send().await.expect("send");
    }
    c.get(gw.url("/umbraco/delivery/api/v2/nothing"))
        .send()
        .await
        .expect("send");
    let allow =
        "portcullis_requests_total{api=\"other\",decision=\"allow\",reason=\"\",status=\"200\"}";
    let deny = "portcullis_requests_total{api=\"delivery\",decision=\"deny\",reason=\"no_route\",status=\"404\"}";
    wait_until(Duration::from_secs(5), || async {
        gw.metric(allow).await == Some(3.0)
    })
    .await
    .expect("allow counter");
    assert_eq!(gw.metric(deny).await, Some(1.0));
    let text = c
        .get(gw.admin_url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for name in [
        "portcullis_request_duration_seconds_bucket",
        "portcullis_build_info",
        "portcullis_decision_duration_seconds_count",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_slow_request_finish_then_exits() {
    let up = Upstream::start().await;
    up.set(Behaviour::Delay(Duration::from_millis(1500)));
    let mut gw = spawn_gateway(
        SITE,
        up.addr,
        "[lifecycle]\ndrain_delay = \"0s\"\ngrace_period = \"10s\"",
    )
    .await;
    let url = gw.url("/site/slow");
    let inflight =
        tokio::spawn(async move { client().get(url).send().await.map(|r| r.status().as_u16()) });
    wait_until(Duration::from_secs(5), || async {
        !up.requests().is_empty()
    })
    .await
    .expect("request reached upstream");
    gw.signal("TERM");
    let status = inflight
        .await
        .expect("join")
        .expect("in-flight request completed");
    assert_eq!(status, 200);
    assert_eq!(
        gw.wait_exit(Duration::from_secs(10)).await,
        Some(0),
        "log:\n{}",
        gw.log()
    );
}

#[tokio::test]
async fn a_reload_applies_a_good_config_and_rejects_a_bad_one_keeping_the_old() {
    let up = Upstream::start().await;
    let gw = spawn_gateway(DEV_PASSTHROUGH, up.addr, "[lifecycle]\nwatch = false").await;
    let c = client();
    let path = gw.url("/umbraco/management/api/v1/anything");
    assert_eq!(
        c.get(&path).send().await.expect("send").status(),
        200,
        "passthrough allows"
    );

    let text = std::fs::read_to_string(&gw.config_path).expect("read");
    std::fs::write(&gw.config_path, text.replace(DEV_PASSTHROUGH, "")).expect("write good");
    gw.signal("HUP");
    wait_until(Duration::from_secs(5), || async {
        gw.metric("portcullis_config_reloads_total{result=\"ok\"}")
            .await
            == Some(1.0)
    })
    .await
    .expect("good reload applied");
    assert_eq!(
        c.get(&path).send().await.expect("send").status(),
        404,
        "enforce denies unmatched"
    );

    std::fs::write(
        &gw.config_path,
        "mode = \"passthrough\"\n[upstream]\nmanagement = \"\"\n",
    )
    .expect("write bad");
    gw.signal("HUP");
    wait_until(Duration::from_secs(5), || async {
        gw.metric("portcullis_config_reloads_total{result=\"rejected\"}")
            .await
            == Some(1.0)
    })
    .await
    .expect("bad reload rejected");
    assert_eq!(
        c.get(&path).send().await.expect("send").status(),
        404,
        "old config keeps serving"
    );
    assert!(gw.log().contains("config reload rejected"));
}

#[test]
fn the_compose_file_parses_and_builds_the_shipped_dockerfile() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text =
        std::fs::read_to_string(root.join("deploy/docker-compose.yml")).expect("compose file");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    let services = doc["services"].as_mapping().expect("services");
    for name in ["postgres", "gateway", "demo-upstream"] {
        assert!(services.contains_key(name), "service {name} missing");
    }
    let dockerfile = doc["services"]["gateway"]["build"]["dockerfile"]
        .as_str()
        .expect("dockerfile");
    assert!(
        root.join(dockerfile).exists(),
        "{dockerfile} does not exist"
    );
    let df = std::fs::read_to_string(root.join(dockerfile)).expect("Dockerfile");
    assert!(df.contains("USER nonroot"), "image must run as non-root");
}
