//! What a decision waits for, when [`Gate::decide_now`] could not answer from the caches:
//! the credential's principal, the principal's user access and every lookup the decision
//! needs, each from the store under the decision's deadline. `warm` answers the same
//! questions without waiting, from what is cached.

use super::{warm, Gate};
use crate::authn::{AuthMethod, Credential, Principal, PrincipalKind, Subject};
use crate::authz::{
    next_refs, required_refs, DenyReason, Lookup, Resolved, TokenProblem, UserAccess, Who,
};
use crate::request::{Api, Target};
use crate::store::StoreError;
use std::sync::Arc;
use tokio::time::Instant;

impl Gate {
    /// Turns the request's credential into a principal (anonymous when there is none), with
    /// the authenticators `api` accepts: a bearer token is the `jwt` authenticator's when it is
    /// a JWT of a configured issuer, else `umbraco`'s when that applies.
    pub(super) async fn authenticate(
        &self,
        parts: &http::request::Parts,
        api: Api,
        deadline: Instant,
    ) -> Result<Arc<Principal>, DenyReason> {
        let s = &self.services;
        let allows = |m| self.methods.allows(api, m);
        let not_accepted = DenyReason::InvalidToken(TokenProblem::NotAccepted);
        let umbraco = allows(AuthMethod::Umbraco) && s.sessions.is_some();
        match crate::authn::extract_for(&parts.headers, &parts.uri, &self.site_name)? {
            Credential::None => Ok(warm::anonymous()),
            Credential::Bearer(token) if umbraco && !s.authn.owns_bearer(&token) => {
                self.umbraco_session(parts, None, deadline).await
            }
            Credential::Bearer(token) if allows(AuthMethod::Jwt) => {
                s.authn.verify_bearer(&token).await
            }
            Credential::BackOfficeCookie(cookie) if umbraco => {
                self.umbraco_session(parts, Some(&cookie), deadline).await
            }
            Credential::ApiKey(key) if allows(AuthMethod::ApiKey) => {
                let record = bounded(deadline, s.cache.api_key(key.key_id())).await?;
                self.key_principal(&key, record.as_deref())
            }
            Credential::Bearer(_) | Credential::ApiKey(_) | Credential::BackOfficeCookie(_) => {
                Err(not_accepted)
            }
        }
    }

    /// The user access a principal acts with: a registered user, a token's mapped groups, or
    /// the user an API key acts as. `None` for anonymous callers, members and plain keys.
    pub(super) async fn access(
        &self,
        principal: &Principal,
    ) -> Result<Option<Arc<UserAccess>>, StoreError> {
        let cache = &self.services.cache;
        match &principal.subject {
            Subject::User {
                external_id,
                mapped_groups,
                idp_groups,
            } => {
                if let Some(a) = cache.user_access(external_id).await? {
                    return Ok(Some(a));
                }
                let stored = match &principal.kind {
                    PrincipalKind::Jwt { issuer } => {
                        cache.stored_mappings(issuer, idp_groups).await?
                    }
                    _ => Vec::new(),
                };
                if mapped_groups.is_empty() && stored.is_empty() {
                    return Ok(None);
                }
                let a = cache.mapped_access(external_id, mapped_groups, &stored);
                Ok(Some(a.await?))
            }
            Subject::ApiKey(scope) => match &scope.acts_as {
                Some(user) => cache.user_access(user).await,
                None => Ok(None),
            },
            Subject::Umbraco(access) => Ok(Some(access.clone())),
            Subject::Anonymous | Subject::Member { .. } => Ok(None),
        }
    }

    /// Answers every lookup the decision needs, from the cache (rounds until none remain).
    pub(super) async fn resolve(
        &self,
        target: &Target,
        principal: &Principal,
        who: &Who<'_>,
    ) -> Result<Resolved, StoreError> {
        let cache = &self.services.cache;
        let mut resolved = Resolved::default();
        let mut todo = required_refs(target, principal);
        for _ in 0..4 {
            if todo.is_empty() {
                break;
            }
            for l in &todo {
                match l {
                    Lookup::Node(k) => resolved.put_node(l, self.node(*k, principal).await?),
                    Lookup::RoutePath(p) => resolved.put_routes(p, cache.nodes_by_route(p).await?),
                    Lookup::NodeById(id) => resolved.put_node(l, cache.node_by_id(*id).await?),
                    Lookup::VersionOwner(v) => {
                        let owner = self.version_owner(*v, principal).await?;
                        resolved.version_owners.insert(*v, owner);
                    }
                    Lookup::User(u) => {
                        resolved.users.insert(*u, cache.user_facts(*u).await?);
                    }
                    Lookup::ProtectedNodes => {
                        resolved.protected = Some(cache.protected_nodes().await?)
                    }
                    Lookup::DefaultCulture => {
                        let c = match self.configured_culture() {
                            Some(c) => Some(c),
                            None => cache.default_language().await?,
                        };
                        resolved.default_culture = Some(c);
                    }
                }
            }
            todo = next_refs(target, who, &resolved);
        }
        Ok(resolved)
    }
}

/// A store wait that ends at `deadline`: its answer, or the deny it turns into.
pub(super) async fn bounded<T>(
    deadline: Instant,
    wait: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, DenyReason> {
    match tokio::time::timeout_at(deadline, wait).await {
        Ok(r) => r.map_err(store_deny),
        Err(_) => {
            tracing::warn!(
                "policy store did not answer within the decision deadline; failing closed"
            );
            Err(DenyReason::StoreUnavailable)
        }
    }
}

fn store_deny(e: StoreError) -> DenyReason {
    if let StoreError::LookupLimited = e {
        return DenyReason::RateLimited;
    }
    tracing::warn!(error = %crate::config::error_chain(&e), "policy store cannot answer; failing closed");
    DenyReason::StoreUnavailable
}
