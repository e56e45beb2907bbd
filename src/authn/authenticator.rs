//! The [`Authenticator`]: built once from `[authn]`, it owns the issuers' key sets (start-up
//! fetch, TTL refresh task, unknown-`kid` refetch), the verified-token cache and the API key
//! pepper, and turns a presented credential into a [`Principal`] or a deny.

use chrono::Utc;
use moka::sync::Cache;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::api_key::{self, GeneratedKey, PresentedKey};
use super::config::AuthnConfig;
use super::jwks::{IssuerKeys, KeyEntry, KeyKind, KeySet, KeySource, VerifyKey};
use super::jwt::IssuerPolicy;
use super::metrics::AuthnMetrics;
use super::{ApiKeyRecord, AuthnError, Principal};
use crate::authz::{DenyReason, TokenProblem};
use crate::config::Problems;

mod bearer;

use bearer::{weigh_token, TokenCache, UntilExp};

/// Smallest accepted pepper / HMAC secret.
const MIN_SECRET_BYTES: usize = 32;
/// How often the background task looks at each issuer's key set.
const TICK: Duration = Duration::from_secs(1);

struct Issuer {
    policy: IssuerPolicy,
    keys: IssuerKeys,
    /// `portcullis_authn_total{method="jwt", issuer, outcome="ok"}`, resolved once.
    verified: prometheus::IntCounter,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn read_secret(env: &str) -> Result<Vec<u8>, AuthnError> {
    let value = std::env::var(env).map_err(|source| AuthnError::MissingEnv {
        name: env.to_owned(),
        source,
    })?;
    if value.len() < MIN_SECRET_BYTES {
        return Err(AuthnError::ShortSecret {
            name: env.to_owned(),
            min: MIN_SECRET_BYTES,
        });
    }
    Ok(value.into_bytes())
}

struct Inner {
    issuers: Vec<Issuer>,
    cache: TokenCache,
    pepper: Vec<u8>,
    key_env: String,
    metrics: AuthnMetrics,
    /// `portcullis_authn_total{method="api_key", issuer="none", outcome="ok"}`, resolved once:
    /// most requests of a Delivery deployment present a valid key.
    api_key_ok: prometheus::IntCounter,
    signature_verifications: AtomicU64,
    rate_limits: super::rate_limit::RateLimits,
}

impl Inner {
    /// Counts one authentication in `portcullis_authn_total{method, issuer}` and returns its
    /// `result` label: `ok`, else the deny's detail (the token problem) or its id.
    fn count<T>(&self, method: &str, issuer: &str, result: &Result<T, DenyReason>) -> &'static str {
        let outcome = match result {
            Ok(_) => "ok",
            Err(reason) => reason.detail().unwrap_or(reason.as_str()),
        };
        self.metrics
            .authn_total
            .with_label_values(&[method, issuer, outcome])
            .inc();
        outcome
    }
}

/// Verifies bearer tokens and API keys. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl Authenticator {
    /// Builds the authenticator: validates `cfg`, reads the pepper and HMAC secrets from the
    /// environment and registers the metrics in `registry`. No network I/O (see [`start`]).
    ///
    /// [`start`]: Authenticator::start
    pub fn new(cfg: &AuthnConfig, registry: &prometheus::Registry) -> Result<Self, AuthnError> {
        let metrics = AuthnMetrics::register(registry)?;
        Self::with_metrics(cfg, metrics)
    }

    /// Like [`new`](Authenticator::new) with metrics registered earlier: a config reload builds
    /// a new authenticator with the same handles (a registry refuses a second registration).
    pub fn with_metrics(cfg: &AuthnConfig, metrics: AuthnMetrics) -> Result<Self, AuthnError> {
        let mut problems = Problems::default();
        cfg.validate(&mut problems);
        if !problems.is_empty() {
            return Err(AuthnError::Config(problems.0.join("; ")));
        }
        let pepper = read_secret(&cfg.pepper_env)?;
        let mut issuers = Vec::with_capacity(cfg.issuers.len());
        for ic in &cfg.issuers {
            let client = reqwest::Client::builder()
                .timeout(ic.jwks_fetch_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(AuthnError::Client)?;
            let source = match (&ic.jwks_url, &ic.discovery_url) {
                (Some(url), _) => KeySource::Jwks(url.clone()),
                (None, Some(url)) => KeySource::Discovery(url.clone()),
                (None, None) => KeySource::Static,
            };
            let policy = IssuerPolicy::new(ic);
            let keys = IssuerKeys::new(
                policy.name.clone(),
                ic.issuer.clone(),
                source,
                client,
                ic.jwks_ttl,
                ic.jwks_min_refetch_interval,
            );
            if let Some(env) = &ic.hs_secret_env {
                let secret = read_secret(env)?;
                keys.install(KeySet {
                    keys: vec![KeyEntry {
                        kid: None,
                        kind: KeyKind::Hmac,
                        alg: None,
                        key: Arc::new(VerifyKey::Hmac(secret)),
                    }],
                    fetched_at: Instant::now(),
                });
            }
            let verified = metrics
                .authn_total
                .with_label_values(&["jwt", &policy.name, "ok"]);
            issuers.push(Issuer {
                policy,
                keys,
                verified,
            });
        }
        let cache = Cache::builder()
            .max_capacity(cfg.token_cache_capacity)
            .weigher(weigh_token)
            .expire_after(UntilExp)
            .build_with_hasher(ahash::RandomState::new());
        Ok(Authenticator {
            inner: Arc::new(Inner {
                issuers,
                cache,
                pepper,
                key_env: cfg.key_env.clone(),
                api_key_ok: metrics
                    .authn_total
                    .with_label_values(&["api_key", "none", "ok"]),
                metrics,
                signature_verifications: AtomicU64::new(0),
                rate_limits: super::rate_limit::RateLimits::default(),
            }),
        })
    }

    /// Fetches every issuer's key set once (call inside a tokio runtime, before serving) (failures are logged and retried by the
    /// background task) and spawns that task, which refreshes each set on its TTL and keeps
    /// `portcullis_jwks_age_seconds` current. The task ends when the authenticator is dropped.
    pub async fn start(&self) {
        let inner = &self.inner;
        let fetches = inner.issuers.iter().filter(|i| i.keys.is_remote()).map(|i| async {
            if let Err(e) = i.keys.refresh(&inner.metrics).await {
                tracing::warn!(authn.issuer = %i.policy.name, error = %e, "initial jwks fetch failed");
            }
        });
        futures::future::join_all(fetches).await;
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(refresh_loop(weak));
    }

    /// Whether every issuer has a key set (readiness).
    pub fn ready(&self) -> bool {
        self.inner
            .issuers
            .iter()
            .all(|i| i.keys.current().is_some())
    }

    /// Verifies a presented API key against the record the policy store returned for its id
    /// (`None` when unknown). A key for another `<env>` is unknown here.
    pub fn verify_api_key(
        &self,
        presented: &PresentedKey,
        record: Option<&ApiKeyRecord>,
    ) -> Result<Arc<Principal>, DenyReason> {
        let result = if presented.env() == self.inner.key_env {
            api_key::verify(presented, record, &self.inner.pepper, Utc::now())
        } else {
            Err(DenyReason::InvalidToken(TokenProblem::UnknownApiKey))
        };
        if result.is_ok() {
            self.inner.api_key_ok.inc();
        } else {
            let outcome = self.inner.count("api_key", "none", &result);
            tracing::debug!(authn.key_id = %presented.key_id(), deny.detail = outcome, "api key rejected");
        }
        result
    }

    /// Applies the principal's rate limit (an API key's `rate_limit_rps`), once per request
    /// after authentication: `RateLimited` (429) when over it. Other principals pass.
    pub fn admit(&self, principal: &Principal) -> Result<(), DenyReason> {
        let super::Subject::ApiKey(scope) = &principal.subject else {
            return Ok(());
        };
        let Some(rps) = scope.rate_limit_rps.and_then(std::num::NonZeroU32::new) else {
            return Ok(());
        };
        match self.inner.rate_limits.admit(&scope.key_id, rps) {
            Ok(()) => Ok(()),
            Err(wait) => {
                self.inner
                    .metrics
                    .rate_limited_total
                    .with_label_values(&["api_key"])
                    .inc();
                tracing::debug!(authn.key_id = %scope.key_id, wait_ms = wait.as_millis() as u64, "api key over its rate limit");
                Err(DenyReason::RateLimited)
            }
        }
    }

    /// Generates a new API key for the configured env with the configured pepper (the admin
    /// API stores `key_id` + `hash` and shows `full` once).
    pub fn generate_api_key(&self) -> Option<GeneratedKey> {
        api_key::generate(&self.inner.key_env, &self.inner.pepper)
    }

    /// A new secret for the existing key `key_id`, same env and pepper (rotation keeps the id).
    pub fn rotate_api_key(&self, key_id: &str) -> Option<GeneratedKey> {
        api_key::generate_for(&self.inner.key_env, key_id, &self.inner.pepper)
    }

    /// Forgets every verified token (after a config change, and for cold-path benches); the
    /// next request of each token verifies its signature again.
    pub fn clear_token_cache(&self) {
        self.inner.cache.invalidate_all();
    }

    /// How many signature verifications ran (cache hits do none).
    pub fn signature_verifications(&self) -> u64 {
        self.inner.signature_verifications.load(Ordering::Relaxed)
    }

    /// Installs a key set from a JWKS document for issuer `name` (static key sets, tests and
    /// benches); replaces any fetched set until the next refresh.
    pub fn install_jwks(&self, name: &str, jwks: &[u8]) -> Result<(), AuthnError> {
        let issuer = self
            .inner
            .issuers
            .iter()
            .find(|i| &*i.policy.name == name)
            .ok_or_else(|| AuthnError::UnknownIssuer {
                name: name.to_owned(),
            })?;
        issuer.keys.install(super::jwks::parse_jwks(jwks, name)?);
        Ok(())
    }
}

/// One loop for all issuers: refresh due sets and publish their age.
async fn refresh_loop(weak: Weak<Inner>) {
    loop {
        tokio::time::sleep(TICK).await;
        let Some(inner) = weak.upgrade() else {
            return;
        };
        for issuer in inner.issuers.iter().filter(|i| i.keys.is_remote()) {
            if issuer.keys.refresh_due().await {
                if let Err(e) = issuer.keys.refresh(&inner.metrics).await {
                    tracing::warn!(authn.issuer = %issuer.policy.name, error = %e, "jwks refresh failed, keeping the last good key set");
                }
            }
            if let Some(set) = issuer.keys.current() {
                inner
                    .metrics
                    .jwks_age_seconds
                    .with_label_values(&[&issuer.policy.name])
                    .set(set.fetched_at.elapsed().as_secs_f64());
            }
        }
    }
}
