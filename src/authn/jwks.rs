//! Key sets: parsing a JWKS into verification keys (typed by algorithm family and curve),
//! fetching it (directly or via OIDC discovery) with bounded size and time, and keeping the
//! last good set per issuer across failed refreshes, with a rate limit on unknown-`kid`
//! refetches.

use arc_swap::ArcSwapOption;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::metrics::AuthnMetrics;
use super::AuthnError;

/// Largest JWKS or discovery document accepted.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;
/// Smallest RSA modulus accepted (RFC 7518 §3.3: 2048 bits or larger).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// The key type a verification key is, which fixes the algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
    Hmac,
}

impl KeyKind {
    /// Whether this key type is the one `alg` requires (RFC 8725 §3.1: no cross-type use).
    pub(crate) fn fits(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::EcP256 => alg == ES256,
            KeyKind::EcP384 => alg == ES384,
            KeyKind::Ed25519 => alg == EdDSA,
            KeyKind::Hmac => matches!(alg, HS256 | HS384 | HS512),
        }
    }
}

/// One verification key from a set.
#[derive(Clone)]
pub(crate) struct KeyEntry {
    pub kid: Option<String>,
    pub kind: KeyKind,
    /// The JWK's own `alg`, when it pins one.
    pub alg: Option<String>,
    pub key: DecodingKey,
}

/// An issuer's current keys and when they were obtained.
pub(crate) struct KeySet {
    pub keys: Vec<KeyEntry>,
    pub fetched_at: Instant,
}

/// What a key lookup found.
pub(crate) enum Lookup<'a> {
    Found(&'a KeyEntry),
    /// The `kid` exists but its key type or pinned `alg` does not fit the token's `alg`.
    WrongType,
    NotFound,
}

impl KeySet {
    /// Picks the key for `kid` + `alg`. Without a `kid`, the set's only fitting key is used.
    pub(crate) fn select(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        let fits =
            |k: &KeyEntry| k.kind.fits(alg) && k.alg.as_deref().is_none_or(|a| a == alg_name(alg));
        match kid {
            Some(kid) => {
                let mut same_kid = self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid));
                let first = same_kid.clone().next();
                match same_kid.find(|k| fits(k)) {
                    Some(k) => Lookup::Found(k),
                    None if first.is_some() => Lookup::WrongType,
                    None => Lookup::NotFound,
                }
            }
            None => {
                let mut fitting = self.keys.iter().filter(|k| fits(k));
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Lookup::Found(k),
                    _ => Lookup::NotFound,
                }
            }
        }
    }
}

/// The JOSE name of an algorithm (`RS256`, `EdDSA`, …).
pub(crate) fn alg_name(alg: Algorithm) -> &'static str {
    use Algorithm::*;
    match alg {
        HS256 => "HS256",
        HS384 => "HS384",
        HS512 => "HS512",
        ES256 => "ES256",
        ES384 => "ES384",
        RS256 => "RS256",
        RS384 => "RS384",
        RS512 => "RS512",
        PS256 => "PS256",
        PS384 => "PS384",
        PS512 => "PS512",
        EdDSA => "EdDSA",
    }
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

fn b64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}

/// Turns one JWK into a key, or `None` for keys we cannot or must not use (encryption keys,
/// symmetric keys in a public set, unknown curves, short RSA moduli, malformed parameters).
fn entry(raw: RawJwk) -> Option<KeyEntry> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let (kind, key) = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("RSA", _) => {
            let (n, e) = (raw.n?, raw.e?);
            let modulus = b64(&n)?;
            let modulus_len = modulus.iter().skip_while(|b| **b == 0).count();
            if modulus_len < MIN_RSA_MODULUS_BYTES || b64(&e)?.is_empty() {
                return None;
            }
            (KeyKind::Rsa, DecodingKey::from_rsa_components(&n, &e).ok()?)
        }
        ("EC", Some(crv @ ("P-256" | "P-384"))) => {
            let (x, y) = (raw.x?, raw.y?);
            let size = if crv == "P-256" { 32 } else { 48 };
            if b64(&x)?.len() != size || b64(&y)?.len() != size {
                return None;
            }
            let kind = if crv == "P-256" {
                KeyKind::EcP256
            } else {
                KeyKind::EcP384
            };
            (kind, DecodingKey::from_ec_components(&x, &y).ok()?)
        }
        ("OKP", Some("Ed25519")) => {
            let x = raw.x?;
            if b64(&x)?.len() != 32 {
                return None;
            }
            (KeyKind::Ed25519, DecodingKey::from_ed_components(&x).ok()?)
        }
        // Symmetric ("oct") keys are never taken from a fetched set.
        _ => return None,
    };
    Some(KeyEntry {
        kid: raw.kid,
        kind,
        alg: raw.alg,
        key,
    })
}

/// Parses a JWKS document. Unusable keys are skipped; a set with no usable key is an error
/// (so a refresh that returns one keeps the previous set).
pub(crate) fn parse_jwks(bytes: &[u8], url: &str) -> Result<KeySet, AuthnError> {
    let raw: RawSet = serde_json::from_slice(bytes).map_err(|source| AuthnError::Json {
        url: url.to_owned(),
        source,
    })?;
    let keys: Vec<KeyEntry> = raw
        .keys
        .into_iter()
        .filter_map(|v| serde_json::from_value::<RawJwk>(v).ok())
        .filter_map(entry)
        .collect();
    if keys.is_empty() {
        return Err(AuthnError::NoUsableKeys {
            url: url.to_owned(),
        });
    }
    Ok(KeySet {
        keys,
        fetched_at: Instant::now(),
    })
}

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
    use crate::authn::testing::{ec_jwk, idp};

    #[test]
    fn rsa_and_ec_keys_are_typed_and_selected_by_kid_and_alg() {
        let jwks = idp().jwks(&["rsa-a", "ec-a"]);
        let set = parse_jwks(jwks.as_bytes(), "t").unwrap();
        assert_eq!(set.keys.len(), 2);
        assert!(
            matches!(set.select(Some("rsa-a"), Algorithm::RS256), Lookup::Found(k) if k.kind == KeyKind::Rsa)
        );
        assert!(matches!(
            set.select(Some("rsa-a"), Algorithm::PS384),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.select(Some("ec-a"), Algorithm::ES256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.select(Some("rsa-a"), Algorithm::ES256),
            Lookup::WrongType
        ));
        assert!(matches!(
            set.select(Some("ec-a"), Algorithm::ES384),
            Lookup::WrongType
        ));
        assert!(matches!(
            set.select(Some("nope"), Algorithm::RS256),
            Lookup::NotFound
        ));
    }

    #[test]
    fn encryption_keys_symmetric_keys_and_short_rsa_keys_are_skipped() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
            {"kty": "RSA", "kid": "short", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "enc", "use": "enc", "crv": "P-256", "x": ec_jwk()["x"], "y": ec_jwk()["y"]},
        ]});
        assert!(parse_jwks(doc.to_string().as_bytes(), "t").is_err());
    }

    #[test]
    fn a_jwk_pinned_alg_must_match_the_token_alg() {
        let mut jwk = idp().rsa_jwk("rsa-a");
        jwk["alg"] = "RS256".into();
        let doc = serde_json::json!({ "keys": [jwk] });
        let set = parse_jwks(doc.to_string().as_bytes(), "t").unwrap();
        assert!(matches!(
            set.select(Some("rsa-a"), Algorithm::RS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.select(Some("rsa-a"), Algorithm::PS256),
            Lookup::WrongType
        ));
    }

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

    #[test]
    fn without_kid_only_a_single_fitting_key_is_used() {
        let one = parse_jwks(idp().jwks(&["rsa-a", "ec-a"]).as_bytes(), "t").unwrap();
        assert!(matches!(
            one.select(None, Algorithm::RS256),
            Lookup::Found(_)
        ));
        let two = parse_jwks(idp().jwks(&["rsa-a", "rsa-b"]).as_bytes(), "t").unwrap();
        assert!(matches!(
            two.select(None, Algorithm::RS256),
            Lookup::NotFound
        ));
    }
}
