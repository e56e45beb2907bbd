//! The Umbraco mirror (docs/MIRROR.md, UMBRACO.md §10): keeps the Postgres store's users,
//! groups, granular permissions and content/media trees in step with Umbraco, read through
//! the Management API as the gateway's API user (`[upstream.credential]`).
//!
//! - [`full`]: one full sync (`portcullis sync umbraco`, the `serve` background job), each kind
//!   applied in one transaction by `store::postgres::mirror`.
//! - [`schedule`]: the `serve` background job (interval, round lock, `portcullis_sync_*`).
//! - [`languages`]: Umbraco's languages (the default one decides culture-limited keys).
//! - [`public_access`]: the protected documents' public-access entries (members by username).
//! - [`to_file`]: the same read written into a file store's policy file.
//! - [`routes`]: each document's Delivery route (`document/urls`), with the tree or per subtree.
//! - [`tree`]: the paged, bounded-concurrency walk of a tree and its recycle bin.
//! - [`webhook`]: `POST /v1/webhooks/umbraco`, refreshing what an event names.
//! - [`client`]: authenticated `GET`s; [`wire`]: Umbraco's JSON shapes.
//!
//! The mirror numbers nodes itself (Umbraco's v14+ API never shows int ids): a node keeps its
//! number while it exists, new ones come from the `content_node_mirror_ids` sequence.

pub mod client;
pub mod config;
pub mod full;
pub mod languages;
pub mod public_access;
pub mod routes;
pub mod schedule;
pub mod to_file;
pub mod tree;
pub mod webhook;
pub mod wire;

pub use config::{ExternalId, SyncConfig};
pub use full::{Snapshot, SyncKind, SyncReport};

use crate::store::StoreError;
use crate::umbraco::UmbracoError;
use sqlx::PgPool;

/// Why a sync (or a webhook's refresh) failed. Nothing of the failed kind was applied.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("reading from umbraco failed")]
    Umbraco(#[from] UmbracoError),
    #[error("writing the mirror failed")]
    Store(#[from] StoreError),
    #[error("the {kind} tree changed while it was read (a node was listed twice); retry")]
    TreeChanged { kind: &'static str },
    #[error("the {kind} tree has more than {max} nodes (sync.max_nodes)")]
    TooManyNodes { kind: &'static str, max: usize },
    #[error("the mirror needs `[upstream.credential] kind = \"umbraco_api_user\"`")]
    NoApiUser,
    #[error("the mirror needs `[store] kind = \"postgres\"`, or a policy file to write")]
    NotPostgres,
}

/// The mirror: a Management API reader, the store's pool and `[sync]`.
#[derive(Clone)]
pub struct Mirror {
    reader: client::Reader,
    pool: PgPool,
    cfg: SyncConfig,
    webhook: webhook::WebhookSecret,
}

impl Mirror {
    /// The mirror; reads the webhook secret from `cfg.webhook_secret_env`.
    pub fn new(reader: client::Reader, pool: PgPool, cfg: SyncConfig) -> Self {
        let webhook = webhook::WebhookSecret::from_config(&cfg);
        Mirror {
            reader,
            pool,
            cfg,
            webhook,
        }
    }

    /// Whether a webhook delivery carries the configured secret.
    pub fn webhook_authentic(&self, headers: &http::HeaderMap) -> bool {
        self.webhook.authentic(headers)
    }

    /// The service form for `serve`: the shared API user and the store's pool.
    pub fn for_gateway(
        config: &crate::config::Config,
        api_user: std::sync::Arc<crate::umbraco::ApiUser>,
        pool: PgPool,
        metrics: crate::umbraco::UmbracoMetrics,
    ) -> Result<Mirror, SyncError> {
        let f = &config.file;
        let client = crate::umbraco::ManagementClient::new(
            config.management_upstream,
            f.upstream.host.as_deref(),
        )?;
        let reader = client::Reader::new(client, api_user, metrics, f.sync.request_timeout);
        Ok(Mirror::new(reader, pool, f.sync.clone()))
    }
}

impl Mirror {
    /// The mirror of `config`: its Umbraco (`upstream.management`, `upstream.host`), a new API
    /// user from `[upstream.credential]` and a pool on the Postgres store. No I/O.
    pub fn from_config(
        config: &crate::config::Config,
        metrics: crate::umbraco::UmbracoMetrics,
    ) -> Result<Mirror, SyncError> {
        let reader = reader_from_config(config, metrics)?;
        if config.file.store.kind != crate::store::StoreKind::Postgres {
            return Err(SyncError::NotPostgres);
        }
        let pool = crate::store::connect(&config.file.store)?;
        Ok(Mirror::new(reader, pool, config.file.sync.clone()))
    }
}

/// A Management API reader for `config`'s Umbraco, as a new API user from
/// `[upstream.credential]`. No I/O.
pub fn reader_from_config(
    config: &crate::config::Config,
    metrics: crate::umbraco::UmbracoMetrics,
) -> Result<client::Reader, SyncError> {
    let f = &config.file;
    if f.upstream.credential.kind != crate::umbraco::CredentialKind::UmbracoApiUser {
        return Err(SyncError::NoApiUser);
    }
    let client = crate::umbraco::ManagementClient::new(
        config.management_upstream,
        f.upstream.host.as_deref(),
    )?;
    let api_user =
        crate::umbraco::ApiUser::new(&f.upstream.credential, client.clone(), metrics.clone())?;
    Ok(client::Reader::new(
        client,
        std::sync::Arc::new(api_user),
        metrics,
        f.sync.request_timeout,
    ))
}
