//! Authentication: turns a request's credential into a [`Principal`] or a deny
//! (`Unauthenticated`, `InvalidToken(..)`, `AmbiguousCredentials`, `ApiKeyInQuery`).
//! Never sees pingora: reads `http::HeaderMap` / `http::Uri`.

use serde::Serialize;
use std::sync::Arc;

/// Who is calling, as proven by their credential. Permissions are resolved later (`store/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Stable id for logs, audit rows and the permission lookup:
    /// `jwt:{issuer}#{subject}`, `key:{key_id}`, `anonymous`.
    pub id: String,
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
    /// A Portcullis API key (only its public id, never the secret).
    ApiKey {
        key_id: String,
    },
}

impl PrincipalKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            PrincipalKind::Anonymous => "anonymous",
            PrincipalKind::Jwt { .. } => "jwt",
            PrincipalKind::ApiKey { .. } => "api_key",
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
    },
    /// A Delivery API member (member bearer token): username and member groups.
    Member {
        username: String,
        groups: Vec<String>,
    },
    /// An API key with its scope.
    ApiKey(Arc<ApiKeyScope>),
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
    /// Management API: the user (external id) whose groups the key acts with.
    pub acts_as: Option<String>,
    pub rate_limit_rps: Option<u32>,
}

/// A stored API key: its scope and the SHA-256 of the peppered secret. Never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub scope: Arc<ApiKeyScope>,
    /// `SHA-256(pepper || secret)`.
    pub hash: [u8; 32],
    pub owner: String,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked: bool,
}
