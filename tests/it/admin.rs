//! The admin listener's authentication, routing and error shapes, on a real gateway process:
//! `/v1/…` needs an admin bearer token (several accepted, from env or file, re-read on
//! SIGHUP), probes are open unless configured otherwise, and every error is JSON.

use crate::harness::{client, spawn_gateway_with_env, wait_until, Upstream, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

const FILE_TOKEN_1: &str = "file-token-one-0123456789abcdef0123456789";
const FILE_TOKEN_2: &str = "file-token-two-0123456789abcdef0123456789";

async fn status_of(r: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = r.send().await.expect("send");
    let status = resp.status().as_u16();
    let v = resp.json().await.unwrap_or(Value::Null);
    (status, v)
}

#[tokio::test]
async fn the_admin_api_refuses_callers_without_a_valid_token_before_routing() {
    let up = Upstream::start().await;
    let gw = spawn_gateway_with_env("", up.addr, "", &[]).await;
    let c = client();
    let explain = serde_json::json!({"method": "GET", "target": "/"});
    for req in [
        c.post(gw.admin_url("/v1/explain")).json(&explain),
        c.post(gw.admin_url("/v1/explain"))
            .bearer_auth("not-the-token-0123456789abcdef0123456789")
            .json(&explain),
        c.post(gw.admin_url("/v1/explain"))
            .header("authorization", format!("Basic {ADMIN_TOKEN}"))
            .json(&explain),
        // Unknown paths are not revealed to unauthenticated callers either.
        c.get(gw.admin_url("/v1/no-such-thing")),
    ] {
        let resp = req.send().await.expect("send");
        assert_eq!(resp.status(), 401);
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Bearer realm=\"portcullis-admin\""
        );
        let v: Value = resp.json().await.expect("json");
        assert_eq!(v["error"], "unauthenticated", "{v}");
    }
    let (status, v) = status_of(gw.admin(Method::GET, "/v1/no-such-thing")).await;
    assert_eq!((status, &v["error"]), (404, &Value::from("not_found")));
    let (status, _) = status_of(gw.admin(Method::POST, "/v1/explain").json(&explain)).await;
    assert_eq!(status, 200);
    for probe in ["/healthz", "/readyz", "/metrics"] {
        let status = c
            .get(gw.admin_url(probe))
            .send()
            .await
            .expect("send")
            .status();
        assert_ne!(status, 401, "{probe} is open by default");
    }
}

#[tokio::test]
async fn probes_left_out_of_admin_open_need_a_token() {
    let up = Upstream::start().await;
    let env = [("PORTCULLIS_ADMIN__OPEN", "[\"/healthz\"]")];
    let gw = spawn_gateway_with_env("", up.addr, "", &env).await;
    let c = client();
    let metrics = c.get(gw.admin_url("/metrics")).send().await.expect("send");
    assert_eq!(metrics.status(), 401);
    let (status, _) = status_of(c.get(gw.admin_url("/readyz"))).await;
    assert_eq!(status, 401);
    let metrics = gw
        .admin(Method::GET, "/metrics")
        .send()
        .await
        .expect("send");
    assert_eq!(metrics.status(), 200);
    assert!(metrics
        .text()
        .await
        .expect("text")
        .contains("portcullis_build_info"));
}

#[tokio::test]
async fn several_tokens_are_accepted_and_a_rotated_token_file_takes_effect_on_sighup() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ci.token");
    std::fs::write(&file, format!("{FILE_TOKEN_1}\n")).expect("write");
    let tokens = format!(
        "[{{name = \"test\", env = \"PORTCULLIS_ADMIN_TOKEN\"}}, {{name = \"ci\", file = {:?}}}]",
        file.display().to_string()
    );
    let gw = spawn_gateway_with_env(
        "",
        up.addr,
        "",
        &[("PORTCULLIS_ADMIN__TOKENS", tokens.as_str())],
    )
    .await;
    let c = client();
    let explain = serde_json::json!({"method": "GET", "target": "/"});
    let call = |token: &'static str| {
        c.post(gw.admin_url("/v1/explain"))
            .bearer_auth(token)
            .json(&explain)
    };
    assert_eq!(status_of(call(ADMIN_TOKEN)).await.0, 200);
    assert_eq!(status_of(call(FILE_TOKEN_1)).await.0, 200);
    assert_eq!(status_of(call(FILE_TOKEN_2)).await.0, 401);

    std::fs::write(&file, FILE_TOKEN_2).expect("rotate");
    gw.signal("HUP");
    wait_until(Duration::from_secs(30), || async {
        status_of(call(FILE_TOKEN_2)).await.0 == 200
    })
    .await
    .unwrap_or_else(|| panic!("rotated token not accepted; log:\n{}", gw.log()));
    assert_eq!(status_of(call(FILE_TOKEN_1)).await.0, 401);
    assert_eq!(status_of(call(ADMIN_TOKEN)).await.0, 200);
}

#[tokio::test]
async fn admin_errors_are_json_with_a_stable_id() {
    let up = Upstream::start().await;
    let gw = spawn_gateway_with_env("", up.addr, "", &[]).await;
    let big = "x".repeat(70 * 1024);
    let (status, v) = status_of(gw.admin(Method::POST, "/v1/explain").body(big)).await;
    assert_eq!((status, &v["error"]), (413, &Value::from("body_too_large")));
    let (status, v) = status_of(gw.admin(Method::POST, "/v1/explain").body("{")).await;
    assert_eq!(
        (status, &v["error"]),
        (400, &Value::from("invalid_request"))
    );
    let (status, v) = status_of(gw.admin(Method::DELETE, "/healthz")).await;
    assert_eq!(
        (status, &v["error"]),
        (405, &Value::from("method_not_allowed"))
    );
}

#[tokio::test]
async fn the_served_openapi_document_is_the_committed_one_and_every_documented_route_is_served() {
    let up = Upstream::start().await;
    let gw = spawn_gateway_with_env("", up.addr, "", &[]).await;
    let resp = gw
        .admin(Method::GET, "/v1/openapi.json")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let served: Value = resp.json().await.expect("json");
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/admin-openapi.json"),
        )
        .expect("read"),
    )
    .expect("committed json");
    assert_eq!(served, committed);
    // Each documented operation reaches an endpoint: never the router's 404 or 405.
    for (path, item) in served["paths"].as_object().expect("paths") {
        let concrete = path.replace("{key_id}", "AAAAAAAAAAAAAAAA");
        for method in item.as_object().expect("item").keys() {
            if method == "parameters" {
                continue;
            }
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
            let resp = gw
                .admin(m, &concrete)
                .json(&serde_json::json!({}))
                .send()
                .await
                .expect("send");
            let status = resp.status().as_u16();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            assert_ne!(status, 405, "{method} {path}: {v}");
            assert_ne!(v["message"], "no such endpoint", "{method} {path}");
        }
    }
}
