//! `portcullis dev`: the gateway on loopback with a built-in config and a small bundled demo
//! upstream that answers Delivery/Management API-shaped JSON for a few sample nodes, so a
//! newcomer sees the whole flow with nothing else installed.

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};

/// The built-in dev configuration (`config/dev.toml`).
pub const DEV_CONFIG: &str = include_str!("../config/dev.toml");

/// Sample content: (key, id, name, route path, parent key).
pub const SAMPLE_NODES: &[(&str, i64, &str, &str)] = &[
    ("1f6c7c3e-3d5b-4c36-9a43-0d0b8e0c1051", 1051, "Home", "/"),
    (
        "2a0b9f4d-6e1c-4b7a-8f35-1c2d3e4f1062",
        1062,
        "Blog",
        "/blog/",
    ),
    (
        "3b1cae5e-7f2d-4c8b-9a46-2d3e4f501063",
        1063,
        "Hello world",
        "/blog/hello-world/",
    ),
    (
        "4c2dbf6f-8a3e-4d9c-8b57-3e4f50611070",
        1070,
        "Members area",
        "/members/",
    ),
];

/// The demo upstream: a stand-in for Umbraco.
pub struct DemoUpstream;

fn node_json(n: &(&str, i64, &str, &str)) -> Value {
    json!({
        "id": n.0,
        "name": n.2,
        "contentType": "page",
        "route": {"path": n.3, "startItem": {"id": SAMPLE_NODES[0].0, "path": "home"}},
        "properties": {"title": n.2},
    })
}

impl DemoUpstream {
    /// Answers one request by method and path (the path the gateway forwarded).
    pub fn answer(&self, method: &str, path: &str, seen: Value) -> (StatusCode, Value) {
        let lower = path.to_ascii_lowercase();
        let find = |needle: &str| {
            SAMPLE_NODES
                .iter()
                .find(|n| n.0 == needle || n.3.trim_matches('/') == needle.trim_matches('/'))
        };
        if let Some(rest) = lower.strip_prefix("/umbraco/delivery/api/v2/content/item/") {
            let key = percent_encoding::percent_decode_str(rest)
                .decode_utf8_lossy()
                .into_owned();
            return match find(&key) {
                Some(n) => (StatusCode::OK, node_json(n)),
                None => (StatusCode::NOT_FOUND, json!({"title": "Not Found"})),
            };
        }
        if lower == "/umbraco/delivery/api/v2/content" {
            let items: Vec<Value> = SAMPLE_NODES.iter().map(node_json).collect();
            return (
                StatusCode::OK,
                json!({"total": items.len(), "items": items}),
            );
        }
        if let Some(rest) = lower.strip_prefix("/umbraco/management/api/v1/document/") {
            return match find(rest.trim_end_matches('/')) {
                Some(n) => (
                    StatusCode::OK,
                    json!({"id": n.0, "variants": [{"name": n.2, "culture": null}], "method": method}),
                ),
                None => (StatusCode::NOT_FOUND, json!({"title": "Not Found"})),
            };
        }
        (
            StatusCode::OK,
            json!({"demo": "portcullis demo upstream", "method": method, "path": path, "seen": seen}),
        )
    }
}

#[async_trait]
impl ServeHttp for DemoUpstream {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let (method, path) = (req.method.to_string(), req.uri.path().to_owned());
        // Show which identity headers the gateway added, so the flow is visible.
        let seen: serde_json::Map<String, Value> = req
            .headers
            .iter()
            .filter(|(k, _)| {
                k.as_str().starts_with("x-portcullis-")
                    || k.as_str() == "x-request-id"
                    || k.as_str() == "api-key"
            })
            .map(|(k, v)| (k.to_string(), Value::from(v.to_str().unwrap_or("<binary>"))))
            .collect();
        let (status, body) = self.answer(&method, &path, Value::Object(seen));
        let body = serde_json::to_vec(&body).unwrap_or_default();
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .body(body)
            .unwrap_or_default()
    }
}

/// The banner `portcullis dev` prints: addresses and ready-to-paste curl lines.
pub fn banner(proxy: &str, admin: &str, upstream: &str) -> String {
    let node = SAMPLE_NODES[2].0;
    format!(
        "\nportcullis dev — development mode, do not expose\n\
         \n  proxy     http://{proxy}\n  admin     http://{admin}\n  upstream  http://{upstream} (bundled demo)\n\
         \nTry:\n  curl -i http://{proxy}/umbraco/delivery/api/v2/content/item/{node}\n  \
         curl -i http://{proxy}/umbraco/delivery/api/v2/content\n  \
         curl -i http://{proxy}/umbraco/management/api/v1/document/{node}\n  \
         curl -s http://{admin}/metrics | grep portcullis_requests_total\n  \
         curl -s http://{admin}/readyz\n\nCtrl-C stops.\n"
    )
}
