//! `[sync]`: how the mirror pulls from Umbraco (page size, concurrency, which user field is the
//! store's external id) and when `serve` runs it. The Umbraco address and the API user come
//! from `[upstream]` and `[upstream.credential]`.

use crate::config::Problems;
use serde::Deserialize;
use std::time::Duration;

/// Which field of an Umbraco user becomes the store's `external_id`: the value the gateway's
/// issuers put in the subject claim (`authn.issuers[].subject_claim`) for that user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExternalId {
    /// `userName` (Umbraco's login name; the e-mail address unless configured otherwise).
    #[default]
    UserName,
    /// `email`.
    Email,
    /// The user's key (`id`), lowercase hyphenated.
    Key,
}

/// The shortest `sync.interval`: a sync every second is already only sensible in tests.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// `[sync]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// How often `serve` runs a full sync (with a Postgres store and an API user), counted
    /// from the end of the previous round; also once at start when the store has no mirrored
    /// node. One replica at a time: a replica that finds another's round running skips its own.
    /// At least [`MIN_INTERVAL`]. Read at start (a reload does not change it).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Items asked for per page (`take`).
    pub page_size: u32,
    /// Management API calls in flight at once.
    pub concurrency: usize,
    /// The most nodes one tree may have; a larger tree fails the sync (bounded memory).
    pub max_nodes: usize,
    /// Timeout of one Management API call.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Longest time one apply transaction may run (`statement_timeout` inside it).
    #[serde(with = "humantime_serde")]
    pub apply_timeout: Duration,
    pub external_id: ExternalId,
    /// The custom header Umbraco's webhooks carry the secret in.
    pub webhook_header: String,
    /// Environment variable holding the webhook secret; unset or empty refuses every delivery.
    pub webhook_secret_env: String,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            interval: Duration::from_secs(15 * 60),
            page_size: 200,
            concurrency: 8,
            max_nodes: 2_000_000,
            request_timeout: Duration::from_secs(30),
            apply_timeout: Duration::from_secs(300),
            external_id: ExternalId::UserName,
            webhook_header: "X-Portcullis-Webhook-Secret".to_owned(),
            webhook_secret_env: "PORTCULLIS_UMBRACO_WEBHOOK_SECRET".to_owned(),
        }
    }
}

impl SyncConfig {
    /// Records every problem of the section (called by `config.rs`).
    pub fn validate(&self, p: &mut Problems) {
        if !(1..=1000).contains(&self.page_size) {
            p.push("sync.page_size", "must be between 1 and 1000");
        }
        if !(1..=64).contains(&self.concurrency) {
            p.push("sync.concurrency", "must be between 1 and 64");
        }
        if self.max_nodes == 0 {
            p.push("sync.max_nodes", "must be greater than zero");
        }
        if self.request_timeout.is_zero() {
            p.push("sync.request_timeout", "must be greater than zero");
        }
        if http::HeaderName::from_bytes(self.webhook_header.as_bytes()).is_err() {
            p.push("sync.webhook_header", "must be a valid header name");
        }
        if self.interval < MIN_INTERVAL {
            p.push("sync.interval", "must be at least 1s");
        }
        if self.apply_timeout < Duration::from_millis(1) {
            p.push("sync.apply_timeout", "must be at least 1ms");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let cfg: SyncConfig = toml::from_str(text).unwrap();
        let mut p = Problems::default();
        cfg.validate(&mut p);
        p.0
    }

    #[test]
    fn the_defaults_are_valid_and_sync_every_15_minutes() {
        assert!(problems("").is_empty());
        assert_eq!(SyncConfig::default().interval, Duration::from_secs(900));
    }

    #[test]
    fn out_of_range_values_are_each_reported() {
        let p =
            problems("page_size = 0\nconcurrency = 100\nmax_nodes = 0\nrequest_timeout = \"0s\"");
        assert_eq!(p.len(), 4, "{p:?}");
    }

    #[test]
    fn the_interval_may_be_as_short_as_a_second_but_not_shorter() {
        assert!(problems("interval = \"1s\"").is_empty());
        assert_eq!(
            problems("interval = \"999ms\""),
            ["sync.interval: must be at least 1s"]
        );
        assert_eq!(problems("interval = \"0s\"").len(), 1);
    }

    #[test]
    fn unknown_keys_and_external_ids_are_refused() {
        assert!(toml::from_str::<SyncConfig>("intervall = \"1m\"").is_err());
        assert!(toml::from_str::<SyncConfig>("external_id = \"login\"").is_err());
        let c: SyncConfig = toml::from_str("external_id = \"email\"").unwrap();
        assert_eq!(c.external_id, ExternalId::Email);
    }
}
