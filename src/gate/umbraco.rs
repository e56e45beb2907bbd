//! The gate's side of the `umbraco` authenticator: Umbraco's session check as a principal, and
//! nodes the store does not know resolved through Umbraco's tree API.

use super::Gate;
use crate::authn::openiddict::AccessCookie;
use crate::authn::{Principal, PrincipalKind};
use crate::authz::{DenyReason, NodeInfo};
use crate::store::StoreError;
use crate::umbraco::{CredentialParts, SessionOutcome};
use std::sync::Arc;
use tokio::time::Instant;

impl Gate {
    /// The `umbraco` authenticator: what Umbraco's `user/current` says of the credential parts
    /// (the `Authorization` value as received, and the access cookie of the `[redacted]` form),
    /// cached; 503 when Umbraco cannot answer in time and nothing is cached.
    pub(super) async fn umbraco_session(
        &self,
        parts: &http::request::Parts,
        cookie: Option<&AccessCookie>,
        deadline: Instant,
    ) -> Result<Arc<Principal>, DenyReason> {
        let services = self.services();
        let (Some(sessions), Some(authorization)) = (
            &services.sessions,
            parts.headers.get(http::header::AUTHORIZATION),
        ) else {
            return Err(DenyReason::Unauthenticated);
        };
        let parts = CredentialParts {
            authorization,
            cookie,
        };
        let check = sessions.check(parts, &services.cache);
        match tokio::time::timeout_at(deadline, check).await {
            Ok(Ok(SessionOutcome::User(principal))) => Ok(principal),
            Ok(Ok(SessionOutcome::Rejected(reason))) => Err(reason),
            Ok(Err(e)) => {
                tracing::warn!(error = %crate::config::error_chain(&*e), "umbraco cannot check the session; failing closed");
                Err(DenyReason::StoreUnavailable)
            }
            Err(_) => {
                tracing::warn!("umbraco did not check the session within the decision deadline; failing closed");
                Err(DenyReason::StoreUnavailable)
            }
        }
    }

    /// The document that owns a version, asked of Umbraco (cached) for authenticated callers;
    /// `None` (unknown: the unknown-node mode decides) without an API user or for anonymous.
    pub(super) async fn version_owner(
        &self,
        version: uuid::Uuid,
        principal: &Principal,
    ) -> Result<Option<uuid::Uuid>, StoreError> {
        match &self.services().versions {
            Some(v) if principal.kind != PrincipalKind::Anonymous => {
                v.owner(version).await.map_err(StoreError::Upstream)
            }
            _ => Ok(None),
        }
    }

    /// A node by key from the store; one the store does not know is resolved through
    /// Umbraco's tree API (when an API user is configured) for authenticated callers.
    pub(super) async fn node(
        &self,
        key: uuid::Uuid,
        principal: &Principal,
    ) -> Result<Option<Arc<NodeInfo>>, StoreError> {
        let services = self.services();
        let known = services.cache.node(key).await?;
        match (&known, &services.nodes, &principal.kind) {
            (None, Some(nodes), kind) if *kind != PrincipalKind::Anonymous => nodes
                .node(key, &services.cache)
                .await
                .map_err(StoreError::Upstream),
            _ => Ok(known),
        }
    }
}
