//! The admin listener (its own address, default `127.0.0.1:9901`): `/healthz`, `/readyz`,
//! `/metrics`. Later: explain, management API and webhooks.

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
            (_, "/healthz" | "/readyz" | "/metrics") => json(
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

fn json(status: StatusCode, v: &serde_json::Value) -> Response<Vec<u8>> {
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
        self.handle(&method, &path)
    }
}
