//! The admin listener (its own address, default `127.0.0.1:9901`): `/healthz`, `/readyz`,
//! `/metrics` and `POST /v1/explain` (the decision for a described request, with evidence).
//! Later: management API and webhooks.

use crate::app::Shared;
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;

/// Serves the admin endpoints from the shared state.
pub struct AdminApp {
    shared: Arc<Shared>,
}

impl AdminApp {
    pub fn new(shared: Arc<Shared>) -> AdminApp {
        AdminApp { shared }
    }

    /// Routes one admin request (method and path only; bodies are not read yet).
    pub fn handle(&self, method: &http::Method, path: &str) -> Response<Vec<u8>> {
        match (method.as_str(), path) {
            ("GET", "/healthz") => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
            ("GET", "/readyz") => {
                let checks = self.shared.readiness();
                let ready = checks.iter().all(|c| c.ok);
                let status = if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                json(
                    status,
                    &serde_json::json!({"ready": ready, "checks": checks}),
                )
            }
            ("GET", "/metrics") => Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                .body(self.shared.metrics.render().into_bytes())
                .unwrap_or_default(),
            (_, "/healthz" | "/readyz" | "/metrics" | "/v1/explain") => json(
                StatusCode::METHOD_NOT_ALLOWED,
                &serde_json::json!({"error": "method_not_allowed"}),
            ),
            _ => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"error": "not_found"}),
            ),
        }
    }
}

/// A JSON response with its content length (admin endpoints and the dev demo upstream).
pub fn json(status: StatusCode, v: &serde_json::Value) -> Response<Vec<u8>> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(body)
        .unwrap_or_default()
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let (method, path) = (req.method.clone(), req.uri.path().to_owned());
        if method == http::Method::POST && path == "/v1/explain" {
            return match read_body(session).await {
                Some(body) => self.explain(&body).await,
                None => json(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &serde_json::json!({"error": "body_too_large"}),
                ),
            };
        }
        self.handle(&method, &path)
    }
}

/// Largest `POST /v1/explain` body read.
const EXPLAIN_BODY_LIMIT: usize = 64 * 1024;

/// `POST /v1/explain` body: the request to explain.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainRequest {
    method: String,
    /// Origin-form target as a client would send it.
    target: String,
    /// Request headers, including the credential (`Authorization`, `Api-Key`).
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    /// The request body: a string is sent as is, any other JSON value serialised.
    #[serde(default)]
    body: Option<serde_json::Value>,
}

impl AdminApp {
    /// Explains a described request through the running config's gate, exactly as the proxy
    /// would decide it (classification, authentication, store lookups, authorisation).
    async fn explain(&self, body: &[u8]) -> Response<Vec<u8>> {
        let bad = |what: String| json(StatusCode::BAD_REQUEST, &serde_json::json!({"error": what}));
        let req: ExplainRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return bad(format!("invalid explain request: {e}")),
        };
        let mut builder = http::Request::builder()
            .method(req.method.as_str())
            .uri(req.target.as_str());
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let parts = match builder.body(()) {
            Ok(r) => r.into_parts().0,
            Err(e) => return bad(format!("invalid method, target or header: {e}")),
        };
        let payload = match &req.body {
            None => None,
            Some(serde_json::Value::String(s)) => Some(s.clone().into_bytes()),
            Some(v) => Some(serde_json::to_vec(v).unwrap_or_default()),
        };
        let runtime = self.shared.runtime.load_full();
        let explained = runtime
            .gate
            .explain_request(&parts, req.target.as_bytes(), payload.as_deref(), None)
            .await;
        json(StatusCode::OK, &explained.to_json())
    }
}

/// The whole request body, or `None` when it is over [`EXPLAIN_BODY_LIMIT`] or unreadable.
async fn read_body(session: &mut ServerSession) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > EXPLAIN_BODY_LIMIT {
                    return None;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Some(body),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the explain request body");
                return None;
            }
        }
    }
}
