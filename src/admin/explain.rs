//! `POST /v1/explain`: the decision the running gateway would make for a described request,
//! with the evidence, through the running config's gate (classification, authentication of the
//! given headers, store lookups, authorisation).

use super::http::{json, parse_body, AdminError, Reply};
use crate::app::Shared;
use http::StatusCode;

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

/// Explains the request described by `body` exactly as the proxy would decide it.
pub async fn explain(shared: &Shared, body: &[u8]) -> Result<Reply, AdminError> {
    let req: ExplainRequest = parse_body(body)?;
    let mut builder = http::Request::builder()
        .method(req.method.as_str())
        .uri(req.target.as_str());
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let parts = builder
        .body(())
        .map_err(|e| AdminError::BadRequest {
            field: None,
            message: format!("invalid method, target or header: {e}"),
        })?
        .into_parts()
        .0;
    let payload = match &req.body {
        None => None,
        Some(serde_json::Value::String(s)) => Some(s.clone().into_bytes()),
        Some(v) => Some(serde_json::to_vec(v).unwrap_or_default()),
    };
    let runtime = shared.runtime.load_full();
    let explained = runtime
        .gate
        .explain_request(&parts, req.target.as_bytes(), payload.as_deref(), None)
        .await;
    Ok(json(StatusCode::OK, &explained.to_json()))
}
