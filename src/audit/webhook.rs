//! Webhook sink: one `POST` per batch with a JSON array of events (for SIEMs). Delivery is
//! at-least-once (a timed-out batch is retried); receivers dedupe on `event_id`.

use super::{AuditError, AuditEvent, AuditSink};
use std::sync::Arc;
use std::time::Duration;

/// Batched HTTP sink.
pub struct WebhookSink {
    name: String,
    url: reqwest::Url,
    /// Sent as `Authorization: Bearer …`; from the env var the config names, never logged.
    token: Option<String>,
    client: reqwest::Client,
}

/// A non-2xx answer from the webhook.
#[derive(Debug, thiserror::Error)]
#[error("webhook answered status {0}")]
pub struct StatusError(pub u16);

impl WebhookSink {
    /// A sink posting to `url`; each request is bounded by `timeout`.
    pub fn new(
        name: String,
        url: &str,
        token: Option<String>,
        timeout: Duration,
    ) -> Result<Self, AuditError> {
        let url = reqwest::Url::parse(url).map_err(|e| AuditError::InvalidUrl {
            sink: name.clone(),
            source: Box::new(e),
        })?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| AuditError::SinkUnavailable {
                sink: name.clone(),
                source: Box::new(e),
            })?;
        Ok(WebhookSink {
            name,
            url,
            token,
            client,
        })
    }
}

#[async_trait::async_trait]
impl AuditSink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&self, batch: &[Arc<AuditEvent>]) -> Result<(), AuditError> {
        let events: Vec<&AuditEvent> = batch.iter().map(|e| &**e).collect();
        let mut req = self.client.post(self.url.clone()).json(&events);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| AuditError::SinkUnavailable {
            sink: self.name.clone(),
            source: Box::new(e),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let err = Box::new(StatusError(status.as_u16()));
        // 4xx other than timeout / rate limit: the same body will be refused again.
        if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
            Err(AuditError::Rejected {
                sink: self.name.clone(),
                source: err,
            })
        } else {
            Err(AuditError::SinkUnavailable {
                sink: self.name.clone(),
                source: err,
            })
        }
    }
}
