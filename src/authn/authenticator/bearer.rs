//! Bearer tokens: whether a token is the `jwt` authenticator's, its verification (parse, the
//! issuer's key with an unknown-`kid` refetch, signature, claims) and the verified-token cache.

use moka::sync::Cache;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{unix_now, Authenticator, Issuer};
use crate::authn::jwks::{Lookup, VerifyKey};
use crate::authn::jwt;
use crate::authn::Principal;
use crate::authz::{DenyReason, TokenProblem};

pub(super) struct Cached {
    /// Handed out shared: a hit copies no string.
    principal: Arc<Principal>,
    exp: i64,
    /// The issuer's `ok` counter.
    verified: prometheus::IntCounter,
}

/// Cache entries live until the token's `exp`, never longer.
pub(super) struct UntilExp;

/// The verified-token cache, keyed by the whole token: a hit compares every byte of the
/// presented token with the one that was verified (the keyed hash only picks the bucket), so
/// no token that differs anywhere — header, claims or signature — is ever taken for a verified
/// one.
pub(super) type TokenCache = Cache<Box<str>, Arc<Cached>, ahash::RandomState>;

/// A cached token weighs 1 per started 4 KiB, so `token_cache_capacity` counts tokens of
/// ordinary size and the cache's memory stays bounded when tokens are large.
#[allow(clippy::borrowed_box)] // the weigher's signature is `fn(&K, &V)` with `K = Box<str>`
pub(super) fn weigh_token(token: &Box<str>, _: &Arc<Cached>) -> u32 {
    u32::try_from(1 + token.len() / 4096).unwrap_or(u32::MAX)
}

impl moka::Expiry<Box<str>, Arc<Cached>> for UntilExp {
    fn expire_after_create(
        &self,
        _key: &Box<str>,
        value: &Arc<Cached>,
        _now: Instant,
    ) -> Option<Duration> {
        let left = value.exp.saturating_sub(unix_now());
        Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }
}

impl Authenticator {
    /// Whether `token` is a well-formed JWT naming a configured issuer: then the `jwt`
    /// authenticator owns it. Anything else (an opaque token) may be another's ("not mine").
    pub fn owns_bearer(&self, token: &str) -> bool {
        if token.bytes().filter(|b| *b == b'.').count() != 2 {
            return false;
        }
        let Ok(parsed) = jwt::split(token) else {
            return false;
        };
        jwt::issuer_of(&parsed.claims)
            .is_ok_and(|iss| self.inner.issuers.iter().any(|i| i.policy.issuer == iss))
    }

    /// Verifies a bearer token. A cached token (the same bytes, before its `exp`) costs one
    /// fast hash and a byte comparison, and no signature check. Errors: `KeysUnavailable` when the issuer's keys were never
    /// fetched, otherwise `InvalidToken(problem)`.
    pub async fn verify_bearer(&self, token: &str) -> Result<Arc<Principal>, DenyReason> {
        match self.verified_bearer(token) {
            Some(principal) => Ok(principal),
            // The cold path (parse, key set, maybe a refetch) in its own allocation: the
            // warm path's future stays small.
            None => Box::pin(self.verify_bearer_cold(token)).await,
        }
    }

    /// The principal of a bearer token verified earlier (the same bytes, before its `exp`),
    /// without waiting; `None` when it must be verified ([`Authenticator::verify_bearer`]).
    pub fn verified_bearer(&self, token: &str) -> Option<Arc<Principal>> {
        let hit = self.inner.cache.get(token)?;
        if hit.exp <= unix_now() {
            return None;
        }
        hit.verified.inc();
        Some(hit.principal.clone())
    }

    async fn verify_bearer_cold(&self, token: &str) -> Result<Arc<Principal>, DenyReason> {
        let (issuer, result) = self.verify_bearer_inner(token).await;
        let issuer_label = issuer.as_deref().unwrap_or("none");
        self.inner.count("jwt", issuer_label, &result);
        if let Err(reason) = &result {
            tracing::debug!(
                authn.issuer = issuer_label,
                deny.reason = reason.as_str(),
                deny.detail = reason.detail().unwrap_or(""),
                "bearer token rejected"
            );
        }
        result
    }

    async fn verify_bearer_inner(
        &self,
        token: &str,
    ) -> (Option<Arc<str>>, Result<Arc<Principal>, DenyReason>) {
        let invalid = DenyReason::InvalidToken;
        if token.len() > jwt::MAX_TOKEN_BYTES {
            return (None, Err(invalid(TokenProblem::TooLarge)));
        }
        let now = unix_now();
        let parsed = match jwt::split(token) {
            Ok(p) => p,
            Err(problem) => return (None, Err(invalid(problem))),
        };
        let iss = match jwt::issuer_of(&parsed.claims) {
            Ok(iss) => iss,
            Err(problem) => return (None, Err(invalid(problem))),
        };
        let Some(issuer) = self.inner.issuers.iter().find(|i| i.policy.issuer == iss) else {
            return (None, Err(invalid(TokenProblem::WrongIssuer)));
        };
        let name = Some(issuer.policy.name.clone());
        if !issuer.policy.algorithms.contains(&parsed.alg) {
            return (name, Err(invalid(TokenProblem::AlgNotAllowed)));
        }
        if let Err(problem) = issuer.policy.check_type(parsed.typ.as_deref()) {
            return (name, Err(invalid(problem)));
        }
        let key = match self
            .key_for(issuer, parsed.kid.as_deref(), parsed.alg)
            .await
        {
            Ok(k) => k,
            Err(reason) => return (name, Err(reason)),
        };
        self.inner
            .signature_verifications
            .fetch_add(1, Ordering::Relaxed);
        let signature_ok = key.verify(
            parsed.alg,
            parsed.signing_input.as_bytes(),
            parsed.signature,
        );
        if !signature_ok {
            return (name, Err(invalid(TokenProblem::BadSignature)));
        }
        match jwt::check_claims(&parsed.claims, &issuer.policy, now) {
            Ok(accepted) => {
                let principal = Arc::new(accepted.principal);
                if accepted.exp > now {
                    self.inner.cache.insert(
                        Box::from(token),
                        Arc::new(Cached {
                            principal: principal.clone(),
                            exp: accepted.exp,
                            verified: issuer.verified.clone(),
                        }),
                    );
                }
                (name, Ok(principal))
            }
            Err(problem) => (name, Err(invalid(problem))),
        }
    }

    /// Finds the key for `kid` + `alg`, refetching the issuer's set once (rate-limited) when
    /// the `kid` is unknown or no set was ever obtained.
    async fn key_for(
        &self,
        issuer: &Issuer,
        kid: Option<&str>,
        alg: jsonwebtoken::Algorithm,
    ) -> Result<Arc<VerifyKey>, DenyReason> {
        let mut refetched = false;
        loop {
            let Some(set) = issuer.keys.current() else {
                if !refetched && issuer.keys.is_remote() {
                    refetched = true;
                    issuer.keys.refetch_if_allowed(&self.inner.metrics).await;
                    continue;
                }
                return Err(DenyReason::KeysUnavailable);
            };
            match set.select(kid, alg) {
                Lookup::Found(k) => return Ok(k.key.clone()),
                Lookup::WrongType => {
                    return Err(DenyReason::InvalidToken(TokenProblem::AlgNotAllowed))
                }
                Lookup::NotFound if !refetched && issuer.keys.is_remote() && kid.is_some() => {
                    refetched = true;
                    issuer.keys.refetch_if_allowed(&self.inner.metrics).await;
                }
                Lookup::NotFound => return Err(DenyReason::InvalidToken(TokenProblem::UnknownKey)),
            }
        }
    }
}
