//! Key sets: fetching a JWKS (directly or via OIDC discovery) with bounded size and time, and
//! keeping the last good set per issuer across failed refreshes, with a rate limit on
//! unknown-`kid` refetches. Parsing a JWKS into verification keys (typed by algorithm family and
//! curve) and choosing a key for a token is in `key_set`.

use arc_swap::ArcSwapOption;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::metrics::AuthnMetrics;
use super::AuthnError;

mod key_set;
mod signature;

#[cfg(test)]
pub(crate) use key_set::alg_name;
pub(crate) use key_set::{parse_jwks, KeyEntry, KeyKind, KeySet, Lookup};
pub(crate) use signature::VerifyKey;

/// Largest JWKS or discovery document accepted.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// Where an issuer's keys come from.
pub(crate) enum KeySource {
    Jwks(String),
    Discovery(String),
    /// A shared HMAC secret from the environment: installed once, never fetched.
    Static,
}

/// Mutable fetch bookkeeping, behind an async lock so concurrent refetches coalesce.
#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    /// The `jwks_uri` learnt from discovery.
    discovered: Option<String>,
}

/// One issuer's keys: the last good set (lock-free reads) and how to refresh it.
pub(crate) struct IssuerKeys {
    name: Arc<str>,
    issuer: String,
    source: KeySource,
    client: reqwest::Client,
    pub(crate) ttl: Duration,
    min_refetch: Duration,
    current: ArcSwapOption<KeySet>,
    fetch: tokio::sync::Mutex<FetchState>,
}

impl IssuerKeys {
    pub(crate) fn new(
        name: Arc<str>,
        issuer: String,
        source: KeySource,
        client: reqwest::Client,
        ttl: Duration,
        min_refetch: Duration,
    ) -> Self {
        IssuerKeys {
            name,
            issuer,
            source,
            client,
            ttl,
            min_refetch,
            current: ArcSwapOption::empty(),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
        }
    }

    /// The last good key set, if any was ever obtained.
    pub(crate) fn current(&self) -> Option<Arc<KeySet>> {
        self.current.load_full()
    }

    /// Installs a key set directly (HMAC secrets, tests, static sets).
    pub(crate) fn install(&self, set: KeySet) {
        self.current.store(Some(Arc::new(set)));
    }

    pub(crate) fn is_remote(&self) -> bool {
        !matches!(self.source, KeySource::Static)
    }

    /// Fetches the set now (scheduled refresh or start). On failure the previous set stays.
    pub(crate) async fn refresh(&self, metrics: &AuthnMetrics) -> Result<(), AuthnError> {
        let mut state = self.fetch.lock().await;
        self.refresh_locked(&mut state, metrics).await
    }

    /// Refetch after an unknown `kid`, at most once per `min_refetch`. Returns whether a
    /// fetch happened (successful or not) or another caller just refreshed.
    pub(crate) async fn refetch_if_allowed(&self, metrics: &AuthnMetrics) -> bool {
        let mut state = self.fetch.lock().await;
        if state
            .last_attempt
            .is_some_and(|t| t.elapsed() < self.min_refetch)
        {
            return false;
        }
        if let Err(e) = self.refresh_locked(&mut state, metrics).await {
            tracing::warn!(authn.issuer = %self.name, error = %e, "jwks refetch failed");
        }
        true
    }

    /// Whether the scheduled refresh is due (TTL elapsed, or no set yet and the retry
    /// interval passed).
    pub(crate) async fn refresh_due(&self) -> bool {
        let state = self.fetch.lock().await;
        let retry_ok = state
            .last_attempt
            .is_none_or(|t| t.elapsed() >= self.min_refetch.min(self.ttl));
        match self.current() {
            None => retry_ok,
            Some(set) => set.fetched_at.elapsed() >= self.ttl && retry_ok,
        }
    }

    async fn refresh_locked(
        &self,
        state: &mut FetchState,
        metrics: &AuthnMetrics,
    ) -> Result<(), AuthnError> {
        state.last_attempt = Some(Instant::now());
        let result = self.fetch_set(state).await;
        let label = if result.is_ok() { "ok" } else { "error" };
        metrics
            .jwks_refresh_total
            .with_label_values(&[&self.name, label])
            .inc();
        let set = result?;
        tracing::info!(authn.issuer = %self.name, keys = set.keys.len(), "jwks refreshed");
        self.install(set);
        metrics
            .jwks_age_seconds
            .with_label_values(&[&self.name])
            .set(0.0);
        Ok(())
    }

    async fn fetch_set(&self, state: &mut FetchState) -> Result<KeySet, AuthnError> {
        let url = match &self.source {
            KeySource::Static => return Err(AuthnError::StaticKeys),
            KeySource::Jwks(url) => url.clone(),
            KeySource::Discovery(url) => match &state.discovered {
                Some(u) => u.clone(),
                None => {
                    let u = self.discover(url).await?;
                    state.discovered = Some(u.clone());
                    u
                }
            },
        };
        let body = get_bounded(&self.client, &url).await?;
        parse_jwks(&body, &url)
    }

    async fn discover(&self, url: &str) -> Result<String, AuthnError> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let body = get_bounded(&self.client, url).await?;
        let doc: Discovery = serde_json::from_slice(&body).map_err(|source| AuthnError::Json {
            url: url.to_owned(),
            source,
        })?;
        if doc.issuer != self.issuer {
            return Err(AuthnError::DiscoveryIssuer {
                url: url.to_owned(),
                found: doc.issuer,
                expected: self.issuer.clone(),
            });
        }
        if !super::config::url_is_acceptable(&doc.jwks_uri) {
            return Err(AuthnError::DiscoveryJwksUri {
                url: url.to_owned(),
            });
        }
        Ok(doc.jwks_uri)
    }
}

/// GET with a size bound (the client carries the timeout and refuses redirects).
async fn get_bounded(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, AuthnError> {
    let fetch_err = |source| AuthnError::Fetch {
        url: url.to_owned(),
        source,
    };
    let mut resp = client.get(url).send().await.map_err(fetch_err)?;
    if !resp.status().is_success() {
        return Err(AuthnError::Status {
            url: url.to_owned(),
            status: resp.status().as_u16(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(fetch_err)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(AuthnError::DocumentTooLarge {
                url: url.to_owned(),
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::authn::testing::idp;

    fn keys(ttl: u64, min_refetch: u64) -> IssuerKeys {
        IssuerKeys::new(
            Arc::from("idp"),
            "https://idp.test".into(),
            KeySource::Jwks("http://127.0.0.1:9/jwks".into()),
            reqwest::Client::new(),
            Duration::from_secs(ttl),
            Duration::from_secs(min_refetch),
        )
    }

    #[tokio::test]
    async fn refresh_is_due_without_keys_and_after_the_ttl_only() {
        let never_fetched = keys(300, 30);
        assert!(never_fetched.refresh_due().await);
        let fresh = keys(300, 30);
        fresh.install(parse_jwks(idp().jwks(&["rsa-a"]).as_bytes(), "t").unwrap());
        assert!(!fresh.refresh_due().await);
        let stale = keys(0, 0);
        stale.install(parse_jwks(idp().jwks(&["rsa-a"]).as_bytes(), "t").unwrap());
        assert!(stale.refresh_due().await);
    }

    #[tokio::test]
    async fn failed_fetch_is_retried_only_after_the_refetch_interval() {
        let registry = prometheus::Registry::new();
        let metrics = AuthnMetrics::register(&registry).unwrap();
        let k = keys(300, 60);
        // Port 9 (discard) on loopback: the connection is refused.
        assert!(k.refresh(&metrics).await.is_err());
        assert!(k.current().is_none());
        assert!(!k.refresh_due().await);
        assert!(!k.refetch_if_allowed(&metrics).await);
    }
}
