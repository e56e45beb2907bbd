//! Authentication: turns a request's credential into a [`Principal`] or a deny
//! (`Unauthenticated`, `InvalidToken(..)`, `AmbiguousCredentials`, `ApiKeyInQuery`).
//! Never sees pingora: reads `http::HeaderMap` / `http::Uri`.
//!
//! `credential` finds the credential, `jwt` + `jwks` verify bearer tokens, `api_key` verifies
//! Portcullis keys, `authenticator` ties them together with the token cache and metrics.

pub mod api_key;
mod authenticator;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod authenticator_tests;
pub mod config;
pub mod credential;
mod jwks;
pub mod jwt;
pub mod methods;
pub mod metrics;
pub mod openiddict;
pub mod rate_limit;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod testing;

pub use api_key::PresentedKey;
pub use authenticator::Authenticator;
pub use config::{AuthnConfig, IssuerConfig, SubjectKind};
pub use credential::{extract, extract_for, Credential};
pub use methods::{AuthMethod, AuthMethods, UmbracoAuthnConfig};
pub use metrics::AuthnMetrics;

use serde::Serialize;
use std::sync::Arc;

/// Why the authenticator could not be built or a key set could not be obtained. Never shown
/// to clients (they see `DenyReason` ids).
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error("invalid authn config: {0}")]
    Config(String),
    #[error("environment variable `{name}` is not set")]
    MissingEnv {
        name: String,
        #[source]
        source: std::env::VarError,
    },
    #[error("secret in environment variable `{name}` is shorter than {min} bytes")]
    ShortSecret { name: String, min: usize },
    #[error("registering authn metrics failed")]
    Metrics(#[source] prometheus::Error),
    #[error("building the http client failed")]
    Client(#[source] reqwest::Error),
    #[error("fetching `{url}` failed")]
    Fetch {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("`{url}` answered with status {status}")]
    Status { url: String, status: u16 },
    #[error("`{url}` sent more than {limit} bytes")]
    DocumentTooLarge { url: String, limit: usize },
    #[error("`{url}` did not send valid json")]
    Json {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("key set from `{url}` has no usable signing key")]
    NoUsableKeys { url: String },
    #[error("discovery document `{url}` names issuer `{found}`, expected `{expected}`")]
    DiscoveryIssuer {
        url: String,
        found: String,
        expected: String,
    },
    #[error("discovery document `{url}` has no acceptable `jwks_uri`")]
    DiscoveryJwksUri { url: String },
    #[error("issuer keys come from a secret and are never fetched")]
    StaticKeys,
    #[error("no issuer named `{name}`")]
    UnknownIssuer { name: String },
}

/// Who is calling, as proven by their credential. Permissions are resolved later (`store/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Stable id for logs, audit rows and the permission lookup:
    /// `jwt:{issuer}#{subject}`, `key:{key_id}`, `umbraco:{user key}`, `anonymous`. Shared
    /// with the permit and the audit event (no copy per request).
    pub id: Arc<str>,
    pub kind: PrincipalKind,
    pub subject: Subject,
}

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PrincipalKind {
    Anonymous,
    /// A bearer JWT verified against this issuer's key set.
    Jwt {
        issuer: Arc<str>,
    },
    /// A Portcullis API key (only its public id, never the secret; shared with the audit
    /// event).
    ApiKey {
        key_id: Arc<str>,
    },
    /// One of Umbraco's own tokens, accepted by Umbraco's `user/current` for this user.
    Umbraco {
        user_key: uuid::Uuid,
    },
}

impl PrincipalKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            PrincipalKind::Anonymous => "anonymous",
            PrincipalKind::Jwt { .. } => "jwt",
            PrincipalKind::ApiKey { .. } => "api_key",
            PrincipalKind::Umbraco { .. } => "umbraco",
        }
    }
}

/// What the permission lookup starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "subject")]
pub enum Subject {
    Anonymous,
    /// A back-office user, looked up in the store by external id (the mapped claim, default `sub`).
    User {
        external_id: String,
        /// Group aliases mapped from the token's groups claim; used only when the user is not
        /// registered in the store.
        mapped_groups: Vec<String>,
        /// The token's groups claim as sent, for the store's group mappings (also used only
        /// when the user is not registered).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        idp_groups: Vec<String>,
    },
    /// A Delivery API member (member bearer token): username and member groups.
    Member {
        username: String,
        groups: Vec<String>,
    },
    /// An API key with its scope.
    ApiKey(Arc<ApiKeyScope>),
    /// An Umbraco user with the access Umbraco's `user/current` described.
    Umbraco(Arc<crate::authz::UserAccess>),
}

/// What a Portcullis API key may do. Loaded from the store by key id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyScope {
    pub key_id: String,
    pub name: String,
    pub apis: Vec<crate::request::Api>,
    /// Delivery API subtree roots (node keys); empty means the whole tree.
    pub subtree_roots: Vec<uuid::Uuid>,
    /// Allowed cultures (lowercase); empty means all.
    pub cultures: Vec<String>,
    pub preview: bool,
    /// The user (external id) the key speaks for: its groups on the Management API; on both
    /// APIs the key is refused while that user is unregistered, disabled, locked or invited.
    pub acts_as: Option<String>,
    pub rate_limit_rps: Option<u32>,
}

/// A stored API key: its scope and the SHA-256 of the peppered secret. Never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub scope: Arc<ApiKeyScope>,
    /// The principal a verified key acts as, made once with the record ([`key_principal`]):
    /// a request with the key copies nothing.
    pub principal: Arc<Principal>,
    /// `SHA-256(pepper || secret)`.
    pub hash: [u8; 32],
    /// Free-text label of who answers for the key; never used to authorise (see `acts_as`).
    pub owner: String,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked: bool,
    /// After a rotation, the replaced secret, still accepted until its `expires_at`.
    pub previous: Option<PreviousSecret>,
}

/// The principal of an API key with this scope: `key:{key_id}`.
pub fn key_principal(scope: &Arc<ApiKeyScope>) -> Arc<Principal> {
    Arc::new(Principal {
        id: format!("key:{}", scope.key_id).into(),
        kind: PrincipalKind::ApiKey {
            key_id: scope.key_id.as_str().into(),
        },
        subject: Subject::ApiKey(scope.clone()),
    })
}

/// A rotated-out secret's hash and the end of its overlap window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousSecret {
    /// `SHA-256(pepper || old secret)`.
    pub hash: [u8; 32],
    pub expires_at: chrono::DateTime<chrono::Utc>,
}
