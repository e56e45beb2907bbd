//! The admin listener (its own address, default `127.0.0.1:9901`). Probes (`/healthz`,
//! `/readyz`, `/metrics`; open by default, configurable) and the `/v1/…` admin API, which
//! always needs an admin bearer token (`auth.rs`): `POST /v1/explain` (the decision for a
//! described request, with evidence), `GET /v1/audit` (the audit trail, paginated) and the API
//! key lifecycle under `/v1/keys` (`keys.rs`), local overrides under `/v1/overrides`
//! (`overrides.rs`).
//! `POST /v1/webhooks/umbraco` (`webhook.rs`) takes Umbraco's webhook secret instead.
//!
//! `routes.rs` is the route table, `http.rs` the request/reply/error vocabulary.

pub mod audit;
pub mod auth;
pub mod config;
mod explain;
pub mod http;
mod key_fields;
pub mod keys;
mod override_fields;
pub mod overrides;
pub mod routes;
mod webhook;

pub use self::http::json;
pub use auth::{Actor, AdminAuth};
pub use config::AdminConfig;

use self::http::{AdminError, AdminRequest, Reply, BODY_LIMIT};
use crate::app::Shared;
use ::http::StatusCode;
use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use routes::Endpoint;
use std::sync::Arc;

/// Serves the admin endpoints from the shared state.
pub struct AdminApp {
    shared: Arc<Shared>,
}

impl AdminApp {
    pub fn new(shared: Arc<Shared>) -> AdminApp {
        AdminApp { shared }
    }

    /// Who is asking: `Ok(None)` for an open probe, the token's actor, or 401. Runs before
    /// the body is read, so an unauthenticated caller cannot make the gateway read one.
    pub fn authorize(&self, req: &AdminRequest) -> Result<Option<Actor>, AdminError> {
        let runtime = self.shared.runtime.load();
        let auth = &runtime.admin;
        if auth.is_open(&req.path) {
            return Ok(None);
        }
        if req.path == crate::mirror::webhook::PATH {
            // Umbraco's webhooks carry the mirror's secret header, not an admin token.
            let mirror = self.shared.services.mirror.as_ref();
            return match mirror.is_some_and(|m| m.webhook_authentic(&req.headers)) {
                true => Ok(None),
                false => Err(AdminError::Unauthenticated),
            };
        }
        auth.authenticate(&req.headers)
            .map(Some)
            .ok_or(AdminError::Unauthenticated)
    }

    /// Answers one authorised request read whole: routing, then the endpoint. Every failure
    /// is a JSON error reply.
    pub async fn handle(&self, req: AdminRequest) -> Reply {
        let matched = match routes::find(req.method.as_str(), &req.path) {
            Ok(m) => m,
            Err(e) => return e.reply(),
        };
        let result = match matched.endpoint {
            Endpoint::Healthz => Ok(json(StatusCode::OK, &serde_json::json!({"status": "ok"}))),
            Endpoint::Readyz => Ok(self.readyz()),
            Endpoint::Metrics => {
                // Cache sizes and staleness are read at scrape time.
                self.shared.services.cache.update_entry_gauges();
                Ok(::http::Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                    .body(self.shared.metrics.render().into_bytes())
                    .unwrap_or_default())
            }
            Endpoint::Explain => explain::explain(&self.shared, &req.body).await,
            Endpoint::OpenApi => Ok(::http::Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(routes::OPENAPI.as_bytes().to_vec())
                .unwrap_or_default()),
            Endpoint::Audit => audit::audit(self.shared.audit_db.as_ref(), &req).await,
            Endpoint::KeyList => keys::list(&self.shared, &req).await,
            Endpoint::KeyCreate => keys::create(&self.shared, &req).await,
            Endpoint::UmbracoWebhook => webhook::deliver(&self.shared, &req).await,
            Endpoint::Override(resource, op) => {
                overrides::serve(&self.shared, &req, resource, op, &matched.params).await
            }
            other => self.key(other, &req, &matched.params).await,
        };
        result.unwrap_or_else(|e| e.reply())
    }

    /// The endpoints of one key (`/v1/keys/{key_id}…`); an id that cannot exist is a 404.
    async fn key(
        &self,
        endpoint: Endpoint,
        req: &AdminRequest,
        params: &[String],
    ) -> Result<Reply, AdminError> {
        let key_id = params.first().map(String::as_str).unwrap_or_default();
        if !keys::plausible_id(key_id) {
            return Err(AdminError::NotFound {
                what: format!("api key `{key_id}`"),
            });
        }
        let s = &self.shared;
        match endpoint {
            Endpoint::KeyGet => keys::get(s, key_id).await,
            Endpoint::KeyUpdate => keys::update(s, req, key_id).await,
            Endpoint::KeyRevoke => keys::revoke(s, req, key_id).await,
            Endpoint::KeyRotate => keys::rotate(s, req, key_id).await,
            _ => Err(AdminError::NoRoute),
        }
    }

    fn readyz(&self) -> Reply {
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
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Reply {
        let head = session.req_header();
        let query = head
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let mut req = AdminRequest {
            method: head.method.clone(),
            path: head.uri.path().to_owned(),
            query,
            headers: head.headers.clone(),
            body: Vec::new(),
            actor: None,
        };
        match self.authorize(&req) {
            Ok(actor) => req.actor = actor,
            Err(e) => return e.reply(),
        }
        match read_body(session).await {
            Ok(body) => req.body = body,
            Err(e) => return e.reply(),
        }
        self.handle(req).await
    }
}

/// The whole request body; 413 over [`BODY_LIMIT`], 400 when it cannot be read.
async fn read_body(session: &mut ServerSession) -> Result<Vec<u8>, AdminError> {
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > BODY_LIMIT {
                    return Err(AdminError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the admin request body");
                return Err(AdminError::BadRequest {
                    field: None,
                    message: "the request body could not be read".into(),
                });
            }
        }
    }
}
