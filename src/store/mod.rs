//! The policy store: what may a principal do? Owns the data half of authorization — users,
//! groups, granular entries, the content tree mirror, public access and API keys — behind the
//! [`PolicyStore`] I/O seam, and the in-memory [`PolicyCache`] the hot path reads from.
//!
//! - [`postgres`]: `PostgresStore`, migrations, `policy apply/export` (the only SQL in the crate).
//! - [`file`]: `FileStore`, the embedded default, read from a TOML policy file ([`policy_file`]).
//! - [`cache`]: moka caches with coalesced misses, serve-stale and fail-closed errors.
//! - [`listen`]: `LISTEN portcullis_policy` push invalidation with reconnect and TTL fallback.

pub mod cache;
pub mod config;
pub mod fault;
pub mod file;
pub mod file_edit;
mod file_load;
pub mod keys;
pub mod listen;
pub mod metrics;
pub mod overrides;
mod policy_check;
pub mod policy_file;
mod policy_parse;
pub mod policy_verbs;
pub mod postgres;

pub use cache::{Freshness, PolicyCache};
pub use config::{CacheConfig, StoreConfig, StoreKind};
pub use file::FileStore;
pub use keys::{ChangeRow, KeyView, KeyWriter};
pub use listen::{Invalidation, Listener};
pub use metrics::StoreMetrics;
pub use overrides::OverrideWriter;
pub use policy_file::{PolicyFile, StartRef};
pub use postgres::{
    apply_policy, connect, connect_with, export_policy, migrate, ApplyReport, PostgresStore,
};

use crate::authn::ApiKeyRecord;
use crate::authz::{GroupPolicy, NodeId, NodeInfo, UserState};
use async_trait::async_trait;
use std::sync::Arc;
use uuid::Uuid;

/// Why the store could not answer. The lead maps any of these on the request path to
/// `DenyReason::StoreUnavailable` (503); the text is for logs only.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A query failed (connection, timeout, SQL error).
    #[error("database query `{query}` failed")]
    Database {
        query: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// Migrations could not be applied.
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A stored row cannot be turned into the model (bad enum text, broken path).
    #[error("stored {what} `{value}` is invalid")]
    Corrupt { what: &'static str, value: String },
    /// The policy file cannot be read.
    #[error("cannot read policy file `{path}`")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The policy file is not valid TOML for the schema.
    #[error("cannot parse policy file `{path}`")]
    ParseFile {
        path: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    /// The policy file cannot be written (admin changes to a file store).
    #[error("cannot write `{path}`")]
    WriteFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The policy file cannot be edited (its TOML does not round-trip).
    #[error("cannot edit policy file `{path}`: {message}")]
    EditFile { path: String, message: String },
    /// The policy file parses but is inconsistent; every problem is listed.
    #[error("policy file is invalid: {}", .0.join("; "))]
    InvalidPolicy(Vec<String>),
    /// The environment variable naming the database URL is not set.
    #[error("environment variable `{name}` with the database url is not usable")]
    MissingDatabaseUrl {
        name: String,
        #[source]
        source: std::env::VarError,
    },
    /// A cached load failed and nothing usable was cached (shared by coalesced callers).
    #[error("policy store unavailable")]
    Unavailable(#[source] Arc<StoreError>),
    /// A query (or the listener's heartbeat) did not finish in time.
    #[error("`{query}` did not finish within {after:?}")]
    Timeout {
        query: &'static str,
        after: std::time::Duration,
    },
    /// An uncached API key id was not looked up: the lookup rate limit is spent.
    #[error("api key lookup rate limit reached")]
    LookupLimited,
    /// Umbraco's tree API could not resolve a node the store does not know.
    #[error("umbraco could not resolve a node")]
    Upstream(#[source] Arc<crate::umbraco::UmbracoError>),
}

/// One back-office user as stored: identity, state, group keys and own start node keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub key: Uuid,
    pub external_id: String,
    pub name: String,
    pub state: UserState,
    pub group_keys: Vec<Uuid>,
    pub group_aliases: Vec<String>,
    /// The user's own content start nodes (the root or node keys); resolved to paths by the
    /// cache, which ignores unknown and trashed ones as Umbraco does.
    pub content_start: Vec<StartRef>,
    pub media_start: Vec<StartRef>,
}

/// At most this many documents are returned for one route key: two already make it ambiguous
/// without a root, and a few more let a `Start-Item` pick among sites.
pub const MAX_ROUTE_MATCHES: usize = 16;

/// The I/O seam between the gateway and its policy data. `PostgresStore` and `FileStore`
/// implement it; the hot path never calls it directly, only through [`PolicyCache`].
///
/// Every method returns `Ok(None)` for "does not exist" and `Err` only when the store cannot
/// answer; callers fail closed on `Err`.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// The user mapped from a token (external id, e.g. `sub`), with group keys and aliases.
    async fn user_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<UserRecord>, StoreError>;
    /// The external id of the user with this key (user routes name users by key).
    async fn user_external_id(&self, key: Uuid) -> Result<Option<String>, StoreError>;
    /// One group with its granular entries keyed by node int id. The group's start nodes come
    /// as paths; a trashed or unknown start node is `None` (the group contributes nothing).
    async fn group(&self, key: Uuid) -> Result<Option<GroupPolicy>, StoreError>;
    /// The key of the group with this alias (for tokens mapped to groups by alias).
    async fn group_key_by_alias(&self, alias: &str) -> Result<Option<Uuid>, StoreError>;
    /// A node of the content mirror by key, with its own public-access entry.
    async fn node(&self, key: Uuid) -> Result<Option<NodeInfo>, StoreError>;
    /// A node by Umbraco int id.
    async fn node_by_id(&self, id: NodeId) -> Result<Option<NodeInfo>, StoreError>;
    /// Every live (not trashed) document whose Delivery route path has the route key `key`
    /// (`crate::authz::route_key`: `/blog/post-1/`), across all roots, at most
    /// [`MAX_ROUTE_MATCHES`]; the decision picks the one under the request's root.
    async fn nodes_by_route(&self, key: &str) -> Result<Vec<NodeInfo>, StoreError>;
    /// The ids of every node with a public-access entry (any order). Member protection reads
    /// only these ancestors of a Delivery item, so a store must list every one.
    async fn protected_nodes(&self) -> Result<Vec<NodeId>, StoreError>;
    /// A gateway API key by its public id (revoked and expired keys are returned as stored).
    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// The stored group mappings of issuer `issuer` (its configured name) as (IdP group,
    /// group key) pairs. A store without stored mappings has none.
    async fn group_mappings(&self, _issuer: &str) -> Result<Vec<(String, Uuid)>, StoreError> {
        Ok(Vec::new())
    }
    /// The ISO code of the mirrored default language (the culture Umbraco serves a Delivery
    /// request without `Accept-Language`). A store without mirrored languages has none.
    async fn default_language(&self) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    /// Records that these keys were used (`last_used_at`); called off the hot path, batched.
    async fn touch_api_keys(
        &self,
        key_ids: &[String],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;
}

/// Parses a stored user state (`active`, `disabled`, `locked`, `invited`).
pub(crate) fn parse_state(s: &str) -> Result<UserState, StoreError> {
    match s {
        "active" => Ok(UserState::Active),
        "disabled" => Ok(UserState::Disabled),
        "locked" => Ok(UserState::Locked),
        "invited" => Ok(UserState::Invited),
        other => Err(StoreError::Corrupt {
            what: "user state",
            value: other.to_owned(),
        }),
    }
}

/// The stored text of a user state.
pub(crate) fn state_str(s: UserState) -> &'static str {
    match s {
        UserState::Active => "active",
        UserState::Disabled => "disabled",
        UserState::Locked => "locked",
        UserState::Invited => "invited",
    }
}

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod file_tests;
#[cfg(test)]
mod languages_tests;
#[cfg(test)]
mod mirror_tests;
#[cfg(test)]
mod ownership_tests;
#[cfg(test)]
mod pg_fault_tests;
#[cfg(test)]
mod pg_tests;
#[cfg(test)]
mod policy_parse_tests;
#[cfg(test)]
pub(crate) mod tests;
