//! `portcullis dev`: the gateway on loopback with a built-in config and a small bundled demo
//! upstream that answers Delivery/Management API-shaped JSON for a few sample nodes, so a
//! newcomer sees the whole flow with nothing else installed. It also plays Umbraco's token
//! endpoint and `user/current` ([`demo_umbraco`]), so the gateway's API user and callers holding
//! Umbraco's own tokens work as in front of a real Umbraco.

pub mod demo_umbraco;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};

/// The built-in dev configuration (`config/dev.toml`).
pub const DEV_CONFIG: &str = include_str!("../config/dev.toml");
/// The demo policy it serves (`config/policy/dev.toml`).
pub const DEV_POLICY: &str = include_str!("../config/policy/dev.toml");
/// DEV-ONLY secrets, set for `portcullis dev` when the environment has none.
pub const DEV_PEPPER: &str = "portcullis-dev-pepper-DO-NOT-USE-IN-PRODUCTION";
pub const DEV_HS_SECRET: &str = "portcullis-dev-hs256-secret-DO-NOT-USE-IN-PROD";
pub const DEV_ADMIN_TOKEN: &str = "portcullis-dev-admin-token-DO-NOT-USE-IN-PROD";
/// The DEV-ONLY Delivery API key of `config/policy/dev.toml` (scoped to the blog).
pub const DEV_API_KEY: &str =
    "pcl_dev_DevBlogKey000001_DEVONLYsecretDoNotUseInProduction00000000000";

/// Sample content, matching `config/policy/dev.toml`: (key, id, name, route path).
pub const SAMPLE_NODES: &[(&str, i64, &str, &str)] = &[
    ("00000000-0000-0000-0000-000000001051", 1051, "Home", "/"),
    (
        "00000000-0000-0000-0000-000000001062",
        1062,
        "Blog",
        "/blog/",
    ),
    (
        "00000000-0000-0000-0000-000000001063",
        1063,
        "Post 1",
        "/blog/post-1/",
    ),
    (
        "00000000-0000-0000-0000-000000001070",
        1070,
        "Members",
        "/members/",
    ),
    (
        "00000000-0000-0000-0000-000000001080",
        1080,
        "About",
        "/about/",
    ),
];

/// Writes the dev config and policy into `dir` and returns the config path.
pub fn materialise(dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir.join("policy"))?;
    std::fs::write(dir.join("policy/dev.toml"), DEV_POLICY)?;
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, DEV_CONFIG)?;
    Ok(path)
}

/// A DEV-ONLY bearer token for `user` from the dev issuer, valid for 12 hours.
pub fn mint_dev_token(user: &str) -> Option<String> {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": "https://dev.portcullis.invalid", "aud": "portcullis-dev", "sub": user,
        "iat": now, "exp": now + 12 * 3600,
    });
    let key = jsonwebtoken::EncodingKey::from_secret(DEV_HS_SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).ok()
}

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
            let id = rest.split('/').next().unwrap_or_default();
            return match find(id) {
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

/// A token request's form body is small; more is not read.
const DEMO_BODY_LIMIT: usize = 8 * 1024;

async fn read_small_body(session: &mut ServerSession) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = session.read_request_body().await {
        if body.len() + chunk.len() > DEMO_BODY_LIMIT {
            break;
        }
        body.extend_from_slice(&chunk);
    }
    body
}

#[async_trait]
impl ServeHttp for DemoUpstream {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let (method, path) = (req.method.to_string(), req.uri.path().to_owned());
        if method == "POST" && path.eq_ignore_ascii_case(demo_umbraco::TOKEN_PATH) {
            let body = read_small_body(session).await;
            let (status, answer) = demo_umbraco::token(&body);
            return crate::admin::json(status, &answer);
        }
        let req = session.req_header();
        // Umbraco's Management API acts for the user of the token it receives.
        let acting = demo_umbraco::caller(&req.headers);
        if demo_umbraco::is_management(&path) {
            let Some(user) = acting else {
                let (status, body) = demo_umbraco::unauthorized();
                let mut resp = crate::admin::json(status, &body);
                resp.headers_mut()
                    .insert("www-authenticate", http::HeaderValue::from_static("Bearer"));
                return resp;
            };
            if let Some((status, body)) = demo_umbraco::current_user(&path, user) {
                return crate::admin::json(status, &body);
            }
        }
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
        let (status, mut body) = self.answer(&method, &path, Value::Object(seen));
        if let (Some(user), Some(obj)) = (acting, body.as_object_mut()) {
            obj.insert("umbracoUser".into(), Value::from(user.user_name()));
        }
        crate::admin::json(status, &body)
    }
}

/// The banner `portcullis dev` prints: addresses and ready-to-paste curl lines.
pub fn banner(proxy: &str, admin: &str, upstream: &str) -> String {
    let post = SAMPLE_NODES[2].0;
    let about = SAMPLE_NODES[4].0;
    let editor = mint_dev_token("dev-editor").unwrap_or_default();
    let writer = mint_dev_token("dev-writer").unwrap_or_default();
    let (umb, cookie) = (
        demo_umbraco::DEV_UMBRACO_TOKEN,
        demo_umbraco::DEV_UMBRACO_COOKIE,
    );
    format!(
        "\nportcullis dev — development mode, dev-only secrets, do not expose\n\
         \n  proxy     http://{proxy}\n  admin     http://{admin}\n  upstream  http://{upstream} (bundled demo)\n\
         \nDelivery API (public reads; the dev key is scoped to /blog/):\n  \
         curl -i http://{proxy}/umbraco/delivery/api/v2/content/item/{post}\n  \
         curl -i -H 'Api-Key: {DEV_API_KEY}' -H 'Preview: true' http://{proxy}/umbraco/delivery/api/v2/content/item/{post}   # 403 preview_not_allowed\n  \
         curl -i -H 'Api-Key: {DEV_API_KEY}' http://{proxy}/umbraco/delivery/api/v2/content/item/{about}   # 403 outside_key_scope\n\
         \nManagement API (an editor and a writer, HS256 tokens valid 12 h; Umbraco sees the dev API user):\n  \
         curl -i -H 'Authorization: Bearer {editor}' http://{proxy}/umbraco/management/api/v1/document/{post}\n  \
         curl -i -X PUT -H 'Authorization: Bearer {writer}' -H 'Content-Type: application/json' -d '{{\"publishSchedules\":[{{\"culture\":null}}]}}' http://{proxy}/umbraco/management/api/v1/document/{post}/publish   # 403 missing_verb\n  \
         curl -i http://{proxy}/umbraco/management/api/v1/document/{post}   # 401 unauthenticated\n\
         \nManagement API with Umbraco's own tokens (checked with the demo upstream's user/current):\n  \
         curl -i -H 'Authorization: Bearer {umb}' http://{proxy}/umbraco/management/api/v1/document/{post}\n  \
         curl -i -H 'Authorization: Bearer [redacted]' -H 'Cookie: umbAccessToken={cookie}' http://{proxy}/umbraco/management/api/v1/document/{post}\n  \
         curl -i -X DELETE -H 'Authorization: Bearer {umb}' http://{proxy}/umbraco/management/api/v1/document/{post}   # 403 missing_verb\n  \
         curl -i -H 'Authorization: Bearer not-an-umbraco-token' http://{proxy}/umbraco/management/api/v1/document/{post}   # 401 invalid_token\n\
         \nOperators (the admin API needs the dev admin token; probes are open):\n  \
         curl -s http://{admin}/readyz\n  \
         curl -s http://{admin}/metrics | grep portcullis_requests_total\n  \
         curl -s -H 'Authorization: Bearer {DEV_ADMIN_TOKEN}' http://{admin}/v1/explain -d '{{\"method\":\"GET\",\"target\":\"/umbraco/delivery/api/v2/content/item/{about}\",\"headers\":{{\"api-key\":\"{DEV_API_KEY}\"}}}}'\n  \
         curl -s -H 'Authorization: Bearer {DEV_ADMIN_TOKEN}' http://{admin}/v1/keys\n  \
         curl -i http://{admin}/v1/explain -d '{{}}'   # 401 unauthenticated\n\nCtrl-C stops.\n"
    )
}
