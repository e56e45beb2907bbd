//! `POST /v1/webhooks/umbraco` (docs/MIRROR.md): authenticated by the mirror's webhook secret
//! in [`super::AdminApp::authorize`] before the body is read; here the event and its ids are
//! read and what they name is refreshed from Umbraco. A failure to reach Umbraco or the store
//! is a 503, so Umbraco retries the delivery.

use super::http::{AdminError, AdminRequest, Reply};
use super::json;
use crate::app::Shared;
use crate::mirror::webhook::{
    payload_ids, payload_permissions, refresh_for, Refresh, EVENT_HEADER,
};
use http::StatusCode;

pub async fn deliver(shared: &Shared, req: &AdminRequest) -> Result<Reply, AdminError> {
    let Some(mirror) = shared.services.mirror.as_ref() else {
        return Err(AdminError::NotConfigured {
            what: "the umbraco mirror",
        });
    };
    let event = req
        .headers
        .get(EVENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let refresh = refresh_for(&event);
    if refresh == Refresh::Ignored {
        return Ok(json(
            StatusCode::OK,
            &serde_json::json!({"event": event, "ignored": true}),
        ));
    }
    let (ids, named) = if refresh == Refresh::AllGroups {
        let n = payload_permissions(&req.body).map_err(|m| AdminError::bad("body", m))?;
        (Vec::new(), n)
    } else {
        let ids = payload_ids(&req.body).map_err(|m| AdminError::bad("body", m))?;
        let n = ids.len();
        (ids, n)
    };
    match mirror.refresh(refresh, &ids).await {
        Ok(report) => Ok(json(
            StatusCode::OK,
            &serde_json::json!({"event": event, "ids": named, "changed": report.changed()}),
        )),
        Err(e) => {
            tracing::warn!(umbraco.event = %event, error = %crate::config::error_chain(&e), "webhook refresh failed; umbraco will retry");
            Ok(json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"error": "mirror_unavailable", "message": "the change could not be applied now; retry"}),
            ))
        }
    }
}
