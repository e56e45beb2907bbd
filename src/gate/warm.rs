//! The warm path: each step of a decision answered from the caches without waiting, or `None`
//! when the step must wait (then the async step in `gate.rs` runs, and decides exactly as it
//! always did). Only answers that are cached and fresh are used here; "does not exist"
//! answers, stale entries and everything that needs Umbraco go the async way.

use super::{who, Gate};
use crate::authn::{AuthMethod, Credential, PresentedKey, Principal, PrincipalKind, Subject};
use crate::authz::{
    next_refs, required_refs, DenyReason, Lookup, Resolved, TokenProblem, UserAccess,
};
use crate::request::{Api, Target};
use std::sync::Arc;

impl Gate {
    /// [`Gate::authenticate`] when the credential needs no wait: none at all, a token verified
    /// earlier, an API key whose record is cached, or one no authenticator of `api` accepts.
    pub(super) fn authenticate_now(
        &self,
        parts: &http::request::Parts,
        api: Api,
    ) -> Option<Result<Arc<Principal>, DenyReason>> {
        let s = &self.services;
        let allows = |m| self.methods.allows(api, m);
        let umbraco = allows(AuthMethod::Umbraco) && s.sessions.is_some();
        let credential =
            match crate::authn::extract_for(&parts.headers, &parts.uri, &self.site_name) {
                Ok(c) => c,
                Err(reason) => return Some(Err(reason)),
            };
        match credential {
            Credential::None => Some(Ok(anonymous())),
            Credential::Bearer(token) if umbraco && !s.authn.owns_bearer(&token) => None,
            Credential::Bearer(token) if allows(AuthMethod::Jwt) => {
                s.authn.verified_bearer(&token).map(Ok)
            }
            Credential::BackOfficeCookie(_) if umbraco => None,
            Credential::ApiKey(key) if allows(AuthMethod::ApiKey) => {
                let record = s.cache.api_key_now(key.key_id())?;
                Some(self.key_principal(&key, Some(&record)))
            }
            Credential::Bearer(_) | Credential::ApiKey(_) | Credential::BackOfficeCookie(_) => {
                Some(Err(DenyReason::InvalidToken(TokenProblem::NotAccepted)))
            }
        }
    }

    /// An API key checked against its record (`None`: unknown), its use noted and its rate
    /// limit applied.
    pub(super) fn key_principal(
        &self,
        key: &PresentedKey,
        record: Option<&crate::authn::ApiKeyRecord>,
    ) -> Result<Arc<Principal>, DenyReason> {
        let s = &self.services;
        let principal = s.authn.verify_api_key(key, record)?;
        s.cache.record_api_key_use(key.key_id());
        s.authn.admit(&principal)?;
        Ok(principal)
    }

    /// [`Gate::access`] when the user is cached (or none is needed).
    pub(super) fn access_now(&self, principal: &Principal) -> Option<Option<Arc<UserAccess>>> {
        let cache = &self.services.cache;
        match &principal.subject {
            Subject::User { external_id, .. } => cache.user_access_now(external_id).map(Some),
            Subject::ApiKey(scope) => match &scope.acts_as {
                Some(user) => cache.user_access_now(user).map(Some),
                None => Some(None),
            },
            Subject::Umbraco(access) => Some(Some(access.clone())),
            Subject::Anonymous | Subject::Member { .. } => Some(None),
        }
    }

    /// [`Gate::resolve`] when every node and route the decision needs is cached.
    pub(super) fn resolve_now(
        &self,
        target: &Target,
        principal: &Principal,
        access: Option<&UserAccess>,
    ) -> Option<Resolved> {
        let cache = &self.services.cache;
        let who = who(principal, access);
        let mut resolved = Resolved::default();
        let mut todo = required_refs(target, principal);
        for _ in 0..4 {
            if todo.is_empty() {
                break;
            }
            for l in &todo {
                match l {
                    Lookup::Node(k) => resolved.put_node(l, Some(cache.node_now(*k)?)),
                    Lookup::RoutePath(p) => resolved.put_routes(p, cache.nodes_by_route_now(p)?),
                    Lookup::NodeById(id) => resolved.put_node(l, Some(cache.node_by_id_now(*id)?)),
                    Lookup::DefaultCulture => {
                        let c = match self.configured_culture() {
                            Some(c) => Some(c),
                            None => cache.default_language_now()?,
                        };
                        resolved.default_culture = Some(c);
                    }
                    Lookup::ProtectedNodes => {
                        resolved.protected = Some(cache.protected_nodes_now()?)
                    }
                    // Version owners (Umbraco's version API) and user facts: the async way.
                    Lookup::VersionOwner(_) | Lookup::User(_) => return None,
                }
            }
            todo = next_refs(target, &who, &resolved);
        }
        Some(resolved)
    }
}

/// The principal of a request without a credential (one for the process, shared).
pub(super) fn anonymous() -> Arc<Principal> {
    static ANONYMOUS: std::sync::LazyLock<Arc<Principal>> = std::sync::LazyLock::new(|| {
        Arc::new(Principal {
            id: "anonymous".into(),
            kind: PrincipalKind::Anonymous,
            subject: Subject::Anonymous,
        })
    });
    ANONYMOUS.clone()
}
